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

/// The exit status `ctr task delete` warns of ("task ID exit with
/// non-zero exit code N"), 0 without the warning.
fn exit_status_warned(delete: &CmdOutput) -> u32 {
    let marker = "non-zero exit code ";
    delete.stderr.find(marker).map_or(0, |at| {
        let digits: String = delete.stderr[at + marker.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap_or(u32::MAX)
    })
}

/// A signal to a created task does what it does to runc's, whose init is
/// `runc init`, a Go program, until start: SIGUSR1 and SIGALRM are
/// dropped (the task stays created), SIGTERM, SIGQUIT and SIGSEGV end it
/// with exit status 2 (PID 1 of its PID namespace: Go's runtime exits 2
/// when the signal it raises at itself is dropped), SIGKILL with 137.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_signal_to_a_created_task_does_what_it_does_on_runc() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let mut ends = Vec::new();
        for signal in ["SIGTERM", "SIGQUIT", "SIGSEGV", "SIGKILL"] {
            let id = ctd.new_id("created-signal");
            ctd.create_task_only(rt, &id, &["sleep", "1000"])
                .unwrap_or_else(|e| panic!("{rt}: {e}"));
            for dropped in ["SIGUSR1", "SIGALRM"] {
                let out = ctd.kill(&id, dropped);
                assert!(out.success(), "{rt} {dropped}: {out}");
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
            let after_dropped = ctd.task(&id).map(|(_, s)| s);
            let out = ctd.kill(&id, signal);
            assert!(out.success(), "{rt} {signal}: {out}");
            ctd.wait_status(&id, "STOPPED");
            let delete = ctd.ctr(&["task", "delete", &id]);
            ctd.remove(&id);
            assert!(delete.success(), "{rt}: {delete}");
            assert_eq!(after_dropped.as_deref(), Some("CREATED"), "{rt}");
            ends.push((signal, exit_status_warned(&delete)));
        }
        assert_eq!(
            ends,
            [
                ("SIGTERM", 2),
                ("SIGQUIT", 2),
                ("SIGSEGV", 2),
                ("SIGKILL", 137)
            ],
            "{rt}"
        );
        results.push((rt, ends));
    }
    assert_same("what a signal does to a created task", &results);
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
