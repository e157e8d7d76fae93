//! What a CT's `lxc-start` said: PVE runs it from
//! `pve-container@VMID.service` with stderr to `/run/pve/ct-VMID.stderr`
//! (pve-container src/pve-container@.service), and a failed start's task
//! only says "startup for container 'VMID' failed". lxcri quotes the file.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The most of the file's end that an error quotes.
const MAX_QUOTE: u64 = 4096;

/// `DIR/ct-VMID.stderr`.
pub fn path(run_dir: &Path, vmid: u32) -> PathBuf {
    run_dir.join(format!("ct-{vmid}.stderr"))
}

/// The file's last lines (up to 4 KiB), trimmed; `None` when it is
/// missing or empty.
pub fn tail(run_dir: &Path, vmid: u32) -> Option<String> {
    let mut file = std::fs::File::open(path(run_dir, vmid)).ok()?;
    let len = file.metadata().ok()?.len();
    let skip = len.saturating_sub(MAX_QUOTE);
    file.seek(SeekFrom::Start(skip)).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_QUOTE).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    // A cut line at the start is dropped.
    let text = match (skip > 0, text.split_once('\n')) {
        (true, Some((_, rest))) => rest,
        _ => &text,
    };
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// ` (PATH: TEXT)` for an error message, or nothing.
pub fn quote(run_dir: &Path, vmid: u32) -> String {
    match tail(run_dir, vmid) {
        Some(text) => format!(" ({}: {text})", path(run_dir, vmid).display()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_the_end_of_the_file_or_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(quote(tmp.path(), 100), "");
        std::fs::write(path(tmp.path(), 100), "\n  \n").unwrap();
        assert_eq!(tail(tmp.path(), 100), None);
        std::fs::write(
            path(tmp.path(), 100),
            "lxc-start: 100: conf.c: run_buffer: 322 Script exited with status 2\n",
        )
        .unwrap();
        let q = quote(tmp.path(), 100);
        assert!(q.starts_with(" ("), "{q}");
        assert!(q.contains("ct-100.stderr: lxc-start: 100"), "{q}");
        let long = format!("{}\nlast line\n", "x".repeat(10_000));
        std::fs::write(path(tmp.path(), 101), long).unwrap();
        assert_eq!(tail(tmp.path(), 101).as_deref(), Some("last line"));
    }
}
