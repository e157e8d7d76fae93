//! The OCI process is PID 1 of its container, as on runc: `/proc/1` is the
//! app, an init that insists on being PID 1 boots, and PID 1's signal
//! semantics hold (a signal without a handler does not end it, SIGKILL
//! does).

use std::time::Duration;

use lxcri_e2e::{assert_same, runtimes, Containerd};

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn the_oci_process_is_pid_1() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("pid1");
        // A pipeline, so the shell stays (busybox execs a lone last command).
        let script = "echo $$; cat /proc/1/cmdline | tr '\\0' ' '";
        let out = ctd.run(rt, &id, &["sh", "-c", script], &[]);
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        assert_eq!(out.stdout, format!("1\nsh -c {script} "), "{rt}: {out}");
        results.push((rt, out.stdout));
    }
    assert_same("PID 1 as the container sees it", &results);
}

/// Like systemd, an init that refuses to run unless it is PID 1.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn an_init_that_insists_on_pid_1_boots() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("initlike");
        let script = "[ \"$$\" = 1 ] || { echo 'not PID 1' >&2; exit 1; }; echo booted";
        let out = ctd.run(rt, &id, &["sh", "-c", script], &[]);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "booted\n"),
            "{rt}: {out}"
        );
        results.push((rt, out.stdout));
    }
    assert_same("an init that needs PID 1", &results);
}

/// systemd's StopSignal is SIGRTMIN+3 (37): a real-time signal reaches
/// PID 1 by number, as any other.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_real_time_signal_reaches_pid_1() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("rtsig");
        let script = "trap 'exit 42' 37; while true; do sleep 0.1; done";
        let run = ctd.spawn_run(rt, &id, &["sh", "-c", script], &[]);
        ctd.wait_status(&id, "RUNNING");
        // Until the trap is set the kernel drops the signal (PID 1 without
        // a handler), so it is sent while the shell runs.
        let mut last_kill = None;
        let ended = lxcri_e2e::cmd::poll(Duration::from_secs(20), || {
            if ctd.task(&id).is_some_and(|(_, s)| s == "RUNNING") {
                last_kill = Some(ctd.kill(&id, "37").to_string());
                return None;
            }
            Some(())
        });
        assert!(
            ended.is_some(),
            "{rt}: runs on after signal 37: {last_kill:?}"
        );
        let out = run.wait(Duration::from_secs(60));
        assert_eq!(out.code, Some(42), "{rt}: {out}");
        results.push((rt, out.code));
    }
    assert_same("exit code of PID 1 trapping signal 37", &results);
}

/// An app without a SIGTERM handler is PID 1: containerd's SIGTERM does not
/// end it (Kubernetes then waits out the grace period and sends SIGKILL).
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn sigterm_without_a_handler_leaves_pid_1_running() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("noterm");
        let run = ctd.spawn_run(rt, &id, &["sleep", "1000"], &[]);
        ctd.wait_status(&id, "RUNNING");
        ctd.kill(&id, "SIGTERM").ok();
        std::thread::sleep(Duration::from_millis(1500));
        let after_term = ctd.task(&id).map(|(_, s)| s);
        assert_eq!(after_term.as_deref(), Some("RUNNING"), "{rt}");
        ctd.kill(&id, "SIGKILL").ok();
        let out = run.wait(Duration::from_secs(60));
        assert_eq!(out.code, Some(137), "{rt}: {out}");
        results.push((rt, (after_term, out.code)));
    }
    assert_same("PID 1 without a SIGTERM handler", &results);
}

/// The process starts with no signal ignored, glibc's internal ones (32,
/// 33) included, whatever the shim's and LXC's chain had ignored (33 came
/// through before). runc's process keeps what its parents ignored where Go
/// leaves a signal alone (32 here, from the test's chain), so this is
/// lxcri's alone: a node's containerd ignores none.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn the_process_starts_with_no_signal_ignored() {
    if !lxcri_e2e::Runtime::Lxcri.selected() {
        return;
    }
    let ctd = Containerd::start();
    ctd.import_busybox();
    let id = ctd.new_id("sigign");
    let out = ctd.run(
        lxcri_e2e::Runtime::Lxcri,
        &id,
        &["grep", "SigIgn", "/proc/self/status"],
        &[],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout, "SigIgn:\t0000000000000000\n", "{out}");
}
