//! A task's output sent elsewhere than containerd's FIFOs, side by side
//! with runc: `binary://` (a logging binary the shim starts, as nerdctl
//! logs every container and `ctr run --log-uri binary:///...` asks) for a
//! container's process, an exec and a terminal, and `file://`. The logger
//! here is a shell script that records its arguments and environment and
//! copies fds 3 and 4 into files; it ignores SIGTERM, so it ends once both
//! reach EOF, which the delete's closing of the shim's ends brings.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lxcri_e2e::grpc::{start_task, TaskIo};
use lxcri_e2e::{assert_same, cmd, runtimes, Containerd, Runtime};

/// The logging binary: `logger.sh ... dir DIR ...` (the URI's query, in
/// any order: runc's shim passes it in Go's map order, which varies).
const LOGGER: &str = r#"#!/bin/sh
all="$*"
while [ $# -gt 1 ]; do
    [ "$1" = dir ] && dir=$2
    shift
done
[ -d "$dir" ] || exit 1
echo "$all" > "$dir/args"
/usr/bin/env | /usr/bin/sort > "$dir/env"
trap '' TERM
/bin/cat <&3 5>&- > "$dir/stdout" &
/bin/cat <&4 5>&- > "$dir/stderr" &
exec 5>&-
wait
echo done > "$dir/done"
"#;

fn logger(ctd: &Containerd) -> PathBuf {
    let path = ctd.dir().join("logger.sh");
    if !path.exists() {
        fs::write(&path, LOGGER).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

/// A fresh directory for one logger's files and its `binary://` URI.
fn log_dir_and_uri(ctd: &Containerd, id: &str) -> (PathBuf, String) {
    let dir = ctd.dir().join(format!("log-{id}"));
    fs::create_dir_all(&dir).unwrap();
    let uri = format!(
        "binary://{}?dir={}&flag",
        logger(ctd).display(),
        dir.display()
    );
    (dir, uri)
}

/// What a logger recorded, with the names that differ per run replaced:
/// its arguments (as key and value pairs, sorted: runc's shim gives them
/// in Go's map order), its environment, what it read from fds 3 and 4,
/// and whether it had ended.
#[derive(Debug, Clone, PartialEq)]
struct Logged {
    args: Vec<String>,
    env: Vec<String>,
    stdout: String,
    stderr: String,
    done: bool,
}

/// `id` is the logged process's (`ID`), `container` its container's (`CID`).
fn logged(ctd: &Containerd, dir: &Path, id: &str, container: &str) -> Logged {
    let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_default();
    let plain = |text: String| {
        text.replace(&dir.display().to_string(), "DIR")
            .replace(ctd.namespace(), "NS")
            .replace(id, "ID")
            .replace(container, "CID")
    };
    let args = plain(read("args"));
    let words: Vec<&str> = args.trim_end_matches('\n').split(' ').collect();
    let mut args: Vec<String> = words.chunks(2).map(|pair| pair.join("=")).collect();
    args.sort();
    Logged {
        args,
        env: plain(read("env")).lines().map(str::to_owned).collect(),
        stdout: read("stdout"),
        stderr: read("stderr"),
        done: dir.join("done").exists(),
    }
}

/// Processes whose command line names `dir` (a logger still running).
fn loggers_running(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let cmdline = fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(&needle)
                .then(|| format!("{}: {cmdline}", e.file_name().to_string_lossy()))
        })
        .collect()
}

#[track_caller]
fn assert_nothing_left(ctd: &Containerd, rt: Runtime, id: &str, dir: &Path) {
    let mut left = Vec::new();
    let clean = cmd::poll(Duration::from_secs(15), || {
        left = ctd.leftovers(id);
        left.extend(loggers_running(dir));
        left.is_empty().then_some(())
    });
    assert!(clean.is_some(), "{rt}: {id} left behind: {left:#?}");
}

/// `logged` without the `PWD=` dash exports: the shim's working
/// directory (the bundle's, the same for both shims once the names are
/// replaced), compared between the runtimes but not against a value.
fn without_pwd(logged: &Logged) -> Logged {
    let mut logged = logged.clone();
    logged.env.retain(|l| !l.starts_with("PWD="));
    logged
}

fn expected(stdout: &str, stderr: &str) -> Logged {
    Logged {
        args: vec!["dir=DIR".into(), "flag=".into()],
        env: vec!["CONTAINER_ID=ID".into(), "CONTAINER_NAMESPACE=NS".into()],
        stdout: stdout.into(),
        stderr: stderr.into(),
        done: true,
    }
}

/// `ctr run --rm --log-uri binary://...`: the logger gets the process's
/// stdout and stderr, the query as its arguments (`dir DIR flag ""`, in
/// the URI's order on lxcri, in Go's map order on runc), only
/// `CONTAINER_ID` and `CONTAINER_NAMESPACE`, and has ended by the time the
/// delete answers; ctr prints nothing and exits with the process's code.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_logging_binary_takes_the_containers_output() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("logbin");
        let (dir, uri) = log_dir_and_uri(&ctd, &id);
        let out = ctd.run(
            rt,
            &id,
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
            &["--log-uri", &uri],
        );
        let seen = logged(&ctd, &dir, &id, &id);
        ctd.remove(&id);
        assert_nothing_left(&ctd, rt, &id, &dir);
        assert_eq!(
            (out.code, out.stdout.clone(), without_pwd(&seen)),
            (Some(3), String::new(), expected("out\n", "err\n")),
            "{rt}: {out}"
        );
        results.push((rt, (out.code, seen)));
    }
    assert_same("a logging binary's view", &results);
}

/// The shim keeps its own write ends of the logger's pipes until the
/// delete, as runc's shim does: after the process exited (`ctr run -d`)
/// the logger has its output but no EOF yet; `ctr task rm` brings it, and
/// the logger has ended when the delete answers.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_logger_reads_eof_at_the_delete() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("logeof");
        let (dir, uri) = log_dir_and_uri(&ctd, &id);
        let run = ctd.ctr(&[
            "run",
            "-d",
            "--runtime",
            rt.containerd_name(),
            "--log-uri",
            &uri,
            lxcri_e2e::image::BUSYBOX_REF,
            &id,
            "echo",
            "out",
        ]);
        assert!(run.success(), "{rt}: {run}");
        ctd.wait_status(&id, "STOPPED");
        let out_read = cmd::poll(Duration::from_secs(5), || {
            (fs::read_to_string(dir.join("stdout")).unwrap_or_default() == "out\n").then_some(())
        });
        // A moment for a logger that would end at the process's exit.
        std::thread::sleep(Duration::from_millis(300));
        let before = dir.join("done").exists();
        let deleted = ctd.ctr(&["task", "rm", &id]);
        let after = dir.join("done").exists();
        ctd.remove(&id);
        assert_nothing_left(&ctd, rt, &id, &dir);
        let seen = (out_read.is_some(), before, deleted.success(), after);
        assert_eq!(seen, (true, false, true, true), "{rt}: {deleted}");
        results.push((rt, seen));
    }
    assert_same("a logger's EOF", &results);
}

/// `ctr task exec --log-uri binary://...`: the exec's logger has the
/// exec's id as `CONTAINER_ID`, its output, and has ended when the exec is
/// deleted; the container runs on.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_logging_binary_takes_an_execs_output() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("logexec");
        ctd.run_detached(rt, &id, &["sleep", "1000"], &[]);
        let exec_id = format!("{id}-exec");
        let (dir, uri) = log_dir_and_uri(&ctd, &exec_id);
        let out = ctd.exec(
            &id,
            &exec_id,
            &["sh", "-c", "echo from-exec; echo exec-err >&2; exit 5"],
            &["--log-uri", &uri],
        );
        let seen = logged(&ctd, &dir, &exec_id, &id);
        let running = ctd.task(&id).map(|(_, s)| s);
        ctd.remove(&id);
        assert_nothing_left(&ctd, rt, &id, &dir);
        assert_eq!(
            (out.code, out.stdout.clone(), running, without_pwd(&seen)),
            (
                Some(5),
                String::new(),
                Some("RUNNING".into()),
                expected("from-exec\n", "exec-err\n")
            ),
            "{rt}: {out}"
        );
        results.push((rt, (out.code, seen)));
    }
    assert_same("an exec's logging binary", &results);
}

/// A terminal with a `binary://` stdout (nerdctl's `run -dt`; ctr cannot
/// ask it, so Tasks.Create is called directly): the terminal's output
/// reaches the logger's fd 3 (`\r\n` line ends), its fd 4 gets nothing,
/// and it ends once the terminal is done.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_logging_binary_takes_a_terminals_output() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("logtty");
        let (dir, uri) = log_dir_and_uri(&ctd, &id);
        let io = TaskIo {
            stdout: uri,
            terminal: true,
            ..Default::default()
        };
        ctd.create_task_with_io(rt, &id, &["echo", "on-a-tty"], &io)
            .unwrap_or_else(|e| panic!("{rt}: create: {e}\n{}", ctd.log_tail(30)));
        start_task(&ctd.socket(), ctd.namespace(), &id)
            .unwrap_or_else(|e| panic!("{rt}: start: {e}"));
        ctd.wait_status(&id, "STOPPED");
        let deleted = ctd.ctr(&["task", "rm", &id]);
        let done = cmd::poll(Duration::from_secs(15), || {
            dir.join("done").exists().then_some(())
        });
        let seen = logged(&ctd, &dir, &id, &id);
        ctd.remove(&id);
        assert_nothing_left(&ctd, rt, &id, &dir);
        assert!(deleted.success(), "{rt}: {deleted}");
        assert_eq!(
            (done.is_some(), without_pwd(&seen)),
            (true, expected("on-a-tty\r\n", "")),
            "{rt}"
        );
        results.push((rt, seen));
    }
    assert_same("a terminal's logging binary", &results);
}

/// `ctr run --rm --log-uri file:///...`: stdout and stderr appended to the
/// one file (its directory made), mode 0644 before the umask, as runc's
/// shim does.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_log_file_takes_both_outputs() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("logfile");
        let file = ctd.dir().join(format!("files-{id}/new dir/c.log"));
        let uri = format!("file://{}", file.display().to_string().replace(' ', "%20"));
        let out = ctd.run(
            rt,
            &id,
            &["sh", "-c", "echo out; sleep 0.1; echo err >&2"],
            &["--log-uri", &uri],
        );
        // Once (pve run, CI's stack) runc's side failed here right after
        // ctr returned, its values not kept; a copy into the file that
        // trails the exit is the likely cause: given up to 5 s.
        let text = cmd::poll(Duration::from_secs(5), || {
            let text = fs::read_to_string(&file).unwrap_or_default();
            (text.lines().count() >= 2).then_some(text)
        })
        .unwrap_or_else(|| fs::read_to_string(&file).unwrap_or_default());
        let mode = fs::metadata(&file)
            .map(|m| m.permissions().mode() & 0o777)
            .ok();
        ctd.remove(&id);
        assert_nothing_left(&ctd, rt, &id, &file);
        let seen = (out.code, out.stdout.clone(), text, mode);
        assert_eq!(
            seen,
            (Some(0), String::new(), "out\nerr\n".into(), Some(0o644)),
            "{rt}: {out}"
        );
        results.push((rt, seen));
    }
    assert_same("a log file", &results);
}

/// A logging binary that cannot be started fails the create in runc's
/// shim's words, and nothing is left.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_logging_binary_that_cannot_start_fails_the_create() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    for rt in runtimes() {
        let id = ctd.new_id("lognone");
        let dir = ctd.dir().join(format!("log-{id}"));
        let uri = format!("binary://{}/missing-logger", dir.display());
        let out = ctd.run(rt, &id, &["true"], &["--log-uri", &uri]);
        assert!(!out.success(), "{rt}: {out}");
        assert!(
            out.all_output().contains("failed to start binary process"),
            "{rt}: {out}"
        );
        ctd.remove(&id);
        assert_nothing_left(&ctd, rt, &id, &dir);
    }
}
