//! OCI `linux.devices` -> device nodes in the container, plus the device
//! cgroup rules that let the container use them.
//!
//! As runc: outside a user namespace the init makes each node (`mknod`,
//! with the spec's numbers, mode and owner; the host need not have it);
//! inside one, where `mknod` is not allowed, the host's node is
//! bind-mounted, so the host must have it with the numbers, type and (when
//! the spec gives them) mode and owner the spec asks for: a mismatch is an
//! error rather than a container with a different device than requested.
//! The nodes LXC's own `/dev` has (`lxc.autodev`) are left as LXC made
//! them.

use std::path::{Component, Path};

use lxcri_init_spec::{DeviceNode, DeviceNodeKind};
use nix::sys::stat::{major, minor, stat, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::mounts::relative_destination;
use super::{invalid, PlanError, Result};
use crate::lxc::{DeviceKind, DeviceRule, MountEntry};

/// Nodes LXC creates in the container's `/dev` itself, with their
/// standard numbers: (path, major, minor).
const LXC_PROVIDED: [(&str, i64, i64); 8] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
    ("/dev/console", 5, 1),
    ("/dev/ptmx", 5, 2),
];

/// runc's `fileMode` when the spec gives none.
const DEFAULT_MODE: u32 = 0o666;

/// How the device nodes get into the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeviceNodes {
    /// The init makes them (no user namespace).
    Mknod,
    /// Binds of the host's nodes (a user namespace, where mknod is EPERM).
    BindHost,
}

pub(super) struct DevicePlan {
    /// Binds of host nodes ([`DeviceNodes::BindHost`]).
    pub entries: Vec<MountEntry>,
    /// Nodes for the init to make ([`DeviceNodes::Mknod`]).
    pub nodes: Vec<DeviceNode>,
    /// Allow rules for these devices (used when the spec restricts devices).
    pub rules: Vec<DeviceRule>,
}

pub(super) fn plan_devices(
    devices: &[LinuxDevice],
    rootfs: &Path,
    how: DeviceNodes,
) -> Result<DevicePlan> {
    let mut plan = DevicePlan {
        entries: Vec::new(),
        nodes: Vec::new(),
        rules: Vec::new(),
    };
    for (i, d) in devices.iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        let path = d.path();
        let in_container = path
            .to_str()
            .filter(|_| path.is_absolute())
            .filter(|_| !path.components().any(|c| c == Component::ParentDir))
            .ok_or_else(|| {
                invalid(
                    &format!("{field}.path"),
                    "must be an absolute UTF-8 path without `..`",
                )
            })?;
        let (kind, node_kind) = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => {
                (Some(DeviceKind::Char), DeviceNodeKind::Char)
            }
            LinuxDeviceType::B => (Some(DeviceKind::Block), DeviceNodeKind::Block),
            LinuxDeviceType::P => (None, DeviceNodeKind::Fifo),
            LinuxDeviceType::A => {
                return Err(invalid(
                    &format!("{field}.type"),
                    "\"a\" is not a device node type",
                ))
            }
        };
        let numbers = |value: i64, what: &str| {
            u32::try_from(value).map_err(|_| {
                invalid(
                    &format!("{field}.{what}"),
                    &format!("{value} is not a device number"),
                )
            })
        };
        let (maj, min) = match kind {
            Some(_) => (numbers(d.major(), "major")?, numbers(d.minor(), "minor")?),
            None => (0, 0),
        };
        // LXC's /dev already has these nodes (autodev, and ptmx from its
        // devpts instance); another node in their place would break its setup.
        if let Some((_, ma, mi)) = LXC_PROVIDED.iter().find(|(p, _, _)| path == Path::new(p)) {
            if kind != Some(DeviceKind::Char) || (d.major(), d.minor()) != (*ma, *mi) {
                return Err(invalid(
                    &field,
                    &format!("{in_container} is LXC's own node c {ma}:{mi} in every container; the spec asks for another"),
                ));
            }
        } else {
            match how {
                DeviceNodes::Mknod => plan.nodes.push(DeviceNode {
                    path: in_container.to_string(),
                    kind: node_kind,
                    major: maj,
                    minor: min,
                    mode: d.file_mode().map_or(DEFAULT_MODE, |m| m & 0o7777),
                    uid: d.uid().unwrap_or(0),
                    gid: d.gid().unwrap_or(0),
                }),
                DeviceNodes::BindHost => {
                    check_host_node(&field, d, in_container, kind)?;
                    plan.entries.push(MountEntry {
                        source: in_container.to_string(),
                        destination: relative_destination(&format!("{field}.path"), rootfs, path)?,
                        fstype: "none".into(),
                        options: vec!["bind".into(), "create=file".into()],
                    });
                }
            }
        }
        if let Some(kind) = kind {
            plan.rules.push(DeviceRule {
                allow: true,
                kind,
                major: Some(u64::from(maj)),
                minor: Some(u64::from(min)),
                access: "rwm".into(),
            });
        }
    }
    Ok(plan)
}

/// The host's node at `host` is what the spec describes.
fn check_host_node(
    field: &str,
    d: &LinuxDevice,
    host: &str,
    kind: Option<DeviceKind>,
) -> Result<()> {
    let want = match kind {
        Some(DeviceKind::Char) => SFlag::S_IFCHR,
        Some(DeviceKind::Block) => SFlag::S_IFBLK,
        _ => SFlag::S_IFIFO,
    };
    let st = stat(host).map_err(|e| {
        invalid(
            field,
            &format!("host device {host} cannot be used ({e}); in a user namespace lxcri bind-mounts host devices"),
        )
    })?;
    let mismatch = |what: &str| -> PlanError {
        invalid(
            field,
            &format!("host device {host} has a different {what} than the spec"),
        )
    };
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != want {
        return Err(mismatch("type"));
    }
    if kind.is_some()
        && (i64::try_from(major(st.st_rdev)) != Ok(d.major())
            || i64::try_from(minor(st.st_rdev)) != Ok(d.minor()))
    {
        return Err(mismatch("major:minor"));
    }
    if d.file_mode()
        .is_some_and(|m| m & 0o7777 != st.st_mode & 0o7777)
    {
        return Err(mismatch("fileMode"));
    }
    if d.uid().is_some_and(|u| u != st.st_uid) {
        return Err(mismatch("uid"));
    }
    if d.gid().is_some_and(|g| g != st.st_gid) {
        return Err(mismatch("gid"));
    }
    Ok(())
}
