//! The CT's resource keys: `memory`, `swap`, `cores`, `cpulimit` and
//! `cpuunits` (the OCI mapping is `crate::plan::pve`'s).

/// The schema's minimum for `memory`.
pub const MIN_MEMORY_MIB: u64 = 16;
/// The schema's maximum for `cores` and `cpulimit`.
pub const MAX_CPUS: u32 = 8192;

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
