//! The meeting with a starting container's init: its socket and the start
//! gate are made before the container starts; after, the init connects,
//! reports ready (or why it cannot run) and the container is created.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lxcri_init_spec::{INIT_ERROR_FILE, INIT_SOCKET, START_FIFO};

use super::bundle::PreparedBundle;
use super::container::{Container, CreatedContainer};
use super::error::{Result, RuntimeError};
use super::init_channel::{InitChannelError, InitListener};
use crate::cgroup::ContainerCgroup;
use crate::pidfd;
use crate::state::{ContainerRecord, StateStore};

/// The init's socket and the start gate, made before the container starts.
/// The init's last words are a line or two; more is not read.
const LAST_WORDS_LIMIT: u64 = 16 * 1024;

pub struct InitRendezvous {
    listener: InitListener,
    /// The init's [`INIT_ERROR_FILE`], for when it could not use the socket.
    error_file: PathBuf,
    /// The start FIFO, opened read-write and kept so the init's open and
    /// the shim's later write never block or fail.
    start_gate: File,
}

/// How long a start that failed waits for the init to say why.
const FAILURE_REPORT_WAIT: Duration = Duration::from_millis(200);

impl InitRendezvous {
    pub fn prepare(run_dir: &Path) -> Result<Self> {
        let listener = InitListener::bind(&run_dir.join(INIT_SOCKET))?;
        let start_gate = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(run_dir.join(START_FIFO))
            .map_err(|source| RuntimeError::RunDir {
                path: run_dir.join(START_FIFO),
                source,
            })?;
        Ok(Self {
            listener,
            error_file: run_dir.join(INIT_ERROR_FILE),
            start_gate,
        })
    }

    /// What the init said before its container stopped, when a start failed
    /// (a missing executable, a bad cwd...): a better cause than "the start
    /// failed". `None` when it said nothing.
    pub fn init_failure(&self) -> Option<RuntimeError> {
        // A failed start: no namespace to hand over, only its cause to read.
        match self
            .listener
            .accept_ready(FAILURE_REPORT_WAIT, &|| false, false)
        {
            Err(e @ InitChannelError::InitFailed(_)) => Some(e.into()),
            _ => self.last_words(),
        }
    }

    /// What the init wrote to [`INIT_ERROR_FILE`] before it exited without
    /// connecting; `None` when it wrote nothing.
    fn last_words(&self) -> Option<RuntimeError> {
        let body = super::container_files::read(&self.error_file, LAST_WORDS_LIMIT).ok()?;
        let text = String::from_utf8_lossy(&body);
        let text = text.trim();
        (!text.is_empty()).then(|| InitChannelError::InitFailed(text.to_string()).into())
    }

    /// Waits for the started container's init to report ready, records its
    /// pid and hands back the created container. `still_starting` says
    /// whether the container still runs; `gone` is the error when it
    /// stopped before its init was ready.
    pub fn finish(
        self,
        store: &StateStore,
        mut record: ContainerRecord,
        bundle: PreparedBundle,
        timeout: Duration,
        still_starting: &dyn Fn() -> bool,
        gone: impl FnOnce() -> RuntimeError,
    ) -> Result<CreatedContainer> {
        let init = self
            .listener
            .accept_ready(
                timeout,
                still_starting,
                bundle.plan.init.join_runtime_cgroupns,
            )
            .map_err(|e| match e {
                InitChannelError::ContainerGone => self.last_words().unwrap_or_else(gone),
                other => RuntimeError::from(other),
            })?;
        let pid = init.pid();
        record.pid = Some(pid);
        record.pid_start_time = pidfd::start_time(pid).ok();
        store.save(&record)?;
        let cgroup = ContainerCgroup::for_pid(pid)
            .map_err(|e| tracing::warn!(error = %e, "locating the container's cgroup"))
            .ok();
        Ok(CreatedContainer {
            container: Container {
                record,
                spec: bundle.spec,
                run_dir: bundle.run_dir,
                cgroup,
            },
            init,
            start_gate: self.start_gate,
            terminal: bundle.plan.init.process.terminal,
            root_ids: bundle.plan.lxc.root_host_ids(),
        })
    }
}
