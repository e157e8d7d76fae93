//! The PVE calls the `pve` backend makes, as one narrow trait: each
//! task-starting call but the start returns once its task ended, so the
//! backend's logic reads as a sequence and tests can stand in for PVE.
//! A start's task is watched, not waited for (see `start_watch`).

use std::fmt::Debug;
use std::time::{Duration, Instant};

use crate::pve::client::{DeleteOptions, NodeCt, PveClient, PveError, Upid};
use crate::pve::config::PveVersion;

/// How long the tasks of one lifecycle may take on PVE before lxcri stops
/// waiting (the task itself goes on; its UPID is in the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskTimeouts {
    pub create: Duration,
    pub start: Duration,
    pub stop: Duration,
    pub destroy: Duration,
}

impl Default for TaskTimeouts {
    fn default() -> Self {
        Self {
            create: Duration::from_secs(120),
            start: Duration::from_secs(60),
            stop: Duration::from_secs(60),
            destroy: Duration::from_secs(120),
        }
    }
}

/// A task started and not waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTask {
    pub upid: Upid,
    pub began: Instant,
    /// How long it may run before lxcri gives up on it.
    pub timeout: Duration,
}

pub trait CtApi: Send + Sync + Debug {
    /// `GET /version`, as the release that decides which keys the API takes.
    fn version(&self) -> Result<PveVersion, PveError>;
    /// `GET /cluster/nextid?vmid=FROM`: `Some(FROM)` if free now, else `None`.
    fn next_id(&self, from: u32) -> Result<Option<u32>, PveError>;
    /// `POST /nodes/{node}/lxc`, then its task.
    fn create(&self, node: &str, params: &[(String, String)]) -> Result<(), PveError>;
    /// `PUT .../config` (synchronous): changes keys of the CT; on a running
    /// CT PVE applies what it can hot-plug at once.
    fn update_config(
        &self,
        node: &str,
        vmid: u32,
        params: &[(String, String)],
    ) -> Result<(), PveError>;
    /// `POST .../status/start`; its task is left running.
    fn begin_start(&self, node: &str, vmid: u32) -> Result<PendingTask, PveError>;
    /// One look at a task: `Ok(false)` while it runs, `Ok(true)` once it
    /// succeeded, its failure once it failed.
    fn task_done(&self, upid: &Upid) -> Result<bool, PveError>;
    /// Waits for a task started earlier, up to the end of its timeout.
    fn finish(&self, task: &PendingTask) -> Result<(), PveError>;
    /// `POST .../status/stop` (`lxc-stop --kill`), then its task.
    fn stop(&self, node: &str, vmid: u32) -> Result<(), PveError>;
    /// `DELETE .../lxc/{vmid}?purge=1&force=1&destroy-unreferenced-disks=1`,
    /// then its task; again without `destroy-unreferenced-disks` when PVE
    /// could not activate a storage to look for unreferenced volumes.
    fn destroy(&self, node: &str, vmid: u32) -> Result<(), PveError>;
    /// `GET /nodes/{node}/lxc`.
    fn list(&self, node: &str) -> Result<Vec<NodeCt>, PveError>;
}

/// [`CtApi`] over the real client.
#[derive(Debug)]
pub struct ClientApi {
    pub client: PveClient,
    pub timeouts: TaskTimeouts,
}

impl CtApi for ClientApi {
    fn version(&self) -> Result<PveVersion, PveError> {
        let v = self.client.version()?;
        PveVersion::parse(&v.version).map_err(|e| PveError::Decode {
            method: reqwest::Method::GET,
            path: "/version".into(),
            message: e.to_string(),
        })
    }

    fn next_id(&self, from: u32) -> Result<Option<u32>, PveError> {
        self.client.next_id(Some(from))
    }

    fn create(&self, node: &str, params: &[(String, String)]) -> Result<(), PveError> {
        let upid = self.client.create_lxc(node, params)?;
        self.client.wait_task(&upid, self.timeouts.create).map(drop)
    }

    fn update_config(
        &self,
        node: &str,
        vmid: u32,
        params: &[(String, String)],
    ) -> Result<(), PveError> {
        self.client.update_lxc_config(node, vmid, params)
    }

    fn begin_start(&self, node: &str, vmid: u32) -> Result<PendingTask, PveError> {
        let upid = self.client.start(node, vmid)?;
        Ok(PendingTask {
            upid,
            began: Instant::now(),
            timeout: self.timeouts.start,
        })
    }

    fn task_done(&self, upid: &Upid) -> Result<bool, PveError> {
        self.client.task_result(upid).map(|exit| exit.is_some())
    }

    fn finish(&self, task: &PendingTask) -> Result<(), PveError> {
        let left = task.timeout.saturating_sub(task.began.elapsed());
        self.client.wait_task(&task.upid, left).map(drop)
    }

    fn stop(&self, node: &str, vmid: u32) -> Result<(), PveError> {
        let upid = self.client.stop(node, vmid)?;
        self.client.wait_task(&upid, self.timeouts.stop).map(drop)
    }

    fn destroy(&self, node: &str, vmid: u32) -> Result<(), PveError> {
        let destroy = |unreferenced: bool| {
            let options = DeleteOptions {
                purge: true,
                force: true,
                destroy_unreferenced_disks: unreferenced,
            };
            let upid = self.client.delete_lxc(node, vmid, &options)?;
            self.client
                .wait_task(&upid, self.timeouts.destroy)
                .map(drop)
        };
        match destroy(true) {
            // For unreferenced volumes PVE lists every storage of the node
            // that holds CT volumes, and one it cannot activate (an NFS
            // share that is down) fails the whole destroy, after the CT's
            // own volumes went and before its config does. The CT is not
            // left for that: once more without the listing.
            Err(e) if names_unavailable_storage(&e) => {
                tracing::warn!(
                    vmid,
                    error = %e,
                    "a storage PVE looks for the CT's unreferenced volumes on is unavailable; destroying the CT without that look"
                );
                destroy(false)
            }
            other => other,
        }
    }

    fn list(&self, node: &str) -> Result<Vec<NodeCt>, PveError> {
        self.client.node_lxc_list(node)
    }
}

/// What PVE said of a failure: a 500's message or a failed task's exit
/// status (PVE reports the same conditions either way).
pub fn failure_text(e: &PveError) -> Option<&str> {
    match e {
        PveError::Server { message, .. } => Some(message),
        PveError::TaskFailed { exitstatus, .. } => Some(exitstatus),
        _ => None,
    }
}

/// Whether a PVE error says a storage could not be activated (pve-storage
/// src/PVE/Storage.pm `activate_storage`: "storage 'X' is not online",
/// "connection check for storage 'X' failed"; the plugins' "unable to
/// activate storage 'X'" and ZFSPoolPlugin's "could not activate storage
/// 'X'").
pub fn names_unavailable_storage(e: &PveError) -> bool {
    failure_text(e).is_some_and(|t| {
        (t.contains("storage '") && t.contains("' is not online"))
            || t.contains("connection check for storage '")
            || t.contains("unable to activate storage '")
            || t.contains("could not activate storage '")
    })
}

/// Whether a PVE error says the CT is gone: "Configuration file
/// 'nodes/n/lxc/100.conf' does not exist", or a task that failed so. Only
/// the CT's own config: "storage 'x' does not exist" is a failure.
pub fn is_missing_ct(e: &PveError) -> bool {
    failure_text(e)
        .is_some_and(|t| t.contains("Configuration file") && t.contains("does not exist"))
}

/// Whether a PVE error says the CT is not running (stop of a stopped CT).
pub fn is_not_running(e: &PveError) -> bool {
    failure_text(e).is_some_and(|t| t.contains("not running"))
}

/// Whether a PVE error says the CT is held: locked (see [`ct_lock`]), or
/// its config lock kept by another task of the CT past the 10 s a worker
/// waits for it (pve-common src/PVE/Tools.pm `lock_file_full`: "can't
/// lock file '...' - got timeout").
pub fn is_ct_busy(e: &PveError) -> bool {
    ct_lock(e).is_some() || is_config_lock_timeout(e)
}

fn is_config_lock_timeout(e: &PveError) -> bool {
    failure_text(e).is_some_and(|t| t.contains("can't lock file") && t.contains("got timeout"))
}

/// The lock a PVE error says the CT holds: `CT is locked (backup)` ->
/// `backup` (pve-guest-common src/PVE/AbstractConfig.pm, `check_lock`).
/// PVE's locks: `create` (a create task still running), `backup`
/// (vzdump), `snapshot`, `snapshot-delete`, `rollback`, `mounted`
/// (`pct mount`), `migrate`, `clone`, `disk`, `fstrim`.
pub fn ct_lock(e: &PveError) -> Option<&str> {
    let text = failure_text(e)?;
    let start = text.find("is locked (")? + "is locked (".len();
    let len = text[start..].find(')')?;
    Some(&text[start..start + len]).filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(message: &str) -> PveError {
        PveError::Server {
            method: reqwest::Method::DELETE,
            path: "/nodes/n/lxc/100".into(),
            message: message.into(),
        }
    }

    #[test]
    fn pve_answers_are_classified() {
        let gone = server("Configuration file 'nodes/n/lxc/100.conf' does not exist");
        assert!(is_missing_ct(&gone) && ct_lock(&gone).is_none() && !is_not_running(&gone));
        assert!(!is_missing_ct(&server("storage 'tank' does not exist")));
        assert_eq!(ct_lock(&server("CT is locked (create)")), Some("create"));
        assert_eq!(ct_lock(&server("CT is locked (backup)\n")), Some("backup"));
        assert_eq!(ct_lock(&server("CT is locked ()")), None);
        assert!(is_not_running(&server("CT 100 not running")));
        let task = PveError::TaskFailed {
            upid: "UPID:n:1:2:3:vzstop:100:u:".into(),
            exitstatus: "CT 100 not running".into(),
            log: vec![],
        };
        assert!(is_not_running(&task) && ct_lock(&task).is_none());
        let busy = PveError::TaskFailed {
            upid: "UPID:n:1:2:3:vzdestroy:100:u:".into(),
            exitstatus: "can't lock file '/run/lock/lxc/pve-config-100.lock' - got timeout".into(),
            log: vec![],
        };
        assert!(is_config_lock_timeout(&busy) && ct_lock(&busy).is_none());
        assert!(!is_config_lock_timeout(&task));
        assert!(is_ct_busy(&busy) && is_ct_busy(&server("CT is locked (backup)")));
        assert!(!is_ct_busy(&task));
    }

    #[test]
    fn storages_pve_could_not_activate_are_recognised() {
        let failed = |status: &str| PveError::TaskFailed {
            upid: "UPID:n:1:2:3:vzdestroy:100:u:".into(),
            exitstatus: status.into(),
            log: vec![],
        };
        for status in [
            "storage 'nfs1' is not online",
            "connection check for storage 'cifs1' failed - timeout",
            "unable to activate storage 'backup' - directory is expected to be a mount point but is not mounted: '/mnt/b'",
            "could not activate storage 'tank', zfs error: cannot import 'tank': no such pool available",
        ] {
            assert!(names_unavailable_storage(&failed(status)), "{status}");
        }
        for status in [
            "storage 'tank' does not exist",
            "CT is locked (backup)",
            "zfs error: cannot destroy 'tank/subvol-100-disk-0': dataset is busy",
        ] {
            assert!(!names_unavailable_storage(&failed(status)), "{status}");
        }
    }
}
