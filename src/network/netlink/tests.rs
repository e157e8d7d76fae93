//! Without root: the messages lxcri sends, how kernel answers are read,
//! and read-only requests against the kernel in this namespace.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{
    AfSpecBridge, BridgeVlanInfo, BridgeVlanInfoFlags as F, InfoBridge, InfoData, InfoKind,
    InfoVeth, LinkAttribute, LinkInfo as InfoAttr, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAttribute, RouteHeader, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::addr::{address_message, link_route_message, route_message};
use super::bridge_vlan::{vlan_message, vlan_steps, VlanStep};
use super::link::{check_name, veth_message};
use super::{extack_message, LinkInfo, Netlink, NetlinkError};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn del(first: u16, last: u16) -> VlanStep {
    VlanStep {
        add: false,
        first,
        last,
        pvid_untagged: false,
    }
}

fn add(first: u16, last: u16) -> VlanStep {
    VlanStep {
        add: true,
        ..del(first, last)
    }
}

fn pvid(vid: u16) -> VlanStep {
    VlanStep {
        pvid_untagged: true,
        ..add(vid, vid)
    }
}

#[test]
fn vlan_steps_follow_pve_bridge_add_interface() {
    // tag only: everything removed, the tag untagged.
    assert_eq!(vlan_steps(Some(10), &[]).unwrap(), [del(1, 4094), pvid(10)]);
    // trunks only: the trunks tagged, VLAN 1 untagged.
    assert_eq!(
        vlan_steps(None, &[30, 20, 21, 22, 20]).unwrap(),
        [del(1, 4094), add(20, 22), add(30, 30), pvid(1)]
    );
    // tag and trunks: the trunks tagged, the tag untagged.
    assert_eq!(
        vlan_steps(Some(10), &[100, 200]).unwrap(),
        [del(1, 4094), add(100, 100), add(200, 200), pvid(10)]
    );
    // neither: every VLAN but 1 tagged, 1 untagged.
    assert_eq!(
        vlan_steps(None, &[]).unwrap(),
        [del(1, 4094), add(2, 4094), pvid(1)]
    );
}

#[test]
fn vlan_ids_outside_1_to_4094_are_refused() {
    assert!(vlan_steps(Some(0), &[]).is_err());
    assert!(vlan_steps(Some(4095), &[]).is_err());
    assert_eq!(
        vlan_steps(None, &[10, 4095]).unwrap_err(),
        "vlan 4095 is outside 1-4094"
    );
    assert!(vlan_steps(Some(4094), &[1]).is_ok());
}

/// The message's family, port and `IFLA_AF_SPEC` entries.
fn af_spec(msg: &RouteNetlinkMessage) -> (bool, &LinkMessage, &[AfSpecBridge]) {
    let (is_add, m) = match msg {
        RouteNetlinkMessage::SetLink(m) => (true, m),
        RouteNetlinkMessage::DelLink(m) => (false, m),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(m.header.interface_family, AddressFamily::Bridge);
    match m.attributes.as_slice() {
        [LinkAttribute::AfSpecBridge(entries)] => (is_add, m, entries),
        other => panic!("unexpected attributes {other:?}"),
    }
}

fn vinfo(flags: F, vid: u16) -> AfSpecBridge {
    AfSpecBridge::VlanInfo(BridgeVlanInfo { flags, vid })
}

#[test]
fn delete_of_all_vlans_is_one_range() {
    let msg = vlan_message(7, &del(1, 4094));
    let (is_add, m, entries) = af_spec(&msg);
    assert!(!is_add, "RTM_DELLINK");
    assert_eq!(m.header.index, 7);
    assert_eq!(entries, [vinfo(F::RangeBegin, 1), vinfo(F::RangeEnd, 4094)]);

    // On the wire, after nlmsghdr and ifinfomsg: IFLA_AF_SPEC (26) holding
    // two IFLA_BRIDGE_VLAN_INFO (2): flags 0x08 vid 1, flags 0x10 vid 4094.
    let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
    packet.finalize();
    let mut bytes = vec![0; packet.buffer_len()];
    packet.serialize(&mut bytes);
    assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), libc::RTM_DELLINK);
    assert_eq!(bytes[16], libc::AF_BRIDGE as u8);
    assert_eq!(u32::from_ne_bytes(bytes[20..24].try_into().unwrap()), 7);
    let attrs: Vec<u16> = bytes[32..]
        .chunks(2)
        .map(|c| u16::from_ne_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(attrs[1] & 0x3fff, 26, "IFLA_AF_SPEC");
    assert_eq!(attrs[2..], [8, 2, 0x08, 1, 8, 2, 0x10, 4094]);
}

#[test]
fn tag_goes_out_as_pvid_untagged_and_trunks_tagged() {
    let msg = vlan_message(3, &pvid(10));
    let (is_add, _, entries) = af_spec(&msg);
    assert!(is_add, "RTM_SETLINK");
    assert_eq!(entries, [vinfo(F::Pvid | F::Untagged, 10)]);

    let trunk = vlan_message(3, &add(100, 100));
    assert_eq!(af_spec(&trunk).2, [vinfo(F::empty(), 100)]);

    let all_but_1 = vlan_message(3, &add(2, 4094));
    assert_eq!(
        af_spec(&all_but_1).2,
        [vinfo(F::RangeBegin, 2), vinfo(F::RangeEnd, 4094)]
    );
}

#[test]
fn veth_peer_carries_its_name_and_netns() {
    let msg = veth_message("lx1234i0", "eth1", 9);
    assert_eq!(msg.attributes[0], LinkAttribute::IfName("lx1234i0".into()));
    let mut peer = LinkMessage::default();
    peer.attributes = vec![
        LinkAttribute::IfName("eth1".into()),
        LinkAttribute::NetNsFd(9),
    ];
    assert_eq!(
        msg.attributes[1],
        LinkAttribute::LinkInfo(vec![
            InfoAttr::Kind(InfoKind::Veth),
            InfoAttr::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ])
    );
    assert_eq!(msg.attributes.len(), 2);
}

#[test]
fn addresses_as_ip_addr_add_sends_them() {
    let v4 = address_message(4, ip("10.0.0.2"), 24);
    assert_eq!(v4.header.family, AddressFamily::Inet);
    assert_eq!((v4.header.prefix_len, v4.header.index), (24, 4));
    assert_eq!(
        v4.attributes,
        [
            AddressAttribute::Local(ip("10.0.0.2")),
            AddressAttribute::Broadcast("10.0.0.255".parse().unwrap()),
            AddressAttribute::Address(ip("10.0.0.2"))
        ]
    );
    // None for a point-to-point /31 or a single /32 address.
    for prefix in [31, 32] {
        let m = address_message(4, ip("10.0.0.2"), prefix);
        assert!(
            !m.attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Broadcast(_))),
            "/{prefix}"
        );
    }
    let wide = address_message(4, ip("10.1.2.3"), 8);
    assert!(wide.attributes.contains(&AddressAttribute::Broadcast(
        "10.255.255.255".parse().unwrap()
    )));
    let v6 = address_message(4, ip("fd00::2"), 64);
    assert_eq!(v6.header.family, AddressFamily::Inet6);
    assert_eq!(v6.attributes, [AddressAttribute::Address(ip("fd00::2"))]);
}

#[test]
fn default_route_has_no_destination() {
    let r = route_message(None, ip("10.0.0.1")).unwrap();
    assert_eq!(r.header.address_family, AddressFamily::Inet);
    assert_eq!(r.header.destination_prefix_length, 0);
    assert_eq!(r.header.table, RouteHeader::RT_TABLE_MAIN);
    assert_eq!(r.header.protocol, RouteProtocol::Boot);
    assert_eq!(r.header.kind, RouteType::Unicast);
    assert_eq!(
        r.attributes,
        [RouteAttribute::Gateway(ip("10.0.0.1").into())]
    );

    let r = route_message(Some((ip("fd01::"), 64)), ip("fd00::1")).unwrap();
    assert_eq!(r.header.address_family, AddressFamily::Inet6);
    assert_eq!(r.header.destination_prefix_length, 64);
    assert_eq!(
        r.attributes,
        [
            RouteAttribute::Destination(ip("fd01::").into()),
            RouteAttribute::Gateway(ip("fd00::1").into())
        ]
    );

    assert!(route_message(Some((ip("10.1.0.0"), 16)), ip("fd00::1")).is_err());
    assert!(route_message(Some((ip("10.1.0.0"), 33)), ip("10.0.0.1")).is_err());
}

#[test]
fn a_link_route_is_to_one_host_with_no_gateway() {
    let r = link_route_message(ip("198.51.100.1"));
    assert_eq!(r.header.address_family, AddressFamily::Inet);
    assert_eq!(r.header.destination_prefix_length, 32);
    assert_eq!(r.header.scope, RouteScope::Link);
    assert_eq!(r.header.table, RouteHeader::RT_TABLE_MAIN);
    assert_eq!(r.header.protocol, RouteProtocol::Boot);
    assert_eq!(r.header.kind, RouteType::Unicast);
    assert_eq!(
        r.attributes,
        [RouteAttribute::Destination(ip("198.51.100.1").into())]
    );
    let r = link_route_message(ip("2001:db8:1::1"));
    assert_eq!(r.header.address_family, AddressFamily::Inet6);
    assert_eq!(r.header.destination_prefix_length, 128);
}

fn link_message(kind: Option<InfoKind>, data: Option<InfoData>) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = 5;
    m.attributes.push(LinkAttribute::IfName("br0".into()));
    m.attributes.push(LinkAttribute::Mtu(1500));
    let mut info = Vec::new();
    info.extend(kind.map(InfoAttr::Kind));
    info.extend(data.map(InfoAttr::Data));
    m.attributes.push(LinkAttribute::LinkInfo(info));
    m
}

#[test]
fn link_info_reads_kind_and_vlan_filtering() {
    let on = link_message(
        Some(InfoKind::Bridge),
        Some(InfoData::Bridge(vec![InfoBridge::VlanFiltering(true)])),
    );
    let info = LinkInfo::from_message("op", &on).unwrap();
    assert_eq!((info.index, info.name.as_str(), info.mtu), (5, "br0", 1500));
    assert_eq!(info.kind.as_deref(), Some("bridge"));
    assert_eq!(info.vlan_filtering, Some(true));
    assert!(!info.up);

    // A kernel without bridge VLAN filtering leaves the attribute out.
    let unsupported = link_message(Some(InfoKind::Bridge), Some(InfoData::Bridge(vec![])));
    let info = LinkInfo::from_message("op", &unsupported).unwrap();
    assert_eq!(info.vlan_filtering, Some(false));

    let ovs = link_message(Some(InfoKind::Other("openvswitch".into())), None);
    let info = LinkInfo::from_message("op", &ovs).unwrap();
    assert_eq!(info.kind.as_deref(), Some("openvswitch"));
    assert_eq!(info.vlan_filtering, None);

    let mut nameless = link_message(None, None);
    nameless.attributes.remove(0);
    let err = LinkInfo::from_message("listing links", &nameless).unwrap_err();
    assert_eq!(
        err.to_string(),
        "listing links: unreadable answer from the kernel: link 5 has no name"
    );
}

#[test]
fn link_names_follow_the_kernel_rules() {
    for good in ["eth0", "lx1234i0", "a", "123456789012345"] {
        assert!(check_name("op", good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "1234567890123456",
        ".",
        "..",
        "a/b",
        "a:b",
        "a b",
        "a\0",
    ] {
        assert!(check_name("op", bad).is_err(), "{bad:?}");
    }
}

/// What follows the error code of a capped NLMSG_ERROR: the request's
/// header, then `NLMSGERR_ATTR_MSG`.
fn capped_ack(text: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    let len = 4 + text.len();
    b.extend((len as u16).to_ne_bytes());
    b.extend(1u16.to_ne_bytes());
    b.extend(text);
    b.resize(16 + ((len + 3) & !3), 0);
    b
}

#[test]
fn extended_ack_text_is_read() {
    const CAPPED: u16 = 0x100;
    const ACK_TLVS: u16 = 0x200;
    let b = capped_ack(b"Nexthop has invalid gateway\0");
    assert_eq!(
        extack_message(CAPPED | ACK_TLVS, &b).as_deref(),
        Some("Nexthop has invalid gateway")
    );
    assert_eq!(extack_message(CAPPED, &b), None, "no NLM_F_ACK_TLVS");
    // Not capped: the request's payload comes back too, its length in its
    // header.
    let mut uncapped = vec![0u8; 20];
    uncapped[..4].copy_from_slice(&20u32.to_ne_bytes());
    uncapped.extend_from_slice(&b[16..]);
    assert_eq!(
        extack_message(ACK_TLVS, &uncapped).as_deref(),
        Some("Nexthop has invalid gateway")
    );
    assert_eq!(extack_message(CAPPED | ACK_TLVS, &[0; 3]), None, "short");
}

#[test]
fn kernel_errors_name_the_operation() {
    let err = NetlinkError::Kernel {
        op: "creating veth lx1234i0 (peer eth1)".into(),
        source: io::Error::from_raw_os_error(libc::EEXIST),
        kernel_message: None,
    };
    assert_eq!(
        err.to_string(),
        "creating veth lx1234i0 (peer eth1): File exists (os error 17)"
    );
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
    let err = NetlinkError::Kernel {
        op: "adding route default via 10.9.0.1 dev eth0".into(),
        source: io::Error::from_raw_os_error(libc::ENETUNREACH),
        kernel_message: Some("Nexthop has invalid gateway".into()),
    };
    assert_eq!(
        err.to_string(),
        "adding route default via 10.9.0.1 dev eth0: Network is unreachable (os error 101) \
         (Nexthop has invalid gateway)"
    );
}

// Read-only requests need no privileges: lookups and a full link dump in
// this test's namespace go through the real socket, acks and dumps.

#[test]
fn loopback_is_found_and_a_missing_link_is_none() {
    let mut nl = Netlink::open().unwrap();
    let lo = nl.link("lo").unwrap().expect("lo");
    assert_eq!(lo.name, "lo");
    assert_eq!(lo.kind, None);
    assert!(nl.link("lxcrinosuch0").unwrap().is_none());
    // Every link of this namespace parses.
    nl.links_with_alias_prefix("").unwrap();
}

#[test]
fn a_request_past_its_deadline_times_out_and_its_late_answer_is_dropped() {
    let mut nl = Netlink::with_deadline(Duration::ZERO).unwrap();
    let err = nl.link("lo").unwrap_err();
    assert!(matches!(err, NetlinkError::Timeout { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "looking up link lo: no answer from the kernel within 0ns"
    );
    // lo's description is still queued; the next request must not take
    // it for its own answer.
    nl.deadline = Duration::from_secs(5);
    assert_eq!(nl.link("lxcrinosuch0").unwrap(), None);
}

#[test]
fn a_kernel_that_never_answers_times_out() {
    let mut nl = Netlink::with_deadline(Duration::from_millis(100)).unwrap();
    let started = std::time::Instant::now();
    // Without NLM_F_REQUEST the kernel drops the message unanswered.
    let msg = RouteNetlinkMessage::GetLink(LinkMessage::default());
    let err = nl.exchange("waiting", msg, 0).unwrap_err();
    assert!(matches!(err, NetlinkError::Timeout { .. }), "{err}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}
