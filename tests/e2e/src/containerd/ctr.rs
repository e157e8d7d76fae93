//! Driving a private containerd with `ctr`: images, runs, tasks, exec,
//! kill, remove, update, and its log.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::Containerd;
use crate::cmd::{self, Background, CmdOutput, DEFAULT_TIMEOUT};
use crate::{image, Runtime};

impl Containerd {
    /// A `ctr --address SOCK --namespace NS` command.
    pub fn ctr_command(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.socket())
            .arg("--namespace")
            .arg(&self.namespace)
            .arg("--connect-timeout")
            .arg("10s");
        c
    }

    /// `ctr ... args`, the IO FIFOs of a `run`, `task start` or `task
    /// exec` in this containerd's directory, which goes with it: ctr makes
    /// them in /run/containerd/fifo by default and leaves a detached task's
    /// there for good. (An output to `--log-uri` has none, and ctr's exec
    /// refuses both.)
    pub fn ctr_args(&self, args: &[&str]) -> Command {
        let mut c = self.ctr_command();
        let log_uri = args.iter().any(|a| a.starts_with("--log-uri"));
        let subcommand = match args {
            _ if log_uri => 0,
            ["run", ..] => 1,
            ["task" | "tasks" | "t", "start" | "exec", ..] => 2,
            _ => 0,
        };
        c.args(&args[..subcommand]);
        if subcommand > 0 {
            c.arg("--fifo-dir").arg(self.dir.join("fifo"));
        }
        c.args(&args[subcommand..]);
        c
    }

    /// Runs `ctr ... args` with the default deadline.
    pub fn ctr(&self, args: &[&str]) -> CmdOutput {
        self.ctr_timeout(args, DEFAULT_TIMEOUT)
    }

    pub fn ctr_timeout(&self, args: &[&str], timeout: Duration) -> CmdOutput {
        cmd::run(&mut self.ctr_args(args), timeout)
    }

    /// Imports an image archive (`ctr images import`).
    pub fn import_image(&self, archive: &Path) {
        let archive = archive.to_str().expect("utf-8 path");
        self.ctr(&["images", "import", archive]).ok();
    }

    /// Builds (once per process) and imports the busybox image; returns its
    /// reference.
    pub fn import_busybox(&self) -> &'static str {
        let img = image::busybox();
        self.import_image(&img.archive);
        img.reference
    }

    fn run_args<'a>(
        rt: Runtime,
        mode: &'a str,
        image: &'a str,
        id: &'a str,
        args: &[&'a str],
        flags: &[&'a str],
    ) -> Vec<&'a str> {
        let mut all = vec!["run", mode, "--runtime", rt.containerd_name()];
        all.extend_from_slice(flags);
        if !image.is_empty() {
            all.push(image);
        }
        all.push(id);
        all.extend_from_slice(args);
        all
    }

    /// `ctr run --rm --runtime R [flags] busybox ID args...`: ctr's exit
    /// code is the container's.
    pub fn run(&self, rt: Runtime, id: &str, args: &[&str], flags: &[&str]) -> CmdOutput {
        self.ctr(&Self::run_args(
            rt,
            "--rm",
            image::BUSYBOX_REF,
            id,
            args,
            flags,
        ))
    }

    /// `ctr run --rm --config SPEC --runtime R ID` (the spec names its
    /// own rootfs, see [`crate::spec`]).
    pub fn run_config(&self, rt: Runtime, id: &str, spec: &Path) -> CmdOutput {
        let spec = spec.to_str().expect("utf-8 path");
        self.ctr(&Self::run_args(
            rt,
            "--rm",
            "",
            id,
            &[],
            &["--config", spec],
        ))
    }

    /// `ctr run -d --config SPEC --runtime R ID`; returns ctr's output
    /// (the task runs on when it succeeded).
    pub fn run_config_detached(&self, rt: Runtime, id: &str, spec: &Path) -> CmdOutput {
        let spec = spec.to_str().expect("utf-8 path");
        self.ctr(&Self::run_args(rt, "-d", "", id, &[], &["--config", spec]))
    }

    /// A foreground `ctr run --rm` left running in the background.
    pub fn spawn_run(&self, rt: Runtime, id: &str, args: &[&str], flags: &[&str]) -> Background {
        let argv = Self::run_args(rt, "--rm", image::BUSYBOX_REF, id, args, flags);
        Background::spawn(&mut self.ctr_args(&argv))
    }

    /// Like [`Containerd::spawn_run`] with ctr's stdin a pipe the test
    /// writes and closes ([`Background::write_stdin_and_close`]) once the
    /// task runs: ctr 1.6 only sends CloseIO when its stdin ends after the
    /// task exists, so an early EOF would leave the task's stdin open.
    pub fn spawn_run_stdin(
        &self,
        rt: Runtime,
        id: &str,
        args: &[&str],
        flags: &[&str],
    ) -> Background {
        let argv = Self::run_args(rt, "--rm", image::BUSYBOX_REF, id, args, flags);
        Background::spawn_piped_stdin(&mut self.ctr_args(&argv))
    }

    /// `ctr run -d` left running in the background (for a create the test
    /// interrupts).
    pub fn spawn_run_detached(&self, rt: Runtime, id: &str, args: &[&str]) -> Background {
        let argv = Self::run_args(rt, "-d", image::BUSYBOX_REF, id, args, &[]);
        Background::spawn(&mut self.ctr_args(&argv))
    }

    /// [`Containerd::spawn_run_detached`] with ctr's stdin a pipe held open
    /// while ctr runs: ctr leaves (closing its end of the task's stdin)
    /// without reaching EOF, so it sends no CloseIO.
    pub fn spawn_run_detached_stdin(&self, rt: Runtime, id: &str, args: &[&str]) -> Background {
        let argv = Self::run_args(rt, "-d", image::BUSYBOX_REF, id, args, &[]);
        Background::spawn_piped_stdin(&mut self.ctr_args(&argv))
    }

    /// A new id, running `sleep 1000` detached on `rt`.
    pub fn run_sleeper(&self, rt: Runtime, prefix: &str) -> String {
        let id = self.new_id(prefix);
        self.run_detached(rt, &id, &["sleep", "1000"], &[]);
        id
    }

    /// A task created and not started: `ctr containers create`, then
    /// `Tasks.Create` on the mounts of its snapshot (ctr has no create-only
    /// command). Start it with [`crate::grpc::start_task`].
    pub fn create_task_only(&self, rt: Runtime, id: &str, args: &[&str]) -> Result<(), String> {
        self.create_task_with_io(rt, id, args, &crate::grpc::TaskIo::default())
    }

    /// [`Containerd::create_task_only`] with stdio `io` (a terminal one
    /// gets a spec with `process.terminal`, `ctr containers create --tty`).
    pub fn create_task_with_io(
        &self,
        rt: Runtime,
        id: &str,
        args: &[&str],
        io: &crate::grpc::TaskIo,
    ) -> Result<(), String> {
        let mut argv = vec!["containers", "create", "--runtime", rt.containerd_name()];
        if io.terminal {
            argv.push("--tty");
        }
        argv.extend([image::BUSYBOX_REF, id]);
        argv.extend_from_slice(args);
        self.ctr(&argv).ok();
        let out = self.ctr(&["snapshots", "mounts", "/rootfs", id]).ok();
        let rootfs = out
            .stdout
            .lines()
            .map(|l| crate::grpc::parse_mount_command(l).ok_or(format!("mount line {l:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        crate::grpc::create_task(&self.socket(), &self.namespace, id, &rootfs, io)
    }

    /// `ctr run -d`: creates and starts the task, then returns; waits until
    /// the task is RUNNING.
    pub fn run_detached(&self, rt: Runtime, id: &str, args: &[&str], flags: &[&str]) {
        self.ctr(&Self::run_args(
            rt,
            "-d",
            image::BUSYBOX_REF,
            id,
            args,
            flags,
        ))
        .ok();
        self.wait_status(id, "RUNNING");
    }

    /// `(pid, status)` of task `id` from `ctr task ls`, if it exists.
    pub fn task(&self, id: &str) -> Option<(u32, String)> {
        let out = self.ctr(&["task", "ls"]).ok();
        out.stdout.lines().skip(1).find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 3 && f[0] == id).then(|| (f[1].parse().unwrap_or(0), f[2].to_string()))
        })
    }

    /// Waits (up to 30 s) until task `id` has `status`; panics otherwise.
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str) {
        let got = cmd::poll(Duration::from_secs(30), || {
            self.task(id).filter(|(_, s)| s == status)
        });
        assert!(
            got.is_some(),
            "task {id} never reached {status}: {:?}\n{}",
            self.task(id),
            self.log_tail(30)
        );
    }

    /// `ctr task exec --exec-id EXEC [flags] ID args...`.
    pub fn exec(&self, id: &str, exec_id: &str, args: &[&str], flags: &[&str]) -> CmdOutput {
        let mut all = vec!["task", "exec", "--exec-id", exec_id];
        all.extend_from_slice(flags);
        all.push(id);
        all.extend_from_slice(args);
        self.ctr(&all)
    }

    /// `ctr task exec --tty`, run under `script` so ctr has a terminal.
    /// The output has the terminal's `\r\n` line ends.
    pub fn exec_tty(&self, id: &str, exec_id: &str, args: &[&str]) -> CmdOutput {
        self.exec_tty_with(id, exec_id, args, &[])
    }

    /// [`Containerd::exec_tty`] with more `ctr task exec` flags (`--user`).
    pub fn exec_tty_with(
        &self,
        id: &str,
        exec_id: &str,
        args: &[&str],
        flags: &[&str],
    ) -> CmdOutput {
        let mut all = vec!["task", "exec", "--tty", "--exec-id", exec_id];
        all.extend_from_slice(flags);
        all.push(id);
        all.extend_from_slice(args);
        self.ctr_with_terminal(&all)
    }

    /// `ctr run --rm --tty --runtime R busybox ID args...`, under `script`
    /// as [`Containerd::exec_tty`].
    pub fn run_tty(&self, rt: Runtime, id: &str, args: &[&str]) -> CmdOutput {
        let all = Self::run_args(rt, "--rm", image::BUSYBOX_REF, id, args, &["--tty"]);
        self.ctr_with_terminal(&all)
    }

    fn ctr_with_terminal(&self, ctr_args: &[&str]) -> CmdOutput {
        let ctr = self.ctr_args(ctr_args);
        let mut argv: Vec<String> = vec![ctr.get_program().to_string_lossy().into_owned()];
        argv.extend(ctr.get_args().map(|a| a.to_string_lossy().into_owned()));
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        // -e: script exits with the child's code; -q: no banner. Its stdin
        // stays open until the end: at EOF script would type a character
        // into the terminal, which ctr forwards to the process.
        let mut out = Background::spawn_piped_stdin(
            Command::new("script")
                .args(["-q", "-e", "-c"])
                .arg(cmd::shell_quote(&refs))
                .arg("/dev/null"),
        )
        .wait(DEFAULT_TIMEOUT);
        out.stdout = without_ctr_resize_error(&out.stdout);
        out
    }

    /// `ctr task kill -s SIGNAL ID`.
    pub fn kill(&self, id: &str, signal: &str) -> CmdOutput {
        self.ctr(&["task", "kill", "-s", signal, id])
    }

    /// Kills and deletes task and container `id`, ignoring errors.
    pub fn remove(&self, id: &str) {
        let short = Duration::from_secs(30);
        if self.task(id).is_some_and(|(_, s)| s != "STOPPED") {
            self.ctr_timeout(&["task", "kill", "-a", "-s", "SIGKILL", id], short);
            cmd::poll(Duration::from_secs(10), || {
                self.task(id)
                    .is_none_or(|(_, s)| s == "STOPPED")
                    .then_some(())
            });
        }
        self.ctr_timeout(&["task", "rm", "-f", id], short);
        self.ctr_timeout(&["containers", "rm", id], short);
    }

    /// Sets the memory limit of a running task via containerd's Tasks.Update
    /// (ctr 1.6 has no `task update`).
    pub fn update_memory_limit(&self, id: &str, bytes: u64) -> Result<(), String> {
        self.update_resources(id, &format!(r#"{{"memory":{{"limit":{bytes}}}}}"#))
    }

    /// Task Update with `resources`, OCI `linux.resources` as JSON.
    pub fn update_resources(&self, id: &str, resources: &str) -> Result<(), String> {
        crate::grpc::update_task(&self.socket(), &self.namespace, id, resources)
    }

    /// The last `lines` lines of containerd's log (which includes the shims'
    /// logs).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        let start = all.len().saturating_sub(lines);
        format!(
            "--- containerd log ({}), last {} lines ---\n{}",
            self.log_path().display(),
            all.len() - start,
            all[start..].join("\n")
        )
    }
}

/// Drops ctr's own "resize pty" error line from a terminal transcript. ctr
/// resizes the exec's pty right after starting it; when the process has
/// already exited, the runtime (runc and lxcri alike) refuses and ctr logs
/// the refusal to its stderr, which `script` merges into the terminal output.
fn without_ctr_resize_error(transcript: &str) -> String {
    transcript
        .split_inclusive('\n')
        .filter(|line| !(line.contains("ERRO") && line.contains("resize pty")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::without_ctr_resize_error;

    #[test]
    fn ctr_resize_error_is_dropped_and_the_rest_kept() {
        let raw = "\u{1b}[31mERRO\u{1b}[0m[0000] resize pty    \u{1b}[31merror\u{1b}[0m=\"cannot resize a stopped container: unknown\"\r\n/dev/pts/0\r\r\nstdin-tty\r\r\n";
        assert_eq!(
            without_ctr_resize_error(raw),
            "/dev/pts/0\r\r\nstdin-tty\r\r\n"
        );
        assert_eq!(without_ctr_resize_error("a\nb"), "a\nb");
    }
}
