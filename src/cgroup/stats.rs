//! Resource usage read from a container's cgroup files, in one
//! version-neutral shape; the shim turns it into containerd's metrics.

use std::collections::BTreeMap;

use super::container::ContainerCgroup;
use super::flat_keyed::parse_flat_keyed;
use super::stats_v1::{self, BlkioStats, HugetlbCounters, OomControl};
use super::stats_v2::{self, V2Counters};
use super::CgroupVersion;

/// Usage counters; `None` where the host does not provide the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupStats {
    pub version: Option<CgroupVersion>,
    pub cpu_usage_ns: Option<u64>,
    pub cpu_user_ns: Option<u64>,
    pub cpu_system_ns: Option<u64>,
    pub cpu_nr_periods: Option<u64>,
    pub cpu_nr_throttled: Option<u64>,
    pub cpu_throttled_ns: Option<u64>,
    pub memory_usage: Option<u64>,
    pub memory_limit: Option<u64>,
    pub memory_max_usage: Option<u64>,
    /// v1 only (`memory.failcnt`); v2 counts it in `memory.events`'
    /// `max` ([`V2Counters::memory_events`]).
    pub memory_failcnt: Option<u64>,
    /// `memory.stat` key/value pairs as the kernel names them.
    pub memory_stat: BTreeMap<String, u64>,
    pub pids_current: Option<u64>,
    pub pids_limit: Option<u64>,
    /// v1 only: memory+swap (`memory.memsw.*`), kernel (`memory.kmem.*`)
    /// and kernel TCP (`memory.kmem.tcp.*`) counters, where the kernel
    /// keeps them.
    pub memory_swap: MemoryCounters,
    pub memory_kernel: MemoryCounters,
    pub memory_kernel_tcp: MemoryCounters,
    /// v1 only, as runc's shim reports them (see [`stats_v1`]).
    pub cpu_per_cpu_ns: Vec<u64>,
    pub hugetlb: Vec<HugetlbCounters>,
    pub blkio: BlkioStats,
    pub oom_control: Option<OomControl>,
    /// v2 only, as runc's shim reports them (see [`stats_v2`]).
    pub v2: V2Counters,
}

/// Where the host lists its huge page sizes.
const HOST_PAGE_SIZES: &str = "/sys/kernel/mm/hugepages";

/// One v1 memory counter family: `usage_in_bytes`, `limit_in_bytes`,
/// `max_usage_in_bytes`, `failcnt`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryCounters {
    pub usage: Option<u64>,
    pub limit: Option<u64>,
    pub max: Option<u64>,
    pub failcnt: Option<u64>,
}

impl CgroupStats {
    /// Everything containerd's `Stats` carries.
    pub fn read(cg: &ContainerCgroup) -> Self {
        let mut s = Self::read_usage(cg);
        let num = |f: &str| cg.read_u64(f);
        s.pids_current = num("pids.current");
        // containerd reads v2's "max" as u64::MAX, v1's as 0.
        s.pids_limit = match cg.version() {
            CgroupVersion::V1 => num("pids.max"),
            CgroupVersion::V2 => cg.read_u64_or_max("pids.max"),
        };
        if cg.version() == CgroupVersion::V1 {
            s.memory_failcnt = num("memory.failcnt");
            let family = |prefix: &str| MemoryCounters {
                usage: num(&format!("{prefix}.usage_in_bytes")),
                limit: num(&format!("{prefix}.limit_in_bytes")),
                max: num(&format!("{prefix}.max_usage_in_bytes")),
                failcnt: num(&format!("{prefix}.failcnt")),
            };
            s.memory_swap = family("memory.memsw");
            s.memory_kernel = family("memory.kmem");
            s.memory_kernel_tcp = family("memory.kmem.tcp");
            s.cpu_per_cpu_ns = stats_v1::per_cpu_usage(cg);
            s.hugetlb = stats_v1::hugetlb(cg);
            let partitions = std::fs::read_to_string("/proc/partitions").unwrap_or_default();
            s.blkio = stats_v1::blkio(cg, &partitions);
            s.oom_control = stats_v1::oom_control(cg);
        } else {
            // The host's sizes do not change: listed once per process.
            static SIZES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
            let sizes = SIZES
                .get_or_init(|| stats_v2::host_page_sizes(std::path::Path::new(HOST_PAGE_SIZES)));
            s.v2 = stats_v2::read(cg, sizes);
        }
        s
    }

    /// CPU and memory use and the memory limit only: what a metrics scrape
    /// reports, in a third of the file reads.
    pub fn read_usage(cg: &ContainerCgroup) -> Self {
        let num = |f: &str| cg.read_u64(f);
        let keyed = |f: &str| cg.read(f).map(|t| parse_flat_keyed(&t)).unwrap_or_default();
        let mut s = CgroupStats {
            version: Some(cg.version()),
            ..Default::default()
        };
        match cg.version() {
            CgroupVersion::V1 => {
                // USER_HZ is 100 on every Linux ABI lxcri runs on.
                const TICK_NS: u64 = 10_000_000;
                s.cpu_usage_ns = num("cpuacct.usage");
                let acct = keyed("cpuacct.stat");
                s.cpu_user_ns = acct.get("user").map(|t| t * TICK_NS);
                s.cpu_system_ns = acct.get("system").map(|t| t * TICK_NS);
                let cpu = keyed("cpu.stat");
                s.cpu_nr_periods = cpu.get("nr_periods").copied();
                s.cpu_nr_throttled = cpu.get("nr_throttled").copied();
                s.cpu_throttled_ns = cpu.get("throttled_time").copied();
                s.memory_usage = num("memory.usage_in_bytes");
                s.memory_limit = num("memory.limit_in_bytes");
                s.memory_max_usage = num("memory.max_usage_in_bytes");
            }
            CgroupVersion::V2 => {
                let cpu = keyed("cpu.stat");
                s.cpu_usage_ns = cpu.get("usage_usec").map(|u| u * 1000);
                s.cpu_user_ns = cpu.get("user_usec").map(|u| u * 1000);
                s.cpu_system_ns = cpu.get("system_usec").map(|u| u * 1000);
                s.cpu_nr_periods = cpu.get("nr_periods").copied();
                s.cpu_nr_throttled = cpu.get("nr_throttled").copied();
                s.cpu_throttled_ns = cpu.get("throttled_usec").map(|u| u * 1000);
                s.memory_usage = num("memory.current");
                s.memory_limit = num("memory.max");
                s.memory_max_usage = num("memory.peak");
            }
        }
        s.memory_stat = keyed("memory.stat");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn v2_stats_from_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("c");
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        )
        .unwrap();
        fs::write(d.join("memory.current"), "4096\n").unwrap();
        fs::write(d.join("memory.max"), "max\n").unwrap();
        fs::write(d.join("memory.stat"), "anon 100\nfile 200\n").unwrap();
        fs::write(d.join("pids.current"), "3\n").unwrap();
        let cg = ContainerCgroup::from_proc_cgroup(1, "0::/c\n", tmp.path(), CgroupVersion::V2);
        let s = CgroupStats::read(&cg);
        assert_eq!(s.cpu_usage_ns, Some(1_500_000));
        assert_eq!(s.cpu_system_ns, Some(500_000));
        assert_eq!(s.memory_usage, Some(4096));
        assert_eq!(s.memory_limit, None);
        assert_eq!(s.memory_stat.get("file"), Some(&200));
        assert_eq!(s.pids_current, Some(3));
    }
}
