//! A list of CPUs or memory nodes (`cpuset.cpus`, `cpuset.mems`), checked
//! once: the plan reads it from the spec, the lxc config, `update` and
//! PVE's `VMID.conf` write it.

/// A list of CPUs or memory nodes like `0-3,6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSet {
    text: String,
    count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a list like 0-3,6")]
pub struct CpuSetError(String);

impl CpuSet {
    /// The highest CPU number accepted (the kernel's own limit is lower on
    /// every machine lxcri runs on).
    const MAX_CPU: u32 = 65_535;

    /// `None` for an empty list.
    pub fn parse(text: &str) -> Result<Option<Self>, CpuSetError> {
        if text.is_empty() {
            return Ok(None);
        }
        let bad = || CpuSetError(text.to_string());
        let mut members = std::collections::BTreeSet::new();
        for part in text.split(',') {
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            let number = |s: &str| -> Result<u32, CpuSetError> {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                s.parse().map_err(|_| bad())
            };
            let (lo, hi) = (number(lo)?, number(hi)?);
            if lo > hi || hi > Self::MAX_CPU {
                return Err(bad());
            }
            members.extend(lo..=hi);
        }
        Ok(Some(Self {
            text: text.to_string(),
            count: members.len(),
        }))
    }

    /// The list as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How many CPUs (or nodes) it names.
    pub fn count(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpusets_are_parsed_and_counted() {
        let count = |s| CpuSet::parse(s).map(|c| c.map(|c| c.count()));
        assert_eq!(count("0-3,6").unwrap(), Some(5));
        assert_eq!(count("0,0-1").unwrap(), Some(2));
        assert_eq!(count("7").unwrap(), Some(1));
        assert_eq!(count("").unwrap(), None);
        for bad in ["x", "3-1", "1,,2", "0-", " 1", "1-2-3", "70000", "1\n2"] {
            let err = count(bad).unwrap_err().to_string();
            assert!(err.ends_with("is not a list like 0-3,6"), "{bad}: {err}");
        }
    }
}
