//! Typed PVE property strings (`rootfs`, `mpN`, `netN`, `features`) and the
//! enums of the CT config, rendered in the schema's format.
//!
//! A property string is `key=value` pairs joined by `,`, the `default_key`
//! (`volume`) first and bare. PVE splits at `,` and at the first `=`, so a
//! value with either character would become a second property: every
//! string value is checked against the key's format or pattern here, and
//! the free-form ones (paths, volume names) reject `,`, `=`, `"` and
//! control characters. Keys come out in PVE's own print order (default key,
//! required keys, then the rest sorted) so rendered strings match what
//! `pct config` shows.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use super::{check_no_control, PveConfigError, Result};
use crate::zfs::DiskSize;

/// `key=value` pairs of one property string.
struct Props {
    field: String,
    parts: Vec<String>,
}

impl Props {
    fn new(field: &str) -> Self {
        Self {
            field: field.to_string(),
            parts: Vec::new(),
        }
    }

    fn sub(&self, key: &str) -> String {
        format!("{}.{key}", self.field)
    }

    fn bare(&mut self, value: &str) -> Result<()> {
        check_free_text(&self.sub("volume"), value)?;
        self.parts.push(value.to_string());
        Ok(())
    }

    /// `value` must already be valid for the key (typed or checked).
    fn push(&mut self, key: &str, value: impl fmt::Display) {
        self.parts.push(format!("{key}={value}"));
    }

    fn flag(&mut self, key: &str, value: Option<bool>) {
        if let Some(v) = value {
            self.push(key, u8::from(v));
        }
    }

    fn finish(self) -> String {
        self.parts.join(",")
    }
}

/// Paths and volume names: anything but what ends a property or a line.
fn check_free_text(field: &str, value: &str) -> Result<()> {
    check_no_control(field, value)?;
    if value.is_empty() {
        return Err(PveConfigError::invalid(field, value, "is empty"));
    }
    if let Some(c) = value.chars().find(|c| matches!(c, ',' | '=' | '"')) {
        return Err(PveConfigError::invalid(
            field,
            value,
            format!("contains {c:?}, which would split the property string"),
        ));
    }
    Ok(())
}

/// The `pve-lxc-mp-string` format: no `.` or `..` path components (PVE
/// refuses them so a mount point cannot climb out of the rootfs).
fn check_mp_string(field: &str, value: &str) -> Result<()> {
    check_free_text(field, value)?;
    // Stricter than PVE (which allows a lone "." or ".."): no such
    // component anywhere.
    let has_dots = value.split('/').any(|c| c == "." || c == "..");
    if has_dots {
        return Err(PveConfigError::invalid(
            field,
            value,
            "contains a '.' or '..' path component",
        ));
    }
    Ok(())
}

fn check_abs_path(field: &str, value: &str) -> Result<()> {
    check_mp_string(field, value)?;
    if !value.starts_with('/') {
        return Err(PveConfigError::invalid(
            field,
            value,
            "must be an absolute path",
        ));
    }
    Ok(())
}

/// `pve-storage-id`: `[a-z][a-z0-9._-]*[a-z0-9]`, case-insensitive.
pub(super) fn check_storage_id(field: &str, value: &str) -> Result<()> {
    let b = value.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(PveConfigError::invalid(
            field,
            value,
            "is not a PVE storage id",
        ))
    }
}

/// What a mount point or the rootfs mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Volume {
    /// An existing volume: `local-zfs:subvol-100-disk-0`.
    Existing { storage: String, name: String },
    /// `STORAGE:SIZE_IN_GiB`: PVE allocates a new volume (`None` is `0`:
    /// a subvolume without quota on ZFS/dir storages).
    Allocate {
        storage: String,
        size: Option<DiskSize>,
    },
    /// A host path: a bind mount (or a directory rootfs, or a device).
    /// Root-only through the API.
    HostPath(PathBuf),
}

impl Volume {
    fn render(&self, field: &str) -> Result<String> {
        match self {
            Volume::Existing { storage, name } => {
                check_storage_id(field, storage)?;
                check_mp_string(field, name)?;
                if name.contains(':') || name.starts_with('/') {
                    return Err(PveConfigError::invalid(field, name, "is not a volume name"));
                }
                Ok(format!("{storage}:{name}"))
            }
            Volume::Allocate { storage, size } => {
                check_storage_id(field, storage)?;
                let gib = size.map_or("0".to_string(), DiskSize::gib_decimal);
                Ok(format!("{storage}:{gib}"))
            }
            Volume::HostPath(p) => {
                let s = p.to_str().ok_or_else(|| {
                    PveConfigError::invalid(field, &p.to_string_lossy(), "is not valid UTF-8")
                })?;
                check_abs_path(field, s)?;
                Ok(s.to_string())
            }
        }
    }

    pub fn is_host_path(&self) -> bool {
        matches!(self, Volume::HostPath(_))
    }
}

/// Values of `mountoptions` (the schema's whole list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MountOption {
    Discard,
    Lazytime,
    Noatime,
    Nodev,
    Noexec,
    Nosuid,
}

impl MountOption {
    pub fn as_str(self) -> &'static str {
        match self {
            MountOption::Discard => "discard",
            MountOption::Lazytime => "lazytime",
            MountOption::Noatime => "noatime",
            MountOption::Nodev => "nodev",
            MountOption::Noexec => "noexec",
            MountOption::Nosuid => "nosuid",
        }
    }
}

/// Options shared by `rootfs` and `mpN`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountPointOptions {
    pub acl: Option<bool>,
    pub mountoptions: Vec<MountOption>,
    pub quota: Option<bool>,
    pub replicate: Option<bool>,
    pub ro: Option<bool>,
    pub shared: Option<bool>,
    /// `disk-size` (`8G`, `512M`): read-only in PVE, kept for round trips.
    pub size: Option<String>,
}

impl MountPointOptions {
    /// Pushes the options in PVE's order; `backup` (mp only) sorts between
    /// `acl` and `mountoptions`.
    fn push(&self, p: &mut Props, backup: Option<bool>) -> Result<()> {
        p.flag("acl", self.acl);
        p.flag("backup", backup);
        if !self.mountoptions.is_empty() {
            let opts: Vec<_> = self.mountoptions.iter().map(|o| o.as_str()).collect();
            p.push("mountoptions", opts.join(";"));
        }
        p.flag("quota", self.quota);
        p.flag("replicate", self.replicate);
        p.flag("ro", self.ro);
        p.flag("shared", self.shared);
        if let Some(size) = &self.size {
            check_disk_size(&p.sub("size"), size)?;
            p.push("size", size);
        }
        Ok(())
    }
}

/// `disk-size`: a number with an optional `K|M|G|T` suffix.
fn check_disk_size(field: &str, s: &str) -> Result<()> {
    let digits = s.strip_suffix(['K', 'M', 'G', 'T']).unwrap_or(s);
    let mut parts = digits.splitn(2, '.');
    let int_ok = parts
        .next()
        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()));
    let frac_ok = parts.next().map_or(true, |f| {
        !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit())
    });
    if int_ok && frac_ok {
        Ok(())
    } else {
        Err(PveConfigError::invalid(
            field,
            s,
            "is not a disk size like 8G",
        ))
    }
}

/// `rootfs: [volume=]<volume>[,acl=..][,mountoptions=..]...`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFs {
    pub volume: Volume,
    pub options: MountPointOptions,
}

impl RootFs {
    pub fn render(&self) -> Result<String> {
        let mut p = Props::new("rootfs");
        p.bare(&self.volume.render("rootfs")?)?;
        self.options.push(&mut p, None)?;
        Ok(p.finish())
    }
}

/// `mpN: [volume=]<volume>,mp=<path>[,...]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPoint {
    pub volume: Volume,
    /// Path inside the container.
    pub mp: String,
    pub backup: Option<bool>,
    pub options: MountPointOptions,
}

impl MountPoint {
    /// Renders the value of key `field` (`mp0`, ...).
    pub fn render(&self, field: &str) -> Result<String> {
        let mut p = Props::new(field);
        p.bare(&self.volume.render(field)?)?;
        check_abs_path(&p.sub("mp"), &self.mp)?;
        p.push("mp", &self.mp);
        self.options.push(&mut p, self.backup)?;
        Ok(p.finish())
    }
}

/// A unicast MAC address (`mac-addr`: the I/G bit must be clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |r: &str| PveConfigError::invalid("hwaddr", s, r);
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(':') {
            if n == 6 || part.len() != 2 {
                return Err(bad("is not XX:XX:XX:XX:XX:XX"));
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| bad("is not hexadecimal"))?;
            n += 1;
        }
        if n != 6 {
            return Err(bad("is not XX:XX:XX:XX:XX:XX"));
        }
        if out[0] & 1 != 0 {
            return Err(bad("is a multicast address (I/G bit set)"));
        }
        Ok(Self(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// `pve-ipv4-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpConfig4 {
    Dhcp,
    Manual,
    Cidr(Ipv4Addr, u8),
}

/// `pve-ipv6-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpConfig6 {
    Auto,
    Dhcp,
    Manual,
    Cidr(Ipv6Addr, u8),
}

impl IpConfig4 {
    fn render(self, field: &str) -> Result<String> {
        Ok(match self {
            IpConfig4::Dhcp => "dhcp".into(),
            IpConfig4::Manual => "manual".into(),
            // pve-common JSONSchema.pm pve_verify_cidrv4: 8 to 32.
            IpConfig4::Cidr(a, len) if (8..=32).contains(&len) => format!("{a}/{len}"),
            IpConfig4::Cidr(a, len) => {
                return Err(PveConfigError::invalid(
                    field,
                    &format!("{a}/{len}"),
                    "has a prefix length outside 8..=32",
                ))
            }
        })
    }
}

impl IpConfig6 {
    fn render(self, field: &str) -> Result<String> {
        Ok(match self {
            IpConfig6::Auto => "auto".into(),
            IpConfig6::Dhcp => "dhcp".into(),
            IpConfig6::Manual => "manual".into(),
            // pve-common JSONSchema.pm pve_verify_cidrv6: 8 to 128.
            IpConfig6::Cidr(a, len) if (8..=128).contains(&len) => format!("{a}/{len}"),
            IpConfig6::Cidr(a, len) => {
                return Err(PveConfigError::invalid(
                    field,
                    &format!("{a}/{len}"),
                    "has a prefix length outside 8..=128",
                ))
            }
        })
    }
}

/// `netN: name=<ifname>[,bridge=..][,firewall=..]...` (always `type=veth`,
/// the only type; PVE stores it either way).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetConfig {
    /// Interface name inside the container.
    pub name: String,
    pub bridge: Option<String>,
    pub firewall: Option<bool>,
    pub gw: Option<Ipv4Addr>,
    pub gw6: Option<Ipv6Addr>,
    /// PVE >= 9.1: the host configures the IPs, not a DHCP client inside.
    pub host_managed: Option<bool>,
    pub hwaddr: Option<MacAddr>,
    pub ip: Option<IpConfig4>,
    pub ip6: Option<IpConfig6>,
    pub link_down: Option<bool>,
    /// 64..=65535.
    pub mtu: Option<u16>,
    /// Rate limit in MB/s.
    pub rate: Option<crate::network::values::Rate>,
    /// VLAN tag 1..=4094.
    pub tag: Option<u16>,
    /// VLAN ids passed through.
    pub trunks: Vec<u16>,
}

/// Interface names: the schema's `[-_.\w\d]+` (ASCII here), and at most
/// 15 bytes, the kernel's limit (PVE does not check it; LXC would fail).
fn check_ifname(field: &str, v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 15
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(PveConfigError::invalid(
            field,
            v,
            "is not an interface name ([A-Za-z0-9_.-], at most 15 characters)",
        ))
    }
}

fn check_vlan(field: &str, v: u16) -> Result<()> {
    if (1..=4094).contains(&v) {
        Ok(())
    } else {
        Err(PveConfigError::invalid(
            field,
            &v.to_string(),
            "is not a VLAN id 1..=4094",
        ))
    }
}

impl NetConfig {
    /// Renders the value of key `field` (`net0`, ...).
    pub fn render(&self, field: &str) -> Result<String> {
        let mut p = Props::new(field);
        check_ifname(&p.sub("name"), &self.name)?;
        p.push("name", &self.name);
        if let Some(b) = &self.bridge {
            check_ifname(&p.sub("bridge"), b)?;
            p.push("bridge", b);
        }
        p.flag("firewall", self.firewall);
        if let Some(gw) = self.gw {
            p.push("gw", gw);
        }
        if let Some(gw6) = self.gw6 {
            p.push("gw6", gw6);
        }
        p.flag("host-managed", self.host_managed);
        if let Some(mac) = self.hwaddr {
            p.push("hwaddr", mac);
        }
        if let Some(ip) = self.ip {
            let v = ip.render(&p.sub("ip"))?;
            p.push("ip", v);
        }
        if let Some(ip6) = self.ip6 {
            let v = ip6.render(&p.sub("ip6"))?;
            p.push("ip6", v);
        }
        p.flag("link_down", self.link_down);
        if let Some(mtu) = self.mtu {
            if mtu < 64 {
                return Err(PveConfigError::invalid(
                    &p.sub("mtu"),
                    &mtu.to_string(),
                    "is below 64",
                ));
            }
            p.push("mtu", mtu);
        }
        if let Some(rate) = self.rate {
            p.push("rate", rate);
        }
        if let Some(tag) = self.tag {
            check_vlan(&p.sub("tag"), tag)?;
            p.push("tag", tag);
        }
        if !self.trunks.is_empty() {
            for &t in &self.trunks {
                check_vlan(&p.sub("trunks"), t)?;
            }
            let t: Vec<_> = self.trunks.iter().map(u16::to_string).collect();
            p.push("trunks", t.join(";"));
        }
        p.push("type", "veth");
        Ok(p.finish())
    }
}

/// `features`. Only `nesting` may be set through the API by a token; the
/// others are root-only and go into the node-local file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    pub force_rw_sys: Option<bool>,
    pub fuse: Option<bool>,
    pub keyctl: Option<bool>,
    pub mknod: Option<bool>,
    /// File system types allowed to mount (`[a-zA-Z0-9_]`).
    pub mount: Vec<String>,
    pub nesting: Option<bool>,
}

impl Features {
    pub fn is_empty(&self) -> bool {
        *self == Features::default()
    }

    /// True when nothing but `nesting` is set.
    pub fn api_settable(&self) -> bool {
        Features {
            nesting: None,
            ..self.clone()
        }
        .is_empty()
    }

    pub fn render(&self) -> Result<String> {
        let mut p = Props::new("features");
        p.flag("force_rw_sys", self.force_rw_sys);
        p.flag("fuse", self.fuse);
        p.flag("keyctl", self.keyctl);
        p.flag("mknod", self.mknod);
        if !self.mount.is_empty() {
            for fs in &self.mount {
                if fs.is_empty() || !fs.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(PveConfigError::invalid(
                        "features.mount",
                        fs,
                        "is not a file system type",
                    ));
                }
            }
            p.push("mount", self.mount.join(";"));
        }
        p.flag("nesting", self.nesting);
        Ok(p.finish())
    }
}
