//! Crash points for the fault tests: the places in create and delete where
//! a shim killed by SIGKILL must leave nothing that containerd's cleanup
//! (`shim delete`) or `lxcri gc` cannot remove.
//!
//! Off unless [`CRASH_POINTS_ENV`] names a directory. Then a create or
//! delete of container ID in namespace NS that reaches point P while the
//! file `<dir>/<NS>/<ID>` holds P renames it to `<dir>/<NS>/<ID>.reached`
//! and stops there for good, so that the test can kill the shim at exactly
//! that point; later runs pass. Nothing else reads or writes the directory.

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable naming the directory (shims inherit
/// containerd's environment).
pub const CRASH_POINTS_ENV: &str = "LXCRI_TEST_CRASH_POINTS";

/// Where a create or delete can be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Spec planned, state record saved, runtime directory and rootfs in
    /// place; no LXC name or VMID reserved yet.
    Prepared,
    /// pve with a warm pool: a member is this container's (recorded, its
    /// description names the container); its config is still the member's.
    Claimed,
    /// The LXC name or VMID is reserved and recorded; no config written.
    Reserved,
    /// The container's config is written; it is not started.
    Configured,
    /// The backend started it; its init has not reported yet.
    Started,
    /// Create is done but not yet answered to containerd.
    Created,
    /// Delete removed the backend's container; the rootfs, NICs and state
    /// are still there.
    TornDown,
}

impl CrashPoint {
    pub fn as_str(self) -> &'static str {
        match self {
            CrashPoint::Prepared => "prepared",
            CrashPoint::Claimed => "claimed",
            CrashPoint::Reserved => "reserved",
            CrashPoint::Configured => "configured",
            CrashPoint::Started => "started",
            CrashPoint::Created => "created",
            CrashPoint::TornDown => "torn-down",
        }
    }
}

/// Holds the calling thread for good if the test asked for `point`. The
/// environment is read once per process: a create passes here five times.
pub(super) fn reached(namespace: &str, id: &str, point: CrashPoint) {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let Some(dir) = DIR.get_or_init(|| std::env::var_os(CRASH_POINTS_ENV).map(PathBuf::from))
    else {
        return;
    };
    let file = dir.join(namespace).join(id);
    match fs::read_to_string(&file) {
        Ok(wanted) if wanted.trim() == point.as_str() => {}
        _ => return,
    }
    // One hold per request: the cleanup that follows the kill runs the
    // same code and must get through.
    let mut reached = file.clone().into_os_string();
    reached.push(".reached");
    if fs::rename(&file, &reached).is_err() {
        return;
    }
    tracing::warn!(
        namespace,
        id,
        point = point.as_str(),
        "held at a crash point"
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
