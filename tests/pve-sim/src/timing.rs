//! PVE-like latencies (`--pve-timing`): where a real node spends time that the stand-in,
//! a single Rust process, does not. Off by default so the functional tests stay fast; on
//! for benchmarks, so that what a client saves by skipping a call or a task is measured
//! against the cost that call has on PVE.
//!
//! The model follows the code a call runs through on a node; the durations are estimates
//! of that work (perl start-up, forks, storage commands), not measurements of one host:
//!
//! - every request: pveproxy (pve-manager PVE/Service/pveproxy.pm) checks the token and
//!   proxies non-GET calls to pvedaemon, a perl handler runs ([`PveTiming::request`]).
//! - a task: pve-common src/PVE/RESTEnvironment.pm `fork_worker` forks the ~100 MiB
//!   pvedaemon worker, and the API answers with the UPID only after the child wrote it
//!   into the `psync` pipe ([`PveTiming::fork`]); when the work ends the child writes
//!   `TASK OK` and `_exit`s, and the task shows `stopped` once its process is gone
//!   (pve-manager PVE/API2/Tasks.pm `read_task_status`: `check_process_running`)
//!   ([`PveTiming::exit`]).
//! - `vzcreate`: pve-container src/PVE/API2/LXC.pm `create_vm` allocates the rootfs
//!   (pve-storage src/PVE/Storage/ZFSPoolPlugin.pm `alloc_image`: `zfs create` and
//!   `zfs set refquota`), mounts it, and src/PVE/LXC/Create.pm unpacks the template.
//! - `vzstart`: src/PVE/LXC.pm `vm_start` runs `systemctl start pve-container@VMID`
//!   (src/pve-container@.service: `lxc-start -F`), whose hooks are perl programs that load
//!   PVE's modules (src/lxc-pve-prestart-hook, src/lxc-pve-autodev-hook); the real
//!   `lxc-start` of the stand-in runs on top of this.
//! - `vzstop`, `vzdestroy`: the stop wrapper, `zfs destroy` of the volumes.
//! - `PUT .../config`: synchronous, under the config lock (src/PVE/API2/LXC/Config.pm
//!   `update_vm`), the config written through pmxcfs ([`PveTiming::config_write`]).
//!
//! The config lock needs no model: the stand-in takes PVE's own flock with its 10 s
//! timeout (pve-guest-common src/PVE/AbstractConfig.pm `lock_config_full`, see
//! store.rs).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PveTiming {
    pub request: Duration,
    pub fork: Duration,
    pub exit: Duration,
    pub config_write: Duration,
    pub create: Duration,
    pub start: Duration,
    pub stop: Duration,
    pub destroy: Duration,
}

impl PveTiming {
    /// The estimates `--pve-timing` uses (see the module docs).
    pub const ESTIMATED: PveTiming = PveTiming {
        request: Duration::from_millis(5),
        fork: Duration::from_millis(25),
        exit: Duration::from_millis(10),
        config_write: Duration::from_millis(10),
        create: Duration::from_millis(400),
        start: Duration::from_millis(300),
        stop: Duration::from_millis(50),
        destroy: Duration::from_millis(150),
    };

    /// The work of a task of type `ty` the stand-in does not do itself.
    pub fn work(&self, ty: &str) -> Duration {
        match ty {
            "vzcreate" => self.create,
            "vzstart" => self.start,
            "vzstop" | "vzshutdown" => self.stop,
            "vzdestroy" => self.destroy,
            _ => Duration::ZERO,
        }
    }
}

/// Sleeps for `d` when timing is on.
pub fn pause(timing: Option<PveTiming>, d: impl Fn(&PveTiming) -> Duration) {
    if let Some(t) = timing {
        std::thread::sleep(d(&t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_cost_what_their_type_does() {
        let t = PveTiming::ESTIMATED;
        assert_eq!(t.work("vzcreate"), t.create);
        assert_eq!(t.work("vzshutdown"), t.stop);
        assert_eq!(t.work("qmigrate"), Duration::ZERO);
    }
}
