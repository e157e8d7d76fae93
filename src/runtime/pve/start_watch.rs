//! A CT's start task, watched while its init is awaited.
//!
//! PVE's start worker ends well after the CT runs: `vm_start`
//! (pve-container src/PVE/LXC.pm) waits for LXC's monitor to report
//! RUNNING, runs the post-start hookscript and host-managed DHCP, and only
//! then does the worker write `TASK OK` and exit
//! (pve-common src/PVE/RESTEnvironment.pm `fork_worker`). The init's ready
//! report is the earlier and surer sign that the container runs, so the
//! create waits for that and looks at the task only to fail fast when PVE
//! could not start the CT. The task holds the CT's config lock to its end;
//! PVE's own lock wait makes a later call on the CT wait for it.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use super::api::PendingTask;
use crate::pve::client::{PveError, Upid};

#[derive(Debug)]
pub(super) struct StartWatch {
    task: PendingTask,
    /// The task was seen to end: only the CT itself is looked at from then
    /// on (after a failure, which `failure` holds until it is taken).
    ended: Cell<bool>,
    failure: RefCell<Option<PveError>>,
}

impl StartWatch {
    pub(super) fn new(task: PendingTask) -> Self {
        Self {
            task,
            ended: Cell::new(false),
            failure: RefCell::new(None),
        }
    }

    /// How long the task may run.
    pub(super) fn task_timeout(&self) -> Duration {
        self.task.timeout
    }

    /// Whether the CT may still come up: its task runs (within its
    /// timeout), or it succeeded and `ct_running` says the CT runs.
    /// `look` is one look at the task ([`super::api::CtApi::task_done`]);
    /// an API that is away (5xx, refused, timing out) is asked again next
    /// time, as a task wait does.
    pub(super) fn still_starting(
        &self,
        look: impl FnOnce(&Upid) -> Result<bool, PveError>,
        ct_running: impl FnOnce() -> bool,
    ) -> bool {
        if !self.ended.get() {
            let in_time = self.task.began.elapsed() < self.task.timeout;
            match look(&self.task.upid) {
                Ok(true) => self.ended.set(true),
                Ok(false) if in_time => return true,
                Err(e) if e.is_transient() && in_time => return true,
                Ok(false) => {
                    return self.fail(PveError::TaskTimeout {
                        upid: self.task.upid.to_string(),
                        timeout: self.task.timeout,
                    })
                }
                Err(e) => return self.fail(e),
            }
        }
        ct_running()
    }

    fn fail(&self, e: PveError) -> bool {
        self.ended.set(true);
        *self.failure.borrow_mut() = Some(e);
        false
    }

    /// The task, unless it was seen to end.
    pub(super) fn unfinished(&self) -> Option<&PendingTask> {
        (!self.ended.get()).then_some(&self.task)
    }

    /// Why the task failed, once [`Self::still_starting`] saw it fail.
    pub(super) fn take_failure(&self) -> Option<PveError> {
        self.failure.borrow_mut().take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn watch(timeout: Duration) -> StartWatch {
        StartWatch::new(PendingTask {
            upid: Upid::parse("UPID:pve1:00001234:00000ABC:60000000:vzstart:105:lxcri@pve!t:")
                .unwrap(),
            began: Instant::now(),
            timeout,
        })
    }

    fn failed(exitstatus: &str) -> PveError {
        PveError::TaskFailed {
            upid: "u".into(),
            exitstatus: exitstatus.into(),
            log: Vec::new(),
        }
    }

    #[test]
    fn a_running_task_is_starting_without_asking_the_ct() {
        let w = watch(Duration::from_secs(60));
        assert!(w.still_starting(|_| Ok(false), || panic!("the CT is not asked")));
        assert!(w.take_failure().is_none());
    }

    #[test]
    fn after_success_only_the_ct_is_asked() {
        let w = watch(Duration::from_secs(60));
        assert!(w.unfinished().is_some());
        assert!(w.still_starting(|_| Ok(true), || true));
        assert!(w.unfinished().is_none());
        assert!(!w.still_starting(|_| panic!("the task is not asked again"), || false));
        assert!(
            w.take_failure().is_none(),
            "a CT that stopped is no task failure"
        );
    }

    #[test]
    fn a_failed_task_stops_the_wait_with_its_error() {
        let w = watch(Duration::from_secs(60));
        let said = "startup for container '105' failed";
        assert!(!w.still_starting(|_| Err(failed(said)), || true));
        assert!(w.unfinished().is_none(), "a failed task is over");
        let e = w.take_failure().unwrap();
        assert!(matches!(e, PveError::TaskFailed { ref exitstatus, .. } if exitstatus == said));
    }

    #[test]
    fn an_api_away_is_asked_again_until_the_timeout() {
        let away = || PveError::Http {
            method: reqwest::Method::GET,
            path: "/nodes/pve1/tasks".into(),
            status: 503,
            message: "Service Unavailable".into(),
        };
        let w = watch(Duration::from_secs(60));
        assert!(w.still_starting(|_| Err(away()), || panic!()));
        let w = watch(Duration::ZERO);
        assert!(!w.still_starting(|_| Err(away()), || panic!()));
        assert!(matches!(
            w.take_failure(),
            Some(PveError::Http { status: 503, .. })
        ));
    }

    #[test]
    fn a_task_past_its_timeout_fails_naming_it() {
        let w = watch(Duration::ZERO);
        assert!(!w.still_starting(|_| Ok(false), || panic!()));
        match w.take_failure() {
            Some(PveError::TaskTimeout { upid, .. }) => assert!(upid.contains(":vzstart:105:")),
            other => panic!("{other:?}"),
        }
    }
}
