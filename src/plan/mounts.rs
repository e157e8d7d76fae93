//! OCI `mounts` -> `lxc.mount.entry` lines (and the cgroup choice of
//! `lxc.mount.auto`).
//!
//! LXC provides some of the standard mounts itself: `/dev` is a tmpfs with
//! the standard nodes (`lxc.autodev = 1`) and `/dev/pts` a new devpts
//! instance (`lxc.pty.max`), so those OCI mounts are not emitted; a
//! `cgroup` mount at `/sys/fs/cgroup` becomes `lxc.mount.auto = cgroup:..`.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Mount;

use lxcri_init_spec::{
    BindFlags, DevPts, DevTmpfs, MountPropagation, Propagation, PropagationKind, RecursiveAttrs,
    SharedMount,
};

use super::helper_mounts::{defer_to_helper, mount_idmap, Origin, IDMAP_OPTIONS};
use super::mount_flags::{bind_remount, is_bind_entry, is_readonly};
use super::process::{check_selinux_label, lsm_error};
use super::resolve::{resolve_in_root, ResolveError};
use super::{invalid, mount_flags, unsupported, PlanError, Result};
use crate::lxc::{CgroupAuto, MountEntry};
use crate::security::lsm::HostLsm;

/// Filesystem types lxcri mounts through `lxc.mount.entry`, besides binds.
const FILESYSTEMS: [&str; 5] = ["tmpfs", "proc", "sysfs", "devpts", "mqueue"];

/// Options lxcri cannot honour: runc extensions LXC does not implement.
/// Passing them on would silently drop them.
const UNSUPPORTED_OPTIONS: [&str; 1] = ["tmpcopyup"];

pub(super) struct MountPlan {
    pub entries: Vec<MountEntry>,
    pub cgroup: Option<CgroupAuto>,
    /// Where in `entries` the spec's cgroup mount was.
    pub cgroup_at: usize,
    /// Each mount's own propagation, re-applied by the init after LXC's
    /// (which makes the whole tree shared) and the rootfs propagation.
    pub propagation: Vec<MountPropagation>,
    /// Binds the share helper makes from the host ([`SharedMount`]), in
    /// the spec's order: `rshared`/`shared` ones (peers of the host's
    /// mount), id-mapped ones, and binds inside binds.
    pub shared: Vec<SharedMount>,
    /// The spec's `/dev` tmpfs, for the init to remount LXC's with.
    pub dev_tmpfs: Option<DevTmpfs>,
    /// The spec's `/dev/pts` devpts, likewise.
    pub dev_pts: Option<DevPts>,
    /// The per-mount flags the init sets on LXC's binds ([`BindFlags`]).
    pub bind_flags: Vec<BindFlags>,
    /// Read-only tmpfs mounts, which the init makes read-only last.
    pub readonly_tmpfs: Vec<String>,
    /// Recursive attributes of binds LXC makes ([`RecursiveAttrs`]).
    pub recursive_attrs: Vec<RecursiveAttrs>,
}

/// The path as written, with `.`, empty and trailing components removed
/// (`..` kept), to recognise the special destinations.
fn lexical(dest: &Path) -> PathBuf {
    dest.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// Maps a resolver error to the OCI field it is about.
pub(super) fn destination_error(field: &str, e: ResolveError) -> PlanError {
    match e {
        ResolveError::Io { path, source } => PlanError::Io {
            field: field.to_string(),
            path,
            source,
        },
        other => invalid(field, &other.to_string()),
    }
}

/// Resolves `dest` inside `rootfs` to the relative path LXC expects.
pub(super) fn relative_destination(field: &str, rootfs: &Path, dest: &Path) -> Result<String> {
    let rel = resolve_in_root(rootfs, dest).map_err(|e| destination_error(field, e))?;
    if rel.as_os_str().is_empty() {
        return Err(invalid(field, "cannot mount over the container's root"));
    }
    rel.into_os_string()
        .into_string()
        .map_err(|_| invalid(field, "is not valid UTF-8"))
}

/// `userns`: the container has a user namespace of its own (new or joined),
/// whose mapping an `idmap` mount without mappings takes.
pub(super) fn plan_mounts(
    mounts: &[Mount],
    rootfs: &Path,
    reserved: &Path,
    userns: bool,
) -> Result<MountPlan> {
    let mut plan = MountPlan {
        entries: Vec::new(),
        cgroup: None,
        cgroup_at: 0,
        propagation: Vec::new(),
        shared: Vec::new(),
        dev_tmpfs: None,
        dev_pts: None,
        bind_flags: Vec::new(),
        readonly_tmpfs: Vec::new(),
        recursive_attrs: Vec::new(),
    };
    let mut origins: Vec<Origin> = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let field = format!("mounts[{i}]");
        // A relative destination is read from the root, as runc reads it
        // (with a deprecation warning in its log).
        let dest = &Path::new("/").join(m.destination());
        let mut options = m.options().clone().unwrap_or_default();
        check_options(&field, &options)?;
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
        let idmap = mount_idmap(&field, m, &options, is_bind, userns)?;
        options.retain(|o| !IDMAP_OPTIONS.contains(&o.as_str()));
        let recursive = mount_flags::recursive(&options);
        if recursive.is_some() {
            // runc sets them on binds only, and ignores them elsewhere.
            if !is_bind {
                let k = options
                    .iter()
                    .position(|o| mount_flags::is_recursive(o))
                    .unwrap_or_default();
                return Err(unsupported(
                    &format!("{field}.options[{k}]"),
                    &format!(
                        "{:?} on a {typ} mount: recursive mount attributes apply to bind mounts only",
                        options[k]
                    ),
                ));
            }
            // The init's, not LXC's.
            options.retain(|o| !mount_flags::is_recursive(o));
        }
        let clean = lexical(dest);
        if clean.starts_with(reserved) {
            return Err(invalid(
                &format!("{field}.destination"),
                &format!(
                    "{} is reserved for lxcri's runtime directory",
                    reserved.display()
                ),
            ));
        }

        if clean == Path::new("/dev") {
            if typ == "tmpfs" && !is_bind {
                // runc 1.2+ gives a tmpfs the mode of the directory under it.
                let image_mode = resolve_in_root(rootfs, dest)
                    .ok()
                    .and_then(|rel| std::fs::metadata(rootfs.join(rel)).ok())
                    .filter(|m| m.is_dir())
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777);
                plan.dev_tmpfs = Some(super::dev_tmpfs::dev_tmpfs(&field, &options, image_mode)?);
                // The last propagation option wins, as in runc.
                if let Some(propagation) = options.iter().rev().find_map(|o| Propagation::parse(o))
                {
                    plan.propagation.push(MountPropagation {
                        destination: "/dev".into(),
                        propagation,
                    });
                }
                continue;
            }
            return Err(unsupported(
                &field,
                "/dev is a tmpfs made by LXC (lxc.autodev); only a tmpfs mount is accepted there",
            ));
        }
        if clean == Path::new("/dev/pts") {
            if typ == "devpts" && !is_bind {
                plan.dev_pts = Some(super::dev_pts::dev_pts(&field, &options)?);
                continue;
            }
            return Err(unsupported(
                &field,
                "/dev/pts is a devpts instance made by LXC; only a devpts mount is accepted there",
            ));
        }
        if !is_bind && (typ == "cgroup" || typ == "cgroup2") {
            if clean != Path::new("/sys/fs/cgroup") {
                return Err(unsupported(
                    &format!("{field}.destination"),
                    "cgroup filesystems are only mounted at /sys/fs/cgroup",
                ));
            }
            plan.cgroup_at = plan.entries.len();
            plan.cgroup = Some(if options.iter().any(|o| o == "ro") {
                CgroupAuto::ReadOnly
            } else {
                CgroupAuto::ReadWrite
            });
            continue;
        }

        let destination = relative_destination(&format!("{field}.destination"), rootfs, dest)?;
        let bind_source = is_bind.then(|| m.source().as_deref()).flatten();
        super::proc_mount::check(&field, &destination, typ, bind_source)?;
        // The last propagation option wins, as in runc.
        let propagation = options.iter().rev().find_map(|o| Propagation::parse(o));
        if let Some(propagation) = propagation {
            plan.propagation.push(MountPropagation {
                destination: format!("/{destination}"),
                propagation,
            });
        }
        let shared = is_bind && propagation.is_some_and(|p| p.kind == PropagationKind::Shared);
        let entry = if is_bind {
            bind_entry(&field, m, destination, options)?
        } else {
            if typ.is_empty() {
                return Err(invalid(&format!("{field}.type"), "missing"));
            }
            if !FILESYSTEMS.contains(&typ) {
                return Err(unsupported(
                    &format!("{field}.type"),
                    &format!(
                        "filesystem type {typ:?} (supported: bind, {})",
                        FILESYSTEMS.join(", ")
                    ),
                ));
            }
            let source = match m.source() {
                Some(s) if !s.as_os_str().is_empty() => s
                    .to_str()
                    .ok_or_else(|| invalid(&format!("{field}.source"), "is not valid UTF-8"))?
                    .to_string(),
                _ => typ.to_string(),
            };
            let mut options = options;
            if typ == "tmpfs" {
                // Under another mount, or under `/dev`, which is a new
                // tmpfs (LXC's autodev, the spec's on runc): runc makes the
                // directory there and leaves its mode.
                let nested = Path::new(&destination).starts_with("dev")
                    || plan
                        .entries
                        .iter()
                        .any(|e| Path::new(&destination).starts_with(&e.destination));
                tmpfs_mode_as_runc(&mut options, &destination, (!nested).then_some(rootfs));
            }
            options.push("create=dir".into());
            MountEntry {
                source,
                destination,
                fstype: typ.to_string(),
                options,
            }
        };
        plan.entries.push(entry);
        origins.push(Origin {
            field,
            recursive,
            shared,
            idmap,
        });
    }
    let entries = std::mem::take(&mut plan.entries);
    let split = defer_to_helper(entries, origins, &mut plan.propagation, &mut plan.cgroup_at)?;
    plan.entries = split.entries;
    plan.shared = split.shared;
    // The init works on the finished tree, where runc worked on each mount
    // as it made it: a mount a later one covers is out of its reach.
    let entries = &plan.entries;
    plan.recursive_attrs = split
        .recursive_attrs
        .into_iter()
        .filter(|(at, _)| !covered_after(entries, *at))
        .map(|(_, attrs)| attrs)
        .collect();
    // A bind the helper makes again over LXC's gets its flags there.
    plan.bind_flags = entries
        .iter()
        .enumerate()
        .filter(|(at, _)| !split.helper_covers[*at] && !covered_after(entries, *at))
        .filter_map(|(_, e)| bind_flags(e))
        .collect();
    // A read-only tmpfs is mounted writable and made read-only last, as
    // runc's `finalizeRootfs`, so the filesystem itself stays `rw`, and
    // mount points inside it can be made. runc remounts its path: a later
    // mount at the same destination becomes read-only, one above it hides
    // the path.
    for at in 0..plan.entries.len() {
        let e = &plan.entries[at];
        if e.fstype != "tmpfs" || !is_readonly(&e.options) {
            continue;
        }
        let dest = Path::new(&e.destination);
        let hidden = plan.entries[at + 1..].iter().any(|later| {
            dest.starts_with(&later.destination) && dest != Path::new(&later.destination)
        });
        if !hidden {
            plan.readonly_tmpfs.push(format!("/{}", e.destination));
        }
        plan.entries[at].options.retain(|o| o != "ro" && o != "rw");
    }
    Ok(plan)
}

/// Whether a mount after the one at `at` is at or above it.
fn covered_after(entries: &[MountEntry], at: usize) -> bool {
    let dest = Path::new(&entries[at].destination);
    entries[at + 1..]
        .iter()
        .any(|e| dest.starts_with(&e.destination))
}

/// The flags LXC's bind `entry` gets from the init ([`BindFlags`]); `None`
/// when its options name none, or it is not a bind.
fn bind_flags(entry: &MountEntry) -> Option<BindFlags> {
    if !is_bind_entry(entry) {
        return None;
    }
    let (flags, cleared) = bind_remount(&entry.options)?;
    Some(BindFlags {
        destination: format!("/{}", entry.destination),
        flags,
        cleared,
    })
}

/// A tmpfs's mode as runc 1.2+ gives it (libcontainer/rootfs_linux.go
/// `createOpenMountpoint`): over a directory the image has (`rootfs` is
/// `None` when an earlier mount covers the destination: runc makes it
/// there), `mode=` of that directory goes first in the options, so a
/// `mode=` the spec states wins and the image's mode stands in for a
/// missing one (runc 1.1 `chmod`ed the root back to the image's mode
/// whatever `mode=` said).
fn tmpfs_mode_as_runc(options: &mut Vec<String>, destination: &str, rootfs: Option<&Path>) {
    let image_mode = rootfs
        .and_then(|r| std::fs::symlink_metadata(r.join(destination)).ok())
        .filter(|m| m.is_dir())
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777);
    if let Some(mode) = image_mode {
        options.insert(0, format!("mode={mode:04o}"));
    }
}

fn check_options(field: &str, options: &[String]) -> Result<()> {
    for (k, opt) in options.iter().enumerate() {
        let f = format!("{field}.options[{k}]");
        if opt.is_empty()
            || opt.contains(',')
            || opt.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                &f,
                &format!("{opt:?} is empty or contains ',' or whitespace"),
            ));
        }
        if UNSUPPORTED_OPTIONS.contains(&opt.as_str()) {
            return Err(unsupported(&f, &format!("mount option {opt:?}")));
        }
        // LXC-specific options would change how LXC treats the entry.
        if opt.starts_with("create=") || opt == "optional" {
            return Err(invalid(
                &f,
                &format!("{opt:?} is an LXC option, not an OCI one"),
            ));
        }
    }
    Ok(())
}

fn bind_entry(
    field: &str,
    m: &Mount,
    destination: String,
    options: Vec<String>,
) -> Result<MountEntry> {
    let source_field = format!("{field}.source");
    let source = m
        .source()
        .as_ref()
        .filter(|s| !s.as_os_str().is_empty())
        .ok_or_else(|| invalid(&source_field, "a bind mount needs a source"))?;
    if !source.is_absolute() {
        return Err(invalid(
            &source_field,
            &format!("{source:?} must be an absolute host path"),
        ));
    }
    // The one host filesystem read besides destination resolution: LXC must
    // create a directory or a file as the mount point.
    let md = std::fs::metadata(source).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            invalid(
                &source_field,
                &format!("{} does not exist", source.display()),
            )
        } else {
            PlanError::Io {
                field: source_field.clone(),
                path: source.clone(),
                source: e,
            }
        }
    })?;
    let mut opts = Vec::with_capacity(options.len() + 2);
    if !options.iter().any(|o| o == "bind" || o == "rbind") {
        // `"type": "bind"` alone: LXC needs the flag in the options.
        opts.push("bind".to_string());
    }
    opts.extend(options);
    opts.push(
        if md.is_dir() {
            "create=dir"
        } else {
            "create=file"
        }
        .to_string(),
    );
    Ok(MountEntry {
        source: source
            .to_str()
            .ok_or_else(|| invalid(&source_field, "is not valid UTF-8"))?
            .to_string(),
        destination,
        fstype: "none".into(),
        options: opts,
    })
}

/// `linux.mountLabel` as runc applies it: the `context=` of every tmpfs the
/// spec mounts. LXC splits mount options at commas and joins the ones it
/// does not know back into the data, so an MCS level (`s0:c1,c2`) survives.
pub(super) fn label_tmpfs_mounts(
    mut entries: Vec<MountEntry>,
    label: Option<&str>,
    lsm: &HostLsm,
) -> Result<Vec<MountEntry>> {
    const FIELD: &str = "linux.mountLabel";
    let Some(label) = label.filter(|l| !l.is_empty()) else {
        return Ok(entries);
    };
    check_selinux_label(FIELD, label)?;
    lsm.check_selinux().map_err(|e| lsm_error(FIELD, e))?;
    for e in entries.iter_mut().filter(|e| e.fstype == "tmpfs") {
        e.options.push(format!("context=\"{label}\""));
    }
    Ok(entries)
}
