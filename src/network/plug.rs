//! Plugging a container's NICs as PVE plugs a CT's (pve-common
//! src/PVE/Network.pm, `tap_plug`; pve-container src/lxcnetaddbr): a veth
//! pair per NIC, the host end on its bridge with the NIC's VLANs (a Linux
//! bridge's VLAN filtering, or an Open vSwitch port's tag/trunks), the
//! container's end named, addressed and routed inside its namespace.
//!
//! Everything is checked before anything is made (bridges exist, VLANs
//! are possible there, MTUs fit), and a failure part-way removes what was
//! made: a create that fails leaves no veth and no OVS port.

use std::os::fd::BorrowedFd;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::host::{Bridge, BridgeKind, HostError, HostNetwork, PeerConfig, PortConfig};
use super::nic::{NicIndex, NicSpec};
use super::values::{Ipv4Config, Ipv6Config};

/// The prefix of the alias lxcri gives a host end: `lxcri:<owner>`.
pub const ALIAS_PREFIX: &str = "lxcri:";

/// A NIC lxcri plugged: what delete (and gc) remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluggedNic {
    /// The host end.
    pub host: String,
    /// The name inside the container.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// Whether the host end is an Open vSwitch port (a row to delete).
    #[serde(default)]
    pub ovs: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PlugError {
    /// The NIC cannot be plugged as written; nothing was made.
    #[error("{source_key}: {message}")]
    Refused { source_key: String, message: String },
    #[error("{source_key}: {action}: {error}")]
    Host {
        source_key: String,
        action: String,
        #[source]
        error: Box<HostError>,
    },
}

/// The host end's name: `lx` + 11 hex digits of the owner's hash + `i<N>`
/// (15 characters, IFNAMSIZ's limit, with N a single digit), like PVE's
/// `veth<VMID>i<N>`: the same for the same container, so a retry or gc
/// finds it. 44 bits, because a name two containers share would let the
/// delete of one remove the other's port: even 10,000 containers on a node
/// meet one with a chance of about 3 in a million.
pub fn host_name(owner: &str, index: NicIndex) -> String {
    let digest = hex::encode(Sha256::digest(owner.as_bytes()));
    format!("lx{}i{index}", &digest[..11])
}

/// Plugs `nics` into `netns` for `owner` (`namespace/id`). On error,
/// whatever this call made is removed again.
pub fn plug_all(
    host: &mut dyn HostNetwork,
    nics: &[NicSpec],
    owner: &str,
    netns: BorrowedFd<'_>,
    ovsdb: &str,
) -> Result<Vec<PluggedNic>, PlugError> {
    let checked = nics
        .iter()
        .map(|nic| check(host, nic, owner, ovsdb))
        .collect::<Result<Vec<_>, _>>()?;
    let mut plugged = Vec::new();
    for (nic, bridge) in nics.iter().zip(&checked) {
        if let Err(e) = plug_one(host, nic, bridge.as_ref(), owner, netns, &mut plugged) {
            unplug_all(host, &plugged, owner);
            return Err(e);
        }
    }
    Ok(plugged)
}

/// Removes the NICs plugged for `owner`; each that cannot be removed is
/// logged and named in the error, the others are still removed.
pub fn unplug(
    host: &mut dyn HostNetwork,
    nics: &[PluggedNic],
    owner: &str,
) -> Result<(), PlugError> {
    let mut first = None;
    for nic in nics {
        if let Err(error) = host.remove(&nic.host, nic.ovs.then_some(owner)) {
            tracing::warn!(host = %nic.host, error = %error, "removing a NIC");
            first.get_or_insert(PlugError::Host {
                source_key: nic.name.clone(),
                action: format!("removing host end {}", nic.host),
                error: Box::new(error),
            });
        }
    }
    first.map_or(Ok(()), Err)
}

fn unplug_all(host: &mut dyn HostNetwork, nics: &[PluggedNic], owner: &str) {
    // Already failing: the first error is the one to report.
    let _ = unplug(host, nics, owner);
}

/// What only PVE's own plugging does (its firewall bridges, its shaping),
/// so a NIC lxcri plugs itself cannot have it.
pub fn pve_only(nic: &NicSpec) -> Option<String> {
    if nic.firewall {
        return Some("firewall=1: PVE's firewall bridges exist only for NICs PVE plugs (a `ctr` container on the pve backend); lxcri plugs this one itself".into());
    }
    nic.rate.map(|rate| format!("rate={rate}: traffic shaping is done by PVE for NICs it plugs (a `ctr` container on the pve backend); lxcri plugs this one itself and does not shape"))
}

/// What must hold before anything is made; the bridge, if any.
fn check(
    host: &mut dyn HostNetwork,
    nic: &NicSpec,
    owner: &str,
    ovsdb: &str,
) -> Result<Option<Bridge>, PlugError> {
    let refuse = |message: String| PlugError::Refused {
        source_key: nic.source.clone(),
        message,
    };
    if let Some(why) = pve_only(nic) {
        return Err(refuse(why));
    }
    let name = host_name(owner, nic.index);
    let exists = host.link_exists(&name).map_err(|error| PlugError::Host {
        source_key: nic.source.clone(),
        action: format!("looking up {name}"),
        error: Box::new(error),
    })?;
    if exists {
        return Err(refuse(format!(
            "the host end {name} exists already (a container of the same name that was not deleted? `lxcri gc` removes leftovers)"
        )));
    }
    let Some(wanted) = &nic.bridge else {
        return Ok(None);
    };
    let bridge = match host.bridge(wanted.as_str()) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(refuse(format!(
                "bridge={wanted}: no Linux bridge and no Open vSwitch bridge (network.ovsdb = {ovsdb}) of that name"
            )))
        }
        Err(error) => {
            return Err(refuse(format!(
                "bridge={wanted}: not a Linux bridge, and Open vSwitch could not be asked (network.ovsdb = {ovsdb}): {error}"
            )))
        }
    };
    let vlans = nic.tag.is_some() || !nic.trunks.is_empty();
    if bridge.kind
        == (BridgeKind::Linux {
            vlan_filtering: false,
        })
        && vlans
    {
        // pve-common src/PVE/Network.pm, tap_plug: PVE would make a
        // `<br>v<tag>` bridge on a VLAN sub-interface of the uplink; lxcri
        // has no uplink to tag, so it asks for a VLAN-aware bridge.
        return Err(refuse(format!(
            "tag=/trunks= on bridge {wanted}, which does not filter VLANs: make it VLAN-aware (`ip link set {wanted} type bridge vlan_filtering 1`) or use an Open vSwitch bridge"
        )));
    }
    if let Some(mtu) = nic.mtu.filter(|m| m.get() > bridge.mtu) {
        // pve-container src/PVE/LXC.pm, update_lxc_config: "interface MTU
        // value is higher than bridge MTU".
        return Err(refuse(format!(
            "mtu={mtu} is above bridge {wanted}'s MTU {}",
            bridge.mtu
        )));
    }
    Ok(Some(bridge))
}

fn plug_one(
    host: &mut dyn HostNetwork,
    nic: &NicSpec,
    bridge: Option<&Bridge>,
    owner: &str,
    netns: BorrowedFd<'_>,
    plugged: &mut Vec<PluggedNic>,
) -> Result<(), PlugError> {
    let name = host_name(owner, nic.index);
    let fail = |action: &str| {
        let source_key = nic.source.clone();
        let action = action.to_string();
        move |error| PlugError::Host {
            source_key,
            action,
            error: Box::new(error),
        }
    };
    let alias = format!("{ALIAS_PREFIX}{owner}");
    host.create_veth(&name, nic.name.as_str(), netns, &alias)
        .map_err(fail(&format!("creating veth {name} (peer {})", nic.name)))?;
    let ovs = matches!(bridge.map(|b| &b.kind), Some(BridgeKind::Ovs { .. }));
    plugged.push(PluggedNic {
        host: name.clone(),
        name: nic.name.to_string(),
        bridge: bridge.map(|b| b.name.clone()),
        ovs,
    });
    let userspace = matches!(
        bridge.map(|b| &b.kind),
        Some(BridgeKind::Ovs { userspace: true })
    );
    // PVE's lxcnetaddbr gives the host end the bridge's MTU; the
    // container's end has the NIC's, else the bridge's.
    let mtu = nic.mtu.map_or(bridge.map_or(1500, |b| b.mtu), |m| m.get());
    // Up before it joins the bridge, as PVE's lxcnetaddbr does: ovs-vswitchd
    // sets a new port promiscuous with a read-modify-write of its flags,
    // which would undo an `up` made at the same time.
    let host_mtu = bridge.map_or(mtu, |b| b.mtu);
    host.set_host_end(&name, host_mtu, !nic.link_down, userspace)
        .map_err(fail(&format!("setting up {name}")))?;
    if let Some(bridge) = bridge {
        let port = PortConfig {
            bridge,
            tag: nic.tag.map(|t| t.get()),
            trunks: nic.trunks.ids().iter().map(|t| t.get()).collect(),
            owner,
        };
        host.attach(&name, &port)
            .map_err(fail(&format!("adding {name} to bridge {}", bridge.name)))?;
    }
    host.configure_peer(netns, &peer_config(nic, mtu, userspace))
        .map_err(fail(&format!("configuring {} in the container", nic.name)))?;
    Ok(())
}

fn peer_config(nic: &NicSpec, mtu: u32, tx_checksum_off: bool) -> PeerConfig {
    let mut addresses = Vec::new();
    if let Some(Ipv4Config::Static(c)) = nic.ip {
        addresses.push((c.addr, c.prefix));
    }
    if let Some(Ipv6Config::Static(c)) = nic.ip6 {
        addresses.push((c.addr, c.prefix));
    }
    PeerConfig {
        name: nic.name.to_string(),
        mac: nic.hwaddr.map(|m| m.octets()),
        mtu,
        addresses,
        gateways: nic.gw.into_iter().chain(nic.gw6).collect(),
        tx_checksum_off,
    }
}
