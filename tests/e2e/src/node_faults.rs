//! What the node does to containers behind lxcri's back, for the fault
//! tests: killing processes, losing `/run` as on a reboot, and the `lxcri`
//! command an admin then runs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cmd::{self, CmdOutput};
use crate::{cleanup, Containerd, Runtime, LXCRI_RUN_ROOT};

/// SIGKILLs each of `pids` (gone ones are fine).
pub fn sigkill(pids: impl IntoIterator<Item = i32>) {
    for pid in pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Waits (up to 20 s) until process `pid` is gone; false if it is not.
pub fn wait_gone(pid: u32) -> bool {
    cmd::poll(Duration::from_secs(20), || {
        (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    })
    .is_some()
}

/// The LXC monitor of container `id`: lxc backend, the daemonized
/// `[lxc monitor] LXCPATH <namespace>_<id>`; pve, `lxc-start -F -n VMID`
/// itself (`pve-container@VMID.service` runs it in the foreground).
pub fn lxc_monitor(ctd: &Containerd, id: &str) -> Option<i32> {
    let matches: Box<dyn Fn(&str) -> bool> = match ctd.pve() {
        Some(sim) => {
            let vmid = sim.ct_of(ctd.namespace(), id)?.0;
            Box::new(move |c: &str| {
                c.contains("lxc-start") && c.contains(" -F") && c.contains(&format!(" -n {vmid}"))
            })
        }
        None => {
            let name = format!("{}_{id}", ctd.namespace());
            Box::new(move |c: &str| {
                c.starts_with("[lxc monitor]") && c.trim_end().ends_with(&format!(" {name}"))
            })
        }
    };
    cleanup::processes()
        .into_iter()
        .find(|(_, c)| matches(c))
        .map(|(p, _)| p)
}

/// A reboot as lxcri sees it, for running lxcri container `id`: containerd
/// down, the container's shim, LXC monitor and init gone, `/run` (lxcri's
/// state and containerd's bundles of this namespace) empty. containerd's
/// root and `lxc.lxcpath` stay; containerd is left stopped.
pub fn lose_run(ctd: &mut Containerd, id: &str) {
    let (pid, _) = ctd.task(id).expect("a running task");
    ctd.stop();
    sigkill(cleanup::shim_pids(ctd.namespace(), Runtime::Lxcri, id));
    sigkill(lxc_monitor(ctd, id));
    sigkill([pid as i32]);
    assert!(wait_gone(pid), "the container's process {pid} lives on");
    let bundles = ctd
        .state()
        .join("io.containerd.runtime.v2.task")
        .join(ctd.namespace());
    let state = Path::new(LXCRI_RUN_ROOT).join(ctd.namespace());
    cleanup::unmount_under(&[bundles.clone(), state.clone()]);
    std::fs::remove_dir_all(&bundles).expect("wipe containerd's /run part");
    std::fs::remove_dir_all(&state).expect("wipe lxcri's /run part");
}

/// `lxcri ARGS` with the shims' environment (on pve, pve-sim's settings).
pub fn lxcri(ctd: &Containerd, args: &[&str]) -> CmdOutput {
    let mut c = Command::new(crate::containerd::bin_dir().join("lxcri"));
    c.args(args);
    if let Some(sim) = ctd.pve() {
        c.envs(sim.env());
    }
    cmd::run(&mut c, Duration::from_secs(120))
}
