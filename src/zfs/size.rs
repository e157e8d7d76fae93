//! Sizes of container volumes: the `refquota` of a clone and the `size=`
//! PVE shows on its `rootfs`, which must be the same number.

use std::fmt;
use std::str::FromStr;

const MIB: u64 = 1 << 20;

/// A disk size in whole MiB (ZFS and PVE both take `8G`, `512M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DiskSize {
    mib: u64,
}

/// Upper bound: 1 PiB, far above any CT rootfs and clear of overflow.
const MAX_MIB: u64 = 1 << 30;

impl DiskSize {
    pub fn from_mib(mib: u64) -> Option<Self> {
        (1..=MAX_MIB).contains(&mib).then_some(Self { mib })
    }

    pub fn mib(self) -> u64 {
        self.mib
    }

    pub fn bytes(self) -> u64 {
        self.mib * MIB
    }

    /// GiB as PVE's `STORAGE:SIZE_IN_GiB` allocation takes it (`8`, `0.5`);
    /// a MiB count over 1024 is a dyadic fraction, so the decimal is exact.
    pub fn gib_decimal(self) -> String {
        let whole = self.mib / 1024;
        let rest = self.mib % 1024;
        if rest == 0 {
            return whole.to_string();
        }
        let frac = format!("{}", rest as f64 / 1024.0);
        format!("{whole}{}", frac.trim_start_matches('0'))
    }
}

impl fmt::Display for DiskSize {
    /// In the largest unit that divides it, as PVE prints `size=`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.mib;
        if m % (1 << 20) == 0 {
            write!(f, "{}T", m >> 20)
        } else if m % 1024 == 0 {
            write!(f, "{}G", m >> 10)
        } else {
            write!(f, "{m}M")
        }
    }
}

impl FromStr for DiskSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a size like 8G or 512M (a whole number of M, G or T)");
        let (digits, shift) = match s.as_bytes().last() {
            Some(b'M') => (&s[..s.len() - 1], 0),
            Some(b'G') => (&s[..s.len() - 1], 10),
            Some(b'T') => (&s[..s.len() - 1], 20),
            _ => return Err(bad()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        n.checked_mul(1 << shift)
            .and_then(DiskSize::from_mib)
            .ok_or_else(|| format!("{s:?} must be between 1M and 1024T"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_in_the_largest_unit() {
        for (text, mib, shown) in [
            ("8G", 8192, "8G"),
            ("512M", 512, "512M"),
            ("2048M", 2048, "2G"),
            ("1T", 1 << 20, "1T"),
            ("1M", 1, "1M"),
        ] {
            let s: DiskSize = text.parse().unwrap();
            assert_eq!(s.mib(), mib, "{text}");
            assert_eq!(s.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn refuses_what_zfs_or_pve_would_misread() {
        for bad in ["", "8", "8g", "1.5G", "-1G", "0M", "G", "8 G", "2000000T"] {
            assert!(bad.parse::<DiskSize>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn gib_decimal_is_exact() {
        let gib = |s: &str| s.parse::<DiskSize>().unwrap().gib_decimal();
        assert_eq!(gib("8G"), "8");
        assert_eq!(gib("512M"), "0.5");
        assert_eq!(gib("1M"), "0.0009765625");
        assert_eq!(gib("1536M"), "1.5");
    }
}
