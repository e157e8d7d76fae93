//! What a task answers in each of its states, side by side with runc's
//! shim: a created one takes an exec and refuses pause and resume, a
//! stopped one lists no process, has nothing for `kill --all`, refuses an
//! exec, pause and update; signal 0 probes a running one.

use lxcri_e2e::{assert_same, runtimes, CmdOutput, Containerd};

/// The message of a refused ctr command, without ctr's `ctr: ` and the
/// gRPC code containerd 1.6 appends (runc's shim answers Unknown where
/// lxcri's answers FailedPrecondition).
fn refusal(out: &CmdOutput) -> String {
    let text = out.stderr.trim();
    let text = text.strip_prefix("ctr: ").unwrap_or(text);
    let text = text
        .strip_suffix(": unknown")
        .or_else(|| text.strip_suffix(": failed precondition"))
        .unwrap_or(text);
    text.to_string()
}

/// A created task (not started) takes an exec, as runc's does (its init
/// waits in the finished container), and refuses pause and resume.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_created_task_answers_as_runcs() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("created");
        ctd.create_task_only(rt, &id, &["sleep", "1000"])
            .unwrap_or_else(|e| panic!("{rt}: {e}"));
        let exec = ctd.exec(&id, "early", &["sh", "-c", "echo from-exec; exit 4"], &[]);
        let pause = ctd.ctr(&["task", "pause", &id]);
        let resume = ctd.ctr(&["task", "resume", &id]);
        let (_, status) = ctd.task(&id).expect("task listed");
        ctd.remove(&id);
        assert_eq!(
            (exec.code, exec.stdout.as_str()),
            (Some(4), "from-exec\n"),
            "{rt}: {exec}"
        );
        assert_eq!(status, "CREATED", "{rt}");
        let words = (refusal(&pause), refusal(&resume));
        assert_eq!(
            words,
            (
                "cannot pause task in created state".to_string(),
                "cannot resume task in created state".to_string()
            ),
            "{rt}: {pause} {resume}"
        );
        results.push((rt, (exec.code, words)));
    }
    assert_same("a created task's answers", &results);
}

/// A stopped task, not deleted yet: `ps` lists nothing (its cgroup may be
/// gone), `kill --all` has nothing to do and succeeds, an exec, a pause
/// and an update are refused in runc's shim's words; and signal 0 to a
/// running task only asks whether it is there.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_stopped_task_answers_as_runcs() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.run_sleeper(rt, "stopped");
        ctd.kill(&id, "SIGKILL");
        ctd.wait_status(&id, "STOPPED");
        let ps = ctd.ctr(&["task", "ps", &id]);
        let kill_all = ctd.ctr(&["task", "kill", "--all", "-s", "SIGKILL", &id]);
        let exec = ctd.exec(&id, "late", &["true"], &[]);
        let pause = ctd.ctr(&["task", "pause", &id]);
        let update = ctd.update_memory_limit(&id, 64 << 20);
        ctd.remove(&id);
        let running_id = ctd.run_sleeper(rt, "probe");
        // Signal 0 asks whether the process is there, as kill(2).
        let probe = lxcri_e2e::grpc::kill_task(&ctd.socket(), ctd.namespace(), &running_id, 0);
        let (pid, status) = ctd.task(&running_id).expect("task listed");
        ctd.remove(&running_id);
        assert!(ps.success(), "{rt}: {ps}");
        assert_eq!(
            ps.stdout.lines().skip(1).count(),
            0,
            "{rt}: a stopped task lists no process: {ps}"
        );
        assert!(kill_all.success(), "{rt}: {kill_all}");
        assert!(!exec.success(), "{rt}: {exec}");
        assert!(
            exec.all_output().contains("cannot exec in a stopped state"),
            "{rt}: {exec}"
        );
        assert_eq!(probe, Ok(()), "{rt}: signal 0");
        assert_eq!(
            refusal(&pause),
            "cannot pause a stopped container",
            "{rt}: {pause}"
        );
        let update = update.expect_err("an update of a stopped task");
        assert!(
            update.contains("cannot update a stopped container"),
            "{rt}: {update}"
        );
        assert!(pid > 0 && status == "RUNNING", "{rt}: {pid} {status}");
        results.push((rt, (ps.success(), kill_all.success(), probe)));
    }
    assert_same("a stopped task's answers", &results);
}
