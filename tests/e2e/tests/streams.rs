//! stdout/stderr/stdin and exit codes of the container's process, lxcri
//! next to runc.

use std::time::Duration;

use lxcri_e2e::{assert_same, runtimes, Containerd, Runtime};

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn stdout_stderr_and_exit_code() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("streams");
        let out = ctd.run(
            rt,
            &id,
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
            &[],
        );
        // Without -t, ctr copies the task's stdout to its stdout and stderr
        // to its stderr, and exits with the task's exit code.
        assert_eq!(out.code, Some(3), "{rt}: {out}");
        assert_eq!(out.stdout, "out\n", "{rt}: {out}");
        assert!(out.stderr.starts_with("err\n"), "{rt}: {out}");
        results.push((rt, (out.stdout, out.code)));
    }
    assert_same("stdout and exit code", &results);
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn sigkill_to_self() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("selfkill");
        let out = ctd.run(rt, &id, &["sh", "-c", "kill -KILL $$"], &[]);
        // The shell is PID 1 of its pid namespace, and the kernel drops
        // signals without a handler sent to a namespace init from inside:
        // the shell lives on and exits 0.
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        results.push((rt, out.code));
    }
    assert_same("exit code of PID 1 killing itself", &results);
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn sigkill_from_outside() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("extkill");
        let run = ctd.spawn_run(rt, &id, &["sleep", "1000"], &[]);
        ctd.wait_status(&id, "RUNNING");
        ctd.kill(&id, "SIGKILL").ok();
        let out = run.wait(Duration::from_secs(60));
        assert_eq!(out.code, Some(137), "{rt}: {out}");
        results.push((rt, out.code));
    }
    assert_same("exit code after SIGKILL", &results);
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn stdin_is_forwarded_and_closed() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    for rt in runtimes() {
        let id = ctd.new_id("stdin");
        // `cat` only ends when ctr closes the task's stdin (CloseIO) after
        // its own stdin reached EOF.
        let mut run = ctd.spawn_run_stdin(rt, &id, &["cat"], &[]);
        ctd.wait_status(&id, "RUNNING");
        run.write_stdin_and_close(b"line one\nline two\n");
        let out = run.wait(Duration::from_secs(60));
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        assert_eq!(out.stdout, "line one\nline two\n", "{rt}: {out}");
    }
}

/// The process's stdin is a pipe the shim feeds, as runc's shim gives it,
/// for the init and for an exec: not containerd's FIFO, whose host path
/// `/proc/self/fd/0` would show.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn stdin_is_a_pipe_as_on_runc() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let fd0 = ["sh", "-c", "readlink /proc/self/fd/0 | cut -d: -f1"];
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("stdinpipe");
        let out = ctd.run(rt, &id, &fd0, &[]);
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        let running = ctd.new_id("stdinpipe");
        ctd.run_detached(rt, &running, &["sleep", "1000"], &[]);
        let exec = ctd.exec(&running, "fd0", &fd0, &[]);
        assert_eq!(exec.code, Some(0), "{rt}: {exec}");
        ctd.remove(&running);
        results.push((rt, (out.stdout, exec.stdout)));
    }
    assert_eq!(
        results.first().map(|(_, r)| r.clone()),
        Some(("pipe\n".to_string(), "pipe\n".to_string())),
        "{results:?}"
    );
    assert_same("what the process's stdin is", &results);
}

/// `ctr run -d` attaches stdin and leaves: the shim holds the stdin FIFO
/// open, so the task does not see EOF until CloseIO.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn stdin_outlives_a_detached_client_until_close_io() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("stdinhold");
        let run = ctd.spawn_run_detached_stdin(rt, &id, &["cat"]);
        run.wait(Duration::from_secs(60)).ok();
        ctd.wait_status(&id, "RUNNING");
        std::thread::sleep(Duration::from_secs(2));
        let after_client = ctd.task(&id).map(|(_, s)| s);
        lxcri_e2e::grpc::close_stdin(&ctd.socket(), ctd.namespace(), &id)
            .unwrap_or_else(|e| panic!("{rt}: {e}"));
        ctd.wait_status(&id, "STOPPED");
        results.push((rt, after_client));
        ctd.remove(&id);
    }
    for (rt, status) in &results {
        assert_eq!(status.as_deref(), Some("RUNNING"), "{rt}");
    }
    assert_same("a task's stdin after its client left", &results);
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn large_output_is_complete() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    // 4 MiB on stdout, 1 MiB on stderr, then exit: nothing may be lost
    // when the process ends right after writing.
    let script = "head -c 4194304 /dev/zero | tr '\\0' a; \
                  head -c 1048576 /dev/zero | tr '\\0' b >&2; exit 7";
    let complete = |out: &lxcri_e2e::cmd::CmdOutput| {
        out.stdout.len() == 4 << 20 && b_count(&out.stderr) == 1 << 20
    };
    for rt in runtimes() {
        // runc is the reference here, not the subject: CI once saw its
        // path (containerd 1.6's runc shim and ctr) deliver 64 KiB less
        // stderr, not reproduced in 80 runs since. It gets two more tries;
        // lxcri gets one.
        let tries = if rt == Runtime::Runc { 3 } else { 1 };
        let run = || ctd.run(rt, &ctd.new_id("bulk"), &["sh", "-c", script], &[]);
        let mut out = run();
        for _ in 1..tries {
            if complete(&out) {
                break;
            }
            eprintln!(
                "{rt}: short output (stdout {} bytes, stderr {} bytes, {:?} besides), running again",
                out.stdout.len(),
                out.stderr.len(),
                not_b(&out.stderr)
            );
            out = run();
        }
        assert_eq!(out.code, Some(7), "{rt}: exit code {:?}", out.code);
        assert_eq!(out.stdout.len(), 4 << 20, "{rt}: stdout length");
        assert!(
            out.stdout.bytes().all(|b| b == b'a'),
            "{rt}: stdout content"
        );
        assert_eq!(
            b_count(&out.stderr),
            1 << 20,
            "{rt}: stderr length ({:?} besides)",
            not_b(&out.stderr)
        );
    }
}

/// How many `b`s stderr held.
fn b_count(stderr: &str) -> usize {
    stderr.bytes().filter(|&b| b == b'b').count()
}

/// What stderr held besides the `b`s (an error message from `tr`?), at
/// most 200 characters of it.
fn not_b(stderr: &str) -> String {
    stderr.chars().filter(|&c| c != 'b').take(200).collect()
}
