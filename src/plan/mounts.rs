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
    DevPts, DevTmpfs, MountAttrs, MountPropagation, Propagation, PropagationKind, RecursiveAttrs,
    RemountFlags, SharedMount, TmpfsMode,
};

use super::process::{check_selinux_label, lsm_error};
use super::resolve::{resolve_in_root, ResolveError};
use super::{invalid, mount_flags, unsupported, PlanError, Result};
use crate::lxc::{CgroupAuto, MountEntry};
use crate::security::lsm::HostLsm;

/// Filesystem types lxcri mounts through `lxc.mount.entry`, besides binds.
const FILESYSTEMS: [&str; 5] = ["tmpfs", "proc", "sysfs", "devpts", "mqueue"];

/// Options lxcri cannot honour: runc extensions LXC does not implement.
/// Passing them on would silently drop them.
const UNSUPPORTED_OPTIONS: [&str; 3] = ["tmpcopyup", "idmap", "ridmap"];

pub(super) struct MountPlan {
    pub entries: Vec<MountEntry>,
    pub cgroup: Option<CgroupAuto>,
    /// Where in `entries` the spec's cgroup mount was.
    pub cgroup_at: usize,
    /// Each mount's own propagation, re-applied by the init after LXC's
    /// (which makes the whole tree shared) and the rootfs propagation.
    pub propagation: Vec<MountPropagation>,
    /// `rshared`/`shared` binds: peers of the host's mount, which only a
    /// bind made from the host can be ([`SharedMount`]).
    pub shared: Vec<SharedMount>,
    /// The spec's `/dev` tmpfs, for the init to remount LXC's with.
    pub dev_tmpfs: Option<DevTmpfs>,
    /// The spec's `/dev/pts` devpts, likewise.
    pub dev_pts: Option<DevPts>,
    /// The per-mount flags the init sets ([`RemountFlags`]).
    pub remount_flags: Vec<RemountFlags>,
    /// The modes the init gives tmpfs roots ([`TmpfsMode`]).
    pub tmpfs_modes: Vec<TmpfsMode>,
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

pub(super) fn plan_mounts(mounts: &[Mount], rootfs: &Path, reserved: &Path) -> Result<MountPlan> {
    let mut plan = MountPlan {
        entries: Vec::new(),
        cgroup: None,
        cgroup_at: 0,
        propagation: Vec::new(),
        shared: Vec::new(),
        dev_tmpfs: None,
        dev_pts: None,
        remount_flags: Vec::new(),
        tmpfs_modes: Vec::new(),
        recursive_attrs: Vec::new(),
    };
    // Per entry: its OCI field, for errors about it later, and its
    // recursive attributes when LXC's bind is the one to get them.
    let mut origins: Vec<(String, Option<MountAttrs>)> = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let field = format!("mounts[{i}]");
        let dest = m.destination();
        if !dest.is_absolute() {
            return Err(invalid(
                &format!("{field}.destination"),
                &format!("{dest:?} must be an absolute path"),
            ));
        }
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            return Err(unsupported(
                &format!("{field}.uidMappings"),
                "id-mapped mounts are not implemented",
            ));
        }
        let mut options = m.options().clone().unwrap_or_default();
        check_options(&field, &options)?;
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
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
                // runc chmods the mount point back to the image's directory.
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
        // The last propagation option wins, as in runc.
        let propagation = options.iter().rev().find_map(|o| Propagation::parse(o));
        // A shared bind's copy from the host covers LXC's bind: the share
        // helper sets the recursive attributes on it instead.
        let mut lxc_recursive = recursive;
        if let Some(propagation) = propagation {
            plan.propagation.push(MountPropagation {
                destination: format!("/{destination}"),
                propagation,
            });
            if is_bind && propagation.kind == PropagationKind::Shared {
                let source = m
                    .source()
                    .as_ref()
                    .and_then(|s| s.to_str())
                    .ok_or_else(|| {
                        invalid(&format!("{field}.source"), "is missing or not valid UTF-8")
                    })?;
                let flags = requested_flags(&options);
                lxc_recursive = None;
                plan.shared.push(SharedMount {
                    source: source.to_string(),
                    destination: format!("/{destination}"),
                    readonly: is_readonly(&options),
                    propagation: Some(propagation),
                    create: false,
                    nosuid: flags & libc::MS_NOSUID != 0,
                    nodev: flags & libc::MS_NODEV != 0,
                    noexec: flags & libc::MS_NOEXEC != 0,
                    recursive,
                });
            }
        }
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
                tmpfs_as_runc(
                    &mut options,
                    &destination,
                    (!nested).then_some(rootfs),
                    &mut plan,
                );
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
        origins.push((field, lxc_recursive));
    }
    defer_binds_in_binds(&mut plan, origins)?;
    let binds: Vec<_> = plan.entries.iter().filter_map(bind_flags).collect();
    plan.remount_flags.extend(binds);
    // The init works on the finished tree, where runc worked on each mount
    // as it made it: a mount a later one covers is out of its reach.
    let entries = &plan.entries;
    plan.remount_flags
        .retain(|r| !covered_later(entries, &r.destination));
    plan.tmpfs_modes
        .retain(|t| !covered_later(entries, &t.destination));
    plan.recursive_attrs
        .retain(|r| !covered_later(entries, &r.destination));
    Ok(plan)
}

/// Whether a mount after the (last) one at `destination` (absolute) is at
/// or above it.
fn covered_later(entries: &[MountEntry], destination: &str) -> bool {
    let dest = Path::new(destination.trim_start_matches('/'));
    let Some(at) = entries
        .iter()
        .rposition(|e| Path::new(&e.destination) == dest)
    else {
        return false;
    };
    entries[at + 1..]
        .iter()
        .any(|e| dest.starts_with(&e.destination))
}

/// The `nosuid`/`nodev`/`noexec` a writable bind asks for (the last of
/// each pair wins, as in mount(8)); `None` when it asks for none, or is
/// read-only, which LXC remounts with all of them.
fn bind_flags(entry: &MountEntry) -> Option<RemountFlags> {
    let bind = entry.options.iter().any(|o| o == "bind" || o == "rbind");
    if !bind || is_readonly(&entry.options) {
        return None;
    }
    let flags = requested_flags(&entry.options);
    (flags != 0).then(|| RemountFlags {
        destination: format!("/{}", entry.destination),
        flags,
    })
}

/// The `MS_NOSUID`/`MS_NODEV`/`MS_NOEXEC` bits `options` ask for.
fn requested_flags(options: &[String]) -> u64 {
    super::mount_flags::split(options).0 & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC)
}

/// A tmpfs as runc mounts it (libcontainer/rootfs_linux.go
/// `mountToRootfs`): over a directory the image has (`rootfs` is `None`
/// when an earlier mount covers the destination: runc makes it there), its
/// root gets that directory's mode, which runc `chmod`s back after the
/// mount, whatever `mode=` said; a read-only one is mounted writable and
/// made read-only per mount afterwards (runc's `finalizeRootfs`), so the
/// filesystem itself stays `rw`, and mount points inside it can be made.
fn tmpfs_as_runc(
    options: &mut Vec<String>,
    destination: &str,
    rootfs: Option<&Path>,
    plan: &mut MountPlan,
) {
    let image_mode = rootfs
        .and_then(|r| std::fs::symlink_metadata(r.join(destination)).ok())
        .filter(|m| m.is_dir())
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777);
    if let Some(mode) = image_mode {
        plan.tmpfs_modes.push(TmpfsMode {
            destination: format!("/{destination}"),
            mode,
        });
    }
    if is_readonly(options) {
        options.retain(|o| o != "ro" && o != "rw");
        plan.remount_flags.push(RemountFlags {
            destination: format!("/{destination}"),
            flags: libc::MS_RDONLY,
        });
    }
}

/// The last of `ro`/`rw` wins.
fn is_readonly(options: &[String]) -> bool {
    options.iter().rev().find(|o| *o == "ro" || *o == "rw") == Some(&"ro".to_string())
}

fn is_bind_entry(e: &MountEntry) -> bool {
    e.options.iter().any(|o| o == "bind" || o == "rbind")
}

/// Mounts whose destination lies in a bind mounted before them: LXC makes
/// mount points (`create=dir|file`) before `pivot_root`, following any
/// link on the way, and a volume's content is the containers': a link
/// `evil -> /` left in a volume would carry the mount point, and the
/// mount, onto the host. Such binds are made by the share helper instead,
/// inside the container's mount namespace, where links resolve in the
/// container's root (as runc resolves every destination). Other
/// filesystems there are refused. `origins` are the entries' fields and
/// recursive attributes: the kept ones' become the init's, the deferred
/// ones' the helper's.
fn defer_binds_in_binds(
    plan: &mut MountPlan,
    origins: Vec<(String, Option<MountAttrs>)>,
) -> Result<()> {
    let mut binds: Vec<String> = Vec::new();
    let mut kept = Vec::with_capacity(plan.entries.len());
    // The cgroup mount's place moves up with every entry taken out before it.
    let cgroup_at = plan.cgroup_at;
    for (i, (entry, (field, recursive))) in std::mem::take(&mut plan.entries)
        .into_iter()
        .zip(origins)
        .enumerate()
    {
        let inside = binds
            .iter()
            .find(|b| {
                **b != entry.destination
                    && Path::new(&entry.destination).starts_with(Path::new(b.as_str()))
            })
            .cloned();
        let bind = is_bind_entry(&entry);
        if bind {
            binds.push(entry.destination.clone());
        }
        let Some(volume) = inside else {
            if let Some(attrs) = recursive {
                plan.recursive_attrs.push(RecursiveAttrs {
                    destination: format!("/{}", entry.destination),
                    attrs,
                });
            }
            kept.push(entry);
            continue;
        };
        if i < cgroup_at {
            plan.cgroup_at -= 1;
        }
        if !bind {
            return Err(unsupported(
                &format!("{field}.destination"),
                &format!(
                    "a {} mount inside the bind mount at /{volume}: only binds can go there (its mount point would be made following links in that volume)",
                    entry.fstype
                ),
            ));
        }
        let destination = format!("/{}", entry.destination);
        let propagation = plan
            .propagation
            .iter()
            .position(|p| p.destination == destination)
            .map(|i| plan.propagation.remove(i).propagation);
        match plan
            .shared
            .iter_mut()
            .find(|s| s.destination == destination)
        {
            Some(shared) => shared.create = true,
            None => {
                let flags = requested_flags(&entry.options);
                plan.shared.push(SharedMount {
                    source: entry.source.clone(),
                    destination,
                    readonly: is_readonly(&entry.options),
                    propagation,
                    create: true,
                    nosuid: flags & libc::MS_NOSUID != 0,
                    nodev: flags & libc::MS_NODEV != 0,
                    noexec: flags & libc::MS_NOEXEC != 0,
                    recursive,
                })
            }
        }
    }
    plan.entries = kept;
    Ok(())
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
