//! The pool of host ids lxcri hands out, cut into equal per-container
//! ranges ("slots").

use std::fmt;

use thiserror::Error;

/// Ids below this are the host's own users; a pool must start above them.
pub const MIN_POOL_START: u32 = 65536;
/// The host ids PVE maps every unprivileged CT without a custom `lxc.idmap`
/// to, all CTs alike (pve-container src/PVE/LXC.pm `update_lxc_config`:
/// `lxc.idmap = u 0 100000 65536`, and `g` the same).
pub const PVE_CT_IDS: IdRange = IdRange {
    host_start: 100_000,
    len: 65536,
};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdPoolError {
    #[error("not START-END (host ids, e.g. 1000000-68108863)")]
    Syntax,
    #[error(
        "starts at {0}, below {MIN_POOL_START}: the host's own ids are not lent to containers"
    )]
    TooLow(u32),
    #[error("ends at 4294967295, which is (uid_t)-1, not an id")]
    NotAnId,
    #[error("end {end} is below start {start}")]
    Reversed { start: u32, end: u32 },
    #[error("ids per container must be 65536 or a multiple of 65536 up to 1048576 (got {0})")]
    Size(u32),
    #[error("{len} ids hold no range of {size}")]
    TooSmall { len: u64, size: u32 },
}

/// `START-END` host ids, inclusive, and how many each container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdPool {
    start: u32,
    end: u32,
    size: u32,
}

/// One container's ids: container id 0.. maps to host `host_start`..,
/// `len` of them, for uids and gids alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdRange {
    pub host_start: u32,
    pub len: u32,
}

impl IdPool {
    pub fn parse(range: &str, size: u32) -> Result<Self, IdPoolError> {
        let (a, b) = range.split_once('-').ok_or(IdPoolError::Syntax)?;
        let num = |s: &str| {
            (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
                .ok_or(IdPoolError::Syntax)
        };
        let (start, end) = (num(a)?, num(b)?);
        Self::new(start, end, size)
    }

    pub fn new(start: u32, end: u32, size: u32) -> Result<Self, IdPoolError> {
        if start < MIN_POOL_START {
            return Err(IdPoolError::TooLow(start));
        }
        if end < start {
            return Err(IdPoolError::Reversed { start, end });
        }
        if end == u32::MAX {
            return Err(IdPoolError::NotAnId);
        }
        // Whole 65536 blocks: what a container image's ids (up to nobody,
        // 65534) need, and PVE's own unit.
        if size == 0 || size % 65536 != 0 || size > 16 * 65536 {
            return Err(IdPoolError::Size(size));
        }
        let pool = Self { start, end, size };
        if pool.slots() == 0 {
            return Err(IdPoolError::TooSmall {
                len: pool.len(),
                size,
            });
        }
        Ok(pool)
    }

    fn len(&self) -> u64 {
        u64::from(self.end) - u64::from(self.start) + 1
    }

    /// How many containers the pool holds at once.
    pub fn slots(&self) -> u32 {
        (self.len() / u64::from(self.size)) as u32
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    /// Whether any of the `count` host ids from `first` is the pool's.
    pub fn overlaps(&self, first: u32, count: u32) -> bool {
        let end = u64::from(first) + u64::from(count);
        count > 0 && first <= self.end && end > u64::from(self.start)
    }

    /// The ids of slot `n` (`n < slots()`).
    pub fn range(&self, n: u32) -> IdRange {
        debug_assert!(n < self.slots());
        IdRange {
            host_start: self.start + n * self.size,
            len: self.size,
        }
    }
}

impl fmt::Display for IdPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_is_cut_into_disjoint_ranges() {
        let p = IdPool::parse("1000000-1196607", 65536).unwrap();
        assert_eq!(p.slots(), 3);
        assert_eq!(
            (0..3).map(|n| p.range(n).host_start).collect::<Vec<_>>(),
            [1_000_000, 1_065_536, 1_131_072]
        );
        // One id short of a fourth.
        assert_eq!(IdPool::parse("1000000-1262142", 65536).unwrap().slots(), 3);
        assert_eq!(p.to_string(), "1000000-1196607");
    }

    #[test]
    fn bad_pools_are_named() {
        for (range, size, want) in [
            ("1000000", 65536, IdPoolError::Syntax),
            ("1000000-", 65536, IdPoolError::Syntax),
            ("-5-6", 65536, IdPoolError::Syntax),
            ("1e6-2e6", 65536, IdPoolError::Syntax),
            ("1000-200000", 65536, IdPoolError::TooLow(1000)),
            (
                "2000000-1000000",
                65536,
                IdPoolError::Reversed {
                    start: 2_000_000,
                    end: 1_000_000,
                },
            ),
            ("1000000-2000000", 1000, IdPoolError::Size(1000)),
            ("1000000-2000000", 0, IdPoolError::Size(0)),
            (
                "1000000-1065534",
                65536,
                IdPoolError::TooSmall {
                    len: 65535,
                    size: 65536,
                },
            ),
        ] {
            assert_eq!(IdPool::parse(range, size), Err(want), "{range} {size}");
        }
    }

    #[test]
    fn overlaps_counts_both_ends() {
        let p = IdPool::parse("1000000-1196607", 65536).unwrap();
        for (first, count, want) in [
            (934_464, 65536, false), // ends at 999999
            (934_464, 65537, true),
            (1_196_607, 1, true),
            (1_196_608, 65536, false),
            (0, u32::MAX, true),
            (1_000_000, 0, false),
            (PVE_CT_IDS.host_start, PVE_CT_IDS.len, false),
        ] {
            assert_eq!(p.overlaps(first, count), want, "{first} {count}");
        }
        let low = IdPool::parse("65536-231071", 65536).unwrap();
        assert!(low.overlaps(PVE_CT_IDS.host_start, PVE_CT_IDS.len));
    }

    #[test]
    fn the_top_of_the_id_space_is_usable() {
        let p = IdPool::parse("4294836224-4294967294", 65536).unwrap();
        assert_eq!(p.slots(), 1);
        assert_eq!(p.range(0).host_start, 4_294_836_224);
        assert_eq!(
            IdPool::parse("4294836224-4294967295", 65536),
            Err(IdPoolError::NotAnId)
        );
    }
}
