//! What the long-lived shim keeps resident between operations.
//!
//! A shim lives as long as its pod, but most of its code runs once per
//! container: parsing the spec, planning, rendering configs, seccomp, the
//! PVE client. Once an operation is over, the shim gives back what that
//! code left mapped: the heap's free pages, and its mappings of executable
//! code (of its own binary and the libraries). The code pages stay in the
//! page cache, shared with every other shim, and are mapped again on the
//! next call that runs them (minor faults, no I/O); until then they are the
//! kernel's to reclaim, not this process's resident memory. The same goes
//! for read-only data (tables, strings, unwind info) as long as a page is
//! still the file's own, never a private copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the shim must be idle before it trims: a burst of calls (a
/// pod's containers, `ctr run`'s create + start) trims once, after it.
const QUIET: Duration = Duration::from_secs(1);

/// One malloc arena for every thread. The shim's threads (stdio copiers,
/// tokio's blocking pool) rarely allocate at once, and glibc would give
/// each its own arena: heap pages per thread that are never returned.
/// Call before any thread starts.
pub fn single_malloc_arena() {
    // SAFETY: mallopt only sets an allocator parameter; no other thread
    // exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Trims once the shim has been quiet for [`QUIET`] after an operation.
#[derive(Default)]
pub struct Trimmer {
    /// Bumped by every operation; a pending trim runs only if it is unchanged.
    generation: Arc<AtomicU64>,
}

impl Trimmer {
    /// Call when an operation that ran one-off code has finished.
    pub fn after_operation(&self) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let current = self.generation.clone();
        tokio::spawn(async move {
            tokio::time::sleep(QUIET).await;
            if current.load(Ordering::SeqCst) == generation {
                trim();
            }
        });
    }
}

/// Returns free heap pages and drops this process's mappings of file pages.
fn trim() {
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
    let (Ok(maps), Ok(pagemap)) = (
        std::fs::read_to_string("/proc/self/maps"),
        std::fs::File::open("/proc/self/pagemap"),
    ) else {
        return;
    };
    let page = page_size();
    for (start, end) in private_file_mappings(&maps) {
        let Some(entries) = read_pagemap(&pagemap, start, end, page) else {
            continue;
        };
        for (from, to) in file_page_runs(start, &entries, page) {
            // SAFETY: every page of the range is mapped privately from a
            // file and still is the file's own page (never written: no
            // private copy, see `file_page_runs`), so dropping it loses
            // nothing; the next access maps the file's page again.
            unsafe {
                libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_DONTNEED);
            }
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    }
}

/// The `/proc/self/pagemap` entries (one u64 per page) of `[start, end)`.
fn read_pagemap(
    pagemap: &std::fs::File,
    start: usize,
    end: usize,
    page: usize,
) -> Option<Vec<u64>> {
    use std::os::unix::fs::FileExt;
    let pages = (end - start) / page;
    let mut raw = vec![0u8; pages * 8];
    pagemap
        .read_exact_at(&mut raw, (start / page * 8) as u64)
        .ok()?;
    Some(
        raw.chunks_exact(8)
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
            .collect(),
    )
}

/// Present (bit 63) and still the file's page or shared (bit 61): in a
/// private file mapping, a page that was written is an anonymous private
/// copy and has bit 61 clear (Documentation/admin-guide/mm/pagemap.rst).
const PRESENT: u64 = 1 << 63;
const FILE_PAGE: u64 = 1 << 61;

/// The address ranges, within the mapping at `start`, of consecutive pages
/// that are present and the file's own pages. Private copies (relocated
/// read-only data, written `.data`) are never in them.
fn file_page_runs(start: usize, entries: &[u64], page: usize) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e & PRESENT == 0 || e & FILE_PAGE == 0 {
            continue;
        }
        let addr = start + i * page;
        match runs.last_mut() {
            Some((_, end)) if *end == addr => *end += page,
            _ => runs.push((addr, addr + page)),
        }
    }
    runs
}

/// The address ranges of private mappings of files in a `/proc/PID/maps`
/// text (shared mappings and anonymous memory are never listed).
fn private_file_mappings(maps: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let path = fields.nth(3)?;
            if !perms.ends_with('p') || !path.starts_with('/') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some((start, end))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_private_file_mappings_are_listed() {
        let maps = "\
55d0c0a00000-55d0c0b00000 r--p 00000000 fd:01 123 /usr/bin/shim
55d0c0b00000-55d0c0f00000 r-xp 00100000 fd:01 123 /usr/bin/shim
55d0c0f00000-55d0c1000000 r--p 00500000 fd:01 123 /usr/bin/shim
55d0c1000000-55d0c1010000 rw-p 00600000 fd:01 123 /usr/bin/shim
7f0000000000-7f0000001000 r-xp 00000000 00:00 0
7f0000100000-7f0000200000 r-xs 00000000 fd:01 9 /dev/shm/x
7f0000200000-7f0000300000 r-xp 00028000 fd:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
";
        assert_eq!(
            private_file_mappings(maps),
            vec![
                (0x55d0c0a00000, 0x55d0c0b00000),
                (0x55d0c0b00000, 0x55d0c0f00000),
                (0x55d0c0f00000, 0x55d0c1000000),
                (0x55d0c1000000, 0x55d0c1010000),
                (0x7f0000200000, 0x7f0000300000)
            ]
        );
    }

    #[test]
    fn only_present_file_pages_are_dropped() {
        let anon_copy = PRESENT | 0x1234;
        let file = PRESENT | FILE_PAGE | 0x99;
        let absent = 0;
        let entries = [file, file, anon_copy, absent, file, FILE_PAGE, file, file];
        assert_eq!(
            file_page_runs(0x1000, &entries, 0x1000),
            vec![(0x1000, 0x3000), (0x5000, 0x6000), (0x7000, 0x9000)]
        );
    }

    fn rss_file_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("RssFile:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    #[test]
    fn trimming_drops_file_pages_and_keeps_the_process_working() {
        let files = private_file_mappings(&std::fs::read_to_string("/proc/self/maps").unwrap());
        assert!(!files.is_empty(), "a test binary maps its own code");
        let before = rss_file_kib();
        trim();
        let after = rss_file_kib();
        assert!(
            after < before,
            "file-backed RSS {before} KiB -> {after} KiB"
        );
        // Code, read-only data and relocated data (the formatting machinery's
        // vtables) still work after the file's pages were dropped.
        static TABLE: [&str; 3] = ["a", "b", "c"];
        let v: Vec<u64> = (0..1000).collect();
        assert_eq!(v.iter().sum::<u64>(), 499_500);
        assert_eq!(format!("{:?} {}", Some(1), TABLE.join("")), "Some(1) abc");
    }
}
