//! How a process's end reaches containerd, side by side with runc's shim:
//! the init's exit after its execs', the exit without waiting for a child
//! that keeps the output open (the delete waits for that, bounded, and
//! what the child writes meanwhile reaches the client).

use std::time::Duration;

use lxcri_e2e::cmd::Background;
use lxcri_e2e::{assert_same, containerd_release, runtimes, Containerd, Runtime};

/// Whether containerd's runc shim publishes a container's exit after its
/// execs': containerd#9719, fixed in 1.6.29, 1.7.14 and 2.0.
fn runc_shim_orders_exits() -> bool {
    match containerd_release() {
        (1, 6, patch) => patch >= 29,
        (1, 7, patch) => patch >= 14,
        (major, _, _) => major >= 2,
    }
}

/// The init's TaskExit comes after those of the execs that were running
/// when it died (a client that tidies the execs up at the container's exit
/// must not see them exit later). Three rounds: the order was a race.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn an_inits_exit_comes_after_its_execs_exits() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    for rt in runtimes() {
        if rt == Runtime::Runc && !runc_shim_orders_exits() {
            eprintln!(
                "runc: containerd {:?} does not order exits",
                containerd_release()
            );
            continue;
        }
        for round in 0..3 {
            let events = Background::spawn(ctd.ctr_command().arg("events"));
            std::thread::sleep(Duration::from_secs(1));
            let id = ctd.run_sleeper(rt, "exitorder");
            for exec_id in ["x", "y"] {
                let out = ctd.ctr(&[
                    "task",
                    "exec",
                    "-d",
                    "--exec-id",
                    exec_id,
                    &id,
                    "sleep",
                    "1000",
                ]);
                assert!(out.success(), "{rt}: {out}");
            }
            ctd.kill(&id, "SIGKILL");
            ctd.wait_status(&id, "STOPPED");
            // The execs' exits may still be on their way when the task
            // reads STOPPED on a shim that does not order them.
            std::thread::sleep(Duration::from_millis(500));
            ctd.remove(&id);
            let seen = events.wait(Duration::from_secs(2)).stdout;
            let exits: Vec<&str> = seen
                .lines()
                .filter(|l| l.contains("/tasks/exit") && l.contains(&id))
                .map(|l| {
                    ["x", "y"]
                        .into_iter()
                        .find(|e| l.contains(&format!("\"id\":\"{e}\"")))
                        .unwrap_or("init")
                })
                .collect();
            assert_eq!(exits.len(), 3, "{rt}, round {round}: {seen}");
            assert_eq!(exits.last(), Some(&"init"), "{rt}, round {round}: {seen}");
        }
    }
}

/// Whether containerd's runc shim waits 10 s for a process's output at its
/// delete (2.1.5 on: "fix container logs lost because io close too
/// quickly"); 2 s before, which lxcri does not follow.
fn runc_shim_waits_10_s_for_output() -> bool {
    containerd_release() >= (2, 1, 5)
}

/// An exec that exits while its background child still holds stdout: the
/// exit is reported at once, and what the child writes within the
/// delete's wait for the output (10 s, containerd 2.1.5+'s runc shim's)
/// reaches the client, as with runc's shim on those releases.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_background_childs_later_output_reaches_the_client_as_on_runc() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.run_sleeper(rt, "bglate");
        let out = ctd.ctr_timeout(
            &[
                "task",
                "exec",
                "--exec-id",
                "late",
                &id,
                "sh",
                "-c",
                "(sleep 3; echo late) & echo early; exit 2",
            ],
            Duration::from_secs(30),
        );
        ctd.remove(&id);
        if rt == Runtime::Runc && !runc_shim_waits_10_s_for_output() {
            // Its delete closed the output at 2 s: "late" was lost.
            assert_eq!(
                (out.code, out.stdout.as_str()),
                (Some(2), "early\n"),
                "{rt}: {out}"
            );
            continue;
        }
        results.push((rt, (out.code, out.stdout.clone())));
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(2), "early\nlate\n"),
            "{rt}: {out}"
        );
    }
    assert_same("an exec whose child writes after its exit", &results);
}
