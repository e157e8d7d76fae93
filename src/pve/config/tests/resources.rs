use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder};

use super::*;

const MIB: i64 = 1024 * 1024;

fn mem(limit: Option<i64>, swap: Option<i64>) -> Result<PveResources> {
    let mut m = LinuxMemoryBuilder::default();
    if let Some(l) = limit {
        m = m.limit(l);
    }
    if let Some(s) = swap {
        m = m.swap(s);
    }
    let res = LinuxResourcesBuilder::default()
        .memory(m.build().unwrap())
        .build()
        .unwrap();
    resources_from_oci(&res)
}

fn cpu(
    quota: Option<i64>,
    period: Option<u64>,
    shares: Option<u64>,
    cpus: Option<&str>,
) -> Result<PveResources> {
    let mut c = LinuxCpuBuilder::default();
    if let Some(q) = quota {
        c = c.quota(q);
    }
    if let Some(p) = period {
        c = c.period(p);
    }
    if let Some(s) = shares {
        c = c.shares(s);
    }
    if let Some(s) = cpus {
        c = c.cpus(s);
    }
    let res = LinuxResourcesBuilder::default()
        .cpu(c.build().unwrap())
        .build()
        .unwrap();
    resources_from_oci(&res)
}

#[test]
fn memory_is_mib_rounded_up_with_pves_minimum() {
    assert_eq!(mem(Some(1024 * MIB), None).unwrap().memory_mib, Some(1024));
    assert_eq!(
        mem(Some(100 * MIB + 1), None).unwrap().memory_mib,
        Some(101)
    );
    assert_eq!(mem(Some(1), None).unwrap().memory_mib, Some(16));
    assert_eq!(mem(Some(-1), None).unwrap(), PveResources::default());
    assert_eq!(mem(Some(0), None).unwrap(), PveResources::default());
    assert!(mem(Some(-5), None).is_err());
}

#[test]
fn swap_is_the_part_above_the_memory_limit() {
    let r = mem(Some(256 * MIB), Some(512 * MIB)).unwrap();
    assert_eq!((r.memory_mib, r.swap_mib), (Some(256), Some(256)));
    // k8s "no swap": swap == limit.
    assert_eq!(
        mem(Some(256 * MIB), Some(256 * MIB)).unwrap().swap_mib,
        Some(0)
    );
    assert_eq!(
        mem(Some(256 * MIB), Some(256 * MIB + 1)).unwrap().swap_mib,
        Some(1)
    );
    assert_eq!(mem(Some(256 * MIB), Some(-1)).unwrap().swap_mib, None);
    let err = mem(None, Some(512 * MIB)).unwrap_err().to_string();
    assert!(err.contains("linux.resources.memory.swap"), "{err}");
    assert!(mem(Some(512 * MIB), Some(256 * MIB)).is_err());
}

#[test]
fn cpulimit_is_quota_over_period() {
    let limit = |q, p| {
        cpu(Some(q), p, None, None)
            .unwrap()
            .cpulimit
            .map(CpuLimit::render)
    };
    assert_eq!(limit(50_000, Some(100_000)).as_deref(), Some("0.5"));
    assert_eq!(limit(50_000, None).as_deref(), Some("0.5"));
    assert_eq!(limit(150_000, Some(100_000)).as_deref(), Some("1.5"));
    assert_eq!(limit(20_000, Some(10_000)).as_deref(), Some("2"));
    assert_eq!(limit(33_333, Some(100_000)).as_deref(), Some("0.33333"));
    // Rounded up to PVE's resolution, never to 0 (= unlimited).
    assert_eq!(limit(1, Some(1_000_000)).as_deref(), Some("0.00001"));
    assert_eq!(limit(1 << 40, Some(1_000)).as_deref(), Some("8192"));
    assert_eq!(cpu(Some(-1), None, None, None).unwrap().cpulimit, None);
    assert!(cpu(Some(-2), None, None, None).is_err());
}

#[test]
fn shares_map_linearly_with_1024_at_pves_default_100() {
    for (shares, units) in [
        (1024, 100),
        (2, 1),
        (102, 10),
        (256, 25),
        (2048, 200),
        (102_400, 10_000),
        (262_144, 10_000),
    ] {
        assert_eq!(shares_to_cpuunits(shares), units, "{shares}");
    }
    assert_eq!(cpu(None, None, Some(512), None).unwrap().cpuunits, Some(50));
    assert_eq!(cpu(None, None, Some(0), None).unwrap().cpuunits, None);
}

#[test]
fn cores_count_the_cpuset() {
    let cores = |s| cpu(None, None, None, Some(s)).map(|r| r.cores);
    assert_eq!(cores("0-3,6").unwrap(), Some(5));
    assert_eq!(cores("0,0-1").unwrap(), Some(2));
    assert_eq!(cores("7").unwrap(), Some(1));
    assert_eq!(cores("").unwrap(), None);
    for bad in ["x", "3-1", "1,,2", "0-"] {
        let err = cores(bad).unwrap_err().to_string();
        assert!(err.contains("linux.resources.cpu.cpus"), "{bad}: {err}");
    }
}

#[test]
fn cpulimit_rendering() {
    assert_eq!(CpuLimit::from_units(0), None);
    assert_eq!(CpuLimit::from_units(8192 * 100_000 + 1), None);
    assert_eq!(CpuLimit::from_units(100_000).unwrap().render(), "1");
    assert_eq!(CpuLimit::from_units(120_500).unwrap().render(), "1.205");
}
