//! Per-test fault injection through `/_sim/faults` (not part of the PVE API): answer an
//! error, delay, drop the connection, or make the task of a matching call slow or failing.

use regex::Regex;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Duration;

/// A fault as posted to `POST /_sim/faults` (JSON).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Regex searched in the API path without `/api2/json` (e.g. `^/nodes/[^/]+/lxc$`).
    pub path_regex: String,
    /// Only this method (GET, POST, PUT, DELETE); any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Answer this HTTP status instead of running the call.
    #[serde(default)]
    pub status: Option<u16>,
    /// Message for `status` (becomes the reason phrase and body `message`).
    #[serde(default)]
    pub message: Option<String>,
    /// How many matching requests this applies to; 0 = every one. Default 1.
    #[serde(default = "one")]
    pub times: u32,
    /// Sleep this long before answering.
    #[serde(default)]
    pub delay_ms: u64,
    /// The call's worker task fails with this exit status instead of doing its work.
    #[serde(default)]
    pub task_fail: Option<String>,
    /// The worker task sleeps this long before it runs (a slow task).
    #[serde(default)]
    pub task_delay_ms: u64,
    /// Close the connection without an answer.
    #[serde(default)]
    pub drop_connection: bool,
    /// With `drop_connection`: run the call first, then drop (the client cannot tell that
    /// it succeeded).
    #[serde(default)]
    pub after: bool,
}

fn one() -> u32 {
    1
}

struct Armed {
    spec: FaultSpec,
    regex: Regex,
    left: Option<u32>,
    hits: u32,
}

#[derive(Default)]
pub struct Faults {
    armed: Mutex<Vec<Armed>>,
}

impl Faults {
    pub fn add(&self, spec: FaultSpec) -> Result<(), String> {
        let regex = Regex::new(&spec.path_regex).map_err(|e| format!("path_regex: {e}"))?;
        let left = (spec.times != 0).then_some(spec.times);
        self.armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Armed {
                spec,
                regex,
                left,
                hits: 0,
            });
        Ok(())
    }

    pub fn clear(&self) {
        self.armed.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub fn list(&self) -> Value {
        let armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        Value::Array(
            armed
                .iter()
                .map(|a| json!({"path_regex": a.spec.path_regex, "method": a.spec.method, "left": a.left, "hits": a.hits}))
                .collect(),
        )
    }

    /// The first armed fault matching this request, consuming one of its `times`.
    pub fn take(&self, method: &str, path: &str) -> Option<FaultSpec> {
        let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        let idx = armed.iter().position(|a| {
            a.left != Some(0)
                && a.spec
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && a.regex.is_match(path)
        })?;
        let a = &mut armed[idx];
        a.hits += 1;
        if let Some(n) = a.left.as_mut() {
            *n -= 1;
        }
        let spec = a.spec.clone();
        if a.left == Some(0) {
            armed.remove(idx);
        }
        Some(spec)
    }
}

impl FaultSpec {
    pub fn task_fault(&self) -> crate::tasks::TaskFault {
        crate::tasks::TaskFault {
            delay: (self.task_delay_ms > 0).then(|| Duration::from_millis(self.task_delay_ms)),
            fail: self.task_fail.clone(),
        }
    }

    pub fn summary(&self) -> Value {
        json!({
            "path_regex": self.path_regex, "status": self.status, "delay_ms": self.delay_ms,
            "task_fail": self.task_fail, "task_delay_ms": self.task_delay_ms,
            "drop_connection": self.drop_connection, "after": self.after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_method_filter() {
        let f = Faults::default();
        f.add(
            serde_json::from_value(
                json!({"path_regex": "/lxc$", "method": "POST", "status": 500, "times": 2}),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(f.take("GET", "/nodes/n/lxc").is_none());
        assert!(f.take("POST", "/nodes/n/lxc").is_some());
        assert!(f.take("post", "/nodes/n/lxc").is_some());
        assert!(f.take("POST", "/nodes/n/lxc").is_none());
        assert!(
            serde_json::from_value::<FaultSpec>(json!({"path_regex": "x", "bogus": 1})).is_err()
        );
    }
}
