//! What only the shims see, kept where the exporter reads it: how long
//! creates, starts and deletes took, which failed and why, and the PVE API
//! calls they made. Each shim adds its observations to one file under the
//! runtime root (`.metrics/ops.json`) under an exclusive `flock`, written
//! whole and renamed into place; the exporter reads it under a shared lock.
//! So nothing is lost while the exporter is down or restarts, counters
//! only grow (until the node reboots and `/run` is empty), and a shim waits
//! on the exporter for no longer than one read of a small file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::pve::client::{EndpointKey, EndpointStats, TaskWaits};

/// Upper bounds (seconds) of the operation histograms; `+Inf` follows.
/// A start on lxc takes ~0.1 s, a create on a real PVE node several.
pub const OP_BUCKETS: [f64; 12] = [
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// What `lxcri_operation_failures_total` counts by (`cause`):
/// [`crate::runtime::RuntimeError::cause`]'s names and the shim's own.
pub const CAUSES: [&str; 13] = [
    "spec", "config", "state", "rootfs", "lxc", "init", "cgroup", "pve", "network", "mounts",
    "userns", "hook", "shim",
];
/// The operations the shims time.
pub const OPERATIONS: [&str; 3] = ["create", "start", "delete"];

/// Upper bounds (seconds) of the PVE request and task-wait histograms.
pub const PVE_BUCKETS: [f64; 10] = crate::pve::client::LATENCY_BUCKETS;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not an lxcri metrics journal: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// A histogram with per-bucket (not cumulative) counts; the last count is
/// `+Inf`'s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub counts: Vec<u64>,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.len() != bounds.len() + 1 {
            self.counts = vec![0; bounds.len() + 1];
        }
        let i = bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(bounds.len());
        self.counts[i] += 1;
        self.sum += value;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn add(&mut self, other: &Histogram) {
        if other.count() == 0 {
            return;
        }
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
    }
}

/// One PVE API endpoint's calls, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PveEndpoint {
    /// Calls by outcome: `ok`, `4xx`, `5xx`, `timeout`, `transport`.
    pub calls: BTreeMap<String, u64>,
    pub retries: u64,
    pub latency: Histogram,
}

/// Everything recorded on the node since `/run` was last empty. Fields
/// default when absent, so a journal of another lxcri version still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpsRecord {
    /// `op/backend` -> durations of the successful ones.
    pub durations: BTreeMap<String, Histogram>,
    /// `op/backend/cause` -> failures.
    pub failures: BTreeMap<String, u64>,
    /// `METHOD template` -> calls.
    pub pve_requests: BTreeMap<String, PveEndpoint>,
    /// Waits for PVE tasks (create, start, stop, destroy) to end.
    pub pve_task_wait: Histogram,
}

impl OpsRecord {
    /// A finished operation: its duration, or its failure's cause.
    pub fn operation(&mut self, op: &str, backend: &str, took: Duration, failed: Option<&str>) {
        match failed {
            None => self
                .durations
                .entry(format!("{op}/{backend}"))
                .or_default()
                .observe(&OP_BUCKETS, took.as_secs_f64()),
            Some(cause) => {
                *self
                    .failures
                    .entry(format!("{op}/{backend}/{cause}"))
                    .or_default() += 1
            }
        }
    }

    /// What a PVE client counted since it was last asked
    /// ([`crate::pve::client::ClientStats::take`]).
    pub fn pve_calls(&mut self, endpoints: &[(EndpointKey, EndpointStats)], waits: &TaskWaits) {
        for (key, stats) in endpoints {
            let e = self
                .pve_requests
                .entry(format!("{} {}", key.method, key.template))
                .or_default();
            let failed = stats.error_count();
            if stats.calls > failed {
                *e.calls.entry("ok".into()).or_default() += stats.calls - failed;
            }
            for (class, n) in &stats.errors {
                *e.calls.entry(class.as_str().into()).or_default() += n;
            }
            e.retries += stats.retries;
            e.latency.add(&Histogram {
                counts: stats.latency_buckets.to_vec(),
                sum: stats.latency_sum.as_secs_f64(),
            });
        }
        self.pve_task_wait.add(&Histogram {
            counts: waits.buckets.to_vec(),
            sum: waits.sum.as_secs_f64(),
        });
    }

    /// Adds another record's counts (a shim's since its last flush).
    pub fn add(&mut self, other: &OpsRecord) {
        for (k, h) in &other.durations {
            self.durations.entry(k.clone()).or_default().add(h);
        }
        for (k, n) in &other.failures {
            *self.failures.entry(k.clone()).or_default() += n;
        }
        for (k, e) in &other.pve_requests {
            let mine = self.pve_requests.entry(k.clone()).or_default();
            for (outcome, n) in &e.calls {
                *mine.calls.entry(outcome.clone()).or_default() += n;
            }
            mine.retries += e.retries;
            mine.latency.add(&e.latency);
        }
        self.pve_task_wait.add(&other.pve_task_wait);
    }

    pub fn is_empty(&self) -> bool {
        self == &OpsRecord::default()
    }
}

/// The journal file of a runtime root.
#[derive(Debug, Clone)]
pub struct OpsJournal {
    dir: PathBuf,
}

impl OpsJournal {
    pub fn new(runtime_root: &Path) -> Self {
        Self {
            dir: runtime_root.join(".metrics"),
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("ops.json")
    }

    /// The journal's lock, held; a reader gets `None` when no shim ever
    /// wrote (readers create nothing, so the exporter needs no write access).
    fn lock(&self, exclusive: bool) -> Result<Option<File>, OpsError> {
        let path = self.dir.join("ops.lock");
        let io = |what, source| OpsError::Io {
            what,
            path: path.clone(),
            source,
        };
        let opened = if exclusive {
            fs::create_dir_all(&self.dir).map_err(|e| io("creating", e))?;
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
        } else {
            File::open(&path)
        };
        let f = match opened {
            Ok(f) => f,
            Err(e) if !exclusive && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("opening", e)),
        };
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
            return Err(io("locking", std::io::Error::last_os_error()));
        }
        Ok(Some(f))
    }

    fn load_unlocked(&self) -> Result<OpsRecord, OpsError> {
        let path = self.file();
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| OpsError::Parse { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OpsRecord::default()),
            Err(source) => Err(OpsError::Io {
                what: "reading",
                path,
                source,
            }),
        }
    }

    /// Everything recorded so far.
    pub fn read(&self) -> Result<OpsRecord, OpsError> {
        match self.lock(false)? {
            Some(_lock) => self.load_unlocked(),
            None => Ok(OpsRecord::default()),
        }
    }

    /// Adds `delta` to the journal.
    pub fn add(&self, delta: &OpsRecord) -> Result<(), OpsError> {
        if delta.is_empty() {
            return Ok(());
        }
        let _lock = self.lock(true)?;
        let mut all = self.load_unlocked()?;
        all.add(delta);
        let path = self.file();
        let tmp = self.dir.join("ops.json.tmp");
        let io = |what, source| OpsError::Io {
            what,
            path: path.clone(),
            source,
        };
        let body = serde_json::to_vec(&all).expect("ops record serializes");
        File::create(&tmp)
            .and_then(|mut f| f.write_all(&body))
            .map_err(|e| io("writing", e))?;
        fs::rename(&tmp, &path).map_err(|e| io("replacing", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_land_in_buckets_and_failures_by_cause() {
        let mut r = OpsRecord::default();
        r.operation("create", "lxc", Duration::from_millis(80), None);
        r.operation("create", "lxc", Duration::from_secs(500), None);
        r.operation("create", "pve", Duration::from_secs(1), Some("pve_api"));
        let h = &r.durations["create/lxc"];
        assert_eq!(h.counts.len(), OP_BUCKETS.len() + 1);
        assert_eq!(h.counts[2], 1, "80 ms <= 0.1 s");
        assert_eq!(h.counts[OP_BUCKETS.len()], 1, "+Inf");
        assert_eq!(h.count(), 2);
        assert_eq!(r.failures["create/pve/pve_api"], 1);
        assert!(!r.durations.contains_key("create/pve"));
    }

    #[test]
    fn pve_calls_count_by_outcome() {
        use crate::pve::client::ErrorClass;
        let mut stats = EndpointStats {
            calls: 3,
            retries: 1,
            latency_sum: Duration::from_millis(30),
            ..Default::default()
        };
        stats.errors.insert(ErrorClass::Server, 1);
        stats.latency_buckets[1] = 3;
        let key = EndpointKey {
            method: "POST".into(),
            template: "/nodes/{node}/lxc",
        };
        let mut waits = TaskWaits::default();
        waits.buckets[7] = 1;
        waits.sum = Duration::from_millis(900);
        let mut r = OpsRecord::default();
        r.pve_calls(&[(key, stats)], &waits);
        let e = &r.pve_requests["POST /nodes/{node}/lxc"];
        assert_eq!(e.calls["ok"], 2);
        assert_eq!(e.calls["5xx"], 1);
        assert_eq!(e.latency.count(), 3);
        assert_eq!(r.pve_task_wait.count(), 1);
        // Nothing taken, nothing added.
        let mut empty = OpsRecord::default();
        empty.pve_calls(&[], &TaskWaits::default());
        assert!(empty.pve_task_wait.count() == 0);
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = OpsJournal::new(tmp.path());
        std::thread::scope(|s| {
            for _ in 0..8 {
                let journal = journal.clone();
                s.spawn(move || {
                    for _ in 0..25 {
                        let mut d = OpsRecord::default();
                        d.operation("start", "lxc", Duration::from_millis(10), None);
                        d.operation("delete", "lxc", Duration::ZERO, Some("lxc"));
                        journal.add(&d).unwrap();
                    }
                });
            }
        });
        let all = journal.read().unwrap();
        assert_eq!(all.durations["start/lxc"].count(), 200);
        assert_eq!(all.failures["delete/lxc/lxc"], 200);
    }

    #[test]
    fn reading_a_journal_nobody_wrote_makes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = OpsJournal::new(&tmp.path().join("run"));
        assert!(journal.read().unwrap().is_empty());
        assert!(!tmp.path().join("run").exists());
    }

    #[test]
    fn a_broken_journal_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = OpsJournal::new(tmp.path());
        fs::create_dir_all(tmp.path().join(".metrics")).unwrap();
        fs::write(tmp.path().join(".metrics/ops.lock"), "").unwrap();
        fs::write(tmp.path().join(".metrics/ops.json"), "{not json").unwrap();
        let err = journal.read().unwrap_err().to_string();
        assert!(
            err.contains("ops.json: not an lxcri metrics journal"),
            "{err}"
        );
    }
}
