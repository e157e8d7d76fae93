//! Harness for lxcri's end-to-end tests.
//!
//! Every test starts its own private containerd ([`Containerd::start`]) with
//! its own root, state, sockets and a unique namespace, imports the busybox
//! test image ([`image::busybox`], built once per test process) and drives
//! it with `ctr`. The same command runs on runc (`io.containerd.runc.v2`) and
//! on lxcri (`io.containerd.lxcri.v2`) in the same test where the two are
//! compared. Dropping the [`Containerd`] removes everything the test made,
//! also after a panic (see [`cleanup`]).
//!
//! Environment:
//! - `LXCRI_E2E_RUNTIMES`: comma list of `runc`, `lxcri` (default both);
//!   tests of a runtime not listed are skipped.
//! - `LXCRI_E2E_BIN_DIR`: where `containerd-shim-lxcri-v2` is (default the
//!   workspace's `target/debug`, honouring `CARGO_TARGET_DIR`).
//! - `LXCRI_E2E_DEBUG=1`: containerd (and so the shims) log at debug level;
//!   the log tail is printed when a test fails either way.
//! - `LXCRI_E2E_BACKEND`: `lxc` (default) or `pve`: lxcri's backend. With
//!   `pve`, each test's containerd gets its own `pve-sim` ([`pve::PveSim`])
//!   and every lxcri container is a CT made through its API.

pub mod bench;
pub mod cgroup_files;
pub mod cleanup;
pub mod cmd;
pub mod containerd;
pub mod cri;
pub mod grpc;
pub mod image;
pub mod node_faults;
pub mod ovs;
pub mod prometheus;
pub mod pve;
pub mod pve_acl;
pub mod pve_pool;
pub mod shim_task;
pub mod spec;
pub mod zfs;

use std::sync::atomic::{AtomicU32, Ordering};

pub use cmd::CmdOutput;
pub use containerd::{
    containerd_release, containerd_version, runc_is_1_2_or_later, runc_version, Containerd,
};

/// Where the lxcri shim keeps its LXC containers (`lxc.lxcpath`). LXC names
/// are `<containerd namespace>_<container id>`.
pub const LXCRI_LXC_PATH: &str = "/var/lib/lxcri/lxc";
/// The lxcri shim's per-container runtime directories: `<root>/<ns>/<id>`.
pub const LXCRI_RUN_ROOT: &str = "/run/lxcri";
/// runc's state root as containerd-shim-runc-v2 uses it: `<root>/<ns>/<id>`.
pub const RUNC_ROOT: &str = "/run/containerd/runc";
/// Name of the lxcri shim binary (containerd derives it from the runtime).
pub const LXCRI_SHIM: &str = "containerd-shim-lxcri-v2";

/// A container runtime as `ctr run --runtime` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Runc,
    Lxcri,
}

impl Runtime {
    pub const ALL: [Runtime; 2] = [Runtime::Runc, Runtime::Lxcri];

    /// containerd's runtime name (`runtime_type`).
    pub fn containerd_name(self) -> &'static str {
        match self {
            Runtime::Runc => "io.containerd.runc.v2",
            Runtime::Lxcri => "io.containerd.lxcri.v2",
        }
    }

    /// The shim binary containerd runs for this runtime.
    pub fn shim_binary(self) -> &'static str {
        match self {
            Runtime::Runc => "containerd-shim-runc-v2",
            Runtime::Lxcri => LXCRI_SHIM,
        }
    }

    /// Short name used in `LXCRI_E2E_RUNTIMES` and in messages.
    pub fn short(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Lxcri => "lxcri",
        }
    }

    /// Whether `LXCRI_E2E_RUNTIMES` selects this runtime.
    pub fn selected(self) -> bool {
        runtimes().contains(&self)
    }
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.short())
    }
}

/// The runtimes selected by `LXCRI_E2E_RUNTIMES` (default: runc and lxcri).
pub fn runtimes() -> Vec<Runtime> {
    match std::env::var("LXCRI_E2E_RUNTIMES") {
        Ok(list) if !list.trim().is_empty() => {
            let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
            for w in &wanted {
                assert!(
                    Runtime::ALL.iter().any(|r| r.short() == *w),
                    "LXCRI_E2E_RUNTIMES: unknown runtime {w:?} (use runc, lxcri)"
                );
            }
            Runtime::ALL
                .into_iter()
                .filter(|r| wanted.contains(&r.short()))
                .collect()
        }
        _ => Runtime::ALL.to_vec(),
    }
}

/// Prints why a test (or part of it) does not run, and returns whether
/// `runtime` is selected.
pub fn require(runtime: Runtime, test: &str) -> bool {
    let on = runtime.selected();
    if !on {
        eprintln!("{test}: skipped on {runtime} (not in LXCRI_E2E_RUNTIMES)");
    }
    on
}

/// Runs `each` on every id, `width` at a time.
pub fn on_each(ids: &[String], width: usize, each: impl Fn(&str) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..width {
            s.spawn(|| {
                while let Some(id) = ids.get(next.fetch_add(1, Ordering::SeqCst)) {
                    each(id);
                }
            });
        }
    });
}

/// A name unique on this machine: `<prefix>-<pid>-<counter>-<random>`.
/// Used for containerd namespaces; container ids inside a namespace only
/// need to be unique within it (see [`Containerd::new_id`]).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hex = format!("{:06x}", random_u32() & 0xff_ffff);
    format!("{prefix}-{}-{n}-{hex}", std::process::id())
}

/// Takes the machine-wide lock `path` (an exclusive `flock`, waiting for
/// other test threads and processes) and returns the open file: the lock is
/// held until it is dropped. Panics naming `what` when it cannot be taken.
pub fn machine_lock(path: &str, what: &str) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open the {what} lock file {path}: {e}"));
    // SAFETY: flock on an fd this function owns; released when the file is
    // closed.
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) },
        0,
        "flock {path}"
    );
    lock
}

/// Random bits from /dev/urandom (the clock's nanoseconds if it cannot be
/// read): for names that must not collide between test processes.
pub fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        b = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            .to_le_bytes();
    }
    u32::from_le_bytes(b)
}

/// Asserts that every runtime in `results` gave the same value, naming
/// them when not. With one runtime selected there is nothing to compare.
pub fn assert_same<T: PartialEq + std::fmt::Debug>(what: &str, results: &[(Runtime, T)]) {
    if let Some((first_rt, first)) = results.first() {
        for (rt, value) in &results[1..] {
            assert_eq!(
                value, first,
                "{what}: {rt} differs from {first_rt}\n{rt}: {value:#?}\n{first_rt}: {first:#?}"
            );
        }
    }
}
