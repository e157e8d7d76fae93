//! One NIC as a PVE admin writes it: the `netN` property string of
//! pve-container (src/PVE/LXC/Config.pm, `$netconf_desc`), parsed as
//! pve-common's `parse_property_string` does (src/PVE/JSONSchema.pm:
//! `key=value` parts split on `,`, empty parts skipped, a key twice is an
//! error, no unknown keys) into checked values.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::values::{
    parse_bool, parse_gateway, IfName, Ipv4Config, Ipv6Config, MacAddr, Mtu, Rate, Trunks,
    ValueError, VlanId,
};

/// The NICs a container may have: `net0` to `net9`.
pub const MAX_NICS: u8 = 10;

/// `netN`'s N, 0-9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NicIndex(u8);

impl NicIndex {
    pub fn new(n: u8) -> Option<Self> {
        (n < MAX_NICS).then_some(Self(n))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for NicIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A NIC description that is not valid; `source` says where it came from
/// (the annotation or config key), `field` which key of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NicError {
    #[error("{origin}: {field}: {error}")]
    Field {
        origin: String,
        field: String,
        #[source]
        error: ValueError,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// A veth NIC: its name in the container, the bridge its host end goes
/// on, and how it is set up. Values are checked; the pve backend writes
/// them as the CT's `netN` (see `plan::pve_nics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicSpec {
    pub index: NicIndex,
    /// Where it was written (`io.lxcri.net0`, `network.net0`), for errors.
    pub source: String,
    /// The interface's name inside the container.
    pub name: IfName,
    pub bridge: Option<IfName>,
    pub hwaddr: Option<MacAddr>,
    pub mtu: Option<Mtu>,
    pub ip: Option<Ipv4Config>,
    pub gw: Option<IpAddr>,
    pub ip6: Option<Ipv6Config>,
    pub gw6: Option<IpAddr>,
    pub firewall: bool,
    /// Access VLAN: untagged on the port, tagged on the bridge.
    pub tag: Option<VlanId>,
    pub trunks: Trunks,
    pub rate: Option<Rate>,
    /// The host end stays down (PVE's "pull the plug").
    pub link_down: bool,
    /// PVE 9.1: the host, not the CT's OS, sets the addresses.
    pub host_managed: bool,
}

/// Why a NIC cannot join a set: the earlier NIC it clashes with, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicConflict<'a> {
    pub with: &'a NicSpec,
    pub reason: String,
}

/// Why `nic` cannot be one more NIC of a container that has `earlier`: an
/// interface name twice, or a second default gateway of a family (a
/// network namespace has one default route per family, and the second
/// would fail only after the container started). `None` when it can be.
pub fn nic_set_conflict<'a>(
    nic: &NicSpec,
    earlier: impl IntoIterator<Item = &'a NicSpec>,
) -> Option<NicConflict<'a>> {
    for other in earlier {
        let clash = |reason| {
            Some(NicConflict {
                with: other,
                reason,
            })
        };
        if other.name == nic.name {
            return clash(format!("name={} is also {}'s", nic.name, other.source));
        }
        for (key, gateway, theirs) in [("gw", nic.gw, other.gw), ("gw6", nic.gw6, other.gw6)] {
            if let (Some(gateway), Some(theirs)) = (gateway, theirs) {
                return clash(format!(
                    "{key}={gateway}: {} has {key}={theirs} already; a network namespace has one default route per family, so give the gateway to one NIC only",
                    other.source
                ));
            }
        }
    }
    None
}

impl NicSpec {
    /// Parses `text`, the value of `netN` (`source`, e.g. the annotation
    /// `io.lxcri.net0`, is named in errors).
    pub fn parse(index: NicIndex, text: &str, source: &str) -> Result<Self, NicError> {
        let invalid = |message: String| NicError::Invalid {
            origin: source.to_string(),
            message,
        };
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(invalid(format!(
                "contains the control character {c:?}; a NIC is one line of key=value parts"
            )));
        }
        let mut fields = Fields::default();
        for part in text.split(',') {
            if part.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = part
                .split_once('=')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            else {
                return Err(invalid(format!(
                    "{part:?} is not key=value (keys: {})",
                    KEYS.join(", ")
                )));
            };
            if !KEYS.contains(&key) {
                return Err(invalid(format!(
                    "unknown key {key:?} (keys: {})",
                    KEYS.join(", ")
                )));
            }
            if fields.0.iter().any(|(k, _)| *k == key) {
                return Err(invalid(format!("{key} is given twice")));
            }
            fields.0.push((key, value));
        }
        let name = fields.get("name").ok_or_else(|| {
            invalid("name= is required (the interface's name in the container)".into())
        })?;
        let name = fields.value::<IfName>("name", Some(name), source)?;
        if let Some(kind) = fields.get("type").filter(|t| *t != "veth") {
            return Err(fields.error(
                "type",
                ValueError(format!("{kind:?} is not a NIC type (only veth)")),
                source,
            ));
        }
        let gw = |key: &str, v6: bool| {
            fields
                .get(key)
                .map(|v| parse_gateway(v, v6))
                .transpose()
                .map_err(|e| fields.error(key, e, source))
        };
        let flag = |key: &str| {
            fields
                .get(key)
                .map_or(Ok(false), parse_bool)
                .map_err(|e| fields.error(key, e, source))
        };
        let spec = Self {
            index,
            source: source.to_string(),
            name,
            bridge: fields.opt("bridge", source)?,
            hwaddr: fields.opt("hwaddr", source)?,
            mtu: fields.opt("mtu", source)?,
            ip: fields.opt("ip", source)?,
            gw: gw("gw", false)?,
            ip6: fields.opt("ip6", source)?,
            gw6: gw("gw6", true)?,
            firewall: flag("firewall")?,
            tag: fields.opt("tag", source)?,
            trunks: fields.opt::<Trunks>("trunks", source)?.unwrap_or_default(),
            rate: fields.opt("rate", source)?,
            link_down: flag("link_down")?,
            host_managed: flag("host-managed")?,
        };
        spec.check_combinations(source)?;
        Ok(spec)
    }

    /// What no bridge can do, whatever the backend.
    fn check_combinations(&self, source: &str) -> Result<(), NicError> {
        let invalid = |message: &str| NicError::Invalid {
            origin: source.to_string(),
            message: message.to_string(),
        };
        if self.bridge.is_none() && (self.tag.is_some() || !self.trunks.is_empty()) {
            return Err(invalid("tag= and trunks= need a bridge="));
        }
        if self.gw.is_some() && !matches!(self.ip, Some(Ipv4Config::Static(_))) {
            return Err(invalid("gw= needs a static ip=ADDR/LEN on the NIC"));
        }
        if self.gw6.is_some() && !matches!(self.ip6, Some(Ipv6Config::Static(_))) {
            return Err(invalid("gw6= needs a static ip6=ADDR/LEN on the NIC"));
        }
        if let Some(mtu) = self.mtu.filter(|m| m.get() < Mtu::IPV6_MIN) {
            if let Some(ip6) = &self.ip6 {
                return Err(invalid(&format!(
                    "mtu={mtu} with ip6={ip6}: IPv6 needs an MTU of at least {} (RFC 8200), and the kernel turns IPv6 off on a link with less",
                    Mtu::IPV6_MIN
                )));
            }
        }
        Ok(())
    }
}

/// The keys of `$netconf_desc`.
const KEYS: [&str; 15] = [
    "type",
    "name",
    "bridge",
    "hwaddr",
    "mtu",
    "ip",
    "gw",
    "ip6",
    "gw6",
    "firewall",
    "tag",
    "trunks",
    "rate",
    "link_down",
    "host-managed",
];

/// The `key=value` parts of one property string.
#[derive(Default)]
struct Fields<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn error(&self, key: &str, error: ValueError, source: &str) -> NicError {
        NicError::Field {
            origin: source.to_string(),
            field: key.to_string(),
            error,
        }
    }

    fn value<T: FromStr<Err = ValueError>>(
        &self,
        key: &str,
        value: Option<&str>,
        source: &str,
    ) -> Result<T, NicError> {
        value
            .unwrap_or_default()
            .parse()
            .map_err(|e| self.error(key, e, source))
    }

    fn opt<T: FromStr<Err = ValueError>>(
        &self,
        key: &str,
        source: &str,
    ) -> Result<Option<T>, NicError> {
        self.get(key)
            .map(|v| self.value(key, Some(v), source))
            .transpose()
    }
}
