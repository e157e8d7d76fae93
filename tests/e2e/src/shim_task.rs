//! Playing containerd's part towards a shim over its own ttrpc socket:
//! `SHIM start`, then the task calls. For what a containerd here cannot
//! pass on (containerd 1.6 to 2.1 copy the spec through runtime-spec Go
//! types that drop `linux.netDevices`; 2.2 and later keep it) and for
//! timing the shims alone (`shim-bench`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use containerd_shim_protos::api;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::ttrpc::context;
use containerd_shim_protos::{Client, TaskClient};

use crate::{Containerd, Runtime};

/// Runs `spec` as task `id` through `rt`'s shim in a bundle of its own
/// (stdout and stderr to a file); the exit status, or the failed call's
/// error (the shim's log then printed), and the task's output.
pub fn run_spec(
    ctd: &Containerd,
    rt: Runtime,
    id: &str,
    spec: &serde_json::Value,
) -> (Result<u32, String>, String) {
    let bundle = ctd.dir().join(format!("bundle-{id}"));
    std::fs::create_dir_all(&bundle).expect("bundle dir");
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(spec).expect("spec JSON"),
    )
    .expect("config.json");
    let output = bundle.join("output");
    let task = ShimTask::start(ctd, rt, id, &bundle).unwrap_or_else(|e| panic!("{e}"));
    let result = task.run(&bundle, &output);
    let log = task.finish();
    if result.is_err() {
        eprintln!("{rt} {id}: the shim's log:\n{log}");
    }
    (result, std::fs::read_to_string(&output).unwrap_or_default())
}

/// The shim binary of `rt` as containerd would run it.
pub fn shim_binary(rt: Runtime) -> PathBuf {
    match rt {
        Runtime::Lxcri => crate::containerd::bin_dir().join(rt.shim_binary()),
        Runtime::Runc => PathBuf::from(rt.shim_binary()),
    }
}

/// A shim started for task `id` of `bundle`, and a client of its socket.
pub struct ShimTask {
    pub id: String,
    pub client: TaskClient,
    log: Option<(Arc<AtomicBool>, std::thread::JoinHandle<String>)>,
    /// Shut down: a test that panics before does not leave the shim and
    /// its container running (see `Drop`).
    done: bool,
}

/// A deadline for one call.
pub fn ctx() -> context::Context {
    context::with_duration(Duration::from_secs(60))
}

impl ShimTask {
    /// `SHIM -namespace NS -address SOCKET -id ID start` in `bundle` (as
    /// containerd runs it, with the bundle's `log` FIFO read), connected.
    pub fn start(ctd: &Containerd, rt: Runtime, id: &str, bundle: &Path) -> Result<Self, String> {
        let log = open_log(bundle)?;
        let socket = ctd.socket();
        let shim = shim_binary(rt);
        let out = Command::new(&shim)
            .args(["-namespace", ctd.namespace(), "-address"])
            .arg(&socket)
            .args(["-publish-binary", "containerd", "-id", id, "start"])
            .current_dir(bundle)
            .envs(ctd.shim_env())
            .env("TTRPC_ADDRESS", format!("{}.ttrpc", socket.display()))
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("{}: {e}", shim.display()))?;
        if !out.status.success() {
            return Err(format!("{rt}: shim start failed: {:?}", out.status));
        }
        let address = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let client = TaskClient::new(
            Client::connect(&address).map_err(|e| format!("{rt}: connect {address}: {e}"))?,
        );
        Ok(Self {
            id: id.to_string(),
            client,
            log: Some(log),
            done: false,
        })
    }

    /// Create (stdout and stderr to `output`, a file), Start, Wait:
    /// the exit status, or the first call's error.
    pub fn run(&self, bundle: &Path, output: &Path) -> Result<u32, String> {
        self.create(bundle, output)?;
        self.start_process("")?;
        self.wait("")
    }

    /// Create, stdout and stderr to the file `output`.
    pub fn create(&self, bundle: &Path, output: &Path) -> Result<(), String> {
        let file = format!("file://{}", output.display());
        let req = api::CreateTaskRequest {
            id: self.id.clone(),
            bundle: bundle.display().to_string(),
            stdout: file.clone(),
            stderr: file,
            ..Default::default()
        };
        self.client
            .create(ctx(), &req)
            .map(drop)
            .map_err(|e| format!("Create: {e}"))
    }

    /// Start of the task's process (`exec_id` ""), or of an exec.
    pub fn start_process(&self, exec_id: &str) -> Result<(), String> {
        let req = api::StartRequest {
            id: self.id.clone(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        self.client
            .start(ctx(), &req)
            .map(drop)
            .map_err(|e| format!("Start {exec_id}: {e}"))
    }

    /// Wait: the exit status of the task's process or an exec.
    pub fn wait(&self, exec_id: &str) -> Result<u32, String> {
        let req = api::WaitRequest {
            id: self.id.clone(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        self.client
            .wait(ctx(), &req)
            .map(|w| w.exit_status)
            .map_err(|e| format!("Wait {exec_id}: {e}"))
    }

    /// An exec of `process` (an OCI process, as JSON) with its output to
    /// the file `output`: Exec, Start, Wait, Delete; its exit status.
    pub fn exec(
        &self,
        exec_id: &str,
        process: &serde_json::Value,
        output: &Path,
    ) -> Result<u32, String> {
        let file = format!("file://{}", output.display());
        let req = api::ExecProcessRequest {
            id: self.id.clone(),
            exec_id: exec_id.into(),
            stdout: file.clone(),
            stderr: file,
            spec: MessageField::some(Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
                value: serde_json::to_vec(process).expect("process JSON"),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.client
            .exec(ctx(), &req)
            .map_err(|e| format!("Exec {exec_id}: {e}"))?;
        self.start_process(exec_id)?;
        let status = self.wait(exec_id)?;
        let req = api::DeleteRequest {
            id: self.id.clone(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        self.client
            .delete(ctx(), &req)
            .map_err(|e| format!("Delete {exec_id}: {e}"))?;
        Ok(status)
    }

    /// Kill of the task's process with `signal` (all its processes).
    pub fn kill(&self, signal: u32) -> Result<(), String> {
        let req = api::KillRequest {
            id: self.id.clone(),
            signal,
            all: true,
            ..Default::default()
        };
        self.client
            .kill(ctx(), &req)
            .map(drop)
            .map_err(|e| format!("Kill: {e}"))
    }

    /// Delete (ignoring a task that is not there), then Shutdown; returns
    /// what the shim logged.
    pub fn finish(mut self) -> String {
        self.delete_and_shut_down();
        self.stop_log()
    }

    fn delete_and_shut_down(&mut self) {
        let req = api::DeleteRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        let _ = self.client.delete(ctx(), &req);
        self.shutdown();
    }

    /// Shutdown: the shim exits while it answers, so a closed connection
    /// is success.
    pub fn shutdown(&mut self) {
        let req = api::ShutdownRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        let _ = self.client.shutdown(ctx(), &req);
        self.done = true;
    }

    /// Stops reading the shim's log; what it logged.
    pub fn stop_log(&mut self) -> String {
        match self.log.take() {
            Some((stop, reader)) => {
                stop.store(true, Ordering::SeqCst);
                reader.join().unwrap_or_default()
            }
            None => String::new(),
        }
    }
}

impl Drop for ShimTask {
    /// A task not finished (a test that panicked part way): its process
    /// killed, the task deleted and the shim shut down, errors ignored.
    fn drop(&mut self) {
        if !self.done {
            let _ = self.kill(9);
            let _ = self.wait("");
            self.delete_and_shut_down();
        }
        self.stop_log();
    }
}

/// The `log` FIFO in the bundle that containerd makes before it starts a
/// shim, where the shim writes its log. Read (opened read-write, so it
/// never reads as ended between writers) until told to stop and quiet.
fn open_log(bundle: &Path) -> Result<(Arc<AtomicBool>, std::thread::JoinHandle<String>), String> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let path = bundle.join("log");
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| format!("mkfifo {}: {e}", path.display()))?;
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        loop {
            let mut pfd = libc::pollfd {
                fd: fifo.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
            if ready <= 0 {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                continue;
            }
            match fifo.read(&mut buf) {
                Ok(n) if n > 0 => text.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => break,
            }
        }
        text
    });
    Ok((stop, reader))
}
