//! `DATA_DIR/requests.jsonl`: one JSON line per API request with its validation verdict,
//! so a test can fail when lxcri sent anything real PVE would have rejected.

use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct RequestLog {
    file: Mutex<File>,
    secret: String,
}

/// One request as recorded.
pub struct Entry<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub template: Option<&'a str>,
    pub schema: Option<&'a str>,
    pub params: &'a [(String, Value)],
    pub auth: &'a str,
    pub status: u16,
    pub valid: bool,
    pub reasons: Vec<String>,
    pub fault: Option<Value>,
    pub duration_ms: u128,
}

impl RequestLog {
    pub fn open(path: &Path, secret: &str) -> std::io::Result<RequestLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RequestLog {
            file: Mutex::new(file),
            secret: secret.to_string(),
        })
    }

    /// Replaces the token secret wherever it appears, so a client that leaks it into a
    /// parameter does not leak it into the log too.
    fn redact(&self, v: &Value) -> Value {
        match v {
            Value::String(s) if !self.secret.is_empty() && s.contains(&self.secret) => {
                Value::String(s.replace(&self.secret, "<redacted>"))
            }
            other => other.clone(),
        }
    }

    pub fn append(&self, e: Entry<'_>) {
        let params: serde_json::Map<String, Value> = e
            .params
            .iter()
            .map(|(k, v)| (k.clone(), self.redact(v)))
            .collect();
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let line = json!({
            "ts": ts,
            "method": e.method,
            "path": e.path,
            "template": e.template,
            "schema": e.schema,
            "params": params,
            "auth": e.auth,
            "status": e.status,
            "valid": e.valid,
            "reasons": e.reasons,
            "fault": e.fault,
            "duration_ms": e.duration_ms as u64,
        });
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = writeln!(f, "{line}") {
            eprintln!("pve-sim: writing requests.jsonl: {err}");
        }
    }
}
