//! One process of a task (the container's init, or an exec) and its
//! lifecycle: Created -> Running (<-> Paused) -> Stopped.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use lxcri::state::now_ns;
use lxcri_init_spec::ProcessSpec;

use containerd_shim_protos::api::Status;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use tokio::sync::{watch, Mutex};

use crate::error::{Result, ShimError};
use crate::io::{ProcessIo, StdioPaths};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub status: u32,
    pub exited_at_ns: u64,
}

impl ExitInfo {
    pub fn now(status: u32) -> Self {
        Self {
            status,
            exited_at_ns: now_ns(),
        }
    }

    /// What a process that has not exited reports: status 0 and Go's zero
    /// time, as runc's shim (containerd 2.x passes an empty time on as
    /// 1970, not as the zero time its clients test for).
    pub const NOT_EXITED: ExitInfo = ExitInfo {
        status: 0,
        exited_at_ns: 0,
    };

    pub fn timestamp(&self) -> Timestamp {
        if self.exited_at_ns == 0 {
            // No time: Go's zero time, which containerd's shims send then.
            return Timestamp {
                seconds: GO_ZERO_TIME_SECONDS,
                ..Default::default()
            };
        }
        timestamp(self.exited_at_ns)
    }
}

/// `time.Time{}` (year 1) in Unix seconds.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

pub fn timestamp(ns: u64) -> Timestamp {
    Timestamp {
        seconds: (ns / 1_000_000_000) as i64,
        nanos: (ns % 1_000_000_000) as i32,
        ..Default::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessStatus {
    Created,
    Running,
    Paused,
    Stopped,
}

/// runc's shim's words for `op` refused in `status` (its process state
/// machines: containerd `cmd/containerd-shim-runc-v2/process/init_state.go`
/// and `exec_state.go`).
fn refusal(op: &str, status: ProcessStatus) -> String {
    let state = match status {
        ProcessStatus::Created => "created",
        ProcessStatus::Running => "running",
        ProcessStatus::Paused => "paused",
        ProcessStatus::Stopped => "stopped",
    };
    match (op, status) {
        ("pause" | "resume", ProcessStatus::Created) => {
            format!("cannot {op} task in created state")
        }
        ("pause" | "resume", ProcessStatus::Paused | ProcessStatus::Stopped) => {
            format!("cannot {op} a {state} container")
        }
        ("exec in", _) => format!("cannot exec in a {state} state"),
        _ => format!("cannot {op} a {state} process"),
    }
}

impl ProcessStatus {
    pub fn to_proto(self) -> Status {
        match self {
            ProcessStatus::Created => Status::CREATED,
            ProcessStatus::Running => Status::RUNNING,
            ProcessStatus::Paused => Status::PAUSED,
            ProcessStatus::Stopped => Status::STOPPED,
        }
    }
}

/// A process's state; `exit` is also broadcast for `wait`.
pub struct Process {
    pub id: String,
    pub pid: i32,
    pub status: ProcessStatus,
    pub stdio: StdioPaths,
    pub io: ProcessIo,
    /// For an exec: what `lxcri-init exec` runs, from `exec` until `start`.
    pub exec_spec: Option<ProcessSpec>,
    /// For a started exec: a pidfd on its process, which Kill signals
    /// through, so a pid the kernel handed on is never hit.
    pub pidfd: Option<OwnedFd>,
    /// For an exec: held by its start, and by every call on it that must
    /// see the start's outcome (see `service::exec_process`).
    pub exec_lock: Arc<Mutex<()>>,
    /// Reaped, its exit not recorded yet (that waits for its output): the
    /// pid may name another process by now.
    reaped: bool,
    exit_tx: watch::Sender<Option<ExitInfo>>,
}

impl Process {
    pub fn new(id: String, pid: i32, stdio: StdioPaths, io: ProcessIo) -> Self {
        let (exit_tx, _) = watch::channel(None);
        Self {
            id,
            pid,
            status: ProcessStatus::Created,
            stdio,
            io,
            exec_spec: None,
            pidfd: None,
            exec_lock: Arc::default(),
            reaped: false,
            exit_tx,
        }
    }

    pub fn exit(&self) -> Option<ExitInfo> {
        *self.exit_tx.borrow()
    }

    pub fn set_reaped(&mut self) {
        self.reaped = true;
    }

    /// Whether the process is gone, even if its exit is not recorded yet.
    pub fn has_ended(&self) -> bool {
        self.reaped || self.exit().is_some()
    }

    /// For the container's init: whether an exec may join it. A created
    /// container may (its init waits in the finished container, as runc's
    /// does); a paused container's frozen cgroup would hold the exec
    /// forever, and a stopped one (or one whose init is gone, its exit not
    /// reported yet) has nothing to join: both refused in runc's shim's
    /// words.
    pub fn ensure_exec_allowed(&self) -> Result<()> {
        match self.status {
            ProcessStatus::Created | ProcessStatus::Running if self.reaped => Err(
                ShimError::FailedPrecondition(refusal("exec in", ProcessStatus::Stopped)),
            ),
            _ => self.ensure(&[ProcessStatus::Created, ProcessStatus::Running], "exec in"),
        }
    }

    /// An exec whose process could not be started stays Created, as on
    /// runc's shim, but is over: `wait` answers at once with status 0 and
    /// no exit time, and no TaskExit is published.
    pub fn set_start_failed(&mut self) {
        self.exit_tx.send_replace(Some(ExitInfo {
            status: 0,
            exited_at_ns: 0,
        }));
    }

    /// Records the exit once; returns false if it was already recorded,
    /// so TaskExit is published exactly once.
    pub fn set_exited(&mut self, info: ExitInfo) -> bool {
        if self.exit().is_some() {
            return false;
        }
        self.status = ProcessStatus::Stopped;
        self.io.process_exited();
        self.exit_tx.send_replace(Some(info));
        true
    }

    /// A receiver that resolves when the process has exited.
    pub fn exit_watch(&self) -> watch::Receiver<Option<ExitInfo>> {
        self.exit_tx.subscribe()
    }

    pub fn ensure(&self, want: &[ProcessStatus], op: &str) -> Result<()> {
        if want.contains(&self.status) {
            Ok(())
        } else {
            Err(ShimError::FailedPrecondition(refusal(op, self.status)))
        }
    }
}

/// Waits on a watch until the exit is known.
pub async fn wait_exit(mut rx: watch::Receiver<Option<ExitInfo>>) -> ExitInfo {
    loop {
        if let Some(info) = *rx.borrow_and_update() {
            return info;
        }
        if rx.changed().await.is_err() {
            // Sender dropped without an exit: report the kill we must have done.
            return (*rx.borrow()).unwrap_or_else(|| ExitInfo::now(137));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_is_recorded_once_and_wakes_waiters() {
        let mut p = Process::new("c".into(), 1, StdioPaths::default(), ProcessIo::default());
        let rx = p.exit_watch();
        let waiter = tokio::spawn(wait_exit(rx));
        assert!(p.set_exited(ExitInfo {
            status: 3,
            exited_at_ns: 5
        }));
        assert!(!p.set_exited(ExitInfo {
            status: 9,
            exited_at_ns: 6
        }));
        assert_eq!(waiter.await.unwrap().status, 3);
        assert_eq!(p.status, ProcessStatus::Stopped);
        assert!(p.ensure(&[ProcessStatus::Running], "kill").is_err());
    }

    #[test]
    fn a_reaped_process_has_ended_before_its_exit_is_recorded() {
        let mut p = Process::new("e".into(), 7, StdioPaths::default(), ProcessIo::default());
        assert!(!p.has_ended());
        p.set_reaped();
        assert!(p.has_ended());
        assert!(p.exit().is_none());
        assert!(p.set_exited(ExitInfo::now(0)));
    }

    #[test]
    fn refusals_are_in_runcs_words() {
        use ProcessStatus::*;
        for (op, status, words) in [
            ("pause", Created, "cannot pause task in created state"),
            ("pause", Paused, "cannot pause a paused container"),
            ("pause", Stopped, "cannot pause a stopped container"),
            ("resume", Created, "cannot resume task in created state"),
            ("resume", Running, "cannot resume a running process"),
            ("resume", Stopped, "cannot resume a stopped container"),
            ("start", Running, "cannot start a running process"),
            ("start", Paused, "cannot start a paused process"),
            ("start", Stopped, "cannot start a stopped process"),
            ("delete", Running, "cannot delete a running process"),
            ("delete", Paused, "cannot delete a paused process"),
        ] {
            assert_eq!(refusal(op, status), words);
        }
    }

    #[test]
    fn exec_needs_a_live_init_and_not_a_paused_one() {
        let mut init = Process::new("c".into(), 1, StdioPaths::default(), ProcessIo::default());
        let refused = |p: &Process| match p.ensure_exec_allowed() {
            Err(ShimError::FailedPrecondition(m)) => m,
            other => panic!("{other:?}"),
        };
        init.ensure_exec_allowed().unwrap();
        init.status = ProcessStatus::Running;
        init.ensure_exec_allowed().unwrap();
        init.status = ProcessStatus::Paused;
        assert!(refused(&init).contains("cannot exec in a paused state"));
        init.status = ProcessStatus::Running;
        init.set_reaped();
        assert_eq!(refused(&init), "cannot exec in a stopped state");
        init.status = ProcessStatus::Stopped;
        assert_eq!(refused(&init), "cannot exec in a stopped state");
    }

    #[tokio::test]
    async fn a_failed_start_stays_created_and_ends_waits_without_a_time() {
        let mut p = Process::new("e".into(), 0, StdioPaths::default(), ProcessIo::default());
        let waiter = tokio::spawn(wait_exit(p.exit_watch()));
        p.set_start_failed();
        let exit = waiter.await.unwrap();
        assert_eq!(exit.status, 0);
        assert_eq!(exit.timestamp().seconds, GO_ZERO_TIME_SECONDS);
        assert_eq!(p.status, ProcessStatus::Created);
        assert!(p.has_ended());
        // Nothing ran, so nothing exits: no TaskExit either.
        assert!(!p.set_exited(ExitInfo::now(1)));
    }

    #[test]
    fn timestamps_split_seconds() {
        let t = timestamp(1_500_000_000);
        assert_eq!((t.seconds, t.nanos), (1, 500_000_000));
    }
}
