//! OCI `linux.devices` -> bind mounts of the host's device nodes, plus the
//! device cgroup rules that let the container use them.
//!
//! lxcri does not mknod: the container's `/dev` is LXC's tmpfs, and a
//! bind-mounted host node works in unprivileged containers too. So the
//! host must have the node, with the numbers, type and (when the spec gives
//! them) mode and owner the spec asks for; a mismatch is an error rather
//! than a container with a different device than requested.

use std::path::Path;

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

pub(super) struct DevicePlan {
    pub entries: Vec<MountEntry>,
    /// Allow rules for these devices (used when the spec restricts devices).
    pub rules: Vec<DeviceRule>,
}

pub(super) fn plan_devices(devices: &[LinuxDevice], rootfs: &Path) -> Result<DevicePlan> {
    let mut plan = DevicePlan {
        entries: Vec::new(),
        rules: Vec::new(),
    };
    for (i, d) in devices.iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        let path = d.path();
        let host = path
            .to_str()
            .filter(|_| path.is_absolute())
            .ok_or_else(|| invalid(&format!("{field}.path"), "must be an absolute UTF-8 path"))?;
        let (want, kind) = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => (SFlag::S_IFCHR, Some(DeviceKind::Char)),
            LinuxDeviceType::B => (SFlag::S_IFBLK, Some(DeviceKind::Block)),
            LinuxDeviceType::P => (SFlag::S_IFIFO, None),
            LinuxDeviceType::A => {
                return Err(invalid(
                    &format!("{field}.type"),
                    "\"a\" is not a device node type",
                ))
            }
        };
        let st = stat(path).map_err(|e| {
            invalid(
                &field,
                &format!("host device {host} cannot be used ({e}); lxcri bind-mounts host devices"),
            )
        })?;
        let mismatch = |what: &str| -> PlanError {
            invalid(
                &field,
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
        // LXC's /dev already has these nodes (autodev, and ptmx from its
        // devpts instance); binding the host's over them breaks LXC's setup.
        let provided = LXC_PROVIDED
            .iter()
            .any(|(p, ma, mi)| path == Path::new(p) && d.major() == *ma && d.minor() == *mi);
        if !provided {
            plan.entries.push(MountEntry {
                source: host.to_string(),
                destination: relative_destination(&format!("{field}.path"), rootfs, path)?,
                fstype: "none".into(),
                options: vec!["bind".into(), "create=file".into()],
            });
        }
        if let Some(kind) = kind {
            plan.rules.push(DeviceRule {
                allow: true,
                kind,
                major: Some(major(st.st_rdev)),
                minor: Some(minor(st.st_rdev)),
                access: "rwm".into(),
            });
        }
    }
    Ok(plan)
}
