//! Per-test fault injection through `/_sim/faults` (not part of the PVE API): answer an
//! error, delay, drop the connection, or make the task of a matching call slow or failing.

use regex::Regex;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Duration;

/// A fault as posted to `POST /_sim/faults` (JSON). It needs `template` or `path_regex`
/// (or both, which must then both match).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// The schema's path template the request matched, exactly as the API viewer writes it
    /// (e.g. `/nodes/{node}/lxc/{vmid}/status/start`).
    #[serde(default)]
    pub template: Option<String>,
    /// Regex searched in the API path without `/api2/json` (e.g. `^/nodes/[^/]+/lxc$`).
    #[serde(default)]
    pub path_regex: Option<String>,
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
    /// The worker's work after its main step takes this long, under the locks it holds (a
    /// start's post-start hookscript and DHCP; see [`crate::tasks::TaskLog::post_work`]).
    #[serde(default)]
    pub task_linger_ms: u64,
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
    regex: Option<Regex>,
    left: Option<u32>,
    hits: u32,
}

impl Armed {
    fn matches(&self, method: &str, template: &str, path: &str) -> bool {
        self.left != Some(0)
            && self
                .spec
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.spec.template.as_deref().is_none_or(|t| t == template)
            && self.regex.as_ref().is_none_or(|r| r.is_match(path))
    }
}

#[derive(Default)]
pub struct Faults {
    armed: Mutex<Vec<Armed>>,
}

impl Faults {
    pub fn add(&self, spec: FaultSpec) -> Result<(), String> {
        if spec.template.is_none() && spec.path_regex.is_none() {
            return Err("give `template` or `path_regex`".into());
        }
        if let Some(t) = spec.template.as_deref().filter(|t| t.starts_with("/api2/")) {
            return Err(format!("template {t:?}: leave out /api2/json"));
        }
        let regex = spec
            .path_regex
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| format!("path_regex: {e}"))?;
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
                .map(|a| {
                    let mut v = a.spec.summary();
                    v["left"] = json!(a.left);
                    v["hits"] = json!(a.hits);
                    v
                })
                .collect(),
        )
    }

    /// The first armed fault (in the order they were posted) matching this request: its
    /// method, the schema template it matched, and its path. Consumes one of its `times`.
    pub fn take(&self, method: &str, template: &str, path: &str) -> Option<FaultSpec> {
        let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        let idx = armed
            .iter()
            .position(|a| a.matches(method, template, path))?;
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
            linger: (self.task_linger_ms > 0).then(|| Duration::from_millis(self.task_linger_ms)),
            fail: self.task_fail.clone(),
        }
    }

    pub fn summary(&self) -> Value {
        json!({
            "method": self.method, "template": self.template, "path_regex": self.path_regex,
            "status": self.status, "message": self.message, "times": self.times,
            "delay_ms": self.delay_ms,
            "task_fail": self.task_fail, "task_delay_ms": self.task_delay_ms,
            "task_linger_ms": self.task_linger_ms,
            "drop_connection": self.drop_connection, "after": self.after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = "/nodes/{node}/lxc";
    const START: &str = "/nodes/{node}/lxc/{vmid}/status/start";

    fn add(f: &Faults, spec: Value) -> Result<(), String> {
        f.add(serde_json::from_value(spec).map_err(|e| e.to_string())?)
    }

    #[test]
    fn times_and_method_filter() {
        let f = Faults::default();
        add(
            &f,
            json!({"path_regex": "/lxc$", "method": "POST", "status": 500, "times": 2}),
        )
        .unwrap();
        assert!(f.take("GET", CREATE, "/nodes/n/lxc").is_none());
        assert!(f.take("POST", CREATE, "/nodes/n/lxc").is_some());
        assert!(f.take("post", CREATE, "/nodes/n/lxc").is_some());
        assert!(f.take("POST", CREATE, "/nodes/n/lxc").is_none());
        assert!(add(&f, json!({"path_regex": "x", "bogus": 1})).is_err());
    }

    #[test]
    fn template_matches_the_schema_path_exactly() {
        let f = Faults::default();
        add(
            &f,
            json!({"method": "POST", "template": START, "task_fail": "boom", "times": 0}),
        )
        .unwrap();
        let stop = "/nodes/{node}/lxc/{vmid}/status/stop";
        assert!(f
            .take("POST", stop, "/nodes/n/lxc/100/status/stop")
            .is_none());
        assert!(f
            .take("GET", START, "/nodes/n/lxc/100/status/start")
            .is_none());
        for vmid in [100, 101, 102] {
            let path = format!("/nodes/n/lxc/{vmid}/status/start");
            assert_eq!(
                f.take("POST", START, &path).unwrap().task_fail.as_deref(),
                Some("boom"),
                "times 0 is every time"
            );
        }
        // Both given: both must match.
        f.clear();
        add(
            &f,
            json!({"template": START, "path_regex": "/101/", "status": 500}),
        )
        .unwrap();
        assert!(f
            .take("POST", START, "/nodes/n/lxc/100/status/start")
            .is_none());
        assert!(f
            .take("POST", START, "/nodes/n/lxc/101/status/start")
            .is_some());
        assert!(add(&f, json!({"method": "GET"})).is_err(), "needs a path");
        assert!(add(&f, json!({"template": "/api2/json/cluster/nextid"})).is_err());
    }
}
