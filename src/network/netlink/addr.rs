//! IP addresses on links, routes via a gateway, and host routes on a link
//! (to reach a gateway outside the link's prefixes).

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::route::{
    RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Netlink, NetlinkError, Result};

fn family(addr: &IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn check_prefix(addr: &IpAddr, prefix_len: u8) -> std::result::Result<(), String> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(format!("prefix length {prefix_len} is over {max}"));
    }
    Ok(())
}

/// `RTM_NEWADDR` of `addr/prefix_len` on the link with index `index`. An
/// IPv4 address is both `IFA_LOCAL` and `IFA_ADDRESS`, as `ip addr add`
/// sends it (the peer address of a point-to-point link, else the same),
/// with the subnet's broadcast address below /31, as LXC sets a NIC's
/// (confile.c `set_config_net_ipv4_address`) and runc's netlink library a
/// moved device's (vishvananda/netlink `AddrAdd`).
pub(super) fn address_message(index: u32, addr: IpAddr, prefix_len: u8) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = family(&addr);
    msg.header.prefix_len = prefix_len;
    msg.header.index = index;
    if let IpAddr::V4(v4) = addr {
        msg.attributes.push(AddressAttribute::Local(addr));
        if prefix_len < 31 {
            let host_bits = u32::MAX >> prefix_len;
            let broadcast = Ipv4Addr::from(u32::from(v4) | host_bits);
            msg.attributes.push(AddressAttribute::Broadcast(broadcast));
        }
    }
    msg.attributes.push(AddressAttribute::Address(addr));
    msg
}

/// A unicast route of `addr`'s family in the main table, as `ip route add`
/// makes it.
fn main_table_route(addr: &IpAddr, scope: RouteScope) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family(addr);
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    // What `ip route add` marks its routes with: set by an administrator.
    msg.header.protocol = RouteProtocol::Boot;
    msg.header.scope = scope;
    msg.header.kind = RouteType::Unicast;
    msg
}

/// `RTM_NEWROUTE` in the main table: to `dest` (None: the default route)
/// via `gateway`; the caller adds the link (`RTA_OIF`).
pub(super) fn route_message(
    dest: Option<(IpAddr, u8)>,
    gateway: IpAddr,
) -> std::result::Result<RouteMessage, String> {
    let mut msg = main_table_route(&gateway, RouteScope::Universe);
    if let Some((addr, len)) = dest {
        if addr.is_ipv4() != gateway.is_ipv4() {
            return Err(format!(
                "destination {addr} and gateway {gateway} differ in family"
            ));
        }
        check_prefix(&addr, len)?;
        msg.header.destination_prefix_length = len;
        msg.attributes
            .push(RouteAttribute::Destination(addr.into()));
    }
    msg.attributes.push(RouteAttribute::Gateway(gateway.into()));
    Ok(msg)
}

/// `RTM_NEWROUTE` in the main table to the single host `dest` (/32 or
/// /128) directly on the link, as `ip route add DEST dev IF` sends it
/// (scope link): the route that makes a gateway outside every prefix of
/// the link a valid nexthop. The caller adds the link (`RTA_OIF`).
pub(super) fn link_route_message(dest: IpAddr) -> RouteMessage {
    let mut msg = main_table_route(&dest, RouteScope::Link);
    msg.header.destination_prefix_length = if dest.is_ipv4() { 32 } else { 128 };
    msg.attributes
        .push(RouteAttribute::Destination(dest.into()));
    msg
}

/// Whether an address is one an administrator set for anyone to use:
/// permanent (not from DHCP or SLAAC, no lifetime) and of global scope
/// (not the link's or the host's own). runc moves only those with a
/// device (`devChangeNetNamespace`); the kernel drops all of them when a
/// link changes namespace.
pub(super) fn is_permanent_global(msg: &AddressMessage) -> bool {
    let permanent = msg.header.flags.contains(AddressHeaderFlags::Permanent)
        || msg.attributes.iter().any(
            |a| matches!(a, AddressAttribute::Flags(f) if f.contains(AddressFlags::Permanent)),
        );
    permanent && msg.header.scope == AddressScope::Universe
}

/// The address of `msg` as `ip` shows it: `IFA_LOCAL` (an IPv4 link's
/// own, which differs from `IFA_ADDRESS` on a point-to-point link), else
/// `IFA_ADDRESS`.
pub(super) fn local_address(msg: &AddressMessage) -> Option<IpAddr> {
    let find = |local: bool| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if local => Some(*ip),
            AddressAttribute::Address(ip) if !local => Some(*ip),
            _ => None,
        })
    };
    find(true).or_else(|| find(false))
}

impl Netlink {
    /// The permanent addresses of global scope on link `index` (see
    /// [`is_permanent_global`]), with their prefix lengths.
    pub fn permanent_global_addresses(&mut self, index: u32) -> Result<Vec<(IpAddr, u8)>> {
        let op = format!("listing the addresses of link {index}");
        let mut found = Vec::new();
        let request = RouteNetlinkMessage::GetAddress(AddressMessage::default());
        for reply in self.dump(&op, request)? {
            if let RouteNetlinkMessage::NewAddress(m) = reply {
                if m.header.index == index && is_permanent_global(&m) {
                    found.extend(local_address(&m).map(|ip| (ip, m.header.prefix_len)));
                }
            }
        }
        Ok(found)
    }

    pub fn add_address(&mut self, name: &str, addr: IpAddr, prefix_len: u8) -> Result<()> {
        let op = format!("adding address {addr}/{prefix_len} to {name}");
        check_prefix(&addr, prefix_len).map_err(|reason| NetlinkError::Invalid {
            op: op.clone(),
            reason,
        })?;
        let index = self.index_of(&op, name)?;
        let msg = address_message(index, addr, prefix_len);
        self.request(
            &op,
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// A route via `gateway` on `dev`; `dest` None is the default route.
    pub fn add_route(
        &mut self,
        dest: Option<(IpAddr, u8)>,
        gateway: IpAddr,
        dev: &str,
    ) -> Result<()> {
        let to = match dest {
            Some((addr, len)) => format!("{addr}/{len}"),
            None => "default".to_owned(),
        };
        let op = format!("adding route {to} via {gateway} dev {dev}");
        let msg = route_message(dest, gateway).map_err(|reason| NetlinkError::Invalid {
            op: op.clone(),
            reason,
        })?;
        self.add_route_on(&op, msg, dev)
    }

    /// A host route to `dest` on `dev` with no gateway (scope link).
    pub fn add_link_route(&mut self, dest: IpAddr, dev: &str) -> Result<()> {
        let op = format!("adding route {dest} dev {dev} scope link");
        self.add_route_on(&op, link_route_message(dest), dev)
    }

    /// Sends `msg` as a new route out of link `dev`.
    fn add_route_on(&mut self, op: &str, mut msg: RouteMessage, dev: &str) -> Result<()> {
        let index = self.index_of(op, dev)?;
        msg.attributes.push(RouteAttribute::Oif(index));
        self.request(
            op,
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }
}
