//! Which slot of the pool each container holds: one file per taken slot in
//! the runtime root, made with `O_EXCL` so two creates racing for a slot
//! cannot both win, and holding its owner (`namespace/id`) so a delete frees
//! only its own and `lxcri gc` can tell a forgotten one.
//!
//! The search starts at a slot picked from the owner's name, so a create
//! on a busy node tries few slots, not all of them.
//!
//! Slots are numbers within one pool: a `pool` file says which, and a
//! different pool is refused while any slot of the old one is taken (its
//! slot numbers would stand for other ids, and ranges could overlap).

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::pool::{IdPool, IdRange};

#[derive(Debug, Error)]
pub enum SlotError {
    #[error("userns.pool {pool}: all {slots} ranges are in use")]
    Exhausted { pool: String, slots: u32 },
    #[error("userns.pool or userns.size changed (from {was} to {now}) while containers hold ids of the old pool: delete them first")]
    PoolChanged { was: String, now: String },
    #[error("id range slot {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

type Result<T> = std::result::Result<T, SlotError>;

/// Names the pool the slot numbers belong to (`START-END/SIZE`).
const POOL_FILE: &str = "pool";

/// The taken slots, as files in `dir`.
#[derive(Debug, Clone)]
pub struct IdSlots {
    dir: PathBuf,
}

impl IdSlots {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, slot: u32) -> PathBuf {
        self.dir.join(slot.to_string())
    }

    fn io(path: &Path) -> impl FnOnce(io::Error) -> SlotError + '_ {
        move |source| SlotError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Takes a free slot of `pool` for `owner`; returns it and its ids.
    pub fn take(&self, pool: &IdPool, owner: &str) -> Result<(u32, IdRange)> {
        fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        self.check_pool(pool)?;
        let slots = pool.slots();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        owner.hash(&mut h);
        let first = (h.finish() % u64::from(slots)) as u32;
        for i in 0..slots {
            let slot = (first + i) % slots;
            let path = self.path(slot);
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    if let Err(e) = f.write_all(owner.as_bytes()) {
                        let _ = fs::remove_file(&path);
                        return Err(Self::io(&path)(e));
                    }
                    return Ok((slot, pool.range(slot)));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Self::io(&path)(e)),
            }
        }
        Err(SlotError::Exhausted {
            pool: pool.to_string(),
            slots,
        })
    }

    /// Records `pool` as the one slots are numbered in, unless slots of
    /// another are still taken.
    fn check_pool(&self, pool: &IdPool) -> Result<()> {
        let path = self.dir.join(POOL_FILE);
        let now = format!("{pool}/{}", pool.size());
        match fs::read_to_string(&path) {
            Ok(was) if was == now => return Ok(()),
            Ok(was) if !self.taken()?.is_empty() => {
                return Err(SlotError::PoolChanged { was, now });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Self::io(&path)(e)),
        }
        // Whole or not at all: a concurrent take must never read it empty.
        let tmp = self.dir.join(format!(
            ".{POOL_FILE}.{}.{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        fs::write(&tmp, &now)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(Self::io(&path))
    }

    /// Frees `slot` if `owner` holds it. Idempotent.
    pub fn release(&self, slot: u32, owner: &str) -> Result<()> {
        let path = self.path(slot);
        match fs::read_to_string(&path) {
            Ok(holder) if holder == owner => fs::remove_file(&path)
                .or_else(not_found_ok)
                .map_err(Self::io(&path)),
            Ok(_) => Ok(()),
            Err(e) => not_found_ok(e).map_err(Self::io(&path)),
        }
    }

    /// Every taken slot and its owner (for `lxcri gc`).
    pub fn taken(&self) -> Result<Vec<(u32, String)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Self::io(&self.dir))?;
            let Some(slot) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            // A slot being written this instant reads empty: still taken.
            let owner = fs::read_to_string(entry.path()).unwrap_or_default();
            out.push((slot, owner));
        }
        out.sort();
        Ok(out)
    }
}

fn not_found_ok(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pool {
        _dir: tempfile::TempDir,
        slots: IdSlots,
        pool: IdPool,
    }

    impl Pool {
        fn take(&self, owner: &str) -> Result<(u32, IdRange)> {
            self.slots.take(&self.pool, owner)
        }
    }

    fn slots(n: u32) -> Pool {
        let dir = tempfile::tempdir().unwrap();
        let pool = IdPool::new(1_000_000, 1_000_000 + n * 65536 - 1, 65536).unwrap();
        let slots = IdSlots::new(&dir.path().join("slots"));
        Pool {
            _dir: dir,
            slots,
            pool,
        }
    }

    #[test]
    fn each_owner_gets_its_own_range_until_the_pool_is_full() {
        let s = slots(4);
        let mut starts: Vec<u32> = (0..4)
            .map(|i| s.take(&format!("ns/c{i}")).unwrap().1.host_start)
            .collect();
        starts.sort();
        assert_eq!(starts, [1_000_000, 1_065_536, 1_131_072, 1_196_608]);
        let e = s.take("ns/c4").unwrap_err();
        assert_eq!(
            e.to_string(),
            "userns.pool 1000000-1262143: all 4 ranges are in use"
        );
        assert_eq!(s.slots.taken().unwrap().len(), 4);
    }

    #[test]
    fn a_release_frees_only_the_owners_slot() {
        let s = slots(2);
        let (a, _) = s.take("ns/a").unwrap();
        let (b, _) = s.take("ns/b").unwrap();
        assert_ne!(a, b);
        // Someone else's slot is left alone; a second release is fine.
        s.slots.release(a, "ns/b").unwrap();
        assert_eq!(s.slots.taken().unwrap().len(), 2);
        s.slots.release(a, "ns/a").unwrap();
        s.slots.release(a, "ns/a").unwrap();
        assert_eq!(s.slots.taken().unwrap(), [(b, "ns/b".to_string())]);
        // The freed range is handed out again.
        assert_eq!(s.take("ns/c").unwrap().0, a);
    }

    #[test]
    fn another_pool_waits_until_the_old_ones_slots_are_free() {
        let s = slots(2);
        let (a, _) = s.take("ns/a").unwrap();
        let other = IdPool::new(2_000_000, 2_000_000 + 2 * 65536 - 1, 65536).unwrap();
        let e = s.slots.take(&other, "ns/b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "userns.pool or userns.size changed (from 1000000-1131071/65536 to \
             2000000-2131071/65536) while containers hold ids of the old pool: delete them first"
        );
        s.slots.release(a, "ns/a").unwrap();
        assert!(s.slots.take(&other, "ns/b").unwrap().1.host_start >= 2_000_000);
    }

    #[test]
    fn concurrent_takes_never_share_a_slot() {
        let s = slots(64);
        let got: Vec<u32> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..40)
                .map(|i| {
                    let s = &s;
                    scope.spawn(move || s.take(&format!("ns/c{i}")).unwrap().0)
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut unique = got.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), got.len());
    }
}
