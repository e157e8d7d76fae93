//! A real ZFS pool per test, on zfs-fuse (ZFS in userspace), for the
//! `rootfs.mode = zfs` tests.
//!
//! zfs-fuse allows one daemon per machine (its socket is fixed,
//! `/var/run/zfs/zfs_socket`). [`ensure_daemon`] starts it when it is not
//! running and leaves it running afterwards: it is a machine service, like
//! the system containerd, and other tests (processes) may be using it.
//! Every test gets its own pool instead ([`ZfsPool::create`]): a sparse 1 GiB
//! file in a temporary directory, destroyed with it when the [`ZfsPool`] is
//! dropped (also after a panic).

mod daemon;

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub use daemon::ensure_daemon;

use crate::{cmd, machine_lock, random_u32};

/// Serialises the tests' pools ([`pool_turn`]).
const POOL_LOCK_FILE: &str = "/run/lock/lxcri-e2e-zfs-pool.lock";
/// Deadline for one `zfs`/`zpool` call.
const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// Size of each test pool's (sparse) file vdev.
const VDEV_SIZE: &str = "1G";

/// Runs `zpool ARGS` (C locale, so messages can be matched).
fn zpool(args: &[&str]) -> cmd::CmdOutput {
    cmd::run(
        Command::new("zpool").args(args).env("LC_ALL", "C"),
        CMD_TIMEOUT,
    )
}

/// Runs `zfs ARGS` (C locale, so messages can be matched).
fn zfs(args: &[&str]) -> cmd::CmdOutput {
    cmd::run(
        Command::new("zfs").args(args).env("LC_ALL", "C"),
        CMD_TIMEOUT,
    )
}

/// A ZFS pool of its own for one test: a sparse file vdev in a temporary
/// directory, mounted under it. Dropping it destroys the pool and removes
/// the directory.
///
/// It dereferences to [`Pool`], which has the operations on the pool's
/// datasets (`pool.create("data", &[])`, `pool.prop(..)`, `pool.name`):
/// `ZfsPool::create()` makes the pool, `pool.create(child, props)` a
/// dataset in it.
pub struct ZfsPool {
    pool: Pool,
    /// The temporary directory: `vdev` (the pool's file) and `mnt` (its
    /// mountpoint).
    dir: PathBuf,
    /// Held while the pool exists (released after Drop's cleanup).
    _turn: File,
}

/// The operations on one pool's datasets, by the pool's name (what a
/// [`ZfsPool`] dereferences to; it does not own the pool).
pub struct Pool {
    /// The pool's name: `lxe2e` + 8 hex digits.
    pub name: String,
    /// Where the pool's root dataset is mounted.
    mountpoint: PathBuf,
}

impl ZfsPool {
    /// Starts the daemon if needed ([`ensure_daemon`]) and makes a new pool,
    /// `zpool create -o cachefile=none -m DIR/mnt NAME DIR/vdev`. Panics when
    /// that fails.
    pub fn create() -> Self {
        ensure_daemon();
        let turn = pool_turn();
        let dir = tempfile::Builder::new()
            .prefix("lxcri-e2e-zfs.")
            .tempdir()
            .expect("temporary directory for a ZFS test pool")
            .keep();
        // From here on, Drop cleans up (also a half-made pool).
        let pool = ZfsPool {
            pool: Pool {
                name: pool_name(random_u32()),
                mountpoint: dir.join("mnt"),
            },
            dir,
            _turn: turn,
        };
        let vdev = pool.dir.join("vdev");
        let vdev = vdev.to_str().expect("utf-8 temp path");
        cmd::run(
            Command::new("truncate").args(["-s", VDEV_SIZE, vdev]),
            CMD_TIMEOUT,
        )
        .ok();
        let mnt = pool.mountpoint();
        let mnt = mnt.to_str().expect("utf-8 temp path");
        // A shared mount, as every mount is on a systemd host (PVE): a
        // mount namespace copied later (LXC's monitor with
        // `lxc.monitor.unshare`, as PVE configures it) then sees the
        // unmounts made here and does not pin a destroyed dataset. This
        // machine has no systemd and its mounts are private.
        fs::create_dir_all(mnt).expect("pool mountpoint");
        for args in [["--bind", mnt, mnt], ["--make-rshared", mnt, ""]] {
            let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
            cmd::run(Command::new("mount").args(&args), CMD_TIMEOUT).ok();
        }
        zpool(&[
            "create",
            "-o",
            "cachefile=none",
            "-m",
            mnt,
            &pool.name,
            vdev,
        ])
        .ok();
        pool
    }

    /// `zpool destroy -f`, retried while the pool is busy. Ok when the pool
    /// is gone (or was never made).
    fn destroy(&self) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 0..10 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(500));
            }
            let out = zpool(&["destroy", "-f", &self.name]);
            if out.success() {
                return Ok(());
            }
            let list = zpool(&["list", &self.name]);
            if !list.success() && list.stderr.contains("no such pool") {
                return Ok(());
            }
            last = out.to_string();
        }
        Err(last)
    }
}

impl std::ops::Deref for ZfsPool {
    type Target = Pool;

    fn deref(&self) -> &Pool {
        &self.pool
    }
}

impl Pool {
    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The full name of the pool's dataset `child`: `NAME/child`.
    pub fn dataset(&self, child: &str) -> String {
        format!("{}/{child}", self.name)
    }

    /// Where the pool's root dataset is mounted (its children below it,
    /// at `<mountpoint>/<child>`).
    pub fn mountpoint(&self) -> PathBuf {
        self.mountpoint.clone()
    }

    /// Every filesystem and snapshot of the pool except the pool itself,
    /// in `zfs list` order. Panics when `zfs list` fails.
    pub fn datasets(&self) -> Vec<String> {
        let out = zfs(&[
            "list",
            "-H",
            "-o",
            "name",
            "-r",
            "-t",
            "filesystem,snapshot",
            &self.name,
        ])
        .ok();
        out.stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != self.name)
            .map(String::from)
            .collect()
    }

    /// The value of property `key` (e.g. `mountpoint`, `lxcri:image`) of
    /// `dataset` (a full name), `None` when unset (`-`). Panics when `zfs
    /// get` fails (no such dataset).
    pub fn prop(&self, dataset: &str, key: &str) -> Option<String> {
        let out = zfs(&["get", "-H", "-o", "value", key, dataset]).ok();
        let value = out.stdout.trim_end_matches('\n');
        (value != "-").then(|| value.to_string())
    }

    /// The `used` bytes of `dataset` (a full name): `zfs get -p`, or the
    /// human value parsed if `-p` is ignored. Panics when `zfs get` fails.
    pub fn used_bytes(&self, dataset: &str) -> u64 {
        self.size_prop(dataset, "used")
    }

    /// A size property of `dataset` in bytes (`used`, `available`...).
    pub fn size_prop(&self, dataset: &str, key: &str) -> u64 {
        let out = zfs(&["get", "-H", "-p", "-o", "value", key, dataset]).ok();
        let value = out.stdout.trim();
        parse_size(value)
            .unwrap_or_else(|| panic!("`{key}` of {dataset}: not a size: {value:?} ({out})"))
    }

    /// Leaves about `free` bytes available in the pool, by reserving the
    /// rest for dataset `filler` (made if needed; nothing is written).
    pub fn leave_free(&self, filler: &str, free: u64) {
        let name = self.dataset(filler);
        if !self.datasets().contains(&name) {
            self.create(filler, &[]);
        }
        zfs(&["set", "refreservation=none", &name]).ok();
        let avail = self.size_prop(&self.name, "available");
        let reserve = avail.saturating_sub(free);
        zfs(&["set", &format!("refreservation={reserve}"), &name]).ok();
    }

    /// Makes the pool's dataset `child` (`zfs create -o k=v ... NAME/child`)
    /// and returns its full name. Panics when that fails.
    pub fn create(&self, child: &str, props: &[(&str, &str)]) -> String {
        let dataset = self.dataset(child);
        let opts: Vec<String> = props.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["create"];
        for o in &opts {
            args.extend(["-o", o.as_str()]);
        }
        args.push(&dataset);
        zfs(&args).ok();
        dataset
    }

    /// Runs `zfs ARGS` (C locale) without checking how it ended.
    pub fn zfs(&self, args: &[&str]) -> cmd::CmdOutput {
        zfs(args)
    }
}

impl Drop for ZfsPool {
    fn drop(&mut self) {
        if let Err(e) = self.destroy() {
            eprintln!(
                "warning: cannot destroy the test ZFS pool {}: {e}",
                self.name
            );
        }
        // What the destroy left mounted, and the shared bind mount of the
        // mountpoint itself.
        crate::cleanup::unmount_under(&[self.mountpoint()]);
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!(
                    "warning: cannot remove the test ZFS pool's directory {}: {e}",
                    self.dir.display()
                );
            }
        }
    }
}

/// One test pool at a time on this machine: waits for the others' turns
/// and returns the lock, held until the pool is gone. zfs-fuse 0.7 has
/// been seen to deadlock (hundreds of threads on a mutex, every later
/// mount hanging) after test runs; fewer concurrent pools give it less
/// to race on. The tests in one pool still run their containers at once.
fn pool_turn() -> File {
    machine_lock(POOL_LOCK_FILE, "test pool")
}

/// A pool name: must start with a letter.
fn pool_name(random: u32) -> String {
    format!("lxe2e{random:08x}")
}

/// Parses a size as `zfs get` prints it: plain bytes (`-p`), or a human
/// value such as `512`, `1.32M`, `12K` (units K, M, G, T, P, E, powers of
/// 1024; a trailing `B`/`iB` is accepted).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    let s = s
        .strip_suffix("iB")
        .or_else(|| s.strip_suffix('B'))
        .unwrap_or(s);
    let unit = s.chars().last()?;
    let shift = match unit.to_ascii_uppercase() {
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        'P' => 50,
        'E' => 60,
        _ => {
            return s
                .parse::<f64>()
                .ok()
                .filter(|n| *n >= 0.0)
                .map(|n| n as u64)
        }
    };
    let number: f64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    if !number.is_finite() || number < 0.0 {
        return None;
    }
    Some((number * (1u64 << shift) as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("581632"), Some(581_632));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("12K"), Some(12 * 1024));
        assert_eq!(
            parse_size("1.32M"),
            Some((1.32 * 1048576.0f64).round() as u64)
        );
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("2.5T"), Some(5 << 39));
        assert_eq!(parse_size("4KiB"), Some(4096));
        assert_eq!(parse_size(" 3M\n"), Some(3 << 20));
        assert_eq!(parse_size("-"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("-1K"), None);
        assert_eq!(parse_size("1X"), None);
    }

    #[test]
    fn pool_names_start_with_a_letter() {
        assert_eq!(pool_name(0), "lxe2e00000000");
        assert_eq!(pool_name(0xdead_beef), "lxe2edeadbeef");
    }

    #[test]
    #[ignore = "needs root and zfs-fuse"]
    fn pool_is_made_and_destroyed() {
        let pool = ZfsPool::create();
        let name = pool.name().to_string();
        let dir = pool.dir.clone();
        assert!(name.starts_with("lxe2e") && name.len() == 13, "{name}");
        assert!(dir.join("vdev").is_file());
        assert_eq!(pool.datasets(), Vec::<String>::new());

        let child = pool.create("c1", &[("lxcri:test", "1")]);
        assert_eq!(child, format!("{name}/c1"));
        assert_eq!(pool.dataset("c1"), child);
        assert_eq!(pool.prop(&child, "lxcri:test").as_deref(), Some("1"));
        assert_eq!(pool.prop(&child, "lxcri:unset"), None);
        assert_eq!(pool.datasets(), vec![child.clone()]);
        assert!(pool.used_bytes(&child) > 0);
        assert_eq!(
            pool.prop(&child, "mountpoint").map(PathBuf::from),
            Some(pool.mountpoint().join("c1"))
        );

        pool.zfs(&["snapshot", &format!("{child}@s1")]).ok();
        assert_eq!(pool.datasets(), vec![child.clone(), format!("{child}@s1")]);

        drop(pool);
        assert!(
            !zpool(&["list", &name]).success(),
            "pool {name} still listed after drop"
        );
        assert!(!dir.exists(), "{} still exists after drop", dir.display());
    }
}
