//! The cgroup v1 counters runc's shim reports beside CPU, memory and pids
//! (containerd's `cgroups.v1.Metrics`, read as containerd/cgroups'
//! `cgroup1` package reads them): per-CPU usage, huge pages, block IO
//! and the OOM control. `ctr task metrics` and containerd's own metrics
//! endpoint show them; CRI reads none.

use std::collections::BTreeMap;

use super::container::ContainerCgroup;
use super::flat_keyed::parse_flat_keyed;

/// One huge page size's counters (`hugetlb.<size>.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HugetlbCounters {
    /// As the kernel's file names say it: `2MB`, `1GB`.
    pub page_size: String,
    pub usage: u64,
    pub max: u64,
    pub failcnt: u64,
}

/// One line of a blkio file: `MAJOR:MINOR [OP] VALUE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    /// `/dev/<name>` from `/proc/partitions`; empty for a device not there.
    pub device: String,
    pub major: u64,
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard`, `Total`; empty in files
    /// without one (`sectors`, `time`).
    pub op: String,
    pub value: u64,
}

/// The blkio files containerd reports, each by its `cgroups.v1` field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    pub io_serviced_recursive: Vec<BlkioEntry>,
    pub io_queued_recursive: Vec<BlkioEntry>,
    pub io_service_time_recursive: Vec<BlkioEntry>,
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    pub io_merged_recursive: Vec<BlkioEntry>,
    pub io_time_recursive: Vec<BlkioEntry>,
    pub sectors_recursive: Vec<BlkioEntry>,
}

/// `memory.oom_control`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OomControl {
    pub oom_kill_disable: u64,
    pub under_oom: u64,
    pub oom_kill: u64,
}

/// `cpuacct.usage_percpu`: ns per CPU.
pub fn per_cpu_usage(cg: &ContainerCgroup) -> Vec<u64> {
    cg.read("cpuacct.usage_percpu")
        .map(|t| {
            t.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every huge page size the hugetlb controller has files for, in the
/// order of their names (`1GB` before `2MB`, as the kernel lists
/// `/sys/kernel/mm/hugepages`).
pub fn hugetlb(cg: &ContainerCgroup) -> Vec<HugetlbCounters> {
    let Ok(dir) = cg.dir("hugetlb") else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut sizes: Vec<String> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let size = name
                .strip_prefix("hugetlb.")?
                .strip_suffix(".usage_in_bytes")?;
            (!size.contains('.')).then(|| size.to_string())
        })
        .collect();
    sizes.sort();
    let num = |f: String| cg.read_u64(&f).unwrap_or(0);
    sizes
        .into_iter()
        .map(|size| HugetlbCounters {
            usage: num(format!("hugetlb.{size}.usage_in_bytes")),
            max: num(format!("hugetlb.{size}.max_usage_in_bytes")),
            failcnt: num(format!("hugetlb.{size}.failcnt")),
            page_size: size,
        })
        .collect()
}

/// `memory.oom_control`, where the kernel has it.
pub fn oom_control(cg: &ContainerCgroup) -> Option<OomControl> {
    let keyed = parse_flat_keyed(&cg.read("memory.oom_control").ok()?);
    let get = |k: &str| keyed.get(k).copied().unwrap_or(0);
    Some(OomControl {
        oom_kill_disable: get("oom_kill_disable"),
        under_oom: get("under_oom"),
        oom_kill: get("oom_kill"),
    })
}

/// The CFQ scheduler's recursive files where the kernel keeps them and
/// they say anything, else the throttle files (serviced and bytes only),
/// as containerd/cgroups' blkio controller falls back. Device names come
/// from `partitions` (the text of `/proc/partitions`).
pub fn blkio(cg: &ContainerCgroup, partitions: &str) -> BlkioStats {
    let devices = partition_names(partitions);
    let read = |name: &str| {
        cg.read(&format!("blkio.{name}"))
            .map(|t| parse_blkio(&t, &devices))
            .unwrap_or_default()
    };
    let mut s = BlkioStats::default();
    if let Ok(serviced) = cg.read("blkio.io_serviced_recursive") {
        s.io_serviced_recursive = parse_blkio(&serviced, &devices);
        s.sectors_recursive = read("sectors_recursive");
        s.io_service_bytes_recursive = read("io_service_bytes_recursive");
        s.io_queued_recursive = read("io_queued_recursive");
        s.io_service_time_recursive = read("io_service_time_recursive");
        s.io_wait_time_recursive = read("io_wait_time_recursive");
        s.io_merged_recursive = read("io_merged_recursive");
        s.io_time_recursive = read("time_recursive");
        if s != BlkioStats::default() {
            return s;
        }
    }
    s.io_serviced_recursive = read("throttle.io_serviced");
    s.io_service_bytes_recursive = read("throttle.io_service_bytes");
    s
}

/// `MAJOR:MINOR [OP] VALUE` lines; the `Total N` line and anything that
/// does not parse are left out.
fn parse_blkio(text: &str, devices: &BTreeMap<(u64, u64), String>) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split([' ', ':']).filter(|f| !f.is_empty()).collect();
            let (op, value) = match fields.len() {
                3 => ("", fields[2]),
                4 => (fields[2], fields[3]),
                _ => return None,
            };
            let (major, minor) = (fields[0].parse().ok()?, fields[1].parse().ok()?);
            Some(BlkioEntry {
                device: devices.get(&(major, minor)).cloned().unwrap_or_default(),
                major,
                minor,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// `(major, minor) -> /dev/<name>` from `/proc/partitions` (two header
/// lines, then `major minor #blocks name`).
fn partition_names(text: &str) -> BTreeMap<(u64, u64), String> {
    let mut names = BTreeMap::new();
    for line in text.lines().skip(2) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [major, minor, _, name] = f[..] {
            if let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) {
                names
                    .entry((major, minor))
                    .or_insert_with(|| format!("/dev/{name}"));
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CgroupVersion;
    use std::fs;

    const PARTITIONS: &str = "major minor  #blocks  name\n\n   8        0  104857600 sda\n   8        1  104856559 sda1\n";

    /// A v1 cgroup `c` under a fake root with `files` per controller.
    fn cgroup(files: &[(&str, &str, &str)]) -> (tempfile::TempDir, ContainerCgroup) {
        let tmp = tempfile::tempdir().unwrap();
        let mut proc_cgroup = String::new();
        for (i, controller) in ["cpuacct", "hugetlb", "memory", "blkio"].iter().enumerate() {
            fs::create_dir_all(tmp.path().join(controller).join("c")).unwrap();
            proc_cgroup.push_str(&format!("{}:{controller}:/c\n", i + 1));
        }
        for (controller, name, content) in files {
            fs::write(tmp.path().join(controller).join("c").join(name), content).unwrap();
        }
        let cg = ContainerCgroup::from_proc_cgroup(1, &proc_cgroup, tmp.path(), CgroupVersion::V1);
        (tmp, cg)
    }

    #[test]
    fn per_cpu_hugetlb_and_oom_control() {
        let (_tmp, cg) = cgroup(&[
            ("cpuacct", "cpuacct.usage_percpu", "10097821 2218100 \n"),
            ("hugetlb", "hugetlb.2MB.usage_in_bytes", "4194304\n"),
            ("hugetlb", "hugetlb.2MB.max_usage_in_bytes", "6291456\n"),
            ("hugetlb", "hugetlb.2MB.failcnt", "1\n"),
            (
                "hugetlb",
                "hugetlb.2MB.limit_in_bytes",
                "9223372036854771712\n",
            ),
            ("hugetlb", "hugetlb.1GB.usage_in_bytes", "0\n"),
            ("hugetlb", "hugetlb.1GB.rsvd.usage_in_bytes", "0\n"),
            (
                "memory",
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            ),
        ]);
        assert_eq!(per_cpu_usage(&cg), [10097821, 2218100]);
        let huge = hugetlb(&cg);
        let sizes: Vec<&str> = huge.iter().map(|h| h.page_size.as_str()).collect();
        assert_eq!(sizes, ["1GB", "2MB"]);
        assert_eq!(
            (huge[1].usage, huge[1].max, huge[1].failcnt),
            (4194304, 6291456, 1)
        );
        assert_eq!(oom_control(&cg).unwrap().oom_kill, 1);
    }

    #[test]
    fn blkio_falls_back_to_the_throttle_files() {
        let (_tmp, cg) = cgroup(&[
            ("blkio", "blkio.io_serviced_recursive", "Total 0\n"),
            (
                "blkio",
                "blkio.throttle.io_service_bytes",
                "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\n9:9 Read 1\nTotal 12289\n",
            ),
            (
                "blkio",
                "blkio.throttle.io_serviced",
                "8:0 Read 1\nTotal 1\n",
            ),
        ]);
        let s = blkio(&cg, PARTITIONS);
        assert_eq!(s.io_service_bytes_recursive.len(), 4);
        let first = &s.io_service_bytes_recursive[0];
        assert_eq!(
            (
                first.device.as_str(),
                first.major,
                first.minor,
                first.op.as_str(),
                first.value
            ),
            ("/dev/sda", 8, 0, "Read", 4096)
        );
        // A device not in /proc/partitions has no name.
        assert_eq!(s.io_service_bytes_recursive[3].device, "");
        assert_eq!(s.io_serviced_recursive.len(), 1);
        assert!(s.sectors_recursive.is_empty());
    }

    #[test]
    fn blkio_takes_the_cfq_files_when_they_have_entries() {
        let (_tmp, cg) = cgroup(&[
            (
                "blkio",
                "blkio.io_serviced_recursive",
                "8:1 Read 2\nTotal 2\n",
            ),
            ("blkio", "blkio.sectors_recursive", "8:1 16\n"),
            ("blkio", "blkio.throttle.io_serviced", "8:0 Read 9\n"),
        ]);
        let s = blkio(&cg, PARTITIONS);
        assert_eq!(s.io_serviced_recursive[0].device, "/dev/sda1");
        assert_eq!(
            (
                s.sectors_recursive[0].op.as_str(),
                s.sectors_recursive[0].value
            ),
            ("", 16)
        );
    }
}
