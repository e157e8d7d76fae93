//! OCI `linux.resources` -> the CT's `memory`, `swap`, `cores`,
//! `cpulimit` and `cpuunits`.
//!
//! PVE turns these back into cgroup v2 files when it starts the CT
//! (`memory.max` = memory, `memory.swap.max` = swap, `cpu.max` = cpulimit
//! x 100000 over a 100000 us period, `cpu.weight` = cpuunits), so the
//! mapping is chosen to land on the values the LXC backend would write:
//!
//! - memory: bytes -> MiB rounded up (PVE counts whole MiB; rounding down
//!   would make a limit that OOMs below what was asked). PVE's minimum is
//!   16 MiB, so smaller limits are raised to it.
//! - swap: OCI `swap` is memory+swap, PVE's `swap` is swap alone, so
//!   `swap - limit`, rounded up. OCI `-1` (unlimited) has no PVE
//!   equivalent and is left unset (PVE's default applies).
//! - cpulimit: quota / period in CPUs, e.g. 50000/100000 -> 0.5, rounded
//!   up to PVE's 1/100000 resolution.
//! - cpuunits: see [`shares_to_cpuunits`].
//! - cores: the number of CPUs in `cpus` (`0-3,6` -> 5). PVE picks which
//!   cores itself, so the exact set is not kept.
//!
//! A zero means "not set", as in [`crate::plan`]'s cgroup mapping.

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

use super::{PveConfigError, Result};

const MIB: u128 = 1024 * 1024;
/// The schema's minimum for `memory`.
pub const MIN_MEMORY_MIB: u64 = 16;
/// The schema's maximum for `cores` and `cpulimit`.
pub const MAX_CPUS: u32 = 8192;
/// PVE writes `cpu.max` as `cpulimit * 100000` over this period.
const PVE_CPU_PERIOD: u128 = 100_000;
const DEFAULT_OCI_PERIOD: u64 = 100_000;

/// CPU time limit in units of 1/100000 CPU (PVE's own resolution: it
/// writes `int(100000 * cpulimit)` as the quota).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CpuLimit(u32);

impl CpuLimit {
    pub const UNITS_PER_CPU: u32 = 100_000;

    /// `None` for 0 (PVE's "no limit") or above the schema's 8192 CPUs.
    pub fn from_units(units: u32) -> Option<Self> {
        (units > 0 && units <= MAX_CPUS * Self::UNITS_PER_CPU).then_some(Self(units))
    }

    pub fn units(self) -> u32 {
        self.0
    }

    /// The value of the `cpulimit` key: a decimal without trailing zeros
    /// (`0.5`, `2`, `0.33334`); never exponent notation.
    pub fn render(self) -> String {
        let int = self.0 / Self::UNITS_PER_CPU;
        let frac = self.0 % Self::UNITS_PER_CPU;
        if frac == 0 {
            return int.to_string();
        }
        let digits = format!("{frac:05}");
        format!("{int}.{}", digits.trim_end_matches('0'))
    }
}

/// The resource keys of a CT; `None` leaves PVE's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PveResources {
    pub memory_mib: Option<u64>,
    pub swap_mib: Option<u64>,
    pub cores: Option<u32>,
    pub cpulimit: Option<CpuLimit>,
    pub cpuunits: Option<u32>,
}

/// The pure OCI -> PVE resource mapping (see the module docs).
pub fn resources_from_oci(res: &LinuxResources) -> Result<PveResources> {
    let mut out = PveResources::default();
    if let Some(m) = res.memory() {
        memory(m, &mut out)?;
    }
    if let Some(c) = res.cpu() {
        cpu(c, &mut out)?;
    }
    Ok(out)
}

fn invalid(field: &str, value: impl ToString, reason: &str) -> PveConfigError {
    PveConfigError::invalid(field, &value.to_string(), reason)
}

fn mib_ceil(bytes: u128) -> u64 {
    u64::try_from(bytes.div_ceil(MIB)).unwrap_or(u64::MAX)
}

fn memory(m: &LinuxMemory, out: &mut PveResources) -> Result<()> {
    const LIMIT: &str = "linux.resources.memory.limit";
    const SWAP: &str = "linux.resources.memory.swap";
    let limit = match m.limit() {
        None | Some(0) | Some(-1) => None,
        Some(n) if n > 0 => Some(n as u128),
        Some(n) => return Err(invalid(LIMIT, n, "is neither positive nor -1")),
    };
    if let Some(l) = limit {
        out.memory_mib = Some(mib_ceil(l).max(MIN_MEMORY_MIB));
    }
    match m.swap() {
        None | Some(0) | Some(-1) => {}
        Some(s) if s > 0 => {
            let Some(l) = limit else {
                return Err(invalid(SWAP, s, "a swap limit needs a memory limit"));
            };
            let s = s as u128;
            if s < l {
                return Err(invalid(
                    SWAP,
                    s,
                    "memory+swap limit is below the memory limit",
                ));
            }
            out.swap_mib = Some(mib_ceil(s - l));
        }
        Some(s) => return Err(invalid(SWAP, s, "is neither positive nor -1")),
    }
    Ok(())
}

fn cpu(c: &LinuxCpu, out: &mut PveResources) -> Result<()> {
    const QUOTA: &str = "linux.resources.cpu.quota";
    match c.quota() {
        None | Some(0) | Some(-1) => {}
        Some(q) if q > 0 => {
            let period = c.period().filter(|p| *p != 0).unwrap_or(DEFAULT_OCI_PERIOD);
            let units = (q as u128 * PVE_CPU_PERIOD).div_ceil(u128::from(period));
            let max = u128::from(MAX_CPUS * CpuLimit::UNITS_PER_CPU);
            // More than the schema allows means "no practical limit".
            out.cpulimit = CpuLimit::from_units(units.min(max) as u32);
        }
        Some(q) => return Err(invalid(QUOTA, q, "is neither positive nor -1")),
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        out.cpuunits = Some(shares_to_cpuunits(s));
    }
    if let Some(set) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        let n = cpuset_count("linux.resources.cpu.cpus", set)?;
        out.cores = Some(n.clamp(1, u64::from(MAX_CPUS)) as u32);
    }
    Ok(())
}

/// cgroup v1 `cpu.shares` -> PVE `cpuunits` (= cgroup v2 `cpu.weight`).
///
/// Linear, `shares * 100 / 1024`, rounded, clamped to 1..=10000 (PVE
/// clamps cpuunits to that on cgroup v2). Why not the runc/crun formula
/// [`crate::plan::shares_to_weight`] used by the LXC backend:
/// that affine map sends the default 1024 shares to weight 39, while every
/// other PVE guest defaults to cpuunits 100; a pod with a 1-CPU request
/// would get less CPU than an idle-default PVE guest next to it. With
/// 1024 -> 100 a k8s CPU request of 1 weighs the same as a default guest,
/// and ratios between pods are kept exactly (k8s derives shares linearly
/// from millicores: 250m -> 256 shares -> 25).
pub fn shares_to_cpuunits(shares: u64) -> u32 {
    let units = (u128::from(shares) * 100 + 512) / 1024;
    units.clamp(1, 10_000) as u32
}

/// Counts the CPUs of a list like `0-3,6`.
fn cpuset_count(field: &str, set: &str) -> Result<u64> {
    let bad = || invalid(field, set, "is not a CPU list like 0-3,6");
    let mut cpus = std::collections::BTreeSet::new();
    for part in set.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let lo: u32 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u32 = hi.trim().parse().map_err(|_| bad())?;
        if lo > hi || hi >= 65_536 {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    Ok(cpus.len() as u64)
}
