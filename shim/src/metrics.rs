//! Container cgroup stats as containerd's `io.containerd.cgroups.v1/v2.Metrics`
//! (what `ctr task metrics` and CRI's ContainerStats read).

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use lxcri::cgroup::{BlkioEntry, CgroupStats, CgroupVersion, MemoryCounters, Psi, RdmaEntry};

/// A v1 memory entry; containerd's v1 collector reads every one of them
/// without a nil check (containerd v1.6 metrics/cgroups/v1/memory.go: a
/// missing `swap` crashes containerd on a `/v1/metrics` scrape).
fn entry(c: MemoryCounters) -> MessageField<v1::MemoryEntry> {
    MessageField::some(v1::MemoryEntry {
        usage: c.usage.unwrap_or(0),
        limit: c.limit.unwrap_or(0),
        max: c.max.unwrap_or(0),
        failcnt: c.failcnt.unwrap_or(0),
        ..Default::default()
    })
}

fn blkio_entries(entries: &[BlkioEntry]) -> Vec<v1::BlkIOEntry> {
    entries
        .iter()
        .map(|e| v1::BlkIOEntry {
            op: e.op.clone(),
            device: e.device.clone(),
            major: e.major,
            minor: e.minor,
            value: e.value,
            ..Default::default()
        })
        .collect()
}

fn psi(p: Option<Psi>) -> MessageField<v2::PSIStats> {
    let data = |d: Option<lxcri::cgroup::PsiData>| {
        d.map_or(MessageField::none(), |d| {
            MessageField::some(v2::PSIData {
                avg10: d.avg10,
                avg60: d.avg60,
                avg300: d.avg300,
                total: d.total,
                ..Default::default()
            })
        })
    };
    p.map_or(MessageField::none(), |p| {
        MessageField::some(v2::PSIStats {
            some: data(p.some),
            full: data(p.full),
            ..Default::default()
        })
    })
}

fn rdma_entries(entries: &[RdmaEntry]) -> Vec<v2::RdmaEntry> {
    entries
        .iter()
        .map(|e| v2::RdmaEntry {
            device: e.device.clone(),
            hca_handles: e.hca_handles,
            hca_objects: e.hca_objects,
            ..Default::default()
        })
        .collect()
}

/// containerd's `cgroups.v2.Metrics` with every field containerd/cgroups'
/// `cgroup2` Manager fills (cgroup2/manager.go `StatFiltered`).
fn v2_metrics(s: &CgroupStats) -> v2::Metrics {
    let stat = |k: &str| s.memory_stat.get(k).copied().unwrap_or(0);
    let x = &s.v2;
    v2::Metrics {
        pids: MessageField::some(v2::PidsStat {
            current: s.pids_current.unwrap_or(0),
            limit: s.pids_limit.unwrap_or(0),
            ..Default::default()
        }),
        cpu: MessageField::some(v2::CPUStat {
            usage_usec: s.cpu_usage_ns.unwrap_or(0) / 1000,
            user_usec: s.cpu_user_ns.unwrap_or(0) / 1000,
            system_usec: s.cpu_system_ns.unwrap_or(0) / 1000,
            nr_periods: s.cpu_nr_periods.unwrap_or(0),
            nr_throttled: s.cpu_nr_throttled.unwrap_or(0),
            throttled_usec: s.cpu_throttled_ns.unwrap_or(0) / 1000,
            nr_bursts: x.cpu_nr_bursts,
            burst_usec: x.cpu_burst_ns / 1000,
            psi: psi(x.cpu_psi),
            ..Default::default()
        }),
        memory: MessageField::some(v2::MemoryStat {
            anon: stat("anon"),
            file: stat("file"),
            kernel_stack: stat("kernel_stack"),
            slab: stat("slab"),
            sock: stat("sock"),
            shmem: stat("shmem"),
            file_mapped: stat("file_mapped"),
            file_dirty: stat("file_dirty"),
            file_writeback: stat("file_writeback"),
            anon_thp: stat("anon_thp"),
            inactive_anon: stat("inactive_anon"),
            active_anon: stat("active_anon"),
            inactive_file: stat("inactive_file"),
            active_file: stat("active_file"),
            unevictable: stat("unevictable"),
            slab_reclaimable: stat("slab_reclaimable"),
            slab_unreclaimable: stat("slab_unreclaimable"),
            pgfault: stat("pgfault"),
            pgmajfault: stat("pgmajfault"),
            workingset_refault: stat("workingset_refault"),
            workingset_activate: stat("workingset_activate"),
            workingset_nodereclaim: stat("workingset_nodereclaim"),
            pgrefill: stat("pgrefill"),
            pgscan: stat("pgscan"),
            pgsteal: stat("pgsteal"),
            pgactivate: stat("pgactivate"),
            pgdeactivate: stat("pgdeactivate"),
            pglazyfree: stat("pglazyfree"),
            pglazyfreed: stat("pglazyfreed"),
            thp_fault_alloc: stat("thp_fault_alloc"),
            thp_collapse_alloc: stat("thp_collapse_alloc"),
            usage: s.memory_usage.unwrap_or(0),
            usage_limit: s.memory_limit.unwrap_or(u64::MAX),
            max_usage: s.memory_max_usage.unwrap_or(0),
            swap_usage: x.swap_usage.unwrap_or(0),
            swap_limit: x.swap_limit.unwrap_or(0),
            swap_max_usage: x.swap_max_usage.unwrap_or(0),
            psi: psi(x.memory_psi),
            ..Default::default()
        }),
        memory_events: x.memory_events.map_or(MessageField::none(), |e| {
            MessageField::some(v2::MemoryEvents {
                low: e.low,
                high: e.high,
                max: e.max,
                oom: e.oom,
                oom_kill: e.oom_kill,
                oom_group_kill: e.oom_group_kill,
                ..Default::default()
            })
        }),
        io: MessageField::some(v2::IOStat {
            usage: x
                .io
                .iter()
                .map(|e| v2::IOEntry {
                    major: e.major,
                    minor: e.minor,
                    rbytes: e.rbytes,
                    wbytes: e.wbytes,
                    rios: e.rios,
                    wios: e.wios,
                    ..Default::default()
                })
                .collect(),
            psi: psi(x.io_psi),
            ..Default::default()
        }),
        rdma: MessageField::some(v2::RdmaStat {
            current: rdma_entries(&x.rdma_current),
            limit: rdma_entries(&x.rdma_limit),
            ..Default::default()
        }),
        hugetlb: x
            .hugetlb
            .iter()
            .map(|h| v2::HugeTlbStat {
                current: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: h.page_size.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub fn to_any(s: &CgroupStats) -> Any {
    let (type_url, value) = match s.version {
        Some(CgroupVersion::V2) => {
            let m = v2_metrics(s);
            ("io.containerd.cgroups.v2.Metrics", m.write_to_bytes())
        }
        _ => {
            let stat = |k: &str| s.memory_stat.get(k).copied().unwrap_or(0);
            let m = v1::Metrics {
                pids: MessageField::some(v1::PidsStat {
                    current: s.pids_current.unwrap_or(0),
                    limit: s.pids_limit.unwrap_or(0),
                    ..Default::default()
                }),
                cpu: MessageField::some(v1::CPUStat {
                    usage: MessageField::some(v1::CPUUsage {
                        total: s.cpu_usage_ns.unwrap_or(0),
                        kernel: s.cpu_system_ns.unwrap_or(0),
                        user: s.cpu_user_ns.unwrap_or(0),
                        per_cpu: s.cpu_per_cpu_ns.clone(),
                        ..Default::default()
                    }),
                    throttling: MessageField::some(v1::Throttle {
                        periods: s.cpu_nr_periods.unwrap_or(0),
                        throttled_periods: s.cpu_nr_throttled.unwrap_or(0),
                        throttled_time: s.cpu_throttled_ns.unwrap_or(0),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                memory: MessageField::some(v1::MemoryStat {
                    cache: stat("cache"),
                    rss: stat("rss"),
                    rss_huge: stat("rss_huge"),
                    mapped_file: stat("mapped_file"),
                    dirty: stat("dirty"),
                    writeback: stat("writeback"),
                    pg_pg_in: stat("pgpgin"),
                    pg_pg_out: stat("pgpgout"),
                    pg_fault: stat("pgfault"),
                    pg_maj_fault: stat("pgmajfault"),
                    inactive_anon: stat("inactive_anon"),
                    active_anon: stat("active_anon"),
                    inactive_file: stat("inactive_file"),
                    active_file: stat("active_file"),
                    unevictable: stat("unevictable"),
                    hierarchical_memory_limit: stat("hierarchical_memory_limit"),
                    hierarchical_swap_limit: stat("hierarchical_memsw_limit"),
                    // The hierarchy's sums, which containerd's CRI reads
                    // (page faults from `total_pgfault`), as runc's shim
                    // fills them from memory.stat.
                    total_cache: stat("total_cache"),
                    total_rss: stat("total_rss"),
                    total_rss_huge: stat("total_rss_huge"),
                    total_mapped_file: stat("total_mapped_file"),
                    total_dirty: stat("total_dirty"),
                    total_writeback: stat("total_writeback"),
                    total_pg_pg_in: stat("total_pgpgin"),
                    total_pg_pg_out: stat("total_pgpgout"),
                    total_pg_fault: stat("total_pgfault"),
                    total_pg_maj_fault: stat("total_pgmajfault"),
                    total_inactive_anon: stat("total_inactive_anon"),
                    total_active_anon: stat("total_active_anon"),
                    total_inactive_file: stat("total_inactive_file"),
                    total_active_file: stat("total_active_file"),
                    total_unevictable: stat("total_unevictable"),
                    usage: MessageField::some(v1::MemoryEntry {
                        limit: s.memory_limit.unwrap_or(u64::MAX),
                        usage: s.memory_usage.unwrap_or(0),
                        max: s.memory_max_usage.unwrap_or(0),
                        failcnt: s.memory_failcnt.unwrap_or(0),
                        ..Default::default()
                    }),
                    swap: entry(s.memory_swap),
                    kernel: entry(s.memory_kernel),
                    kernel_tcp: entry(s.memory_kernel_tcp),
                    ..Default::default()
                }),
                hugetlb: s
                    .hugetlb
                    .iter()
                    .map(|h| v1::HugetlbStat {
                        usage: h.usage,
                        max: h.max,
                        failcnt: h.failcnt,
                        pagesize: h.page_size.clone(),
                        ..Default::default()
                    })
                    .collect(),
                blkio: MessageField::some(v1::BlkIOStat {
                    io_service_bytes_recursive: blkio_entries(&s.blkio.io_service_bytes_recursive),
                    io_serviced_recursive: blkio_entries(&s.blkio.io_serviced_recursive),
                    io_queued_recursive: blkio_entries(&s.blkio.io_queued_recursive),
                    io_service_time_recursive: blkio_entries(&s.blkio.io_service_time_recursive),
                    io_wait_time_recursive: blkio_entries(&s.blkio.io_wait_time_recursive),
                    io_merged_recursive: blkio_entries(&s.blkio.io_merged_recursive),
                    io_time_recursive: blkio_entries(&s.blkio.io_time_recursive),
                    sectors_recursive: blkio_entries(&s.blkio.sectors_recursive),
                    ..Default::default()
                }),
                memory_oom_control: match s.oom_control {
                    Some(o) => MessageField::some(v1::MemoryOomControl {
                        oom_kill_disable: o.oom_kill_disable,
                        under_oom: o.under_oom,
                        oom_kill: o.oom_kill,
                        ..Default::default()
                    }),
                    None => MessageField::none(),
                },
                ..Default::default()
            };
            ("io.containerd.cgroups.v1.Metrics", m.write_to_bytes())
        }
    };
    Any {
        type_url: type_url.to_string(),
        value: value.expect("metrics serialize"),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What runc's shim (containerd/cgroups' cgroup2 Manager) fills.
    #[test]
    fn v2_metrics_round_trip() {
        let mut s = CgroupStats {
            version: Some(CgroupVersion::V2),
            memory_usage: Some(8192),
            pids_limit: Some(u64::MAX),
            ..Default::default()
        };
        for (k, v) in [("anon", 1), ("file_writeback", 2), ("pglazyfreed", 3)] {
            s.memory_stat.insert(k.into(), v);
        }
        let pressure = Psi {
            some: Some(lxcri::cgroup::PsiData {
                avg10: 1.5,
                total: 40,
                ..Default::default()
            }),
            full: None,
        };
        s.v2 = lxcri::cgroup::V2Counters {
            cpu_psi: Some(pressure),
            cpu_nr_bursts: 2,
            cpu_burst_ns: 3000,
            swap_usage: Some(4096),
            swap_limit: Some(u64::MAX),
            memory_events: Some(lxcri::cgroup::MemoryEvents {
                oom_kill: 1,
                ..Default::default()
            }),
            io: vec![lxcri::cgroup::IoEntry {
                major: 8,
                rbytes: 512,
                ..Default::default()
            }],
            hugetlb: vec![lxcri::cgroup::HugetlbCounters {
                page_size: "2MB".into(),
                usage: 2 << 20,
                max: u64::MAX,
                failcnt: 1,
            }],
            ..Default::default()
        };
        let any = to_any(&s);
        assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
        let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.pids.limit, u64::MAX);
        assert_eq!(
            (m.memory.anon, m.memory.file_writeback, m.memory.pglazyfreed),
            (1, 2, 3)
        );
        assert_eq!(m.memory.usage, 8192);
        assert_eq!((m.memory.swap_usage, m.memory.swap_limit), (4096, u64::MAX));
        assert!(m.memory.psi.is_none());
        assert_eq!((m.cpu.nr_bursts, m.cpu.burst_usec), (2, 3));
        assert_eq!((m.cpu.psi.some.avg10, m.cpu.psi.some.total), (1.5, 40));
        assert!(m.cpu.psi.full.is_none());
        assert_eq!(m.memory_events.oom_kill, 1);
        assert_eq!((m.io.usage[0].major, m.io.usage[0].rbytes), (8, 512));
        assert_eq!(
            (
                m.hugetlb[0].pagesize.as_str(),
                m.hugetlb[0].current,
                m.hugetlb[0].max,
                m.hugetlb[0].failcnt
            ),
            ("2MB", 2 << 20, u64::MAX, 1)
        );
        // Without memory.events the field is left out, as containerd does.
        s.v2.memory_events = None;
        let m = v2::Metrics::parse_from_bytes(&to_any(&s).value).unwrap();
        assert!(m.memory_events.is_none());
    }

    #[test]
    fn v1_metrics_round_trip() {
        let mut s = CgroupStats {
            version: Some(CgroupVersion::V1),
            memory_usage: Some(4096),
            cpu_usage_ns: Some(7),
            ..Default::default()
        };
        s.memory_stat.insert("rss".into(), 11);
        s.cpu_per_cpu_ns = vec![5, 2];
        s.hugetlb = vec![lxcri::cgroup::HugetlbCounters {
            page_size: "2MB".into(),
            usage: 4096,
            ..Default::default()
        }];
        s.blkio.io_service_bytes_recursive = vec![BlkioEntry {
            device: "/dev/sda".into(),
            major: 8,
            op: "Read".into(),
            value: 512,
            ..Default::default()
        }];
        s.oom_control = Some(lxcri::cgroup::OomControl {
            oom_kill: 1,
            ..Default::default()
        });
        for (k, v) in [("total_pgfault", 1178), ("total_pgmajfault", 3)] {
            s.memory_stat.insert(k.into(), v);
        }
        let any = to_any(&s);
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let m = v1::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.memory.rss, 11);
        // containerd's CRI reports page faults from the hierarchy's sums.
        assert_eq!(
            (m.memory.total_pg_fault, m.memory.total_pg_maj_fault),
            (1178, 3)
        );
        assert_eq!(m.cpu.usage.total, 7);
        assert_eq!(m.cpu.usage.per_cpu, [5, 2]);
        assert_eq!(
            (m.hugetlb[0].pagesize.as_str(), m.hugetlb[0].usage),
            ("2MB", 4096)
        );
        let read = &m.blkio.io_service_bytes_recursive[0];
        assert_eq!(
            (read.device.as_str(), read.op.as_str(), read.value),
            ("/dev/sda", "Read", 512)
        );
        assert_eq!(m.memory_oom_control.oom_kill, 1);
        // Every nested message containerd's v1 collector dereferences.
        for (name, present) in [
            ("memory.usage", m.memory.usage.is_some()),
            ("memory.swap", m.memory.swap.is_some()),
            ("memory.kernel", m.memory.kernel.is_some()),
            ("memory.kernel_tcp", m.memory.kernel_tcp.is_some()),
            ("cpu.usage", m.cpu.usage.is_some()),
            ("cpu.throttling", m.cpu.throttling.is_some()),
            ("pids", m.pids.is_some()),
        ] {
            assert!(present, "{name} missing");
        }
    }
}
