//! The node's side of plugging a NIC, behind one narrow interface
//! ([`HostNetwork`]) so the plugging logic is tested without root: the
//! real one ([`KernelNetwork`]) speaks netlink and OVSDB, each with a
//! deadline.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::BorrowedFd;
use std::time::Duration;

use super::netlink::{disable_tx_checksum, in_netns, Netlink, NetlinkError};
use super::ovsdb::{OvsPort, Ovsdb, OvsdbError, OvsdbTarget, PortVlan};

/// How long one netlink or OVSDB exchange may take.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// What a bridge is, as far as plugging a port goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeKind {
    Linux {
        vlan_filtering: bool,
    },
    /// `netdev`: Open vSwitch's userspace datapath, which reads the port
    /// from a raw socket and needs transmit checksums done in software.
    Ovs {
        userspace: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub name: String,
    pub kind: BridgeKind,
    pub mtu: u32,
}

/// The container's end of a NIC, set inside its network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub name: String,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    pub addresses: Vec<(IpAddr, u8)>,
    pub gateways: Vec<IpAddr>,
    pub tx_checksum_off: bool,
}

/// How a port joins its bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig<'a> {
    pub bridge: &'a Bridge,
    pub tag: Option<u16>,
    pub trunks: Vec<u16>,
    /// OVS `external_ids` / the link alias: whose port it is.
    pub owner: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Ovsdb(#[from] OvsdbError),
    /// The namespace has a default route of the gateway's family already:
    /// in a pod's, CNI's (lxcri's own plan allows one gateway per family).
    #[error("{}={gateway}: the network namespace has a default {} route already (in a pod: CNI's), and it takes one per family: leave {}= off {dev}", gateway_key(.gateway), family_name(.gateway), gateway_key(.gateway))]
    DefaultRouteExists {
        gateway: IpAddr,
        dev: String,
        #[source]
        source: NetlinkError,
    },
}

/// The NIC key a gateway is written under.
fn gateway_key(gateway: &IpAddr) -> &'static str {
    if gateway.is_ipv4() {
        "gw"
    } else {
        "gw6"
    }
}

fn family_name(gateway: &IpAddr) -> &'static str {
    if gateway.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Whether `gateway` needs a host route on the link before the default
/// route via it: the kernel takes a gateway only on a route it can reach
/// ("Nexthop has invalid gateway"), which none of `addresses`' prefix
/// routes is when no prefix holds it (a /32 address, a provider's gateway
/// in another subnet). PVE's Debian setup adds `ip route add GW dev IF`
/// then, and LXC's `lxc_ipv4_gateway_add` the same. An IPv6 link-local
/// gateway (fe80::/10) is always on the link.
pub fn gateway_needs_link_route(gateway: IpAddr, addresses: &[(IpAddr, u8)]) -> bool {
    if let IpAddr::V6(gw) = gateway {
        if gw.segments()[0] & 0xffc0 == 0xfe80 {
            return false;
        }
    }
    !addresses
        .iter()
        .any(|(addr, prefix)| in_prefix(gateway, *addr, *prefix))
}

/// Whether `ip` is in `net/prefix` (never across families).
fn in_prefix(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX
                .checked_shl(Ipv4Addr::BITS.saturating_sub(prefix.into()))
                .unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX
                .checked_shl(Ipv6Addr::BITS.saturating_sub(prefix.into()))
                .unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The node's links and switches.
pub trait HostNetwork {
    /// The bridge named `name`: a Linux bridge, else an Open vSwitch one.
    fn bridge(&mut self, name: &str) -> Result<Option<Bridge>, HostError>;
    fn link_exists(&mut self, name: &str) -> Result<bool, HostError>;
    /// A veth pair, `peer` made inside `netns` under its final name.
    fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        netns: BorrowedFd<'_>,
        alias: &str,
    ) -> Result<(), HostError>;
    fn attach(&mut self, host: &str, port: &PortConfig<'_>) -> Result<(), HostError>;
    /// MTU, checksum offload and link state of the host end.
    fn set_host_end(
        &mut self,
        host: &str,
        mtu: u32,
        up: bool,
        tx_checksum_off: bool,
    ) -> Result<(), HostError>;
    fn configure_peer(&mut self, netns: BorrowedFd<'_>, peer: &PeerConfig)
        -> Result<(), HostError>;
    /// Removes the host end (its peer goes with it) and, with
    /// `ovs_owner`, the OVS port of that name if it is marked as that
    /// owner's; either may already be gone.
    fn remove(&mut self, host: &str, ovs_owner: Option<&str>) -> Result<(), HostError>;
    /// The links whose alias starts with `prefix`, as (name, alias): how
    /// lxcri finds the host ends it made.
    fn links_with_alias_prefix(&mut self, prefix: &str)
        -> Result<Vec<(String, String)>, HostError>;
    /// The Open vSwitch ports whose `external_ids` has `key`.
    fn ports_with_external_id(&mut self, key: &str) -> Result<Vec<OvsPort>, HostError>;
}

/// The kernel (netlink) and Open vSwitch (its database at `ovsdb`,
/// connected to only when an OVS bridge is involved).
pub struct KernelNetwork {
    netlink: Netlink,
    target: OvsdbTarget,
    ovsdb: Option<Ovsdb>,
}

impl KernelNetwork {
    pub fn open(ovsdb: &OvsdbTarget) -> Result<Self, HostError> {
        Ok(Self {
            netlink: Netlink::with_deadline(DEADLINE)?,
            target: ovsdb.clone(),
            ovsdb: None,
        })
    }

    /// The OVSDB connection; a broken one (a request failed mid-way, so a
    /// late answer could be taken for the next) is replaced by a new one.
    fn ovsdb(&mut self) -> Result<&mut Ovsdb, HostError> {
        let usable = self.ovsdb.as_ref().is_some_and(|db| !db.is_broken());
        if !usable {
            self.ovsdb = Some(Ovsdb::connect_with_deadline(&self.target, DEADLINE)?);
        }
        Ok(self.ovsdb.as_mut().expect("connected above"))
    }
}

impl HostNetwork for KernelNetwork {
    fn bridge(&mut self, name: &str) -> Result<Option<Bridge>, HostError> {
        let link = self.netlink.link(name)?;
        if let Some(l) = &link {
            if l.kind.as_deref() == Some("bridge") {
                return Ok(Some(Bridge {
                    name: name.to_string(),
                    kind: BridgeKind::Linux {
                        vlan_filtering: l.vlan_filtering.unwrap_or(false),
                    },
                    mtu: l.mtu,
                }));
            }
        }
        let Some(ovs) = self.ovsdb()?.bridge(name)? else {
            return Ok(None);
        };
        Ok(Some(Bridge {
            name: name.to_string(),
            kind: BridgeKind::Ovs {
                userspace: ovs.datapath_type == "netdev",
            },
            // The bridge's local port carries its MTU.
            mtu: link.map_or(1500, |l| l.mtu),
        }))
    }

    fn link_exists(&mut self, name: &str) -> Result<bool, HostError> {
        Ok(self.netlink.link(name)?.is_some())
    }

    fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        netns: BorrowedFd<'_>,
        alias: &str,
    ) -> Result<(), HostError> {
        Ok(self.netlink.create_veth(host, peer, netns, alias)?)
    }

    fn attach(&mut self, host: &str, port: &PortConfig<'_>) -> Result<(), HostError> {
        match port.bridge.kind {
            BridgeKind::Linux { vlan_filtering } => {
                self.netlink.set_master(host, &port.bridge.name)?;
                if vlan_filtering {
                    self.netlink
                        .set_bridge_port_vlans(host, port.tag, &port.trunks)?;
                }
            }
            BridgeKind::Ovs { .. } => {
                let vlan = PortVlan {
                    tag: port.tag,
                    trunks: port.trunks.clone(),
                };
                let ids = [(super::OVS_OWNER_KEY, port.owner)];
                let mtu = Some(port.bridge.mtu);
                self.ovsdb()?
                    .add_port(&port.bridge.name, host, &vlan, &ids, mtu)?;
            }
        }
        Ok(())
    }

    fn set_host_end(
        &mut self,
        host: &str,
        mtu: u32,
        up: bool,
        tx_checksum_off: bool,
    ) -> Result<(), HostError> {
        self.netlink.set_mtu(host, mtu)?;
        if tx_checksum_off {
            disable_tx_checksum(host)?;
        }
        if up {
            self.netlink.set_up(host)?;
        }
        Ok(())
    }

    fn configure_peer(
        &mut self,
        netns: BorrowedFd<'_>,
        peer: &PeerConfig,
    ) -> Result<(), HostError> {
        in_netns(netns, || -> Result<(), HostError> {
            let mut nl = Netlink::with_deadline(DEADLINE)?;
            if let Some(mac) = peer.mac {
                nl.set_mac(&peer.name, mac)?;
            }
            nl.set_mtu(&peer.name, peer.mtu)?;
            if peer.tx_checksum_off {
                disable_tx_checksum(&peer.name)?;
            }
            for (addr, prefix) in &peer.addresses {
                nl.add_address(&peer.name, *addr, *prefix)?;
            }
            nl.set_up(&peer.name)?;
            for gw in &peer.gateways {
                if gateway_needs_link_route(*gw, &peer.addresses) {
                    nl.add_link_route(*gw, &peer.name)?;
                }
                nl.add_route(None, *gw, &peer.name).map_err(|source| {
                    if source.raw_os_error() == Some(libc::EEXIST) {
                        HostError::DefaultRouteExists {
                            gateway: *gw,
                            dev: peer.name.clone(),
                            source,
                        }
                    } else {
                        source.into()
                    }
                })?;
            }
            Ok(())
        })??;
        Ok(())
    }

    fn remove(&mut self, host: &str, ovs_owner: Option<&str>) -> Result<(), HostError> {
        // The veth goes even when its port row cannot (OVS down): gc finds
        // a leftover row by its mark, while a leftover veth keeps the NIC's
        // name taken for the next create.
        let mut first = None;
        if let Some(owner) = ovs_owner {
            let mark = (super::OVS_OWNER_KEY, owner);
            if let Err(e) = self
                .ovsdb()
                .and_then(|db| Ok(db.del_port(host, Some(mark))?))
            {
                first = Some(e);
            }
        }
        if let Err(e) = self.netlink.delete_link(host) {
            first.get_or_insert(e.into());
        }
        first.map_or(Ok(()), Err)
    }

    fn links_with_alias_prefix(
        &mut self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, HostError> {
        Ok(self.netlink.links_with_alias_prefix(prefix)?)
    }

    fn ports_with_external_id(&mut self, key: &str) -> Result<Vec<OvsPort>, HostError> {
        Ok(self.ovsdb()?.ports_with_external_id(key, None)?)
    }
}
