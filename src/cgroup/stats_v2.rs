//! The cgroup v2 counters runc's shim reports beside CPU time, memory use
//! and pids (containerd's `cgroups.v2.Metrics`, read as containerd/cgroups'
//! `cgroup2` package reads them: cgroup2/manager.go `StatFiltered`,
//! cgroup2/utils.go): pressure stall information, CPU bursts, swap, memory
//! events, IO, RDMA and huge pages. CRI reads swap, and from containerd 2.2
//! the pressure figures; `ctr task metrics` and containerd's own metrics
//! endpoint show them all. A Proxmox VE node (8 and later) has cgroup v2
//! only.

use std::collections::BTreeMap;
use std::path::Path;

use super::container::ContainerCgroup;
use super::flat_keyed::parse_flat_keyed;
use super::stats_v1::HugetlbCounters;

/// One line of a pressure file: `avg10=0.00 avg60=0.00 avg300=0.00 total=0`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PsiData {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total: u64,
}

/// A `*.pressure` file: its `some` and `full` lines.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Psi {
    pub some: Option<PsiData>,
    pub full: Option<PsiData>,
}

/// `memory.events`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    pub low: u64,
    pub high: u64,
    pub max: u64,
    pub oom: u64,
    pub oom_kill: u64,
    pub oom_group_kill: u64,
}

/// One device's line of `io.stat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoEntry {
    pub major: u64,
    pub minor: u64,
    pub rbytes: u64,
    pub wbytes: u64,
    pub rios: u64,
    pub wios: u64,
}

/// One device's line of `rdma.current` or `rdma.max` ("max" is u32::MAX).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RdmaEntry {
    pub device: String,
    pub hca_handles: u32,
    pub hca_objects: u32,
}

/// What a v2 cgroup has beyond [`super::CgroupStats`]' common counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct V2Counters {
    pub cpu_psi: Option<Psi>,
    pub cpu_nr_bursts: u64,
    pub cpu_burst_ns: u64,
    pub memory_psi: Option<Psi>,
    /// `memory.swap.current`, `.max` and `.peak`.
    pub swap_usage: Option<u64>,
    pub swap_limit: Option<u64>,
    pub swap_max_usage: Option<u64>,
    /// None where the file is missing or empty (containerd leaves the
    /// field out then).
    pub memory_events: Option<MemoryEvents>,
    pub io: Vec<IoEntry>,
    pub io_psi: Option<Psi>,
    pub rdma_current: Vec<RdmaEntry>,
    pub rdma_limit: Vec<RdmaEntry>,
    /// One per huge page size of the host, zero where the cgroup has no
    /// files for it (the controller not enabled), as containerd reports.
    pub hugetlb: Vec<HugetlbCounters>,
}

/// Reads them; `page_sizes` are the host's huge page sizes
/// ([`host_page_sizes`]).
pub fn read(cg: &ContainerCgroup, page_sizes: &[String]) -> V2Counters {
    let cpu = cg
        .read("cpu.stat")
        .map(|t| parse_flat_keyed(&t))
        .unwrap_or_default();
    let psi = |f: &str| cg.read(f).ok().and_then(|t| parse_psi(&t));
    V2Counters {
        cpu_psi: psi("cpu.pressure"),
        cpu_nr_bursts: cpu.get("nr_bursts").copied().unwrap_or(0),
        cpu_burst_ns: cpu.get("burst_usec").map_or(0, |u| u * 1000),
        memory_psi: psi("memory.pressure"),
        swap_usage: cg.read_u64_or_max("memory.swap.current"),
        swap_limit: cg.read_u64_or_max("memory.swap.max"),
        swap_max_usage: cg.read_u64_or_max("memory.swap.peak"),
        memory_events: cg
            .read("memory.events")
            .ok()
            .and_then(|t| memory_events(&parse_flat_keyed(&t))),
        io: cg
            .read("io.stat")
            .map(|t| parse_io_stat(&t))
            .unwrap_or_default(),
        io_psi: psi("io.pressure"),
        rdma_current: cg
            .read("rdma.current")
            .map(|t| parse_rdma(&t))
            .unwrap_or_default(),
        rdma_limit: cg
            .read("rdma.max")
            .map(|t| parse_rdma(&t))
            .unwrap_or_default(),
        hugetlb: page_sizes
            .iter()
            .map(|size| HugetlbCounters {
                usage: cg
                    .read_u64_or_max(&format!("hugetlb.{size}.current"))
                    .unwrap_or(0),
                max: cg
                    .read_u64_or_max(&format!("hugetlb.{size}.max"))
                    .unwrap_or(0),
                failcnt: cg
                    .read(&format!("hugetlb.{size}.events"))
                    .ok()
                    .and_then(|t| parse_flat_keyed(&t).get("max").copied())
                    .unwrap_or(0),
                page_size: size.clone(),
            })
            .collect(),
    }
}

fn memory_events(keyed: &BTreeMap<String, u64>) -> Option<MemoryEvents> {
    if keyed.is_empty() {
        return None;
    }
    let get = |k: &str| keyed.get(k).copied().unwrap_or(0);
    Some(MemoryEvents {
        low: get("low"),
        high: get("high"),
        max: get("max"),
        oom: get("oom"),
        oom_kill: get("oom_kill"),
        oom_group_kill: get("oom_group_kill"),
    })
}

/// A pressure file; None if a line is malformed (containerd drops the
/// whole file then).
pub fn parse_psi(text: &str) -> Option<Psi> {
    let mut psi = Psi::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let slot = match fields.next() {
            Some("some") => &mut psi.some,
            Some("full") => &mut psi.full,
            _ => continue,
        };
        let mut data = PsiData::default();
        for field in fields {
            let (key, value) = field.split_once('=')?;
            match key {
                "avg10" => data.avg10 = value.parse().ok()?,
                "avg60" => data.avg60 = value.parse().ok()?,
                "avg300" => data.avg300 = value.parse().ok()?,
                "total" => data.total = value.parse().ok()?,
                _ => {}
            }
        }
        *slot = Some(data);
    }
    Some(psi)
}

/// `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N`.
pub fn parse_io_stat(text: &str) -> Vec<IoEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let (major, minor) = fields.next()?.split_once(':')?;
            let mut entry = IoEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                ..Default::default()
            };
            for (key, value) in fields.filter_map(|f| f.split_once('=')) {
                let Ok(value) = value.parse() else { continue };
                match key {
                    "rbytes" => entry.rbytes = value,
                    "wbytes" => entry.wbytes = value,
                    "rios" => entry.rios = value,
                    "wios" => entry.wios = value,
                    _ => {}
                }
            }
            Some(entry)
        })
        .collect()
}

/// `rdma.current` / `rdma.max`: `DEVICE hca_handle=N hca_object=N`.
pub fn parse_rdma(text: &str) -> Vec<RdmaEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [device, a, b] = fields[..] else {
                return None;
            };
            let mut entry = RdmaEntry {
                device: device.to_string(),
                ..Default::default()
            };
            for (key, value) in [a, b].iter().filter_map(|f| f.split_once('=')) {
                let value = match value {
                    "max" => u32::MAX,
                    n => match n.parse() {
                        Ok(n) => n,
                        Err(_) => continue,
                    },
                };
                match key {
                    "hca_handle" => entry.hca_handles = value,
                    "hca_object" => entry.hca_objects = value,
                    _ => {}
                }
            }
            Some(entry)
        })
        .collect()
}

/// The host's huge page sizes as the hugetlb files name them (`2MB`,
/// `1GB`), from the entries of `dir` (`/sys/kernel/mm/hugepages`:
/// `hugepages-2048kB`), in the order listed.
pub fn host_page_sizes(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| page_size_name(&e.ok()?.file_name().into_string().ok()?))
        .collect()
}

/// `hugepages-2048kB` -> `2MB`, as the kernel names the size in the
/// cgroup's files (mm/hugetlb_cgroup.c `mem_fmt`).
fn page_size_name(entry: &str) -> Option<String> {
    let kib: u64 = entry
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    Some(if kib >= 1 << 20 {
        format!("{}GB", kib >> 20)
    } else if kib >= 1 << 10 {
        format!("{}MB", kib >> 10)
    } else {
        format!("{kib}KB")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CgroupVersion;
    use std::fs;

    #[test]
    fn pressure_files_parse_as_containerd_reads_them() {
        let text = "some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\n\
                    full avg10=0.00 avg60=0.00 avg300=0.00 total=7\n";
        let psi = parse_psi(text).unwrap();
        assert_eq!(
            psi.some,
            Some(PsiData {
                avg10: 1.5,
                avg60: 0.25,
                avg300: 0.0,
                total: 12345
            })
        );
        assert_eq!(psi.full.unwrap().total, 7);
        // cpu.pressure of older kernels has no full line.
        let some_only = parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap();
        assert!(some_only.some.is_some() && some_only.full.is_none());
        assert_eq!(parse_psi("some avg10=x\n"), None);
        assert_eq!(parse_psi("some avg10\n"), None);
    }

    #[test]
    fn io_stat_lines_become_entries() {
        let text = "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n\
                    253:1 rbytes=10 wbytes=0 rios=3 wios=0 dbytes=0 dios=0\n";
        assert_eq!(
            parse_io_stat(text),
            [
                IoEntry {
                    major: 8,
                    minor: 0,
                    rbytes: 4096,
                    wbytes: 8192,
                    rios: 1,
                    wios: 2
                },
                IoEntry {
                    major: 253,
                    minor: 1,
                    rbytes: 10,
                    wbytes: 0,
                    rios: 3,
                    wios: 0
                }
            ]
        );
        assert!(parse_io_stat("").is_empty());
    }

    #[test]
    fn rdma_lines_with_max() {
        let text = "mlx4_0 hca_handle=2 hca_object=2000\nocrdma1 hca_handle=3 hca_object=max\n";
        let entries = parse_rdma(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (
                entries[1].device.as_str(),
                entries[1].hca_handles,
                entries[1].hca_objects
            ),
            ("ocrdma1", 3, u32::MAX)
        );
    }

    #[test]
    fn page_size_names_are_the_kernels() {
        assert_eq!(page_size_name("hugepages-2048kB").as_deref(), Some("2MB"));
        assert_eq!(
            page_size_name("hugepages-1048576kB").as_deref(),
            Some("1GB")
        );
        assert_eq!(page_size_name("hugepages-64kB").as_deref(), Some("64KB"));
        assert_eq!(page_size_name("hugepages-x"), None);
        assert_eq!(page_size_name("other"), None);
    }

    #[test]
    fn a_v2_cgroups_extra_counters() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("c");
        fs::create_dir_all(&d).unwrap();
        let files = [
            (
                "cpu.stat",
                "usage_usec 1\nnr_bursts 4\nburst_usec 20\n".to_string(),
            ),
            (
                "cpu.pressure",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=9\n".to_string(),
            ),
            ("memory.swap.current", "4096\n".to_string()),
            ("memory.swap.max", "max\n".to_string()),
            (
                "memory.events",
                "low 0\nhigh 1\nmax 2\noom 3\noom_kill 4\noom_group_kill 0\n".to_string(),
            ),
            ("hugetlb.2MB.current", "2097152\n".to_string()),
            ("hugetlb.2MB.max", "max\n".to_string()),
            ("hugetlb.2MB.events", "max 5\n".to_string()),
        ];
        for (name, text) in files {
            fs::write(d.join(name), text).unwrap();
        }
        let cg = ContainerCgroup::from_proc_cgroup(1, "0::/c\n", tmp.path(), CgroupVersion::V2);
        let sizes = ["2MB".to_string(), "1GB".to_string()];
        let v2 = read(&cg, &sizes);
        assert_eq!((v2.cpu_nr_bursts, v2.cpu_burst_ns), (4, 20_000));
        assert_eq!(v2.cpu_psi.unwrap().some.unwrap().total, 9);
        assert_eq!(v2.memory_psi, None);
        assert_eq!(
            (v2.swap_usage, v2.swap_limit, v2.swap_max_usage),
            (Some(4096), Some(u64::MAX), None)
        );
        assert_eq!(v2.memory_events.unwrap().oom_kill, 4);
        assert_eq!(
            v2.hugetlb,
            [
                HugetlbCounters {
                    page_size: "2MB".into(),
                    usage: 2 << 20,
                    max: u64::MAX,
                    failcnt: 5
                },
                HugetlbCounters {
                    page_size: "1GB".into(),
                    ..Default::default()
                }
            ]
        );
        assert!(v2.io.is_empty() && v2.rdma_current.is_empty());
        // An empty memory.events is none, as containerd leaves it out.
        fs::write(d.join("memory.events"), "").unwrap();
        assert_eq!(read(&cg, &sizes).memory_events, None);
    }
}
