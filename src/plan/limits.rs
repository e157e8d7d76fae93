//! The memory and CPU limits of `linux.resources`, checked once. Both
//! translations read them: the cgroup files that the lxc backend and
//! `update` write ([`super::cgroup_settings`]), and the CT keys the pve
//! backend sends ([`super::pve`]). As in runc, a zero means "not set".

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

use super::{invalid, unsupported, Result};
pub use crate::cgroup::CpuSet;

const MEMORY: &str = "linux.resources.memory";
const CPU: &str = "linux.resources.cpu";

/// The limits of `linux.resources` that both backends express.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory: MemoryLimits,
    pub cpu: CpuLimits,
}

impl Limits {
    pub fn from_oci(res: &LinuxResources) -> Result<Self> {
        Ok(Self {
            memory: res
                .memory()
                .as_ref()
                .map(MemoryLimits::from_oci)
                .transpose()?
                .unwrap_or_default(),
            cpu: res
                .cpu()
                .as_ref()
                .map(CpuLimits::from_oci)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// A limit: a number, or OCI's `-1`, "unlimited".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Unlimited,
    Value(u64),
}

impl Limit {
    /// `None` for unset (absent or 0); positive or -1 otherwise.
    fn from_oci(field: &str, v: Option<i64>) -> Result<Option<Limit>> {
        match v {
            None | Some(0) => Ok(None),
            Some(-1) => Ok(Some(Limit::Unlimited)),
            Some(n) if n > 0 => Ok(Some(Limit::Value(n as u64))),
            Some(n) => Err(invalid(field, &format!("{n} is neither positive nor -1"))),
        }
    }

    /// The number, `None` for unlimited.
    pub fn value(self) -> Option<u64> {
        match self {
            Limit::Unlimited => None,
            Limit::Value(n) => Some(n),
        }
    }

    /// As cgroup v1 files take it (`-1` for unlimited).
    pub fn v1(self) -> String {
        self.value().map_or_else(|| "-1".into(), |n| n.to_string())
    }

    /// As cgroup v2 files take it (`max` for unlimited).
    pub fn v2(self) -> String {
        self.value().map_or_else(|| "max".into(), |n| n.to_string())
    }
}

/// `linux.resources.memory`, checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Bytes.
    pub limit: Option<Limit>,
    pub reservation: Option<Limit>,
    /// Memory plus swap, in bytes, as OCI (and cgroup v1) count it.
    pub swap: Option<Limit>,
}

impl MemoryLimits {
    pub fn from_oci(m: &LinuxMemory) -> Result<Self> {
        let limits = Self {
            limit: Limit::from_oci(&format!("{MEMORY}.limit"), m.limit())?,
            reservation: Limit::from_oci(&format!("{MEMORY}.reservation"), m.reservation())?,
            swap: Limit::from_oci(&format!("{MEMORY}.swap"), m.swap())?,
        };
        if m.kernel().is_some_and(|k| k != 0) {
            return Err(unsupported(
                &format!("{MEMORY}.kernel"),
                "kernel memory limits are deprecated and not implemented",
            ));
        }
        if m.kernel_tcp().is_some_and(|k| k != 0) {
            return Err(unsupported(
                &format!("{MEMORY}.kernelTCP"),
                "kernel TCP memory limits are not implemented",
            ));
        }
        let finite = |l: Option<Limit>| l.and_then(Limit::value);
        if let (Some(mem), Some(swap)) = (finite(limits.limit), finite(limits.swap)) {
            if swap < mem {
                return Err(invalid(
                    &format!("{MEMORY}.swap"),
                    &format!("memory+swap limit {swap} is below the memory limit {mem}"),
                ));
            }
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(invalid(
                    &format!("{MEMORY}.swappiness"),
                    &format!("{s} is above 100"),
                ));
            }
        }
        Ok(limits)
    }
}

/// The CPU limits of `linux.resources.cpu` both backends express, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuLimits {
    /// CFS quota in microseconds per `period`.
    pub quota: Option<Limit>,
    pub period: Option<u64>,
    pub shares: Option<u64>,
    pub cpus: Option<CpuSet>,
    pub mems: Option<CpuSet>,
}

impl CpuLimits {
    pub fn from_oci(c: &LinuxCpu) -> Result<Self> {
        Ok(Self {
            quota: Limit::from_oci(&format!("{CPU}.quota"), c.quota())?,
            period: c.period().filter(|p| *p != 0),
            shares: shares(c.shares())?,
            cpus: cpuset(&format!("{CPU}.cpus"), c.cpus().as_deref())?,
            mems: cpuset(&format!("{CPU}.mems"), c.mems().as_deref())?,
        })
    }
}

/// The kernel's range of v1 `cpu.shares` (kernel/sched `MIN_SHARES`,
/// `MAX_SHARES`), which v2's `cpu.weight` is converted from.
pub(super) const SHARES: std::ops::RangeInclusive<u64> = 2..=262_144;

/// `None` for none or 0; outside the kernel's range refused in runc's
/// words (its v1 cpu controller reads the value back and names the
/// bound; on v2 the converted weight is out of `cpu.weight`'s range), not
/// clamped by the kernel.
fn shares(shares: Option<u64>) -> Result<Option<u64>> {
    match shares.filter(|s| *s != 0) {
        Some(s) if s < *SHARES.start() => Err(invalid(
            &format!("{CPU}.shares"),
            &format!("{s}: the minimum allowed cpu-shares is {}", SHARES.start()),
        )),
        Some(s) if s > *SHARES.end() => Err(invalid(
            &format!("{CPU}.shares"),
            &format!("{s}: the maximum allowed cpu-shares is {}", SHARES.end()),
        )),
        s => Ok(s),
    }
}

/// `None` for an absent or empty list.
fn cpuset(field: &str, text: Option<&str>) -> Result<Option<CpuSet>> {
    CpuSet::parse(text.unwrap_or_default()).map_err(|e| invalid(field, &e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuset_errors_name_the_field() {
        assert_eq!(cpuset("f", None).unwrap(), None);
        assert_eq!(cpuset("f", Some("0-1")).unwrap().unwrap().count(), 2);
        let err = cpuset("f", Some("3-1")).unwrap_err().to_string();
        assert_eq!(err, "f: \"3-1\" is not a list like 0-3,6");
    }

    #[test]
    fn cpu_shares_outside_the_kernels_range_are_refused() {
        assert_eq!(shares(None).unwrap(), None);
        assert_eq!(shares(Some(0)).unwrap(), None);
        assert_eq!(shares(Some(2)).unwrap(), Some(2));
        assert_eq!(shares(Some(262_144)).unwrap(), Some(262_144));
        assert_eq!(
            shares(Some(1)).unwrap_err().to_string(),
            "linux.resources.cpu.shares: 1: the minimum allowed cpu-shares is 2"
        );
        assert_eq!(
            shares(Some(262_145)).unwrap_err().to_string(),
            "linux.resources.cpu.shares: 262145: the maximum allowed cpu-shares is 262144"
        );
    }

    #[test]
    fn limits_are_positive_or_unlimited() {
        assert_eq!(Limit::from_oci("f", Some(0)).unwrap(), None);
        assert_eq!(
            Limit::from_oci("f", Some(-1)).unwrap(),
            Some(Limit::Unlimited)
        );
        assert_eq!(Limit::Unlimited.v1(), "-1");
        assert_eq!(Limit::Unlimited.v2(), "max");
        assert_eq!(Limit::Value(5).v2(), "5");
        let err = Limit::from_oci("f", Some(-2)).unwrap_err().to_string();
        assert_eq!(err, "f: -2 is neither positive nor -1");
    }
}
