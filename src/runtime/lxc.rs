//! The `lxc` backend: each container is a plain LXC container, named
//! `<namespace>_<id>`, run with the `lxc-*` tools ([`LxcTools`]).

use crate::cgroup::{CgroupPath, ContainerCgroup};
use crate::config::{BackendKind, Config};
use crate::lxc::{LxcTools, LxcToolsError};
use crate::rootfs::zfs::volume_leaf;
use crate::state::ContainerRecord;

use super::backend::{Backend, CreateSteps};
use super::bundle::{BundleUndo, PreparedBundle};
use super::container::CreateRequest;
use super::error::{Result, RuntimeError};

/// The LXC container name for a containerd namespace and id. containerd
/// namespaces cannot contain `_`, so the pair is unique.
pub fn container_name(namespace: &str, id: &str) -> String {
    format!("{namespace}_{id}")
}

/// The containerd namespace and id of an LXC container lxcri named, if the
/// name is one ([`container_name`]).
pub fn split_container_name(name: &str) -> Option<(&str, &str)> {
    let (namespace, id) = name.split_once('_')?;
    let valid = |what, v| crate::state::validate_name(what, v).is_ok();
    (valid("namespace", namespace) && valid("container id", id)).then_some((namespace, id))
}

/// Containers as plain LXC containers under `lxc.lxcpath`.
#[derive(Debug)]
pub struct LxcBackend {
    lxc: LxcTools,
}

impl LxcBackend {
    pub fn new(config: &Config) -> Self {
        Self {
            lxc: LxcTools::new(&config.lxc.lxcpath, config.lxc.log_level.lxc_name()),
        }
    }
}

impl Backend for LxcBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Lxc
    }

    fn begin_create<'a>(&'a self, req: &'a CreateRequest) -> Result<Box<dyn CreateSteps + 'a>> {
        let name = container_name(&req.namespace, &req.id);
        if self.lxc.container_dir(&name).exists() {
            return Err(RuntimeError::Exists(req.owner()));
        }
        // The grace period `lxc-start` would wait for passes while the
        // bundle is prepared.
        crate::cgroup::attach_lock::prime();
        Ok(Box::new(LxcCreate {
            lxc: &self.lxc,
            name,
            config: None,
            netns: None,
            cgroup_dirs: None,
            written: false,
        }))
    }

    fn volume(&self, namespace: &str, id: &str, _: Option<&ContainerRecord>) -> Option<String> {
        Some(volume_leaf(&container_name(namespace, id)))
    }

    fn stop(&self, namespace: &str, id: &str, _: Option<&ContainerRecord>) -> Result<()> {
        Ok(self.lxc.stop(&container_name(namespace, id))?)
    }

    fn teardown(&self, namespace: &str, id: &str, record: Option<&ContainerRecord>) -> Result<()> {
        let name = container_name(namespace, id);
        // An init known to have exited: LXC's monitor stops the container
        // by itself and `remove` waits for it. Asking LXC first would cost
        // an `lxc-info` that blocks until that teardown is done anyway.
        if !record.is_some_and(init_has_exited) {
            self.lxc.stop(&name)?;
        }
        self.lxc.remove(&name)?;
        Ok(())
    }
}

/// Whether the record names the container's init (pid and start time)
/// and that process has exited; without both it cannot be told.
fn init_has_exited(record: &ContainerRecord) -> bool {
    match (record.pid, record.pid_start_time) {
        (Some(pid), Some(start)) => {
            !crate::pidfd::is_live_process(std::path::Path::new("/proc"), pid, Some(start))
        }
        _ => false,
    }
}

/// One create on the lxc backend.
struct LxcCreate<'a> {
    lxc: &'a LxcTools,
    name: String,
    /// The rendered LXC config, from `configure`.
    config: Option<String>,
    /// The network namespace to start it in, from `configure`.
    netns: Option<std::path::PathBuf>,
    /// Where its cgroups go, from `configure`; `None`: LXC's names.
    cgroup_dirs: Option<crate::lxc::CgroupDirs>,
    /// Whether anything of the LXC container may exist.
    written: bool,
}

impl CreateSteps for LxcCreate<'_> {
    fn volume(&self) -> Option<String> {
        Some(volume_leaf(&self.name))
    }

    fn lxc_monitor_cgroup(&self) -> Option<CgroupPath> {
        // The name is made of a checked namespace and id, so it always is
        // a valid cgroup name.
        crate::lxc::monitor_cgroup(&self.name).ok()
    }

    fn configure(&mut self, bundle: &PreparedBundle) -> Result<()> {
        self.config = Some(bundle.plan.lxc.render()?);
        self.netns = bundle.plan.lxc.namespaces.inherit_net.clone();
        self.cgroup_dirs = bundle.plan.lxc.cgroup_dirs.clone();
        Ok(())
    }

    fn reserve(
        &mut self,
        record: &mut ContainerRecord,
        _: &dyn Fn(&ContainerRecord) -> Result<()>,
    ) -> Result<()> {
        record.backend_name = self.name.clone();
        Ok(())
    }

    fn write_config(&mut self, _: &PreparedBundle, _: &mut BundleUndo) -> Result<()> {
        let config = self.config.as_deref().expect("configure runs first");
        // LXC fails a start whose cgroup exists; checked before anything
        // of the container is written, so a refusal leaves nothing.
        if let Some(dirs) = &self.cgroup_dirs {
            self.lxc
                .clear_stale_cgroup(&dirs.container, "linux.cgroupsPath: container's cgroup")?;
            // Named explicitly, LXC no longer falls back to `-1`, `-2`...
            self.lxc
                .clear_stale_cgroup(&dirs.monitor, "the LXC monitor's cgroup of an earlier run")?;
        }
        self.written = true;
        Ok(self
            .lxc
            .write_config(&self.name, config, self.netns.as_deref())?)
    }

    fn start(&mut self) -> Result<()> {
        Ok(self.lxc.start(&self.name)?)
    }

    fn is_running(&self) -> bool {
        self.lxc.is_running(&self.name)
    }

    fn claim_cgroup(&self, cgroup: &ContainerCgroup) -> Result<()> {
        let Some(placed) = &self.cgroup_dirs else {
            return Ok(());
        };
        // Only where LXC placed it: in a hierarchy LXC leaves alone the
        // init stays in lxc-start's cgroup, which is the shim's.
        let placed = std::path::Path::new(placed.container.as_str());
        let mut dirs: Vec<std::path::PathBuf> = cgroup
            .process_dirs()
            .filter(|d| d.ends_with(placed) && d.is_dir())
            .map(|d| d.to_path_buf())
            .collect();
        dirs.sort();
        dirs.dedup();
        Ok(self.lxc.record_placed_cgroups(&self.name, &dirs)?)
    }

    fn stopped_early(&self) -> RuntimeError {
        LxcToolsError::Failed {
            command: format!("lxc-start -n {}", self.name),
            status: "container stopped".into(),
            detail: self.lxc.failure_detail(&self.name, b""),
        }
        .into()
    }

    fn rollback(&mut self) {
        if !self.written {
            return;
        }
        if let Err(e) = self.lxc.stop(&self.name) {
            tracing::warn!(error = %e, "rollback: stopping LXC container");
        }
        if let Err(e) = self.lxc.remove(&self.name) {
            tracing::warn!(error = %e, "rollback: removing LXC container");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_init_has_exited_only_when_the_record_names_a_gone_process() {
        let mut r = crate::state::tests_support::record("default", "c");
        (r.pid, r.pid_start_time) = (None, None);
        // Nothing recorded: cannot tell, LXC is asked.
        assert!(!init_has_exited(&r));
        let me = std::process::id() as i32;
        r.pid = Some(me);
        assert!(!init_has_exited(&r), "no start time: cannot tell");
        r.pid_start_time = crate::pidfd::start_time(me).ok();
        assert!(!init_has_exited(&r), "this process lives");
        // The same pid with another start time: a reused pid, not the init.
        r.pid_start_time = r.pid_start_time.map(|t| t + 1);
        assert!(init_has_exited(&r));

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        r.pid = Some(pid);
        r.pid_start_time = crate::pidfd::start_time(pid).ok();
        child.wait().unwrap();
        assert!(init_has_exited(&r));
    }
}
