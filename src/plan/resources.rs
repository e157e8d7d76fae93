//! `linux.resources` -> cgroup interface files (v1 or v2) and device rules.
//!
//! Like runc, a zero value means "not set" for the numeric limits (OCI
//! tools write 0 for "no limit" in several places). Anything that maps to
//! no file on the chosen cgroup version is an error naming the field.

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxResources,
    LinuxThrottleDevice,
};

use super::limits::{CpuLimits, Limit, Limits, MemoryLimits, SHARES};
use super::{invalid, unsupported, Result};
use crate::cgroup::CgroupSetting;
use crate::cgroup::CgroupVersion;
use crate::lxc::{DeviceKind, DeviceRule};

/// CFS period the kernel uses when only a quota is given.
const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// Cgroup files and values for `res`, in the order they must be written.
///
/// Device rules are not included: on v2 they are a BPF program, not a file
/// (see [`device_rules`]). `linux.resources.unified` entries come last, so
/// they override a mapped value for the same file, as in runc.
pub fn cgroup_settings(res: &LinuxResources, v: CgroupVersion) -> Result<Vec<CgroupSetting>> {
    cgroup_settings_within(res, &Limits::from_oci(res)?, v)
}

/// [`cgroup_settings`] with `res`'s memory and CPU limits already checked.
pub(super) fn cgroup_settings_within(
    res: &LinuxResources,
    limits: &Limits,
    v: CgroupVersion,
) -> Result<Vec<CgroupSetting>> {
    let mut out = Vec::new();
    if let Some(m) = res.memory() {
        memory(m, &limits.memory, v, &mut out)?;
    }
    if let Some(c) = res.cpu() {
        cpu(c, &limits.cpu, v, &mut out)?;
    }
    if let Some(p) = res.pids() {
        let value = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".to_string()
        };
        out.push(CgroupSetting::new("pids.max", value));
    }
    if let Some(b) = res.block_io() {
        block_io(b, v, &mut out)?;
    }
    if let Some(limits) = res.hugepage_limits() {
        hugetlb(limits, v, &mut out)?;
    }
    if let Some(n) = res.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(unsupported(
                "linux.resources.network",
                "net_cls/net_prio are not implemented",
            ));
        }
    }
    if res.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(unsupported(
            "linux.resources.rdma",
            "rdma limits are not implemented",
        ));
    }
    if let Some(unified) = res.unified().as_ref().filter(|u| !u.is_empty()) {
        if v == CgroupVersion::V1 {
            return Err(unsupported(
                "linux.resources.unified",
                // runc's words; the host's controllers are on v1.
                "cannot use unified on cgroup v1",
            ));
        }
        let mut keys: Vec<_> = unified.iter().collect();
        keys.sort();
        for (key, value) in keys {
            check_unified(key, value)?;
            out.push(CgroupSetting::new(key, value));
        }
    }
    Ok(out)
}

/// `linux.resources.hugepageLimits`, which the kubelet sends for every
/// container (a limit of 0 for each page size the node has, unless the
/// pod asks for huge pages): runc's files. The reservation files
/// (`.rsvd.`, Linux 5.7) are added by the host check where the host has
/// them, as runc 1.2 writes them only then (libcontainer/cgroups/fs and
/// fs2 `hugetlb.go`).
fn hugetlb(
    limits: &[oci_spec::runtime::LinuxHugepageLimit],
    v: CgroupVersion,
    out: &mut Vec<CgroupSetting>,
) -> Result<()> {
    for (i, l) in limits.iter().enumerate() {
        let size = l.page_size();
        if !is_page_size(size) {
            return Err(invalid(
                &format!("linux.resources.hugepageLimits[{i}].pageSize"),
                &format!(
                    "{size:?} is not a huge page size as the kernel names them (e.g. 2MB, 1GB)"
                ),
            ));
        }
        let file = match v {
            CgroupVersion::V1 => format!("hugetlb.{size}.limit_in_bytes"),
            CgroupVersion::V2 => format!("hugetlb.{size}.max"),
        };
        out.push(CgroupSetting::new(file, l.limit().to_string()));
    }
    Ok(())
}

/// A huge page size as the kernel's hugetlb files and the kubelet name it:
/// a number without leading zero and KB, MB, GB, TB or PB. It becomes part
/// of a file name and an LXC key, so nothing else passes.
fn is_page_size(size: &str) -> bool {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_uppercase());
    let unit = &size[digits.len()..];
    matches!(unit, "KB" | "MB" | "GB" | "TB" | "PB")
        && !digits.is_empty()
        && digits.len() <= 6
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
}

fn check_unified(key: &str, value: &str) -> Result<()> {
    let field = format!("linux.resources.unified[{key:?}]");
    let ok_key = key.contains('.')
        && !key.starts_with('.')
        && !key.starts_with("cgroup.")
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_'));
    if !ok_key {
        return Err(invalid(
            &field,
            "not a controller interface file name (e.g. memory.high)",
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(invalid(&field, "value contains a control character"));
    }
    Ok(())
}

fn memory(
    m: &LinuxMemory,
    limits: &MemoryLimits,
    v: CgroupVersion,
    out: &mut Vec<CgroupSetting>,
) -> Result<()> {
    const F: &str = "linux.resources.memory";
    let MemoryLimits {
        limit: mem,
        reservation,
        swap,
    } = *limits;
    // checkBeforeUpdate only changes how `update` behaves; it is no setting.
    match v {
        CgroupVersion::V1 => {
            // The memory limit first: memsw must never be below it.
            if let Some(n) = mem {
                out.push(CgroupSetting::new("memory.limit_in_bytes", n.v1()));
            }
            if let Some(n) = reservation {
                out.push(CgroupSetting::new("memory.soft_limit_in_bytes", n.v1()));
            }
            if let Some(n) = swap {
                out.push(CgroupSetting::new("memory.memsw.limit_in_bytes", n.v1()));
            }
            if let Some(s) = m.swappiness() {
                out.push(CgroupSetting::new("memory.swappiness", s.to_string()));
            }
            if m.disable_oom_killer() == Some(true) {
                out.push(CgroupSetting::new("memory.oom_control", "1"));
            }
            if let Some(h) = m.use_hierarchy() {
                out.push(CgroupSetting::new(
                    "memory.use_hierarchy",
                    if h { "1" } else { "0" },
                ));
            }
        }
        CgroupVersion::V2 => {
            if let Some(n) = mem {
                out.push(CgroupSetting::new("memory.max", n.v2()));
            }
            if let Some(n) = reservation {
                out.push(CgroupSetting::new("memory.low", n.v2()));
            }
            if let Some(s) = swap {
                out.push(CgroupSetting::new("memory.swap.max", swap_v2(s, mem)?));
            }
            if m.swappiness().is_some() {
                return Err(unsupported(
                    &format!("{F}.swappiness"),
                    "cgroup v2 has no swappiness",
                ));
            }
            if m.disable_oom_killer() == Some(true) {
                return Err(unsupported(
                    &format!("{F}.disableOOMKiller"),
                    "cgroup v2 cannot disable the OOM killer",
                ));
            }
            if m.use_hierarchy() == Some(false) {
                return Err(unsupported(
                    &format!("{F}.useHierarchy"),
                    "cgroup v2 is always hierarchical",
                ));
            }
        }
    }
    Ok(())
}

/// OCI `swap` is memory+swap; v2's `memory.swap.max` is swap alone.
fn swap_v2(swap: Limit, mem: Option<Limit>) -> Result<String> {
    let Some(swap) = swap.value() else {
        return Ok("max".into());
    };
    match mem.and_then(Limit::value) {
        Some(mem) => Ok((swap - mem).to_string()),
        None => Err(invalid(
            "linux.resources.memory.swap",
            "a swap limit needs a memory limit on cgroup v2",
        )),
    }
}

/// cgroup v1 `cpu.shares` (2..=262144) -> v2 `cpu.weight` (1..=10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    let (min, max) = (*SHARES.start(), *SHARES.end());
    1 + ((shares.clamp(min, max) - min) * 9999) / (max - min)
}

/// cgroup v1 `blkio.weight` (10..=1000) -> v2 `io.weight` (1..=10000).
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + ((w - 10) * 9999) / 990
}

fn cpu(
    c: &LinuxCpu,
    limits: &CpuLimits,
    v: CgroupVersion,
    out: &mut Vec<CgroupSetting>,
) -> Result<()> {
    const F: &str = "linux.resources.cpu";
    let CpuLimits {
        quota,
        period,
        shares,
        ref cpus,
        ref mems,
    } = *limits;
    let burst = c.burst();
    match v {
        CgroupVersion::V1 => {
            if let Some(s) = shares {
                out.push(CgroupSetting::new("cpu.shares", s.to_string()));
            }
            // The period first: the kernel checks the quota against it.
            if let Some(p) = period {
                out.push(CgroupSetting::new("cpu.cfs_period_us", p.to_string()));
            }
            if let Some(q) = quota {
                out.push(CgroupSetting::new("cpu.cfs_quota_us", q.v1()));
            }
            if let Some(b) = burst {
                out.push(CgroupSetting::new("cpu.cfs_burst_us", b.to_string()));
            }
            if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
                out.push(CgroupSetting::new("cpu.rt_period_us", p.to_string()));
            }
            if let Some(r) = c.realtime_runtime().filter(|r| *r != 0) {
                out.push(CgroupSetting::new("cpu.rt_runtime_us", r.to_string()));
            }
            if c.idle().is_some_and(|i| i != 0) {
                return Err(unsupported(
                    &format!("{F}.idle"),
                    "cpu.idle needs cgroup v2",
                ));
            }
        }
        CgroupVersion::V2 => {
            if let Some(s) = shares {
                out.push(CgroupSetting::new(
                    "cpu.weight",
                    shares_to_weight(s).to_string(),
                ));
            }
            if quota.is_some() || period.is_some() {
                let q = quota.map_or_else(|| "max".to_string(), Limit::v2);
                let p = period.unwrap_or(DEFAULT_CPU_PERIOD);
                out.push(CgroupSetting::new("cpu.max", format!("{q} {p}")));
            }
            if let Some(b) = burst {
                out.push(CgroupSetting::new("cpu.max.burst", b.to_string()));
            }
            if c.realtime_period().is_some_and(|p| p != 0) {
                return Err(unsupported(
                    &format!("{F}.realtimePeriod"),
                    "cgroup v2 has no real-time CPU limits",
                ));
            }
            if c.realtime_runtime().is_some_and(|r| r != 0) {
                return Err(unsupported(
                    &format!("{F}.realtimeRuntime"),
                    "cgroup v2 has no real-time CPU limits",
                ));
            }
            if let Some(i) = c.idle() {
                out.push(CgroupSetting::new("cpu.idle", i.to_string()));
            }
        }
    }
    if let Some(cpus) = cpus {
        out.push(CgroupSetting::new("cpuset.cpus", cpus.as_str()));
    }
    if let Some(mems) = mems {
        out.push(CgroupSetting::new("cpuset.mems", mems.as_str()));
    }
    Ok(())
}

fn device_number(field: &str, major: i64, minor: i64) -> Result<String> {
    if major < 0 || minor < 0 {
        return Err(invalid(field, "device numbers must not be negative"));
    }
    Ok(format!("{major}:{minor}"))
}

fn block_io(b: &LinuxBlockIo, v: CgroupVersion, out: &mut Vec<CgroupSetting>) -> Result<()> {
    const F: &str = "linux.resources.blockIO";
    let check_weight = |field: &str, w: u16| -> Result<()> {
        if (10..=1000).contains(&w) {
            Ok(())
        } else {
            Err(invalid(field, &format!("{w} is outside 10..=1000")))
        }
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        check_weight(&format!("{F}.weight"), w)?;
        match v {
            CgroupVersion::V1 => out.push(CgroupSetting::new("blkio.weight", w.to_string())),
            CgroupVersion::V2 => out.push(CgroupSetting::new(
                "io.weight",
                blkio_to_io_weight(w).to_string(),
            )),
        }
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        check_weight(&format!("{F}.leafWeight"), w)?;
        match v {
            CgroupVersion::V1 => out.push(CgroupSetting::new("blkio.leaf_weight", w.to_string())),
            CgroupVersion::V2 => {
                return Err(unsupported(
                    &format!("{F}.leafWeight"),
                    "cgroup v2 has no leaf weights",
                ))
            }
        }
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let field = format!("{F}.weightDevice[{i}]");
        let dev = device_number(&field, d.major(), d.minor())?;
        if let Some(w) = d.weight().filter(|w| *w != 0) {
            check_weight(&format!("{field}.weight"), w)?;
            match v {
                CgroupVersion::V1 => out.push(CgroupSetting::new(
                    "blkio.weight_device",
                    format!("{dev} {w}"),
                )),
                CgroupVersion::V2 => out.push(CgroupSetting::new(
                    "io.weight",
                    format!("{dev} {}", blkio_to_io_weight(w)),
                )),
            }
        }
        if let Some(w) = d.leaf_weight().filter(|w| *w != 0) {
            check_weight(&format!("{field}.leafWeight"), w)?;
            match v {
                CgroupVersion::V1 => out.push(CgroupSetting::new(
                    "blkio.leaf_weight_device",
                    format!("{dev} {w}"),
                )),
                CgroupVersion::V2 => {
                    return Err(unsupported(
                        &format!("{field}.leafWeight"),
                        "cgroup v2 has no leaf weights",
                    ))
                }
            }
        }
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>, &str, &str); 4] = [
        (
            "throttleReadBpsDevice",
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            "throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            "throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            "throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ];
    for (name, list, v1_file, v2_key) in throttles {
        for (i, t) in list.iter().flatten().enumerate() {
            let dev = device_number(&format!("{F}.{name}[{i}]"), t.major(), t.minor())?;
            match v {
                CgroupVersion::V1 => {
                    out.push(CgroupSetting::new(v1_file, format!("{dev} {}", t.rate())))
                }
                CgroupVersion::V2 => {
                    // io.max: 0 would forbid all IO; in v1 it removes the limit.
                    let rate = if t.rate() == 0 {
                        "max".to_string()
                    } else {
                        t.rate().to_string()
                    };
                    out.push(CgroupSetting::new(
                        "io.max",
                        format!("{dev} {v2_key}={rate}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The devices runc allows in every container whatever the spec says
/// (libcontainer/specconv/spec_linux.go `AllowedDevices`), which keeps the
/// nodes `/dev` always has usable. `/dev/console` is not among them: it is
/// a pty (136) bound there, never 5:1. `/dev/net/tun` is, as in runc 1.1
/// and again from 1.3 (runc 394f4c3: 1.2 had dropped it, and users' VPN
/// and tap workloads broke).
fn default_allowed() -> Vec<DeviceRule> {
    let rule = |kind, major, minor, access: &str| DeviceRule {
        allow: true,
        kind,
        major,
        minor,
        access: access.to_string(),
    };
    vec![
        rule(DeviceKind::Char, None, None, "m"),
        rule(DeviceKind::Block, None, None, "m"),
        rule(DeviceKind::Char, Some(1), Some(3), "rwm"), // null
        rule(DeviceKind::Char, Some(1), Some(5), "rwm"), // zero
        rule(DeviceKind::Char, Some(1), Some(7), "rwm"), // full
        rule(DeviceKind::Char, Some(1), Some(8), "rwm"), // random
        rule(DeviceKind::Char, Some(1), Some(9), "rwm"), // urandom
        rule(DeviceKind::Char, Some(5), Some(0), "rwm"), // tty
        rule(DeviceKind::Char, Some(136), None, "rwm"),  // pts
        rule(DeviceKind::Char, Some(5), Some(2), "rwm"), // ptmx
        rule(DeviceKind::Char, Some(10), Some(200), "rwm"), // net/tun
    ]
}

/// Device cgroup rules: the spec's `linux.resources.devices`, then allow
/// rules for `extra` (the `linux.devices` nodes) and the standard devices.
/// An empty spec list adds nothing (no restriction at all).
pub fn device_rules(res: Option<&LinuxResources>, extra: &[DeviceRule]) -> Result<Vec<DeviceRule>> {
    let spec_rules = res.and_then(|r| r.devices().as_ref());
    let Some(spec_rules) = spec_rules.filter(|r| !r.is_empty()) else {
        return Ok(Vec::new());
    };
    let mut out = spec_rules
        .iter()
        .enumerate()
        .map(|(i, d)| device_rule(&format!("linux.resources.devices[{i}]"), d))
        .collect::<Result<Vec<_>>>()?;
    out.extend(extra.iter().cloned());
    out.extend(default_allowed());
    Ok(out)
}

fn device_rule(field: &str, d: &LinuxDeviceCgroup) -> Result<DeviceRule> {
    let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => DeviceKind::All,
        LinuxDeviceType::C => DeviceKind::Char,
        LinuxDeviceType::B => DeviceKind::Block,
        other => {
            return Err(invalid(
                &format!("{field}.type"),
                &format!(
                    "{:?} is not a device cgroup type (a, c or b)",
                    other.as_str()
                ),
            ))
        }
    };
    // runc treats a negative number as the wildcard.
    let num = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok());
    let access = d.access().clone().unwrap_or_else(|| "rwm".to_string());
    let mut seen = String::new();
    for c in access.chars() {
        if !"rwm".contains(c) || seen.contains(c) {
            return Err(invalid(
                &format!("{field}.access"),
                &format!("{access:?} is not a combination of r, w and m"),
            ));
        }
        seen.push(c);
    }
    if access.is_empty() {
        return Err(invalid(&format!("{field}.access"), "is empty"));
    }
    Ok(DeviceRule {
        allow: d.allow(),
        kind,
        major: num(d.major()),
        minor: num(d.minor()),
        access,
    })
}
