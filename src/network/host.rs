//! The node's side of plugging a NIC, behind one narrow interface
//! ([`HostNetwork`]) so the plugging logic is tested without root: the
//! real one ([`KernelNetwork`]) speaks netlink and OVSDB, each with a
//! deadline.

use std::net::IpAddr;
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
    /// Removes the host end (its peer goes with it) and, for an OVS port,
    /// the port's row; either may already be gone.
    fn remove(&mut self, host: &str, ovs: bool) -> Result<(), HostError>;
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

    fn ovsdb(&mut self) -> Result<&mut Ovsdb, HostError> {
        if self.ovsdb.is_none() {
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
        in_netns(netns, || -> Result<(), NetlinkError> {
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
                nl.add_route(None, *gw, &peer.name)?;
            }
            Ok(())
        })??;
        Ok(())
    }

    fn remove(&mut self, host: &str, ovs: bool) -> Result<(), HostError> {
        if ovs {
            self.ovsdb()?.del_port(host)?;
        }
        self.netlink.delete_link(host)?;
        Ok(())
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
