//! containerd restarts while a container runs: the shim keeps the
//! container, containerd finds it again (the bundle's `address` file), and
//! exec, kill and delete still work. And a shim that dies takes its
//! container with it, containerd's `delete` path cleaning up.

use std::time::Duration;

use lxcri_e2e::{cleanup, cmd, containerd_version, require, runtimes, Containerd, Runtime};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn exec_and_kill_after_containerd_restart() {
    // lxcri is what this is about; runc runs alongside as the reference
    // (and alone with LXCRI_E2E_RUNTIMES=runc, to check the harness).
    require(Runtime::Lxcri, "exec_and_kill_after_containerd_restart");
    let mut ctd = Containerd::start();
    ctd.import_busybox();
    let ids: Vec<(Runtime, String)> = runtimes()
        .into_iter()
        .map(|rt| {
            let id = ctd.new_id("restart");
            ctd.run_detached(rt, &id, &["sleep", "1000"], &[]);
            (rt, id)
        })
        .collect();
    let before: Vec<_> = ids.iter().map(|(_, id)| ctd.task(id)).collect();

    ctd.restart();

    for ((rt, id), before) in ids.iter().zip(before) {
        assert_eq!(ctd.task(id), before, "{rt}: task after restart");
        let out = ctd.exec(id, "after", &["sh", "-c", "echo alive; exit 6"], &[]);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(6), "alive\n"),
            "{rt}: {out}"
        );
        ctd.kill(id, "SIGKILL").ok();
        ctd.wait_status(id, "STOPPED");
        // ctr reports the exit status of the deleted task on stderr.
        let out = ctd.ctr(&["task", "rm", id]).ok();
        assert!(out.stderr.contains("exit code 137"), "{rt}: {out}");
        ctd.ctr(&["containers", "rm", id]).ok();
    }
}

/// containerd restarts while tasks are created (not started), running and
/// exited: the running one keeps running with its pid, the exited one
/// keeps its exit code (containerd 1.6; 1.7 on deletes it, leaving
/// nothing), the created one can still be started; as on runc.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn created_running_and_exited_tasks_survive_a_containerd_restart() {
    require(
        Runtime::Lxcri,
        "created_running_and_exited_tasks_survive_a_containerd_restart",
    );
    let mut ctd = Containerd::start();
    ctd.import_busybox();
    let mut tasks = Vec::new();
    for rt in runtimes() {
        let created = ctd.new_id("created");
        ctd.create_task_only(rt, &created, &["sleep", "1000"])
            .unwrap_or_else(|e| panic!("{rt}: create only: {e}\n{}", ctd.log_tail(30)));
        assert_eq!(
            ctd.task(&created).map(|t| t.1).as_deref(),
            Some("CREATED"),
            "{rt}"
        );
        let running = ctd.new_id("running");
        ctd.run_detached(rt, &running, &["sleep", "1000"], &[]);
        let exited = ctd.new_id("exited");
        let run = ctd.spawn_run_detached(rt, &exited, &["sh", "-c", "exit 7"]);
        let _ = run.wait(Duration::from_secs(60));
        ctd.wait_status(&exited, "STOPPED");
        let pid = ctd.task(&running).expect("running task").0;
        tasks.push((rt, created, running, pid, exited));
    }

    ctd.restart();

    for (rt, created, running, pid, exited) in &tasks {
        assert_eq!(
            ctd.task(running),
            Some((*pid, "RUNNING".into())),
            "{rt}: running task"
        );
        if containerd_version() >= (1, 7) {
            // containerd 1.7 on deletes a task whose shim reports no
            // processes when it loads the shims (containerd#6860,
            // runtime/v2/shim_load.go `loadShims`): with runc too.
            assert_eq!(ctd.task(exited), None, "{rt}: deleted by containerd");
            assert_eq!(ctd.leftovers(exited), Vec::<String>::new(), "{rt}");
        } else {
            assert_eq!(
                ctd.task(exited).map(|t| t.1).as_deref(),
                Some("STOPPED"),
                "{rt}"
            );
            let out = ctd.ctr(&["task", "rm", exited]).ok();
            assert!(
                out.stderr.contains("exit code 7"),
                "{rt}: exit code kept: {out}"
            );
        }
        assert_eq!(
            ctd.task(created).map(|t| t.1).as_deref(),
            Some("CREATED"),
            "{rt}"
        );
        lxcri_e2e::grpc::start_task(&ctd.socket(), ctd.namespace(), created)
            .unwrap_or_else(|e| panic!("{rt}: start after restart: {e}\n{}", ctd.log_tail(30)));
        ctd.wait_status(created, "RUNNING");
        let out = ctd.exec(created, "after", &["sh", "-c", "echo alive"], &[]);
        assert_eq!(out.stdout, "alive\n", "{rt}: {out}");
        for id in [created, running] {
            ctd.kill(id, "SIGKILL").ok();
            ctd.wait_status(id, "STOPPED");
            ctd.remove(id);
        }
        ctd.ctr(&["containers", "rm", exited]).ok();
        assert_eq!(ctd.leftovers(created), Vec::<String>::new(), "{rt}");
    }
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn shim_killed_then_containerd_cleans_up() {
    require(Runtime::Lxcri, "shim_killed_then_containerd_cleans_up");
    let ctd = Containerd::start();
    ctd.import_busybox();
    for rt in runtimes() {
        let id = ctd.new_id("shimkill");
        ctd.run_detached(rt, &id, &["sleep", "1000"], &[]);
        let (pid, _) = ctd.task(&id).expect("task listed");
        // The shim(s) of this test's namespace: ours to kill.
        let shims: Vec<i32> = cleanup::processes()
            .into_iter()
            .filter(|(_, c)| c.contains(rt.shim_binary()) && c.contains(ctd.namespace()))
            .map(|(p, _)| p)
            .collect();
        assert!(!shims.is_empty(), "{rt}: no shim process found");
        for p in shims {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        // containerd sees the shim die and runs `<shim> delete` on the
        // bundle, which must take the container down with it.
        assert_taken_down_with_its_shim(&ctd, rt, &id, pid, "shim kill");
        ctd.ctr(&["task", "rm", "-f", &id]);
        ctd.ctr(&["containers", "rm", &id]).ok();
        if rt == Runtime::Lxcri {
            // containerd runs `<shim> delete` for a dead shim in the
            // background; on the pve backend it waits for PVE's destroy task.
            let clean = cmd::poll(Duration::from_secs(20), || {
                ctd.leftovers(&id).is_empty().then_some(())
            });
            let left = ctd.leftovers(&id);
            assert!(clean.is_some(), "{rt}: left behind: {left:#?}");
            // The `delete` action also removed the dead shim's socket
            // (runc's shim leaves it).
            let socket = cleanup::shim_socket(&ctd.socket(), ctd.namespace(), &id);
            assert!(!socket.exists(), "{rt}: left {}", socket.display());
        }
    }
}

/// The task of `id` (its init `pid`) is gone or stopped once its shim
/// died, and the init with it: containerd's cleanup of a dead shim.
#[track_caller]
fn assert_taken_down_with_its_shim(ctd: &Containerd, rt: Runtime, id: &str, pid: u32, after: &str) {
    let gone = cmd::poll(Duration::from_secs(30), || {
        ctd.task(id)
            .is_none_or(|(_, s)| s == "STOPPED" || s == "UNKNOWN")
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "{rt}: task after {after}: {:?}",
        ctd.task(id)
    );
    let dead = cmd::poll(Duration::from_secs(10), || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(
        dead.is_some(),
        "{rt}: container init {pid} survived its shim"
    );
}

/// The client reading a task's output (here `ctr` itself; for CRI,
/// containerd) goes away while the task keeps writing: the task must not
/// die of SIGPIPE. The shim's copier opens the output FIFOs read-write, so a
/// reader always exists (runc's shim holds one instead).
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn output_reader_going_away_does_not_kill_the_task() {
    require(
        Runtime::Lxcri,
        "output_reader_going_away_does_not_kill_the_task",
    );
    let ctd = Containerd::start();
    ctd.import_busybox();
    for rt in runtimes() {
        let id = ctd.new_id("reader");
        let client = ctd.spawn_run(
            rt,
            &id,
            &[
                "sh",
                "-c",
                "while true; do echo tick; echo tock >&2; sleep 0.05; done",
            ],
            &[],
        );
        ctd.wait_status(&id, "RUNNING");
        kill(Pid::from_raw(client.pid() as i32), Signal::SIGKILL).expect("kill ctr");
        let _ = client.wait(Duration::from_secs(10));
        // Long enough for many writes with no reader but the shim's.
        std::thread::sleep(Duration::from_millis(700));
        let (_, status) = ctd.task(&id).expect("task listed");
        assert_eq!(status, "RUNNING", "{rt}: the task died without a reader");
        ctd.kill(&id, "SIGKILL").ok();
        ctd.wait_status(&id, "STOPPED");
        ctd.remove(&id);
    }
}

/// A shim asked to end (SIGTERM, as systemd's stop of a node does) stops
/// serving, removes its socket and exits, leaving its container to
/// containerd's cleanup of a dead shim, as runc's shim does
/// (containerd `pkg/shim/shim_unix.go` `handleExitSignals`).
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn shim_terminated_exits_and_containerd_cleans_up() {
    require(
        Runtime::Lxcri,
        "shim_terminated_exits_and_containerd_cleans_up",
    );
    let ctd = Containerd::start();
    ctd.import_busybox();
    for rt in runtimes() {
        let id = ctd.new_id("shimterm");
        ctd.run_detached(rt, &id, &["sleep", "1000"], &[]);
        let (pid, _) = ctd.task(&id).expect("task listed");
        let shims = cleanup::shim_pids(ctd.namespace(), rt, &id);
        assert!(!shims.is_empty(), "{rt}: no shim process found");
        let socket = cleanup::shim_socket(&ctd.socket(), ctd.namespace(), &id);
        assert!(socket.exists(), "{rt}: no socket {}", socket.display());
        for p in &shims {
            let _ = kill(Pid::from_raw(*p), Signal::SIGTERM);
        }
        let exited = cmd::poll(Duration::from_secs(10), || {
            shims
                .iter()
                .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
                .then_some(())
        });
        assert!(exited.is_some(), "{rt}: the shim ignored SIGTERM");
        assert_taken_down_with_its_shim(&ctd, rt, &id, pid, "shim SIGTERM");
        assert!(!socket.exists(), "{rt}: left {}", socket.display());
        ctd.ctr(&["task", "rm", "-f", &id]);
        ctd.ctr(&["containers", "rm", &id]).ok();
        let clean = cmd::poll(Duration::from_secs(20), || {
            ctd.leftovers(&id).is_empty().then_some(())
        });
        assert!(
            clean.is_some(),
            "{rt}: left behind: {:#?}",
            ctd.leftovers(&id)
        );
    }
}

/// The first events after a containerd restart (the shim's connection to
/// it is a dead one then) arrive in the order they happened: an exec
/// killed, then its container; the exec's exit first, as with runc's shim,
/// which connects again at once. (The shim library's publisher sent the
/// failed event again a second later, after the container's exit.)
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn events_after_a_containerd_restart_keep_their_order() {
    require(
        Runtime::Lxcri,
        "events_after_a_containerd_restart_keep_their_order",
    );
    let mut ctd = Containerd::start();
    ctd.import_busybox();
    let ids: Vec<(Runtime, String)> = runtimes()
        .into_iter()
        .map(|rt| {
            let id = ctd.new_id("evorder");
            ctd.run_detached(rt, &id, &["sleep", "1000"], &[]);
            let out = ctd.ctr(&["task", "exec", "-d", "--exec-id", "x", &id, "sleep", "1000"]);
            assert!(out.success(), "{rt}: {out}");
            (rt, id)
        })
        .collect();
    ctd.restart();
    for (rt, id) in &ids {
        let events = lxcri_e2e::cmd::Background::spawn(ctd.ctr_command().arg("events"));
        std::thread::sleep(Duration::from_secs(1));
        let out = ctd.ctr(&["task", "kill", "--exec-id", "x", "-s", "SIGKILL", id]);
        assert!(out.success(), "{rt}: {out}");
        ctd.kill(id, "SIGKILL");
        ctd.wait_status(id, "STOPPED");
        std::thread::sleep(Duration::from_millis(1500));
        let seen = events.wait(Duration::from_secs(2)).stdout;
        let exits: Vec<&str> = seen
            .lines()
            .filter(|l| l.contains("/tasks/exit") && l.contains(id.as_str()))
            .map(|l| {
                if l.contains("\"id\":\"x\"") {
                    "x"
                } else {
                    "init"
                }
            })
            .collect();
        assert_eq!(exits, ["x", "init"], "{rt}: {seen}");
        ctd.remove(id);
    }
}
