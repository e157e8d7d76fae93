//! `lxcri check`'s network section: the node's Linux bridges, Open
//! vSwitch at `network.ovsdb` and its bridges, and whether each default
//! NIC (`[network] net0` ... `net9`) could be plugged as create would
//! (see `lxcri::network::plug`): its bridge exists, its VLANs are possible
//! there, its MTU fits.
//!
//! The node is read once ([`read_node`]: netlink's links, then OVSDB); the
//! findings are a pure function of what was read ([`findings`]).

use std::collections::BTreeSet;

use lxcri::config::{BackendKind, Config};
use lxcri::error_chain as chain;
use lxcri::network::host::{Bridge, BridgeKind};
use lxcri::network::netlink::{LinkInfo, Netlink};
use lxcri::network::nic::NicSpec;
use lxcri::network::ovsdb::{OvsBridge, Ovsdb, OvsdbError, OvsdbTarget};
use lxcri::network::plug::pve_only;

use super::{finding, Finding, Status};

/// The finding names of `net0` ... `net9`, by index.
const NIC_NAMES: [&str; 10] = [
    "network.net0",
    "network.net1",
    "network.net2",
    "network.net3",
    "network.net4",
    "network.net5",
    "network.net6",
    "network.net7",
    "network.net8",
    "network.net9",
];

/// What a bridge's MTU is taken to be when it has no link of its own, as
/// plugging takes it.
const DEFAULT_MTU: u32 = 1500;

/// The node's bridges, as far as they could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNetwork {
    /// Linux bridges, or why the links could not be listed.
    pub linux: Result<Vec<Bridge>, String>,
    /// Open vSwitch bridges, or why `network.ovsdb` could not be asked.
    pub ovs: Result<Vec<Bridge>, String>,
}

/// The bridge lookup the OVS part needs (the Open_vSwitch client looks
/// bridges up by name).
pub trait OvsBridges {
    fn bridge(&mut self, name: &str) -> Result<Option<OvsBridge>, OvsdbError>;
}

impl OvsBridges for Ovsdb {
    fn bridge(&mut self, name: &str) -> Result<Option<OvsBridge>, OvsdbError> {
        Ovsdb::bridge(self, name)
    }
}

pub fn checks(config: &Config) -> Vec<Finding> {
    let nics: Vec<&NicSpec> = config.network.nics().collect();
    let node = read_node(&config.network.ovsdb, &nics);
    let plugger = match config.backend {
        BackendKind::Lxc => Plugger::Lxcri,
        BackendKind::Pve => Plugger::Pve,
    };
    findings(&node, &config.network.ovsdb.to_string(), &nics, plugger)
}

/// Who plugs a default NIC: lxcri itself on the lxc backend; on pve the
/// NICs of a `ctr` container are the CT's `netN`, which PVE plugs (its
/// `tap_plug`), with its firewall bridges, rate limits and VLAN bridges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugger {
    Lxcri,
    Pve,
}

/// Lists the links, then asks `ovsdb` about those that may be Open vSwitch
/// bridges.
pub fn read_node(ovsdb: &OvsdbTarget, nics: &[&NicSpec]) -> NodeNetwork {
    let links = Netlink::open()
        .and_then(|mut nl| nl.links())
        .map_err(|e| chain(&e));
    let seen = links.as_deref().unwrap_or(&[]);
    let ovs = Ovsdb::connect(ovsdb)
        .map_err(|e| chain(&e))
        .and_then(|mut db| ovs_bridges(&mut db, seen, nics));
    NodeNetwork {
        linux: links.map(|l| linux_bridges(&l)),
        ovs,
    }
}

fn linux_bridges(links: &[LinkInfo]) -> Vec<Bridge> {
    links
        .iter()
        .filter(|l| l.kind.as_deref() == Some("bridge"))
        .map(|l| Bridge {
            name: l.name.clone(),
            kind: BridgeKind::Linux {
                vlan_filtering: l.vlan_filtering.unwrap_or(false),
            },
            mtu: l.mtu,
        })
        .collect()
}

/// The Open vSwitch bridges among the links that can be one (a bridge's
/// own port is an `openvswitch` link on the kernel datapath, a `tun` on the
/// userspace one) and the default NICs' bridges that are no Linux bridge.
pub fn ovs_bridges(
    db: &mut dyn OvsBridges,
    links: &[LinkInfo],
    nics: &[&NicSpec],
) -> Result<Vec<Bridge>, String> {
    let link = |name: &str| links.iter().find(|l| l.name == name);
    let mut names: BTreeSet<&str> = links
        .iter()
        .filter(|l| matches!(l.kind.as_deref(), Some("openvswitch" | "tun")))
        .map(|l| l.name.as_str())
        .collect();
    names.extend(
        nics.iter()
            .filter_map(|n| n.bridge.as_ref().map(|b| b.as_str()))
            .filter(|b| !link(b).is_some_and(|l| l.kind.as_deref() == Some("bridge"))),
    );
    let mut found = Vec::new();
    for name in names {
        let Some(b) = db.bridge(name).map_err(|e| chain(&e))? else {
            continue;
        };
        found.push(Bridge {
            kind: BridgeKind::Ovs {
                userspace: b.datapath_type == "netdev",
            },
            // The bridge's own port carries its MTU.
            mtu: link(name).map_or(DEFAULT_MTU, |l| l.mtu),
            name: b.name,
        });
    }
    Ok(found)
}

/// One finding for the Linux bridges, one for Open vSwitch, one per
/// default NIC.
pub fn findings(
    node: &NodeNetwork,
    ovsdb: &str,
    nics: &[&NicSpec],
    plugger: Plugger,
) -> Vec<Finding> {
    let mut out = vec![linux_finding(&node.linux), ovs_finding(node, ovsdb, nics)];
    for nic in nics {
        // A set no container could have is refused when the config loads.
        let refused = (plugger == Plugger::Lxcri).then(|| pve_only(nic)).flatten();
        out.push(match refused {
            Some(why) => finding(NIC_NAMES[usize::from(nic.index.get())], Status::Fail, why),
            None => nic_finding(node, ovsdb, nic, plugger),
        });
    }
    out
}

fn describe(b: &Bridge) -> String {
    match b.kind {
        BridgeKind::Linux { vlan_filtering } => {
            let on = if vlan_filtering { "on" } else { "off" };
            format!("{} (MTU {}, VLAN filtering {on})", b.name, b.mtu)
        }
        BridgeKind::Ovs { userspace } => {
            let datapath = if userspace { "netdev" } else { "system" };
            format!("{} (datapath {datapath}, MTU {})", b.name, b.mtu)
        }
    }
}

fn list(bridges: &[Bridge]) -> String {
    if bridges.is_empty() {
        return "none".into();
    }
    bridges.iter().map(describe).collect::<Vec<_>>().join(", ")
}

fn linux_finding(linux: &Result<Vec<Bridge>, String>) -> Finding {
    match linux {
        Ok(bridges) => finding("linux-bridges", Status::Ok, list(bridges)),
        Err(why) => finding(
            "linux-bridges",
            Status::Warn,
            format!("cannot list the node's links: {why} (NICs cannot be plugged)"),
        ),
    }
}

fn ovs_finding(node: &NodeNetwork, ovsdb: &str, nics: &[&NicSpec]) -> Finding {
    let why = match &node.ovs {
        Ok(bridges) => {
            return finding(
                "openvswitch",
                Status::Ok,
                format!("{ovsdb}: bridges {}", list(bridges)),
            )
        }
        Err(why) => why,
    };
    let linux = node.linux.as_deref().unwrap_or(&[]);
    let needed: Vec<String> = nics
        .iter()
        .filter_map(|n| Some((n, n.bridge.as_ref()?)))
        .filter(|(_, b)| !linux.iter().any(|l| l.name == b.as_str()))
        .map(|(n, b)| format!("{} (bridge={b})", NIC_NAMES[usize::from(n.index.get())]))
        .collect();
    if needed.is_empty() {
        finding(
            "openvswitch",
            Status::Ok,
            format!("not reachable, and no default NIC needs it: {why}"),
        )
    } else {
        finding(
            "openvswitch",
            Status::Fail,
            format!(
                "not reachable, and {} {} it (no Linux bridge of that name): {why}",
                needed.join(", "),
                if needed.len() == 1 { "needs" } else { "need" }
            ),
        )
    }
}

fn nic_finding(node: &NodeNetwork, ovsdb: &str, nic: &NicSpec, plugger: Plugger) -> Finding {
    let name = NIC_NAMES[usize::from(nic.index.get())];
    let Some(wanted) = nic.bridge.as_ref().map(|b| b.as_str()) else {
        return finding(
            name,
            Status::Ok,
            format!("{}: no bridge (the host end stays unattached)", nic.name),
        );
    };
    let linux = match &node.linux {
        Ok(l) => l,
        Err(_) => {
            return finding(
                name,
                Status::Warn,
                format!("bridge={wanted}: not checked (the node's links could not be listed)"),
            )
        }
    };
    let bridge = match (linux.iter().find(|b| b.name == wanted), &node.ovs) {
        (Some(b), _) => b,
        (None, Ok(ovs)) => match ovs.iter().find(|b| b.name == wanted) {
            Some(b) => b,
            None => {
                return finding(
                    name,
                    Status::Fail,
                    format!(
                        "bridge={wanted}: no Linux bridge and no Open vSwitch bridge (network.ovsdb = {ovsdb}) of that name"
                    ),
                )
            }
        },
        (None, Err(why)) => {
            return finding(
                name,
                Status::Fail,
                format!(
                    "bridge={wanted}: not a Linux bridge, and Open vSwitch could not be asked: {why}"
                ),
            )
        }
    };
    let mut vlans = String::new();
    if let Some(tag) = nic.tag {
        vlans.push_str(&format!(", tag {tag}"));
    }
    if !nic.trunks.is_empty() {
        vlans.push_str(&format!(", trunks {}", nic.trunks));
    }
    let not_filtering = bridge.kind
        == BridgeKind::Linux {
            vlan_filtering: false,
        };
    if not_filtering && !vlans.is_empty() {
        // PVE's tap_plug takes a tag there through a bridge of its own
        // over a VLAN of the bridge's ports, never trunks (pve-common
        // src/PVE/Network.pm `activate_bridge_vlan`).
        if plugger == Plugger::Pve && nic.trunks.is_empty() {
            let tag = nic.tag.map(|t| t.to_string()).unwrap_or_default();
            return finding(
                name,
                Status::Ok,
                format!(
                    "{} on Linux bridge {}, tag {tag}: PVE plugs it into {wanted}v{tag}, a bridge over VLAN {tag} of {wanted}'s physical ports (it refuses the start when {wanted} has none)",
                    nic.name,
                    describe(bridge)
                ),
            );
        }
        let fix = match plugger {
            Plugger::Lxcri => format!("make it VLAN-aware (`ip link set {wanted} type bridge vlan_filtering 1`) or use an Open vSwitch bridge"),
            Plugger::Pve => "PVE takes trunks only on a VLAN-aware bridge (bridge-vlan-aware yes)".into(),
        };
        return finding(
            name,
            Status::Fail,
            format!("tag=/trunks= on bridge {wanted}, which does not filter VLANs: {fix}"),
        );
    }
    if let Some(mtu) = nic.mtu.filter(|m| m.get() > bridge.mtu) {
        return finding(
            name,
            Status::Fail,
            format!("mtu={mtu} is above bridge {wanted}'s MTU {}", bridge.mtu),
        );
    }
    let on = match bridge.kind {
        BridgeKind::Linux { .. } => "Linux bridge",
        BridgeKind::Ovs { .. } => "Open vSwitch bridge",
    };
    finding(
        name,
        Status::Ok,
        format!("{} on {on} {}{vlans}", nic.name, describe(bridge)),
    )
}

#[cfg(test)]
mod tests;
