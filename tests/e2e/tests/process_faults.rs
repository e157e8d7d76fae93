//! What the node does to a container's processes without asking lxcri: its
//! init SIGKILLed from the host, its LXC monitor killed, and `/run` wiped
//! as on a reboot before containerd starts again. Containerd must see what
//! runc's containers show (exit 137), kill and delete must still work, and
//! after the reboot a new task of the same container starts and
//! `lxcri gc` finds whatever else was left.

use std::time::Duration;

use lxcri_e2e::cmd::Background;
use lxcri_e2e::node_faults::{lose_run, lxc_monitor, lxcri, sigkill};
use lxcri_e2e::{assert_same, require, runtimes, Containerd, Runtime};

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
        sigkill([pid as i32]);
        ctd.wait_status(&id, "STOPPED");
        assert_exit_code(&ctd, &id, 137);
    }
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
    sigkill([monitor]);
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
    lose_run(&mut ctd, &id);

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
    let out = lxcri(&ctd, &["gc", "--force"]);
    assert!(out.success(), "lxcri gc --force: {out}");
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
    if let Some(sim) = ctd.pve() {
        assert_eq!(sim.leftovers(), Vec::<String>::new(), "CTs left in PVE");
    }
}

/// The kernel's OOM killer ends a process of a container at its memory
/// limit: containerd hears `/tasks/oom` for the container, as from runc's
/// shim (the CRI plugin takes a pod container's `OOMKilled` from it).
/// runc's shim publishes it and the exit from two goroutines, so under load
/// its `/tasks/oom` can trail the `/tasks/exit` (seen here with three busy
/// loops on two cores, 2 runs in 12). lxcri's comes first: its exit watcher
/// looks at the OOM watch before it publishes the exit.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn an_oom_kill_is_published_as_on_runc_and_before_the_exit() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let (id, calm) = (ctd.new_id("oom"), ctd.new_id("calm"));
        let limit = ["--memory-limit", "33554432"];
        let events = Background::spawn(ctd.ctr_command().arg("events"));
        std::thread::sleep(Duration::from_secs(1));
        // Within its limit: no event, whatever its cgroup's end looks like.
        let out = ctd.run(rt, &calm, &["sh", "-c", "exit 3"], &limit);
        assert_eq!(out.code, Some(3), "{rt}: {out}");
        // `tail` keeps the whole line it reads: 256 MiB without a newline.
        let hog = "head -c 268435456 /dev/zero | tail";
        let out = ctd.run(rt, &id, &["sh", "-c", hog], &limit);
        let seen = events.wait(Duration::from_secs(2)).stdout;
        let at = |topic: &str, id: &str| {
            seen.lines()
                .position(|l| l.contains(topic) && l.contains(&format!("\"{id}\"")))
        };
        let (oom, exit) = (at("/tasks/oom", &id), at("/tasks/exit", &id));
        assert!(oom.is_some(), "{rt}: no /tasks/oom for {id}: {seen}");
        assert!(exit.is_some(), "{rt}: no /tasks/exit for {id}: {seen}");
        assert!(at("/tasks/exit", &calm).is_some(), "{rt}: {seen}");
        assert_eq!(at("/tasks/oom", &calm), None, "{rt}: {seen}");
        if rt == Runtime::Lxcri {
            assert!(oom < exit, "{rt}: /tasks/oom after /tasks/exit: {seen}");
        }
        results.push((rt, out.code));
        ctd.remove(&id);
        ctd.remove(&calm);
    }
    assert_eq!(
        results.first().map(|(_, r)| *r),
        Some(Some(137)),
        "{results:?}"
    );
    assert_same("an OOM kill", &results);
}
