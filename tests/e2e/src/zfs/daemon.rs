//! The machine's zfs-fuse daemon: started once when no daemon answers,
//! and left running.
//!
//! Debian's zfs-fuse refuses to start, exiting 1 and saying why only to
//! syslog (absent on a test machine), when its `--pidfile` already exists
//! or when another daemon holds its lock (`/var/lock/zfs/zfs_lock`). A pid
//! file outlives its daemon when the machine (or its disk image) is reused
//! after the daemon has gone, since `/run` here is not a tmpfs: such a file
//! is removed first, and a failed start names the lock holder.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{zpool, CMD_TIMEOUT};
use crate::cleanup::processes;
use crate::{cmd, machine_lock};

/// Serialises starting the daemon between test threads and processes.
const LOCK_FILE: &str = "/run/lock/lxcri-e2e-zfs-fuse.lock";
/// The pid file of a daemon this harness started.
const PID_FILE: &str = "/run/lxcri-e2e-zfs-fuse.pid";
/// Where the output of starting a daemon goes (shown when it fails).
const LOG_FILE: &str = "/run/lxcri-e2e-zfs-fuse.log";
/// The lock every zfs-fuse daemon holds while it runs (one per machine).
const DAEMON_LOCK: &str = "/var/lock/zfs/zfs_lock";
/// Where Debian installs the daemon (`/sbin` on older releases).
const DAEMON_PATHS: [&str; 2] = ["/usr/sbin/zfs-fuse", "/sbin/zfs-fuse"];
/// How long the daemon may take to answer after being started, or a
/// running one that does not answer yet (starting, stopping) to settle.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a zfs-fuse daemon answers (`zpool list` succeeds).
fn daemon_up() -> bool {
    zpool(&["list"]).success()
}

/// Makes sure the machine's zfs-fuse daemon runs, starting
/// `zfs-fuse --pidfile /run/lxcri-e2e-zfs-fuse.pid` if it does not.
///
/// The daemon is left running when the tests end: zfs-fuse allows only one
/// per machine, so it is a machine service (like the system containerd)
/// that other tests, and other users, may share. Panics when it cannot be
/// started (zfs-fuse missing: `apt-get install zfs-fuse`, or
/// `scripts/install-deps`), saying why.
pub fn ensure_daemon() {
    if daemon_up() {
        return;
    }
    let lock = machine_lock(LOCK_FILE, "zfs-fuse test");
    // Another thread or process may have started it while we waited.
    if daemon_up() {
        return;
    }
    let Some(daemon) = daemon_path() else {
        panic!(
            "zfs-fuse is not installed (none of {DAEMON_PATHS:?}) and no ZFS daemon \
             answers `zpool list`: install it with `apt-get install zfs-fuse` \
             (or scripts/install-deps)"
        );
    };
    remove_stale_pid_file(Path::new(PID_FILE));
    // A daemon that runs but does not answer may be starting or stopping:
    // give it time to settle either way before starting another.
    if daemon_lock_holder().is_some() {
        // Some(true): it answers; Some(false): it is gone.
        let answered = cmd::poll(START_TIMEOUT, || {
            if daemon_up() {
                Some(true)
            } else {
                daemon_lock_holder().is_none().then_some(false)
            }
        });
        if answered == Some(true) {
            return;
        }
    }
    start_daemon(&daemon);
    if cmd::poll(START_TIMEOUT, || daemon_up().then_some(())).is_none() {
        panic!(
            "started `{} --pidfile {PID_FILE}` but `zpool list` still fails after \
             {START_TIMEOUT:?}: {}\n  daemon output ({LOG_FILE}): {:?}\n  {}",
            daemon.display(),
            zpool(&["list"]),
            read_log(),
            why_not_running()
        );
    }
    drop(lock);
}

/// The daemon binary: `which zfs-fuse`, else the usual places.
fn daemon_path() -> Option<PathBuf> {
    let which = cmd::run(Command::new("which").arg("zfs-fuse"), CMD_TIMEOUT);
    let found = which.stdout.trim();
    if which.success() && !found.is_empty() {
        return Some(PathBuf::from(found));
    }
    DAEMON_PATHS.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Removes `file` (the daemon's pid file, [`PID_FILE`]) unless the process
/// it names is a live zfs-fuse: a pid file left by a daemon that is gone
/// makes zfs-fuse refuse to start.
fn remove_stale_pid_file(file: &Path) {
    let Ok(text) = fs::read_to_string(file) else {
        return;
    };
    let live = text
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|&pid| is_zfs_fuse(pid));
    if live.is_none() {
        eprintln!(
            "removing {} ({:?}): its daemon is gone",
            file.display(),
            text.trim()
        );
        if let Err(e) = fs::remove_file(file) {
            panic!(
                "cannot remove the stale zfs-fuse pid file {}: {e}",
                file.display()
            );
        }
    }
}

/// Whether process `pid` runs zfs-fuse.
fn is_zfs_fuse(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "zfs-fuse")
}

/// The process holding zfs-fuse's own lock ([`DAEMON_LOCK`]): the running
/// daemon, if there is one, whoever started it.
fn daemon_lock_holder() -> Option<u32> {
    let meta = fs::metadata(DAEMON_LOCK).ok()?;
    let locks = fs::read_to_string("/proc/locks").ok()?;
    lock_holders(&locks, meta.dev(), meta.ino())
        .into_iter()
        .next()
}

/// The pids holding a lock on the file `dev`/`ino` in `/proc/locks` text,
/// whose lines read `1: POSIX  ADVISORY  WRITE 5198 00:1f:1234 1 EOF`
/// (device numbers in hex). Waiters (`1: -> POSIX ...`) hold nothing and
/// are left out.
fn lock_holders(proc_locks: &str, dev: u64, ino: u64) -> Vec<u32> {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let file = format!("{major:02x}:{minor:02x}:{ino}");
    proc_locks
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, kind, _, _, pid, id, ..] if *kind != "->" && *id == file => pid.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

/// What stops zfs-fuse from starting, as far as this harness can tell
/// (the daemon itself says so only to syslog).
fn why_not_running() -> String {
    let mut why = Vec::new();
    if let Ok(pid) = fs::read_to_string(PID_FILE) {
        why.push(format!(
            "{PID_FILE} exists (pid {:?}): zfs-fuse refuses to start while it does",
            pid.trim()
        ));
    }
    if let Some(pid) = daemon_lock_holder() {
        let cmdline = processes()
            .into_iter()
            .find_map(|(p, cmdline)| (p as u32 == pid).then_some(cmdline))
            .unwrap_or_default();
        why.push(format!(
            "process {pid} ({}) holds {DAEMON_LOCK}: a zfs-fuse daemon runs but does \
             not answer (stop it if it is a stuck test daemon, then `umount -l` its \
             stale fuse mounts)",
            cmdline
        ));
    }
    if why.is_empty() {
        "no pid file and no daemon holds its lock; zfs-fuse logs why to syslog only".into()
    } else {
        why.join("\n  ")
    }
}

/// Runs the daemon, which forks into the background itself. Its output
/// goes to a file, not a pipe, so the daemon cannot hold a pipe open.
fn start_daemon(daemon: &Path) {
    let log = File::create(LOG_FILE)
        .unwrap_or_else(|e| panic!("create the zfs-fuse log {LOG_FILE}: {e}"));
    let err = log
        .try_clone()
        .unwrap_or_else(|e| panic!("dup the zfs-fuse log fd: {e}"));
    let mut child = Command::new(daemon)
        .args(["--pidfile", PID_FILE])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{} --pidfile {PID_FILE}`: {e}",
                daemon.display()
            )
        });
    // The parent exits once the daemon has forked; do not leave a zombie.
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    panic!(
                        "`{} --pidfile {PID_FILE}` failed ({status}): {:?}\n  {}",
                        daemon.display(),
                        read_log(),
                        why_not_running()
                    );
                }
                return;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            // Still running (it did not daemonize?): leave it; the caller
            // checks whether it answers.
            _ => return,
        }
    }
}

fn read_log() -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(LOG_FILE) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKS: &str = "\
1: POSIX  ADVISORY  WRITE 5198 00:1f:1234567 1 EOF
2: FLOCK  ADVISORY  WRITE 77 08:01:99 0 EOF
2: -> FLOCK  ADVISORY  WRITE 78 08:01:99 0 EOF
3: POSIX  ADVISORY  READ 600 103:02:1234567 0 EOF
";

    #[test]
    fn lock_holders_match_device_and_inode() {
        let dev = libc::makedev(0, 0x1f);
        assert_eq!(lock_holders(LOCKS, dev, 1_234_567), vec![5198]);
        // Same inode on another device (major 0x103 prints as 103).
        assert_eq!(
            lock_holders(LOCKS, libc::makedev(0x103, 2), 1_234_567),
            vec![600]
        );
        // The waiter (78) holds nothing.
        assert_eq!(lock_holders(LOCKS, libc::makedev(8, 1), 99), vec![77]);
        assert_eq!(lock_holders(LOCKS, dev, 1), Vec::<u32>::new());
        assert_eq!(lock_holders("", dev, 1_234_567), Vec::<u32>::new());
    }

    #[test]
    fn only_a_pid_file_of_a_gone_daemon_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("zfs-fuse.pid");
        // No file: nothing to do.
        remove_stale_pid_file(&file);
        // This test's own pid is alive but no zfs-fuse.
        for text in [
            format!("{}\n", std::process::id()),
            "garbage".into(),
            String::new(),
        ] {
            fs::write(&file, &text).unwrap();
            remove_stale_pid_file(&file);
            assert!(!file.exists(), "{text:?} kept");
        }
    }
}
