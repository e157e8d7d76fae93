//! How PVE's pre-start hook mounts a CT's volumes (pve-container src/lxc-pve-prestart-hook
//! `$setup_mountpoint`, src/PVE/LXC.pm `mountpoint_stage`, `__mountpoint_mount`,
//! `bindmount`, `walk_tree_nofollow`, `mountpoint_insert_staged`): each volume is mounted
//! on a staging directory, cloned with `open_tree` (not recursively) and moved onto
//! `LXCPATH/VMID/rootfs` (the rootfs) or below it (`mpN`). Runs in the monitor's own mount
//! namespace (`lxc.monitor.unshare = 1`), so nothing here is visible on the host.

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

/// `$!` as Perl prints it (strerror).
pub fn errstr(e: Errno) -> &'static str {
    e.desc()
}

/// LXC.pm `walk_tree_nofollow_fd`: opens `subdir` below `start_fd` one component at a
/// time without following symlinks; with `mkdir` creates what is missing (owned by
/// `owner`). Messages name the path as PVE builds it (`$start/$comp/...`, so walking from
/// `/` gives `//a/b`).
pub fn walk_tree_nofollow_fd(
    start: &str,
    start_fd: BorrowedFd<'_>,
    subdir: &str,
    mkdir: bool,
    owner: Option<(u32, u32)>,
) -> Result<OwnedFd, String> {
    let mut dir = start.to_string();
    let mut fd: Option<OwnedFd> = None;
    for comp in subdir.split('/').filter(|c| !c.is_empty()) {
        dir.push('/');
        dir.push_str(comp);
        let base = fd.as_ref().map(|f| f.as_fd()).unwrap_or(start_fd);
        let flags = OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let next = match nix::fcntl::openat(base, comp, flags, Mode::empty()) {
            Ok(f) => f,
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(format!("symlink encountered at: {dir}"))
            }
            Err(e) if !mkdir => return Err(format!("cannot open directory {dir}: {}", errstr(e))),
            Err(_) => {
                // Errors ignored: EEXIST is expected when CTs start at once.
                let _ = nix::sys::stat::mkdirat(base, comp, Mode::from_bits_truncate(0o755));
                let f = nix::fcntl::openat(base, comp, flags, Mode::empty())
                    .map_err(|e| format!("failed to create path: {dir}: {}", errstr(e)))?;
                if let Some((uid, gid)) = owner {
                    let _ = nix::unistd::fchownat(
                        &f,
                        "",
                        Some(uid.into()),
                        Some(gid.into()),
                        AtFlags::AT_EMPTY_PATH,
                    );
                }
                f
            }
        };
        fd = Some(next);
    }
    match fd {
        Some(f) => Ok(f),
        None => nix::unistd::dup(start_fd).map_err(|e| format!("dup: {e}")),
    }
}

/// LXC.pm `walk_tree_nofollow`: the same from a path.
pub fn walk_tree_nofollow(
    start: &str,
    subdir: &str,
    mkdir: bool,
    owner: Option<(u32, u32)>,
) -> Result<OwnedFd, String> {
    let fd = nix::fcntl::open(
        start,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("failed to open start directory {start}: {}", errstr(e)))?;
    walk_tree_nofollow_fd(start, fd.as_fd(), subdir, mkdir, owner)
}

fn same_inode(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    match (nix::sys::stat::fstat(a), nix::sys::stat::fstat(b)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// LXC.pm `bindmount` (`__bindmount_prepare`, `__bindmount_do`, `__bindmount_verify`)
/// for a staging directory: `mount -o bind` (MS_BIND without MS_REC: mounts below `src`
/// stay behind), then `bind,remount,ro` for `ro`, then the check that the staging
/// directory now shows `src`.
pub fn bindmount(src: &str, dest: &Path, ro: bool) -> Result<(), String> {
    let srcdh = walk_tree_nofollow("/", src, false, None)?;
    let cmd = format!("mount -o bind {src} {}", dest.display());
    nix::mount::mount(
        Some(src),
        dest,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("command '{cmd}' failed: {}", errstr(e)))?;
    if ro {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        if let Err(e) = nix::mount::mount(None::<&str>, dest, None::<&str>, flags, None::<&str>) {
            // __bindmount_do: "don't leave writable bind-mounts behind".
            eprintln!("bindmount error");
            let _ = nix::mount::umount(dest);
            return Err(format!(
                "command 'mount -o bind,remount,ro {}' failed: {}",
                dest.display(),
                errstr(e)
            ));
        }
    }
    let destdh = nix::fcntl::open(
        dest,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("failed to open mount point: {}", errstr(e)))?;
    if !same_inode(srcdh.as_fd(), destdh.as_fd()) {
        let _ = nix::mount::umount(dest);
        return Err(format!("detected mount path change at: {src}"));
    }
    Ok(())
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)` as
/// LXC.pm `mountpoint_stage` does: a detached copy of the one mount at `path`.
pub fn open_tree_clone(path: &Path) -> Result<OwnedFd, String> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: a plain syscall with a valid C string; the returned fd is ours to own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(format!(
            "open_tree() on mount point failed: {}",
            errstr(Errno::last())
        ));
    }
    // SAFETY: the kernel just returned this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `move_mount(mount_fd, "", dest_fd, "", F_EMPTY_PATH | T_EMPTY_PATH)`.
pub fn move_mount(mount_fd: BorrowedFd<'_>, dest_fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let empty = c"";
    // SAFETY: both descriptors are open; empty paths with the EMPTY_PATH flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount_fd.as_raw_fd(),
            empty.as_ptr(),
            dest_fd.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// The mount points in this namespace at or below `dir`, deepest last
/// (/proc/self/mountinfo order), with mountinfo's octal escapes undone.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = dir.display().to_string();
    let below = format!("{}/", dir.trim_end_matches('/'));
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|m| *m == dir || m.starts_with(&below))
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `umount --recursive -- DIR`: every mount at or below `dir`, innermost first. Fails like
/// umount(8) when `dir` is not a mount point (printing its message unless `quiet`).
pub fn umount_recursive(dir: &Path, quiet: bool) -> Result<(), String> {
    let mounts = mounts_under(dir);
    let cmd = format!("umount --recursive -- {}", dir.display());
    if !mounts.iter().any(|m| Path::new(m) == dir) {
        if !quiet {
            eprintln!("umount: {}: not mounted.", dir.display());
        }
        return Err(format!("command '{cmd}' failed: exit code 32"));
    }
    for m in mounts.iter().rev() {
        if let Err(e) = nix::mount::umount2(m.as_str(), MntFlags::empty()) {
            if !quiet {
                eprintln!("umount: {m}: {}", errstr(e));
            }
            return Err(format!("command '{cmd}' failed: exit code 32"));
        }
    }
    Ok(())
}
