//! Per-endpoint call statistics and task waits, which the shims hand to
//! lxcri's metrics journal ([`crate::metrics::OpsRecord`]).
//!
//! Keyed by method and path *template* (`/nodes/{node}/lxc/{vmid}/status/start`)
//! so the number of series stays bounded however many CTs exist. Every HTTP
//! attempt counts as a call (that is what PVE sees); retries are counted
//! separately so a flaky link shows up.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets; an implicit
/// `+Inf` bucket follows. PVE answers reads in milliseconds, task-starting
/// POSTs in tens of ms, and 401s after a deliberate ~3 s delay.
pub const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// How a call failed, for the error counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    /// 4xx answer.
    Client,
    /// 5xx answer.
    Server,
    /// No answer in time.
    Timeout,
    /// Connection or TLS failure, or an unreadable answer.
    Transport,
}

impl ErrorClass {
    /// Label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Client => "4xx",
            ErrorClass::Server => "5xx",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Transport => "transport",
        }
    }
}

/// Counters of one endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointStats {
    pub calls: u64,
    pub retries: u64,
    pub errors: BTreeMap<ErrorClass, u64>,
    pub latency_sum: Duration,
    /// Cumulative-free counts per bucket of [`LATENCY_BUCKETS`], plus one
    /// for `+Inf` at the end (convert to cumulative when exporting).
    pub latency_buckets: [u64; LATENCY_BUCKETS.len() + 1],
}

impl EndpointStats {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Method + path template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointKey {
    pub method: String,
    pub template: &'static str,
}

/// Waits for tasks to end, in [`LATENCY_BUCKETS`] (per bucket, `+Inf` last).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskWaits {
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    pub sum: Duration,
}

/// Thread-safe statistics for all endpoints of one client.
#[derive(Debug, Default)]
pub struct ClientStats {
    inner: Mutex<BTreeMap<EndpointKey, EndpointStats>>,
    task_waits: Mutex<TaskWaits>,
}

fn bucket_of(latency: Duration) -> usize {
    let secs = latency.as_secs_f64();
    LATENCY_BUCKETS
        .iter()
        .position(|bound| secs <= *bound)
        .unwrap_or(LATENCY_BUCKETS.len())
}

impl ClientStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one HTTP attempt.
    pub(crate) fn record(
        &self,
        method: &str,
        template: &'static str,
        latency: Duration,
        error: Option<ErrorClass>,
        retry: bool,
    ) {
        let bucket = bucket_of(latency);
        let key = EndpointKey {
            method: method.to_string(),
            template,
        };
        // A poisoned lock only means another thread panicked mid-update of
        // counters; the counters are still usable.
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(key).or_default();
        entry.calls += 1;
        if retry {
            entry.retries += 1;
        }
        if let Some(class) = error {
            *entry.errors.entry(class).or_default() += 1;
        }
        entry.latency_sum += latency;
        entry.latency_buckets[bucket] += 1;
    }

    /// One wait for a task, from its UPID to its end.
    pub(crate) fn record_task_wait(&self, took: Duration) {
        let mut w = self.task_waits.lock().unwrap_or_else(|p| p.into_inner());
        w.buckets[bucket_of(took)] += 1;
        w.sum += took;
    }

    /// Everything counted since the last `take`, leaving zero behind.
    pub fn take(&self) -> (Vec<(EndpointKey, EndpointStats)>, TaskWaits) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut waits = self.task_waits.lock().unwrap_or_else(|p| p.into_inner());
        (
            std::mem::take(&mut *map).into_iter().collect(),
            std::mem::take(&mut *waits),
        )
    }

    /// A copy of all counters, ordered by endpoint.
    #[cfg(test)]
    pub fn snapshot(&self) -> Vec<(EndpointKey, EndpointStats)> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Counters of one endpoint, e.g. `("POST", "/nodes/{node}/lxc")`.
    #[cfg(test)]
    pub fn get(&self, method: &str, template: &str) -> Option<EndpointStats> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .find(|(k, _)| k.method == method && k.template == template)
            .map(|(_, v)| v.clone())
    }

    /// Total calls over all endpoints.
    #[cfg(test)]
    pub fn total_calls(&self) -> u64 {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.values().map(|s| s.calls).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_classes() {
        let stats = ClientStats::new();
        let t = "/nodes/{node}/lxc/{vmid}/status/start";
        stats.record("POST", t, Duration::from_millis(3), None, false);
        stats.record(
            "POST",
            t,
            Duration::from_millis(30),
            Some(ErrorClass::Server),
            false,
        );
        stats.record(
            "POST",
            t,
            Duration::from_secs(9),
            Some(ErrorClass::Timeout),
            true,
        );
        let s = stats.get("POST", t).unwrap();
        assert_eq!(s.calls, 3);
        assert_eq!(s.retries, 1);
        assert_eq!(s.error_count(), 2);
        assert_eq!(s.errors[&ErrorClass::Server], 1);
        assert_eq!(s.latency_buckets[0], 1);
        assert_eq!(s.latency_buckets[3], 1);
        assert_eq!(s.latency_buckets[LATENCY_BUCKETS.len()], 1);
        assert_eq!(s.latency_sum, Duration::from_millis(9033));
        assert!(stats.get("GET", t).is_none());
        assert_eq!(stats.total_calls(), 3);

        stats.record_task_wait(Duration::from_millis(400));
        let (taken, waits) = stats.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(waits.buckets[6], 1, "0.4 s <= 0.5 s");
        assert_eq!(stats.total_calls(), 0, "taken");
        assert_eq!(stats.take().1, TaskWaits::default());
    }
}
