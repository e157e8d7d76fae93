//! One container's figures, read from its state record, its cgroup and its
//! init's `/proc` entries: no PVE API call and no command per container.

use std::fs;
use std::path::Path;

use crate::cgroup::{proc_cgroup_entries, CgroupStats, CgroupVersion, ContainerCgroup};
use crate::state::ContainerRecord;

/// The labels of every per-container series. Names follow cAdvisor and the
/// kubelet (`namespace`, `pod`, `container`, `image`, `id`, `name`) so
/// Kubernetes dashboards work; `id` is the cgroup path, on pve `lxc/VMID`
/// as prometheus-pve-exporter writes it, so `pve_guest_info` joins on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerLabels {
    pub containerd_namespace: String,
    /// containerd's id (cAdvisor's `name` is the same).
    pub container_id: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub image: String,
    pub backend: String,
    pub vmid: String,
    pub node: String,
    pub id: String,
}

impl ContainerLabels {
    /// `(name, value)` pairs in a fixed order.
    pub fn pairs(&self) -> [(&'static str, &str); 11] {
        [
            ("containerd_namespace", &self.containerd_namespace),
            ("container_id", &self.container_id),
            ("name", &self.container_id),
            ("namespace", &self.namespace),
            ("pod", &self.pod),
            ("container", &self.container),
            ("image", &self.image),
            ("backend", &self.backend),
            ("vmid", &self.vmid),
            ("node", &self.node),
            ("id", &self.id),
        ]
    }
}

/// Counters of one network interface (`/proc/PID/net/dev`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDev {
    pub interface: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSample {
    pub labels: ContainerLabels,
    pub stats: CgroupStats,
    /// `memory.oom_control`/`memory.events` `oom_kill`.
    pub oom_kills: Option<u64>,
    /// Unix time the init started.
    pub start_time_seconds: Option<f64>,
    /// The container's network namespace's interfaces, when it has one of
    /// its own (a pod's once, on its sandbox; none for the host's).
    pub network: Vec<NetDev>,
    /// Its root filesystem, when lxcri knows where it is.
    pub rootfs: Option<super::rootfs_usage::RootfsUsage>,
}

impl ContainerSample {
    /// Usage minus inactive file pages, floored at 0: what the kubelet
    /// evicts on and cAdvisor's `container_memory_working_set_bytes`.
    pub fn working_set_bytes(&self) -> Option<u64> {
        let usage = self.stats.memory_usage?;
        let inactive = ["total_inactive_file", "inactive_file"]
            .iter()
            .find_map(|k| self.stats.memory_stat.get(*k))
            .copied()
            .unwrap_or(0);
        Some(usage.saturating_sub(inactive))
    }

    /// cAdvisor's `rss` and `cache`: v1 `total_rss`/`total_cache`, v2
    /// `anon`/`file`.
    pub fn memory_stat(&self, v1: &str, v2: &str) -> Option<u64> {
        let key = match self.stats.version {
            Some(CgroupVersion::V2) => v2,
            _ => v1,
        };
        self.stats.memory_stat.get(key).copied()
    }
}

/// The labels a record gives; `cgroup_path` is the container's cgroup
/// relative to the hierarchy root.
pub fn labels(r: &ContainerRecord, cgroup_path: &str) -> ContainerLabels {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    ContainerLabels {
        containerd_namespace: r.namespace.clone(),
        container_id: r.id.clone(),
        namespace: opt(&r.pod_namespace),
        pod: opt(&r.pod),
        // A pod's sandbox is the kubelet's `POD` (it has no container name).
        container: match &r.container_name {
            Some(name) => name.clone(),
            None if r.sandbox_id.as_deref() == Some(r.id.as_str()) => "POD".into(),
            None => String::new(),
        },
        image: opt(&r.image),
        backend: r.backend.clone(),
        vmid: r.vmid.map(|v| v.to_string()).unwrap_or_default(),
        node: opt(&r.node),
        id: match r.vmid {
            Some(vmid) => format!("lxc/{vmid}"),
            None => cgroup_path.to_string(),
        },
    }
}

/// Whether the container's network is counted on it: a pod's belongs to
/// its sandbox (its containers share it), the host's to nobody.
pub fn owns_network(r: &ContainerRecord, proc_root: &Path, pid: i32) -> bool {
    let is_pod_container = r.sandbox_id.as_deref().is_some_and(|s| s != r.id);
    let ns = |p: &str| fs::read_link(proc_root.join(p).join("ns/net")).ok();
    !is_pod_container && ns(&pid.to_string()) != ns("1")
}

/// What every sample of one scrape shares: where `/proc` is, the host's
/// cgroup version and boot time (read once, not per container).
#[derive(Debug, Clone)]
pub struct HostView {
    pub proc_root: std::path::PathBuf,
    pub cgroup_root: std::path::PathBuf,
    pub version: CgroupVersion,
    /// Unix time of boot (`btime` of `/proc/stat`).
    pub boot_time: Option<u64>,
}

impl HostView {
    pub fn read(proc_root: &Path) -> Self {
        let cgroup_root = Path::new("/sys/fs/cgroup").to_path_buf();
        let boot_time = fs::read_to_string(proc_root.join("stat"))
            .ok()
            .and_then(|stat| {
                stat.lines()
                    .find_map(|l| l.strip_prefix("btime "))?
                    .trim()
                    .parse()
                    .ok()
            });
        HostView {
            proc_root: proc_root.to_path_buf(),
            version: CgroupVersion::detect(&cgroup_root),
            cgroup_root,
            boot_time,
        }
    }
}

/// Reads what the exporter reports for a container whose init runs
/// (`None` otherwise).
pub fn sample(r: &ContainerRecord, host: &HostView) -> Option<ContainerSample> {
    let proc_root = host.proc_root.as_path();
    let pid = r.live_init_pid(proc_root)?;
    let proc_cgroup = fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).ok()?;
    let version = host.version;
    let mut cg = ContainerCgroup::from_proc_cgroup(pid, &proc_cgroup, &host.cgroup_root, version);
    if r.vmid.is_some() {
        // PVE runs the CT's processes in `lxc/VMID/ns`.
        cg = cg.with_inner("ns");
    }
    let mut path = cgroup_path(&proc_cgroup, version);
    if r.vmid.is_some() {
        path = path.trim_end_matches("/ns").to_string();
    }
    let stats = CgroupStats::read_usage(&cg);
    let oom_kills = match version {
        CgroupVersion::V1 => cg.read("memory.oom_control").ok(),
        CgroupVersion::V2 => cg.read("memory.events").ok(),
    }
    .and_then(|t| crate::cgroup::oom_kill_count(&t));
    let network = if owns_network(r, proc_root, pid) {
        fs::read_to_string(proc_root.join(pid.to_string()).join("net/dev"))
            .map(|t| parse_net_dev(&t))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    // USER_HZ is 100 on every Linux ABI lxcri runs on.
    let start_time_seconds = r
        .pid_start_time
        .zip(host.boot_time)
        .map(|(ticks, boot)| boot as f64 + ticks as f64 / 100.0);
    Some(ContainerSample {
        labels: labels(r, &path),
        stats,
        oom_kills,
        start_time_seconds,
        network,
        rootfs: None,
    })
}

/// The container's cgroup path: v2's `0::` line, else v1's memory one.
pub fn cgroup_path(proc_cgroup: &str, version: CgroupVersion) -> String {
    let line = |want: &dyn Fn(&str) -> bool| {
        proc_cgroup_entries(proc_cgroup)
            .find_map(|(controllers, path)| want(controllers).then(|| path.to_string()))
    };
    match version {
        CgroupVersion::V2 => line(&|c| c.is_empty()),
        CgroupVersion::V1 => line(&|c| c.split(',').any(|c| c == "memory")),
    }
    .unwrap_or_default()
}

/// `/proc/net/dev`: two header lines, then `IFACE: rx(8 fields) tx(8)`.
pub fn parse_net_dev(text: &str) -> Vec<NetDev> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|v| v.parse().ok())
                .collect::<Option<_>>()?;
            (f.len() >= 16).then(|| NetDev {
                interface: name.trim().to_string(),
                rx_bytes: f[0],
                rx_packets: f[1],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_packets: f[9],
                tx_errors: f[10],
                tx_dropped: f[11],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:   11866     112    1    2    0     0          0         0     2102      21    3    4    0     0       0          0
";

    #[test]
    fn net_dev_counters_per_interface() {
        let devs = parse_net_dev(NET_DEV);
        assert_eq!(devs.len(), 2);
        assert_eq!(
            devs[1],
            NetDev {
                interface: "eth0".into(),
                rx_bytes: 11866,
                rx_packets: 112,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 2102,
                tx_packets: 21,
                tx_errors: 3,
                tx_dropped: 4,
            }
        );
    }

    #[test]
    fn cgroup_paths_and_pve_ids() {
        let hybrid = "12:memory:/lxc.payload.k8s.io_c1\n0::/lxc.payload.k8s.io_c1\n";
        assert_eq!(
            cgroup_path(hybrid, CgroupVersion::V1),
            "/lxc.payload.k8s.io_c1"
        );
        assert_eq!(
            cgroup_path("0::/lxc/101/ns\n", CgroupVersion::V2),
            "/lxc/101/ns"
        );
        let mut r = crate::state::tests_support::record("k8s.io", "c1");
        assert_eq!(labels(&r, "/x").id, "/x");
        r.vmid = Some(101);
        r.node = Some("pve1".into());
        let l = labels(&r, "/lxc/101");
        assert_eq!(
            (l.id.as_str(), l.vmid.as_str(), l.node.as_str()),
            ("lxc/101", "101", "pve1")
        );
    }

    #[test]
    fn working_set_leaves_out_inactive_files() {
        let mut s = ContainerSample::default();
        s.stats.memory_usage = Some(100 << 20);
        s.stats
            .memory_stat
            .insert("total_inactive_file".into(), 30 << 20);
        assert_eq!(s.working_set_bytes(), Some(70 << 20));
        s.stats
            .memory_stat
            .insert("total_inactive_file".into(), 200 << 20);
        assert_eq!(s.working_set_bytes(), Some(0));
    }

    #[test]
    fn a_pods_network_is_counted_on_its_sandbox_only() {
        let tmp = tempfile::tempdir().unwrap();
        for (pid, ns) in [("1", "net:[1]"), ("42", "net:[2]"), ("43", "net:[1]")] {
            let dir = tmp.path().join(pid).join("ns");
            fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::symlink(ns, dir.join("net")).unwrap();
        }
        let mut r = crate::state::tests_support::record("k8s.io", "c1");
        assert!(owns_network(&r, tmp.path(), 42), "its own netns");
        assert!(!owns_network(&r, tmp.path(), 43), "the host's");
        r.sandbox_id = Some("c1".into());
        assert!(owns_network(&r, tmp.path(), 42), "a sandbox: the pod's");
        r.sandbox_id = Some("sb".into());
        assert!(
            !owns_network(&r, tmp.path(), 42),
            "a pod container: its sandbox's"
        );
    }
}
