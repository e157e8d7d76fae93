//! A node's metrics in Prometheus' text exposition format (what
//! `promtool check metrics` accepts): cAdvisor's per-container names and
//! lxcri's own, every name documented in docs/metrics.md.

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram as PromHistogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use super::container::{ContainerSample, NetDev};
use super::ops::{Histogram, OpsRecord, CAUSES, OPERATIONS, OP_BUCKETS, PVE_BUCKETS};

/// What the exporter found on the node besides the containers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFacts {
    /// lxcri's state records by `(backend, state)`, state `running` or
    /// `stopped` (an init that no longer runs).
    pub containers: Vec<((String, String), u64)>,
    /// CTs lxcri holds and the size of `pve.vmid_range` (pve backend).
    pub vmids: Option<(u64, u64)>,
    /// lxcri's ZFS image datasets and container clones (`zfs` mode).
    pub zfs: Option<(u64, u64)>,
    /// State records that could not be read (left out of the above).
    pub unreadable_records: u64,
    /// The node's backend: its failure counters start at 0, so the first
    /// failure of each kind is an increase Prometheus sees.
    pub backend: String,
}

/// Everything one scrape reports.
pub struct NodeView<'a> {
    pub containers: &'a [ContainerSample],
    pub ops: &'a OpsRecord,
    pub facts: &'a NodeFacts,
}

struct Families(Vec<MetricFamily>);

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

impl Families {
    fn family(&mut self, name: &str, help: &str, t: MetricType) -> &mut MetricFamily {
        if let Some(i) = self.0.iter().position(|f| f.name() == name) {
            return &mut self.0[i];
        }
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(t);
        self.0.push(f);
        self.0.last_mut().expect("just pushed")
    }

    fn push(
        &mut self,
        name: &str,
        help: &str,
        t: MetricType,
        mut m: Metric,
        pairs: &[(&str, &str)],
    ) {
        m.set_label(labels(pairs));
        self.family(name, help, t).mut_metric().push(m);
    }

    fn gauge(&mut self, name: &str, help: &str, pairs: &[(&str, &str)], value: f64) {
        let mut g = Gauge::default();
        g.set_value(value);
        let mut m = Metric::default();
        m.set_gauge(g);
        self.push(name, help, MetricType::GAUGE, m, pairs);
    }

    fn counter(&mut self, name: &str, help: &str, pairs: &[(&str, &str)], value: f64) {
        let mut c = Counter::default();
        c.set_value(value);
        let mut m = Metric::default();
        m.set_counter(c);
        self.push(name, help, MetricType::COUNTER, m, pairs);
    }

    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        pairs: &[(&str, &str)],
        bounds: &[f64],
        h: &Histogram,
    ) {
        let mut p = PromHistogram::default();
        let mut cumulative = 0;
        let buckets: Vec<Bucket> = bounds
            .iter()
            .enumerate()
            .map(|(i, bound)| {
                cumulative += h.counts.get(i).copied().unwrap_or(0);
                let mut b = Bucket::default();
                b.set_upper_bound(*bound);
                b.set_cumulative_count(cumulative);
                b
            })
            .collect();
        p.set_bucket(buckets);
        p.set_sample_count(h.count());
        p.set_sample_sum(h.sum);
        let mut m = Metric::default();
        m.set_histogram(p);
        self.push(name, help, MetricType::HISTOGRAM, m, pairs);
    }
}

/// The scrape's text.
pub fn render(view: &NodeView<'_>) -> String {
    let mut f = Families(Vec::new());
    for c in view.containers {
        container(&mut f, c);
    }
    own(&mut f, view);
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&f.0, &mut out)
        .expect("text encoding of valid families");
    String::from_utf8(out).expect("the text format is UTF-8")
}

const NS: f64 = 1e-9;

fn container(f: &mut Families, c: &ContainerSample) {
    let l = c.labels.pairs();
    let s = &c.stats;
    let secs = |v: Option<u64>| v.map(|ns| ns as f64 * NS);
    let counters = [
        (
            "container_cpu_usage_seconds_total",
            "Cumulative CPU time consumed, in seconds.",
            secs(s.cpu_usage_ns),
        ),
        (
            "container_cpu_user_seconds_total",
            "Cumulative user CPU time consumed, in seconds.",
            secs(s.cpu_user_ns),
        ),
        (
            "container_cpu_system_seconds_total",
            "Cumulative system CPU time consumed, in seconds.",
            secs(s.cpu_system_ns),
        ),
        (
            "container_cpu_cfs_throttled_seconds_total",
            "Total time the container was throttled by its CPU quota, in seconds.",
            secs(s.cpu_throttled_ns),
        ),
        (
            "container_cpu_cfs_periods_total",
            "Number of elapsed enforcement periods of the CPU quota.",
            s.cpu_nr_periods.map(|v| v as f64),
        ),
        (
            "container_cpu_cfs_throttled_periods_total",
            "Number of throttled periods of the CPU quota.",
            s.cpu_nr_throttled.map(|v| v as f64),
        ),
        (
            "container_oom_events_total",
            "Processes of the container killed by the OOM killer.",
            c.oom_kills.map(|v| v as f64),
        ),
    ];
    for (name, help, v) in counters {
        if let Some(v) = v {
            f.counter(name, help, &l, v);
        }
    }
    let gauges = [
        (
            "container_memory_usage_bytes",
            "Current memory usage, page cache included, in bytes.",
            s.memory_usage,
        ),
        (
            "container_memory_working_set_bytes",
            "Memory usage minus inactive file pages, in bytes.",
            c.working_set_bytes(),
        ),
        (
            "container_memory_rss",
            "Anonymous memory (RSS), in bytes.",
            c.memory_stat("total_rss", "anon"),
        ),
        (
            "container_memory_cache",
            "Page cache memory, in bytes.",
            c.memory_stat("total_cache", "file"),
        ),
        (
            "container_memory_max_usage_bytes",
            "Highest memory usage recorded, in bytes.",
            s.memory_max_usage,
        ),
        (
            // cAdvisor's convention: 0 when unlimited.
            "container_spec_memory_limit_bytes",
            "Memory limit of the container, in bytes (0: none).",
            Some(s.memory_limit.filter(|l| *l < 1 << 60).unwrap_or(0)),
        ),
    ];
    for (name, help, v) in gauges {
        if let Some(v) = v {
            f.gauge(name, help, &l, v as f64);
        }
    }
    if let Some(t) = c.start_time_seconds {
        f.gauge(
            "container_start_time_seconds",
            "Start time of the container since the Unix epoch, in seconds.",
            &l,
            t,
        );
    }
    for dev in &c.network {
        network(f, &l, dev);
    }
    if let Some(fs) = &c.rootfs {
        let mut pairs = l.to_vec();
        pairs.push(("device", &fs.device));
        f.gauge(
            "container_fs_usage_bytes",
            "Bytes the container's root filesystem uses (its ZFS volume, or its overlay upper directory).",
            &pairs,
            fs.used_bytes as f64,
        );
        if let Some(limit) = fs.limit_bytes {
            f.gauge(
                "container_fs_limit_bytes",
                "Size limit of the container's root filesystem (the ZFS volume's refquota).",
                &pairs,
                limit as f64,
            );
        }
    }
}

fn network(f: &mut Families, l: &[(&str, &str)], d: &NetDev) {
    let mut pairs = l.to_vec();
    pairs.push(("interface", &d.interface));
    for (name, help, v) in [
        (
            "container_network_receive_bytes_total",
            "Bytes received.",
            d.rx_bytes,
        ),
        (
            "container_network_receive_packets_total",
            "Packets received.",
            d.rx_packets,
        ),
        (
            "container_network_receive_errors_total",
            "Errors while receiving.",
            d.rx_errors,
        ),
        (
            "container_network_receive_packets_dropped_total",
            "Packets dropped while receiving.",
            d.rx_dropped,
        ),
        (
            "container_network_transmit_bytes_total",
            "Bytes transmitted.",
            d.tx_bytes,
        ),
        (
            "container_network_transmit_packets_total",
            "Packets transmitted.",
            d.tx_packets,
        ),
        (
            "container_network_transmit_errors_total",
            "Errors while transmitting.",
            d.tx_errors,
        ),
        (
            "container_network_transmit_packets_dropped_total",
            "Packets dropped while transmitting.",
            d.tx_dropped,
        ),
    ] {
        f.counter(name, help, &pairs, v as f64);
    }
}

fn own(f: &mut Families, view: &NodeView<'_>) {
    f.gauge(
        "lxcri_build_info",
        "The lxcri that serves these metrics; always 1.",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    for ((backend, state), n) in &view.facts.containers {
        f.gauge(
            "lxcri_containers",
            "Containers lxcri keeps state for, by backend and state.",
            &[("backend", backend), ("state", state)],
            *n as f64,
        );
    }
    // Always there, so an alert on it sees the first one.
    f.gauge(
        "lxcri_state_records_unreadable",
        "State records lxcri cannot read (torn, edited, from a newer lxcri); `lxcri gc` names them.",
        &[],
        view.facts.unreadable_records as f64,
    );
    let ops = view.ops;
    for (key, h) in &ops.durations {
        let mut it = key.splitn(2, '/');
        let (op, backend) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
        f.histogram(
            "lxcri_operation_duration_seconds",
            "Time of successful creates, starts and deletes, as the shim saw them.",
            &[("operation", op), ("backend", backend)],
            &OP_BUCKETS,
            h,
        );
    }
    let mut failures = ops.failures.clone();
    if !view.facts.backend.is_empty() {
        for op in OPERATIONS {
            for cause in CAUSES {
                failures
                    .entry(format!("{op}/{}/{cause}", view.facts.backend))
                    .or_insert(0);
            }
        }
    }
    for (key, n) in &failures {
        let mut it = key.splitn(3, '/');
        let (op, backend, cause) = (
            it.next().unwrap_or(""),
            it.next().unwrap_or(""),
            it.next().unwrap_or(""),
        );
        f.counter(
            "lxcri_operation_failures_total",
            "Failed creates, starts and deletes, by cause.",
            &[("operation", op), ("backend", backend), ("cause", cause)],
            *n as f64,
        );
    }
    for (key, e) in &ops.pve_requests {
        let (method, path) = key.split_once(' ').unwrap_or((key, ""));
        for (outcome, n) in &e.calls {
            f.counter(
                "lxcri_pve_api_requests_total",
                "PVE API requests, by method, path template and outcome (ok, 4xx, 5xx, timeout, transport).",
                &[("method", method), ("path", path), ("outcome", outcome)],
                *n as f64,
            );
        }
        f.counter(
            "lxcri_pve_api_retries_total",
            "PVE API requests that were retries.",
            &[("method", method), ("path", path)],
            e.retries as f64,
        );
        f.histogram(
            "lxcri_pve_api_request_duration_seconds",
            "Time of PVE API requests.",
            &[("method", method), ("path", path)],
            &PVE_BUCKETS,
            &e.latency,
        );
    }
    if ops.pve_task_wait.count() > 0 {
        f.histogram(
            "lxcri_pve_task_wait_seconds",
            "Time from a PVE task's start to its end, as lxcri waited for it.",
            &[],
            &PVE_BUCKETS,
            &ops.pve_task_wait,
        );
    }
    if let Some((used, range)) = view.facts.vmids {
        f.gauge(
            "lxcri_pve_vmids_used",
            "VMIDs of pve.vmid_range that lxcri's CTs hold.",
            &[],
            used as f64,
        );
        f.gauge(
            "lxcri_pve_vmids_range_size",
            "VMIDs in pve.vmid_range.",
            &[],
            range as f64,
        );
    }
    if let Some((images, clones)) = view.facts.zfs {
        f.gauge(
            "lxcri_zfs_image_datasets",
            "ZFS datasets holding unpacked images.",
            &[],
            images as f64,
        );
        f.gauge(
            "lxcri_zfs_container_clones",
            "ZFS clones that are containers' root filesystems.",
            &[],
            clones as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ContainerLabels;
    use std::time::Duration;

    fn sample() -> ContainerSample {
        let mut c = ContainerSample {
            labels: ContainerLabels {
                containerd_namespace: "k8s.io".into(),
                container_id: "c1".into(),
                namespace: "default".into(),
                pod: "web".into(),
                container: "app".into(),
                image: "busybox:latest".into(),
                backend: "pve".into(),
                vmid: "101".into(),
                node: "pve1".into(),
                id: "lxc/101".into(),
            },
            start_time_seconds: Some(1_700_000_000.5),
            oom_kills: Some(1),
            ..Default::default()
        };
        c.stats.cpu_usage_ns = Some(2_500_000_000);
        c.stats.memory_usage = Some(64 << 20);
        c.stats.memory_limit = Some(u64::MAX);
        c.network.push(NetDev {
            interface: "eth0".into(),
            rx_bytes: 10,
            ..Default::default()
        });
        c.rootfs = Some(crate::metrics::rootfs_usage::RootfsUsage {
            device: "tank/subvol-101-disk-0".into(),
            used_bytes: 4096,
            limit_bytes: Some(1 << 30),
        });
        c
    }

    #[test]
    fn container_series_carry_cadvisor_names_and_the_pve_join_labels() {
        let mut ops = OpsRecord::default();
        ops.operation("create", "pve", Duration::from_millis(700), None);
        ops.operation("start", "pve", Duration::ZERO, Some("pve_api"));
        let facts = NodeFacts {
            containers: vec![(("pve".into(), "running".into()), 1)],
            vmids: Some((1, 100)),
            zfs: Some((2, 1)),
            unreadable_records: 1,
            backend: "pve".into(),
        };
        let text = render(&NodeView {
            containers: &[sample()],
            ops: &ops,
            facts: &facts,
        });
        let labels = r#"containerd_namespace="k8s.io",container_id="c1",name="c1",namespace="default",pod="web",container="app",image="busybox:latest",backend="pve",vmid="101",node="pve1",id="lxc/101""#;
        for line in [
            format!("container_cpu_usage_seconds_total{{{labels}}} 2.5"),
            format!("container_memory_usage_bytes{{{labels}}} 67108864"),
            format!("container_spec_memory_limit_bytes{{{labels}}} 0"),
            format!("container_oom_events_total{{{labels}}} 1"),
            format!("container_network_receive_bytes_total{{{labels},interface=\"eth0\"}} 10"),
            format!("container_fs_limit_bytes{{{labels},device=\"tank/subvol-101-disk-0\"}} 1073741824"),
            "# TYPE container_cpu_usage_seconds_total counter".to_string(),
            "lxcri_operation_duration_seconds_bucket{operation=\"create\",backend=\"pve\",le=\"1\"} 1"
                .to_string(),
            "lxcri_operation_failures_total{operation=\"start\",backend=\"pve\",cause=\"pve_api\"} 1"
                .to_string(),
            // Known causes are there from the start, at 0.
            "lxcri_operation_failures_total{operation=\"delete\",backend=\"pve\",cause=\"spec\"} 0"
                .to_string(),
            "lxcri_containers{backend=\"pve\",state=\"running\"} 1".to_string(),
            "lxcri_pve_vmids_used 1".to_string(),
            "lxcri_zfs_image_datasets 2".to_string(),
            "lxcri_state_records_unreadable 1".to_string(),
        ] {
            assert!(text.contains(&line), "missing {line:?} in:\n{text}");
        }
        assert!(!text.contains("lxcri_pve_task_wait_seconds"), "none waited");
    }
}
