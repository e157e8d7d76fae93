//! PVE tasks: status, log, and waiting for a UPID to finish.
//!
//! A task is done when `status == "stopped"`; its `exitstatus` is `OK`,
//! `WARNINGS: n` (also success) or the error text. The error text alone is
//! often vague (`command 'lxc-start ...' failed: exit code 1`), so failures
//! carry the tail of the task log, where PVE writes the real cause.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;

use super::error::{PveError, Result};
use super::lenient;
use super::transport::ApiPath;
use super::upid::Upid;
use super::PveClient;

/// `GET /nodes/{node}/tasks/{upid}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TaskStatus {
    /// `running` or `stopped`.
    #[serde(deserialize_with = "lenient::string_req")]
    pub status: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub exitstatus: Option<String>,
}

impl TaskStatus {
    pub fn is_running(&self) -> bool {
        self.status != "stopped"
    }
}

/// One line of `GET /nodes/{node}/tasks/{upid}/log`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TaskLogLine {
    #[serde(deserialize_with = "lenient::opt_u64", default)]
    pub n: Option<u64>,
    #[serde(deserialize_with = "lenient::opt_string", default)]
    pub t: Option<String>,
}

/// A task that finished successfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskExit {
    /// `OK` or `WARNINGS: n`.
    pub exitstatus: String,
    pub warnings: u32,
}

/// `Some(warnings)` for a successful exit status, `None` for a failure.
pub(crate) fn success_warnings(exitstatus: &str) -> Option<u32> {
    let exitstatus = exitstatus.trim();
    if exitstatus == "OK" {
        return Some(0);
    }
    exitstatus
        .strip_prefix("WARNINGS:")
        .and_then(|n| n.trim().parse().ok())
}

/// Log lines fetched per page when looking for the tail.
const LOG_PAGE: u64 = 50;

impl PveClient {
    pub fn task_status(&self, upid: &Upid) -> Result<TaskStatus> {
        let path = ApiPath::new(
            "/nodes/{node}/tasks/{upid}/status",
            &[&upid.node, upid.as_str()],
        );
        Ok(self.transport.call(Method::GET, &path, &[])?.data)
    }

    /// Lines `start..start+limit` and, when PVE reports it, the total count.
    pub fn task_log(
        &self,
        upid: &Upid,
        start: u64,
        limit: u64,
    ) -> Result<(Vec<TaskLogLine>, Option<u64>)> {
        let path = ApiPath::new(
            "/nodes/{node}/tasks/{upid}/log",
            &[&upid.node, upid.as_str()],
        );
        let params = [
            ("start".to_string(), start.to_string()),
            ("limit".to_string(), limit.to_string()),
        ];
        let answer = self.transport.call(Method::GET, &path, &params)?;
        Ok((answer.data, answer.total))
    }

    /// The last `lines` lines of the task log. One call when the log is
    /// short, two when PVE's `total` says the tail is further down.
    pub fn task_log_tail(&self, upid: &Upid, lines: usize) -> Result<Vec<String>> {
        let want = lines as u64;
        let (mut page, total) = self.task_log(upid, 0, LOG_PAGE.max(want))?;
        if let Some(total) = total {
            if total > page.len() as u64 {
                page = self.task_log(upid, total.saturating_sub(want), want)?.0;
            }
        }
        // PVE ends a log with an empty line sometimes; it says nothing.
        let texts: Vec<String> = page
            .into_iter()
            .filter_map(|l| l.t)
            .filter(|t| !t.trim().is_empty())
            .collect();
        let skip = texts.len().saturating_sub(lines);
        Ok(texts.into_iter().skip(skip).collect())
    }

    /// Polls the task until it stops or `timeout` passes (see
    /// [`next_poll_delay`]). A task still running at the timeout keeps
    /// running on PVE; the error carries its UPID so the caller can look
    /// again or stop it.
    pub fn wait_task(&self, upid: &Upid, timeout: Duration) -> Result<TaskExit> {
        let began = Instant::now();
        let deadline = began + timeout;
        let mut delay = self.options.task_poll_initial;
        loop {
            // The task runs on in PVE whether its API answers or not, and
            // asking for its status again is harmless: an API that is away
            // (5xx, refused, timing out) is asked again until the deadline.
            let status = match self.task_status(upid) {
                Ok(s) => s,
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    tracing::warn!(upid = %upid, error = %e, "PVE API away while waiting for a task; asking again");
                    std::thread::sleep(delay.min(deadline - Instant::now()));
                    delay = next_poll_delay(&self.options, began.elapsed(), delay);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !status.is_running() {
                self.stats().record_task_wait(began.elapsed());
                return self.task_outcome(upid, status);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(PveError::TaskTimeout {
                    upid: upid.to_string(),
                    timeout,
                });
            }
            std::thread::sleep(delay.min(deadline - now));
            delay = next_poll_delay(&self.options, began.elapsed(), delay);
        }
    }

    /// One look at the task: `None` while it runs, else what
    /// [`wait_task`](Self::wait_task) returns for it (its end is not
    /// counted as a wait: nobody waited for it).
    pub fn task_result(&self, upid: &Upid) -> Result<Option<TaskExit>> {
        let status = self.task_status(upid)?;
        if status.is_running() {
            return Ok(None);
        }
        self.task_outcome(upid, status).map(Some)
    }

    fn task_outcome(&self, upid: &Upid, status: TaskStatus) -> Result<TaskExit> {
        let exitstatus = status
            .exitstatus
            .unwrap_or_else(|| "unknown (no exitstatus)".to_string());
        if let Some(warnings) = success_warnings(&exitstatus) {
            if warnings > 0 {
                tracing::warn!(upid = %upid, %exitstatus, "PVE task finished with warnings");
            }
            return Ok(TaskExit {
                exitstatus,
                warnings,
            });
        }
        // The log is a diagnostic extra: failing to read it must not hide
        // the task's own failure.
        let log = self
            .task_log_tail(upid, self.options.task_log_tail)
            .unwrap_or_else(|err| {
                tracing::debug!(upid = %upid, error = %err, "reading task log failed");
                Vec::new()
            });
        Err(PveError::TaskFailed {
            upid: upid.to_string(),
            exitstatus,
            log,
        })
    }
}

/// The wait before the next task-status poll, fitted to how PVE runs a
/// task: the UPID is answered once the forked worker is up (pve-common
/// src/PVE/RESTEnvironment.pm `fork_worker`), so the first poll comes after
/// `task_poll_initial`, when the shortest tasks (a stop, a config-only
/// task) can be done; creates and starts take a few hundred ms to a few
/// seconds of perl, storage commands and `lxc-start`, polled every
/// `task_poll_steady` so their end is seen within that (a status GET is
/// cheap: pveproxy reads the task's file); a task still running after
/// `task_poll_steady_for` is a long one (a big template, a lock wait) and
/// is polled with a doubling delay up to `task_poll_max`.
pub(crate) fn next_poll_delay(
    options: &super::ClientOptions,
    running_for: Duration,
    last: Duration,
) -> Duration {
    if running_for < options.task_poll_steady_for {
        options.task_poll_steady
    } else {
        (last.max(options.task_poll_steady) * 2).min(options.task_poll_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_are_steady_while_a_task_is_young_then_back_off() {
        let o = super::super::ClientOptions::default();
        let ms = Duration::from_millis;
        assert_eq!(o.task_poll_initial, ms(50));
        assert_eq!(next_poll_delay(&o, ms(50), ms(50)), ms(100));
        assert_eq!(next_poll_delay(&o, ms(2900), ms(100)), ms(100));
        assert_eq!(next_poll_delay(&o, ms(3000), ms(100)), ms(200));
        assert_eq!(next_poll_delay(&o, ms(3200), ms(200)), ms(400));
        assert_eq!(next_poll_delay(&o, ms(9000), ms(800)), o.task_poll_max);
    }

    #[test]
    fn exit_status_classification() {
        assert_eq!(success_warnings("OK"), Some(0));
        assert_eq!(success_warnings("WARNINGS: 3"), Some(3));
        assert_eq!(
            success_warnings("unable to create CT 105 - already exists"),
            None
        );
        assert_eq!(success_warnings("WARNINGS: x"), None);
    }
}
