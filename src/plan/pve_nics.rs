//! A container's NICs as the CT's `netN` keys (see [`super::pve`]).
//!
//! - A container with its own network namespace: PVE plugs the NICs at
//!   start (`veth<VMID>i<N>`, its firewall bridges, its UI). lxcri's CTs
//!   run no network setup of their own (`ostype: unmanaged`), so static
//!   addresses need PVE 9.1's `host-managed`: PVE then writes them as
//!   `lxc.net.N.ipv4.address` etc. and LXC sets them (pve-container
//!   src/PVE/LXC.pm, `update_lxc_config`).
//! - A pod's sandbox: the CT joins containerd's namespace, where LXC makes
//!   no NIC (lxc src/lxc/start.c: `lxc_create_network` only for a new
//!   network namespace) and lxcri plugs them; the keys show the admin
//!   what the pod has, and PVE creates nothing a second time.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{invalid, NetnsTarget, NetworkPlan, Result};
use crate::network::nic::NicSpec;
use crate::network::values::{Ipv4Config, Ipv6Config};
use crate::pve::config::{IpConfig4, IpConfig6, MacAddr, NetConfig, PveVersion};

/// The `netN` keys for `network`.
pub(super) fn pve_nets(
    network: Option<&NetworkPlan>,
    version: PveVersion,
) -> Result<BTreeMap<u32, NetConfig>> {
    let Some(network) = network else {
        return Ok(BTreeMap::new());
    };
    let plugged_by_pve = network.netns == NetnsTarget::Own;
    network
        .nics
        .iter()
        .map(|nic| {
            Ok((
                u32::from(nic.index.get()),
                net_config(nic, plugged_by_pve, version)?,
            ))
        })
        .collect()
}

fn net_config(nic: &NicSpec, plugged_by_pve: bool, version: PveVersion) -> Result<NetConfig> {
    let static_ip = matches!(nic.ip, Some(Ipv4Config::Static(_)))
        || matches!(nic.ip6, Some(Ipv6Config::Static(_)));
    let host_managed = nic.host_managed || (plugged_by_pve && static_ip);
    if host_managed && !version.has_entrypoint() {
        let why = if nic.host_managed {
            format!("host-managed=1 is a PVE 9.1 NIC option; this node runs PVE {version}")
        } else {
            format!("static addresses on the pve backend are set by PVE 9.1's host-managed NICs; this node runs PVE {version} (use ip=manual and set them in the container)")
        };
        return Err(invalid(&nic.source, &why));
    }
    // pve-container src/PVE/LXC/Config.pm `update_pct_config` (create and
    // config updates alike, whoever plugs the NIC): "SLAAC is not supported
    // for host-managed network configuration", unless the link is down.
    if host_managed && nic.ip6 == Some(Ipv6Config::Auto) && !nic.link_down {
        return Err(invalid(
            &nic.source,
            "ip6=auto cannot go with host-managed addresses on the pve backend (PVE does no SLAAC for them); give ip6=ADDR/LEN or manual",
        ));
    }
    let v4 = |a: IpAddr| match a {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    };
    let v6 = |a: IpAddr| match a {
        IpAddr::V6(a) => Some(a),
        IpAddr::V4(_) => None,
    };
    Ok(NetConfig {
        name: nic.name.to_string(),
        bridge: nic.bridge.as_ref().map(ToString::to_string),
        firewall: nic.firewall.then_some(true),
        gw: nic.gw.and_then(v4),
        gw6: nic.gw6.and_then(v6),
        host_managed: host_managed.then_some(true),
        hwaddr: nic.hwaddr.map(|m| MacAddr(m.octets())),
        ip: nic.ip.map(|ip| match ip {
            Ipv4Config::Dhcp => IpConfig4::Dhcp,
            Ipv4Config::Manual => IpConfig4::Manual,
            Ipv4Config::Static(c) => IpConfig4::Cidr(v4(c.addr).expect("ip= is IPv4"), c.prefix),
        }),
        ip6: nic.ip6.map(|ip| match ip {
            Ipv6Config::Auto => IpConfig6::Auto,
            Ipv6Config::Dhcp => IpConfig6::Dhcp,
            Ipv6Config::Manual => IpConfig6::Manual,
            Ipv6Config::Static(c) => IpConfig6::Cidr(v6(c.addr).expect("ip6= is IPv6"), c.prefix),
        }),
        link_down: nic.link_down.then_some(true),
        mtu: nic
            .mtu
            .map(|m| u16::try_from(m.get()).expect("an MTU is at most 65535")),
        rate: nic.rate,
        tag: nic.tag.map(|t| t.get()),
        trunks: nic.trunks.ids().iter().map(|t| t.get()).collect(),
    })
}
