//! VMID allocation from lxcri's configured range (`[pve] vmid_range`).
//!
//! VMIDs are unique cluster-wide and nothing in PVE reserves one:
//! `GET /cluster/nextid` answers "free right now", so two shims asking at
//! once get the same id. The create call is the only arbiter: it fails
//! with "CT 123 already exists on node 'x'" (HTTP 500) when it loses. So
//! the allocator treats the hint as a hint, lets create decide, and on a
//! lost race tries another id. Candidates start at a random point of the
//! range, so allocators running at the same time ask about (and mostly
//! get) different ids instead of all fighting for the lowest free one.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// PVE's VMID bounds (`pve-vmid`).
pub const MIN_VMID: u32 = 100;
pub const MAX_VMID: u32 = 999_999_999;

/// Errors of the [`VmidApi`] implementation (the API client's, boxed so
/// this module does not depend on it).
pub type ApiError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum VmidError {
    #[error("vmid_range {value:?}: {reason}")]
    InvalidRange { value: String, reason: String },
    #[error("no free VMID in range {range}: every id in it is taken")]
    Exhausted { range: VmidRange },
    #[error("no free VMID found in range {range} after {attempts} attempts")]
    TooManyAttempts { range: VmidRange, attempts: u32 },
    #[error("creating CT {vmid}")]
    Create {
        vmid: u32,
        #[source]
        source: ApiError,
    },
}

pub type Result<T> = std::result::Result<T, VmidError>;

/// An inclusive range of VMIDs, e.g. `10000-19999`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VmidRange {
    start: u32,
    end: u32,
}

impl VmidRange {
    pub fn new(start: u32, end: u32) -> Result<Self> {
        let value = format!("{start}-{end}");
        let bad = |reason: &str| VmidError::InvalidRange {
            value: value.clone(),
            reason: reason.to_string(),
        };
        if start < MIN_VMID || end > MAX_VMID {
            return Err(bad("PVE VMIDs are 100..=999999999"));
        }
        if start > end {
            return Err(bad("the start is above the end"));
        }
        Ok(Self { start, end })
    }

    /// Parses `START-END` (or a single id).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || VmidError::InvalidRange {
            value: s.to_string(),
            reason: "expected START-END, e.g. 10000-19999".into(),
        };
        let num = |p: &str| -> Result<u32> {
            let p = p.trim();
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        match s.split_once('-') {
            Some((a, b)) => Self::new(num(a)?, num(b)?),
            None => {
                let n = num(s)?;
                Self::new(n, n)
            }
        }
        .map_err(|e| match e {
            VmidError::InvalidRange { reason, .. } => VmidError::InvalidRange {
                value: s.to_string(),
                reason,
            },
            other => other,
        })
    }

    pub fn start(self) -> u32 {
        self.start
    }

    pub fn end(self) -> u32 {
        self.end
    }

    pub fn len(self) -> u32 {
        self.end - self.start + 1
    }

    /// A range always holds at least one id.
    pub fn is_empty(self) -> bool {
        false
    }

    pub fn contains(self, vmid: u32) -> bool {
        (self.start..=self.end).contains(&vmid)
    }
}

impl fmt::Display for VmidRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// What create said about a VMID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// The id is taken (another guest, a leftover config or volume).
    Exists,
}

/// The two API calls allocation needs; the PVE client implements it.
pub trait VmidApi {
    /// A VMID PVE believes free, preferably `>= from` (`GET
    /// /cluster/nextid`); `None` when there is no cheap answer. Ids outside
    /// the range or already tried are ignored, and an error only costs the
    /// hint.
    fn next_id_hint(&self, from: u32) -> std::result::Result<Option<u32>, ApiError>;

    /// Creates the CT with `vmid`. `Exists` when PVE says the id is taken
    /// (see [`is_vmid_taken_message`]); any other failure is an error and
    /// ends the allocation.
    fn try_create(&self, vmid: u32) -> std::result::Result<CreateOutcome, ApiError>;
}

/// Whether a PVE error message says `vmid` is taken: "CT 123 already
/// exists on node 'pve1'", "VM 123 already exists", "unable to create CT
/// 123 - ... File exists", or a leftover volume of that id ("... subvol-123-disk-0
/// ... already exists"). All of these mean: try another id.
pub fn is_vmid_taken_message(message: &str, vmid: u32) -> bool {
    let m = message.to_ascii_lowercase();
    let id = vmid.to_string();
    let mentions_id = m.match_indices(&id).any(|(i, _)| {
        let before = m[..i].chars().next_back();
        let after = m[i + id.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    });
    mentions_id && (m.contains("already exists") || m.contains("file exists"))
}

/// Picks VMIDs from a range; cheap to share between threads.
#[derive(Debug)]
pub struct VmidAllocator {
    range: VmidRange,
    rng: AtomicU64,
}

impl VmidAllocator {
    /// At most this many create calls per allocation, unless the range is
    /// smaller (then every id is tried once).
    pub const MAX_ATTEMPTS: u32 = 32;

    pub fn new(range: VmidRange) -> Self {
        // Per-process random keys of std's hasher: different shims start
        // at different points without a rand dependency.
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        Self::with_seed(range, h.finish())
    }

    /// A deterministic allocator (tests).
    pub fn with_seed(range: VmidRange, seed: u64) -> Self {
        Self {
            range,
            rng: AtomicU64::new(seed),
        }
    }

    pub fn range(&self) -> VmidRange {
        self.range
    }

    /// splitmix64 over an atomic counter: lock-free and good enough to
    /// spread starting points.
    fn next_random(&self) -> u64 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random id of the range not tried yet (the next untried one after
    /// a random point, wrapping).
    fn random_untried(&self, tried: &HashSet<u32>) -> Option<u32> {
        let len = u64::from(self.range.len());
        let offset = self.next_random() % len;
        (0..len)
            .map(|i| self.range.start + ((offset + i) % len) as u32)
            .find(|id| !tried.contains(id))
    }

    /// Creates a CT with a free VMID of the range and returns the VMID.
    pub fn allocate(&self, api: &dyn VmidApi) -> Result<u32> {
        let attempts = Self::MAX_ATTEMPTS.min(self.range.len());
        let mut tried = HashSet::new();
        for _ in 0..attempts {
            let Some(from) = self.random_untried(&tried) else {
                break;
            };
            let candidate = match api.next_id_hint(from) {
                Ok(Some(h)) if self.range.contains(h) && !tried.contains(&h) => h,
                Ok(_) => from,
                Err(e) => {
                    tracing::debug!(from, error = %e, "VMID hint failed; trying the id itself");
                    from
                }
            };
            tried.insert(candidate);
            match api.try_create(candidate) {
                Ok(CreateOutcome::Created) => return Ok(candidate),
                Ok(CreateOutcome::Exists) => {
                    tracing::debug!(vmid = candidate, "VMID taken; trying another");
                }
                Err(source) => {
                    return Err(VmidError::Create {
                        vmid: candidate,
                        source,
                    })
                }
            }
        }
        if tried.len() as u64 >= u64::from(self.range.len()) {
            Err(VmidError::Exhausted { range: self.range })
        } else {
            Err(VmidError::TooManyAttempts {
                range: self.range,
                attempts,
            })
        }
    }
}

#[cfg(test)]
mod tests;
