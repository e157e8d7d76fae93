//! The checked values of a NIC: every one that reaches netlink, OVSDB, an
//! LXC config or a PVE `netN` property string is one of these types, so it
//! is validated once, where it is parsed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why a value is not valid; the caller adds the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn bad(message: impl Into<String>) -> ValueError {
    ValueError(message.into())
}

/// Longest interface name Linux takes (IFNAMSIZ 16 with its NUL).
pub const IFNAME_MAX: usize = 15;

/// A network interface name: PVE's pattern for `name` and `bridge`
/// (pve-container src/PVE/LXC/Config.pm, `$netconf_desc`: `[-_.\w\d]+`),
/// within Linux's IFNAMSIZ, and not `.`/`..` (the kernel's dev_valid_name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfName(String);

impl IfName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IfName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        // The kernel's rules first, then PVE's narrower characters.
        let LinkName(name) = s.parse()?;
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(bad(format!(
                "{s:?} has {c:?}: only letters, digits, '-', '_' and '.' are allowed"
            )));
        }
        Ok(Self(name))
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A link name as the kernel takes one (`dev_valid_name`, net/core/dev.c):
/// 1 to 15 bytes, not `.` or `..`, without `/`, `:` or whitespace. Wider
/// than [`IfName`]: a host's own devices (`linux.netDevices`) may be named
/// so.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkName(String);

impl LinkName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for LinkName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() {
            return Err(bad("is empty"));
        }
        if s.len() > IFNAME_MAX {
            return Err(bad(format!(
                "{s:?} is longer than {IFNAME_MAX} bytes (Linux IFNAMSIZ)"
            )));
        }
        if s == "." || s == ".." {
            return Err(bad(format!("{s:?} is not an interface name")));
        }
        if let Some(c) = s
            .chars()
            .find(|c| *c == '/' || *c == ':' || *c == '\0' || c.is_whitespace())
        {
            return Err(bad(format!("{s:?} has {c:?}, which a link name cannot")));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for LinkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An 802.1Q VLAN id, 1-4094 (0 and 4095 are reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VlanId(u16);

impl VlanId {
    pub const MIN: u16 = 1;
    pub const MAX: u16 = 4094;

    pub fn get(self) -> u16 {
        self.0
    }
}

impl FromStr for VlanId {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let out_of_range = || bad(format!("{s:?} is not a VLAN id (1-4094)"));
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(out_of_range());
        }
        match s.parse::<u16>() {
            Ok(v) if (Self::MIN..=Self::MAX).contains(&v) => Ok(Self(v)),
            _ => Err(out_of_range()),
        }
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A port's trunk VLANs: PVE's `vid;vid...` (pve-container
/// src/PVE/LXC/Config.pm, `trunks`), each a [`VlanId`], sorted and
/// without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trunks(Vec<VlanId>);

impl Trunks {
    pub fn ids(&self) -> &[VlanId] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for Trunks {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut ids = s
            .split(';')
            .map(VlanId::from_str)
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort();
        ids.dedup();
        Ok(Self(ids))
    }
}

impl fmt::Display for Trunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.0.iter().map(VlanId::to_string).collect();
        f.write_str(&ids.join(";"))
    }
}

/// A unicast MAC address: pve-common src/PVE/JSONSchema.pm,
/// `pve_verify_mac_addr` refuses the I/G (multicast) bit, and the kernel
/// refuses it and all zeros on a link (`is_valid_ether_addr`: "Cannot
/// assign requested address" only when the NIC is plugged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr([u8; 6]);

impl MacAddr {
    pub fn octets(self) -> [u8; 6] {
        self.0
    }
}

impl FromStr for MacAddr {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let not_mac = || bad(format!("{s:?} is not a MAC address (XX:XX:XX:XX:XX:XX)"));
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(not_mac());
        }
        let mut octets = [0u8; 6];
        for (o, p) in octets.iter_mut().zip(&parts) {
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(not_mac());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| not_mac())?;
        }
        if octets == [0; 6] {
            return Err(bad(format!(
                "{s:?} is all zeros, which no link may have; a NIC needs a unicast address"
            )));
        }
        if octets[0] & 1 == 1 {
            return Err(bad(format!(
                "{s:?} is a multicast address; a NIC needs a unicast one"
            )));
        }
        Ok(Self(octets))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

/// An MTU, 68-65535: PVE allows 64 (pve-container src/PVE/LXC/Config.pm),
/// but a veth takes nothing below ETH_MIN_MTU, 68, and would fail only
/// when the NIC is plugged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mtu(u32);

impl Mtu {
    pub const MIN: u32 = 68;
    /// What a link needs for IPv6 (RFC 8200); the kernel turns IPv6 off on
    /// a link with less.
    pub const IPV6_MIN: u32 = 1280;

    pub fn get(self) -> u32 {
        self.0
    }
}

impl FromStr for Mtu {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s.parse::<u32>() {
            Ok(v) if (Self::MIN..=65535).contains(&v) && !s.starts_with('+') => Ok(Self(v)),
            _ => Err(bad(format!(
                "{s:?} is not an MTU ({min}-65535; a veth takes nothing below {min})",
                min = Self::MIN
            ))),
        }
    }
}

impl fmt::Display for Mtu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An address with its prefix length, `ADDR/LEN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    fn parse(s: &str, v6: bool) -> Result<Self, ValueError> {
        let family = if v6 { "IPv6" } else { "IPv4" };
        let not_cidr = || {
            bad(format!(
                "{s:?} is not an {family} address in CIDR form (ADDR/LEN)"
            ))
        };
        let (addr, len) = s.split_once('/').ok_or_else(not_cidr)?;
        let addr: IpAddr = if v6 {
            IpAddr::V6(addr.parse::<Ipv6Addr>().map_err(|_| not_cidr())?)
        } else {
            IpAddr::V4(addr.parse::<Ipv4Addr>().map_err(|_| not_cidr())?)
        };
        // pve-common JSONSchema.pm pve_verify_cidrv4/cidrv6: a prefix of 8
        // up to 32 (128); PVE refuses a shorter one in `netN`.
        let max = if v6 { 128 } else { 32 };
        let prefix = match len.parse::<u8>() {
            Ok(p)
                if (8..=max).contains(&p)
                    && !len.is_empty()
                    && len.bytes().all(|b| b.is_ascii_digit()) =>
            {
                p
            }
            _ => return Err(not_cidr()),
        };
        if addr.is_unspecified() || addr.is_multicast() {
            return Err(bad(format!("{s:?} is not a host address")));
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `ip`: pve-common src/PVE/JSONSchema.pm, `pve_verify_ipv4_config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Config {
    Static(Cidr),
    Dhcp,
    /// Left to the container.
    Manual,
}

impl FromStr for Ipv4Config {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s {
            "dhcp" => Ok(Self::Dhcp),
            "manual" => Ok(Self::Manual),
            _ => Cidr::parse(s, false).map(Self::Static),
        }
    }
}

impl fmt::Display for Ipv4Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(c) => c.fmt(f),
            Self::Dhcp => f.write_str("dhcp"),
            Self::Manual => f.write_str("manual"),
        }
    }
}

/// `ip6`: pve-common src/PVE/JSONSchema.pm, `pve_verify_ipv6_config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Config {
    Static(Cidr),
    /// Stateless autoconfiguration: the kernel does it from router
    /// advertisements, nothing for lxcri to set.
    Auto,
    Dhcp,
    Manual,
}

impl FromStr for Ipv6Config {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s {
            "auto" => Ok(Self::Auto),
            "dhcp" => Ok(Self::Dhcp),
            "manual" => Ok(Self::Manual),
            _ => Cidr::parse(s, true).map(Self::Static),
        }
    }
}

impl fmt::Display for Ipv6Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(c) => c.fmt(f),
            Self::Auto => f.write_str("auto"),
            Self::Dhcp => f.write_str("dhcp"),
            Self::Manual => f.write_str("manual"),
        }
    }
}

/// A gateway of one family.
pub fn parse_gateway(s: &str, v6: bool) -> Result<IpAddr, ValueError> {
    let addr: Option<IpAddr> = if v6 {
        s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        s.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    };
    match addr {
        Some(a) if !a.is_unspecified() && !a.is_multicast() => Ok(a),
        _ => Err(bad(format!(
            "{s:?} is not an {} gateway address",
            if v6 { "IPv6" } else { "IPv4" }
        ))),
    }
}

/// A rate limit in MB/s (PVE's `rate`, a number), kept in thousandths
/// (1 kB/s steps) so it compares exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(u64);

impl Rate {
    pub fn bytes_per_sec(self) -> u64 {
        self.0 * 1000
    }
}

impl FromStr for Rate {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let not_rate = || {
            bad(format!(
                "{s:?} is not a rate in MB/s (a positive number, at most 3 decimals)"
            ))
        };
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 3 {
            return Err(not_rate());
        }
        let whole: u64 = whole.parse().map_err(|_| not_rate())?;
        let frac: u64 = format!("{frac:0<3}").parse().map_err(|_| not_rate())?;
        match whole.checked_mul(1000).and_then(|w| w.checked_add(frac)) {
            Some(v) if v > 0 && v <= u64::MAX / 1000 => Ok(Self(v)),
            _ => Err(not_rate()),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let frac = format!("{frac:03}");
            write!(f, "{whole}.{}", frac.trim_end_matches('0'))
        }
    }
}

/// PVE's booleans (pve-common src/PVE/JSONSchema.pm, `check_type`):
/// 1/true/yes/on and 0/false/no/off, in any case.
pub fn parse_bool(s: &str) -> Result<bool, ValueError> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(bad(format!("{s:?} is not a boolean (1/0)"))),
    }
}
