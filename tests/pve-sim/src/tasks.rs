//! PVE worker tasks: each async API call returns a UPID at once and does its work in a
//! background thread; clients poll `tasks/{upid}/status` and read `tasks/{upid}/log`.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::timing::{pause, PveTiming};

#[derive(Debug)]
struct Task {
    upid: String,
    pid: u32,
    starttime: u64,
    ty: String,
    id: String,
    user: String,
    exitstatus: Option<String>,
    endtime: Option<u64>,
    log: Vec<String>,
}

/// What a task's work function writes its log through.
#[derive(Clone)]
pub struct TaskLog {
    task: Arc<Mutex<Task>>,
    linger: Option<Duration>,
}

impl TaskLog {
    pub fn line(&self, text: impl Into<String>) {
        lock(&self.task).log.push(text.into());
    }

    /// The work a worker does after its main step, while it still holds its locks: a
    /// start's post-start hookscript and host-managed DHCP (pve-container src/PVE/LXC.pm
    /// `vm_start`, under the config lock of src/PVE/API2/LXC/Status.pm). Instant unless
    /// a fault's `task_linger_ms` makes it take time.
    pub fn post_work(&self) {
        if let Some(d) = self.linger {
            std::thread::sleep(d);
        }
    }
}

/// How a fault reshapes a task: a delay before it runs, post-work that lingers, or a
/// failure instead of its work.
#[derive(Default, Clone)]
pub struct TaskFault {
    pub delay: Option<Duration>,
    pub linger: Option<Duration>,
    pub fail: Option<String>,
}

pub struct Tasks {
    node: String,
    /// `--pve-timing`: a forked worker's cost and the task's own.
    timing: Option<PveTiming>,
    pstart: u64,
    next_pid: AtomicU32,
    tasks: Mutex<HashMap<String, Arc<Mutex<Task>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Our own start time in clock ticks since boot (field 22 of /proc/self/stat), which is
/// what PVE puts in a UPID's `pstart`.
fn own_pstart() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    after_comm
        .split_whitespace()
        .nth(19)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// `UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{type}:{id}:{user}:`
pub fn format_upid(
    node: &str,
    pid: u32,
    pstart: u64,
    starttime: u64,
    ty: &str,
    id: &str,
    user: &str,
) -> String {
    format!("UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{ty}:{id}:{user}:")
}

impl Tasks {
    pub fn new(node: &str, timing: Option<PveTiming>) -> Tasks {
        Tasks {
            node: node.to_string(),
            timing,
            pstart: own_pstart(),
            // Each task gets its own "worker pid" so UPIDs started in the same second differ.
            next_pid: AtomicU32::new(std::process::id().wrapping_mul(16)),
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Starts `work` in a thread and returns the UPID. A fault may delay it or make it fail
    /// without doing its work; `on_fail` then runs (e.g. the create rollback).
    pub fn spawn<W, F>(
        &self,
        ty: &str,
        id: &str,
        user: &str,
        fault: TaskFault,
        work: W,
        on_fail: F,
    ) -> String
    where
        W: FnOnce(&TaskLog) -> Result<(), String> + Send + 'static,
        F: FnOnce(&TaskLog) + Send + 'static,
    {
        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed);
        let starttime = now();
        let upid = format_upid(&self.node, pid, self.pstart, starttime, ty, id, user);
        let task = Arc::new(Mutex::new(Task {
            upid: upid.clone(),
            pid,
            starttime,
            ty: ty.to_string(),
            id: id.to_string(),
            user: user.to_string(),
            exitstatus: None,
            endtime: None,
            log: Vec::new(),
        }));
        lock(&self.tasks).insert(upid.clone(), task.clone());
        let log = TaskLog {
            task: task.clone(),
            linger: fault.linger,
        };
        // The API answers once the forked worker has written its UPID.
        pause(self.timing, |t| t.fork);
        let timing = self.timing;
        let ty = ty.to_string();
        std::thread::spawn(move || {
            pause(timing, |t| t.work(&ty));
            if let Some(d) = fault.delay {
                std::thread::sleep(d);
            }
            let result = match fault.fail {
                Some(msg) => {
                    on_fail(&log);
                    Err(msg)
                }
                None => work(&log),
            };
            pause(timing, |t| t.exit);
            let mut t = lock(&task);
            let status = match result {
                Ok(()) => {
                    t.log.push("TASK OK".into());
                    "OK".to_string()
                }
                Err(e) => {
                    let e = e.trim_end().to_string();
                    t.log.push(format!("TASK ERROR: {e}"));
                    e
                }
            };
            t.exitstatus = Some(status);
            t.endtime = Some(now());
        });
        upid
    }

    fn get(&self, upid: &str) -> Option<Arc<Mutex<Task>>> {
        lock(&self.tasks).get(upid).cloned()
    }

    pub fn status(&self, upid: &str) -> Option<Value> {
        let t = self.get(upid)?;
        let t = lock(&t);
        let mut v = json!({
            "upid": t.upid, "node": self.node, "pid": t.pid, "pstart": self.pstart,
            "starttime": t.starttime, "type": t.ty, "id": t.id, "user": t.user,
            "status": if t.exitstatus.is_some() { "stopped" } else { "running" },
        });
        if let Some(e) = &t.exitstatus {
            v["exitstatus"] = json!(e);
        }
        Some(v)
    }

    /// Lines `start..start+limit` as `[{n, t}]` (n counts from 1), and the total count.
    pub fn log(&self, upid: &str, start: usize, limit: usize) -> Option<(Value, usize)> {
        let t = self.get(upid)?;
        let t = lock(&t);
        let lines: Vec<Value> = t
            .log
            .iter()
            .enumerate()
            .skip(start)
            .take(limit)
            .map(|(i, l)| json!({"n": i + 1, "t": l}))
            .collect();
        Some((Value::Array(lines), t.log.len()))
    }

    pub fn list(&self) -> Vec<Value> {
        let upids: Vec<String> = lock(&self.tasks).keys().cloned().collect();
        let mut out: Vec<Value> = upids.iter().filter_map(|u| self.status(u)).collect();
        out.sort_by_key(|v| std::cmp::Reverse(v["starttime"].as_u64()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upid_format_matches_pve() {
        let u = format_upid(
            "pve1",
            0x1234,
            0xabc,
            0x6000_0000,
            "vzstart",
            "100",
            "root@pam!t",
        );
        assert_eq!(
            u,
            "UPID:pve1:00001234:00000ABC:60000000:vzstart:100:root@pam!t:"
        );
    }

    #[test]
    fn tasks_finish_with_ok_or_error() {
        let tasks = Tasks::new("n", None);
        let ok = tasks.spawn(
            "vzstart",
            "1",
            "u@pve",
            TaskFault::default(),
            |l| {
                l.line("starting");
                Ok(())
            },
            |_| {},
        );
        let bad = tasks.spawn(
            "vzstop",
            "1",
            "u@pve",
            TaskFault {
                fail: Some("boom".into()),
                ..Default::default()
            },
            |_| Ok(()),
            |_| {},
        );
        for _ in 0..100 {
            if tasks.status(&ok).unwrap()["status"] == "stopped"
                && tasks.status(&bad).unwrap()["status"] == "stopped"
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(tasks.status(&ok).unwrap()["exitstatus"], "OK");
        assert_eq!(tasks.status(&bad).unwrap()["exitstatus"], "boom");
        let (lines, total) = tasks.log(&ok, 0, 50).unwrap();
        assert_eq!(total, 2);
        assert_eq!(lines[1]["t"], "TASK OK");
    }
}
