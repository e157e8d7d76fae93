//! What the node does to a container's processes without asking lxcri: its
//! init SIGKILLed from the host, its LXC monitor killed, and `/run` wiped
//! as on a reboot before containerd starts again. Containerd must see what
//! runc's containers show (exit 137), kill and delete must still work, and
//! after the reboot a new task of the same container starts and
//! `lxcri gc` finds whatever else was left.

use std::time::Duration;

use lxcri_e2e::{cleanup, cmd, require, runtimes, Containerd, Runtime, LXCRI_RUN_ROOT, LXCRI_SHIM};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn sigkill(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

#[track_caller]
fn assert_exit_code(ctd: &Containerd, id: &str, code: u32) {
    let out = ctd.ctr(&["task", "rm", id]).ok();
    assert!(
        out.stderr.contains(&format!("exit code {code}")),
        "{id}: exit code {code} expected: {out}"
    );
    ctd.ctr(&["containers", "rm", id]).ok();
    assert_eq!(ctd.leftovers(id), Vec::<String>::new(), "{id}");
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn init_killed_from_the_host_exits_137_as_on_runc() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    for rt in runtimes() {
        let id = ctd.new_id("init-kill");
        ctd.run_detached(rt, &id, &["sleep", "1000"], &[]);
        let (pid, _) = ctd.task(&id).expect("task");
        sigkill(pid as i32);
        ctd.wait_status(&id, "STOPPED");
        assert_exit_code(&ctd, &id, 137);
    }
}

/// The LXC monitor of container `id`: lxc backend, the daemonized
/// `[lxc monitor] LXCPATH <namespace>_<id>`; pve, `lxc-start -F -n VMID`
/// itself (`pve-container@VMID.service` runs it in the foreground).
fn lxc_monitor(ctd: &Containerd, id: &str) -> Option<i32> {
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

/// LXC gives a container's init its monitor as parent-death signal
/// source (SIGKILL): the container dies with its monitor. containerd must
/// see that as the task's exit, and delete must leave nothing.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn lxc_monitor_killed_the_task_exits_137_and_goes() {
    if !require(
        Runtime::Lxcri,
        "lxc_monitor_killed_the_task_exits_137_and_goes",
    ) {
        return;
    }
    let ctd = Containerd::start();
    ctd.import_busybox();
    let id = ctd.new_id("monitor-kill");
    ctd.run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    let monitor = lxc_monitor(&ctd, &id).expect("the container's LXC monitor");
    sigkill(monitor);
    ctd.wait_status(&id, "STOPPED");
    assert_exit_code(&ctd, &id, 137);
}

/// A reboot as lxcri sees it: containerd down, every process of the
/// container and its shim gone, `/run` (lxcri's state, containerd's
/// bundles) empty; containerd then starts again on its persistent root.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn after_a_reboot_the_same_container_starts_again_and_gc_finds_the_rest() {
    if !require(
        Runtime::Lxcri,
        "after_a_reboot_the_same_container_starts_again",
    ) {
        return;
    }
    let _turn = lxcri_e2e::machine_lock("/run/lock/lxcri-e2e-gc.lock", "gc test");
    let mut ctd = Containerd::start();
    ctd.import_busybox();
    let id = ctd.new_id("reboot");
    ctd.run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    let (pid, _) = ctd.task(&id).expect("task");

    ctd.stop();
    let this = format!("-namespace {} -id {id} ", ctd.namespace());
    for (p, _) in cleanup::processes()
        .into_iter()
        .filter(|(_, c)| c.contains(LXCRI_SHIM) && c.contains(&this))
    {
        sigkill(p);
    }
    if let Some(m) = lxc_monitor(&ctd, &id) {
        sigkill(m);
    }
    sigkill(pid as i32);
    let dead = cmd::poll(Duration::from_secs(20), || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(dead.is_some(), "the container's process {pid} lives on");
    let bundles = ctd
        .state()
        .join("io.containerd.runtime.v2.task")
        .join(ctd.namespace());
    let state = std::path::Path::new(LXCRI_RUN_ROOT).join(ctd.namespace());
    cleanup::unmount_under(&[bundles.clone(), state.clone()]);
    std::fs::remove_dir_all(&bundles).expect("wipe containerd's /run part");
    std::fs::remove_dir_all(&state).expect("wipe lxcri's /run part");

    ctd.restart();
    // containerd kept the container, not its task: it starts again.
    ctd.ctr(&["task", "rm", "-f", &id]);
    let out = ctd.ctr(&["task", "start", "-d", &id]);
    assert!(
        out.success(),
        "task start after the reboot: {out}\n{}",
        ctd.log_tail(30)
    );
    ctd.wait_status(&id, "RUNNING");
    ctd.kill(&id, "SIGKILL").ok();
    ctd.wait_status(&id, "STOPPED");
    ctd.remove(&id);

    // What the lost run left (on pve: its CT) is gc's.
    let mut gc = std::process::Command::new(lxcri_e2e::containerd::bin_dir().join("lxcri"));
    gc.args(["gc", "--force"]);
    if let Some(sim) = ctd.pve() {
        gc.envs(sim.env());
    }
    let out = cmd::run(&mut gc, Duration::from_secs(120));
    assert!(out.success(), "lxcri gc --force: {out}");
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
    if let Some(sim) = ctd.pve() {
        assert_eq!(sim.leftovers(), Vec::<String>::new(), "CTs left in PVE");
    }
}
