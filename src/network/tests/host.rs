//! The real node's side where it needs no root and no ovsdb-server: when
//! a gateway needs a route of its own, what a second default route says,
//! and that a broken OVSDB connection is replaced.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::net::{UnixListener, UnixStream};

use serde_json::{json, Value};

use crate::network::host::{gateway_needs_link_route, HostError, HostNetwork, KernelNetwork};
use crate::network::netlink::NetlinkError;
use crate::network::ovsdb::{OvsdbError, OvsdbTarget};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn needs(gateway: &str, addresses: &[(&str, u8)]) -> bool {
    let addresses: Vec<(IpAddr, u8)> = addresses.iter().map(|(a, p)| (ip(a), *p)).collect();
    gateway_needs_link_route(ip(gateway), &addresses)
}

#[test]
fn a_gateway_in_an_addresss_prefix_needs_no_route_of_its_own() {
    assert!(!needs("10.30.0.1", &[("10.30.0.5", 24)]));
    assert!(!needs("10.30.255.254", &[("10.30.0.5", 16)]));
    assert!(!needs("fd00::1", &[("10.0.0.2", 8), ("fd00::5", 64)]));
    assert!(!needs("fd00:0:0:1::1", &[("fd00::5", 48)]));
}

#[test]
fn a_gateway_outside_every_prefix_of_its_family_needs_one() {
    assert!(needs("198.51.100.1", &[("203.0.113.5", 32)]));
    assert!(needs("10.30.1.1", &[("10.30.0.5", 24)]));
    // A prefix of the other family holds nothing of this one.
    assert!(needs("10.0.0.1", &[("fd00::5", 8), ("10.1.0.2", 16)]));
    assert!(needs("2001:db8:1::1", &[("2001:db8:2::5", 128)]));
    assert!(needs("fd00:0:0:1::1", &[("fd00::5", 64)]));
}

#[test]
fn an_ipv6_link_local_gateway_never_needs_one() {
    assert!(!needs("fe80::1", &[("2001:db8::5", 128)]));
    assert!(!needs("febf::1", &[]));
    assert!(
        needs("fec0::1", &[("2001:db8::5", 64)]),
        "fec0:: is not fe80::/10"
    );
}

/// The next request on `stream`.
fn request(stream: &UnixStream) -> Value {
    serde_json::Deserializer::from_reader(stream)
        .into_iter::<Value>()
        .next()
        .expect("a request")
        .expect("JSON")
}

#[test]
fn a_broken_ovsdb_connection_is_replaced_by_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        // Hanging up mid-request breaks the first connection.
        let (first, _) = listener.accept().unwrap();
        request(&first);
        drop(first);
        let (mut second, _) = listener.accept().unwrap();
        let id = request(&second)["id"].clone();
        let rows = json!([{"rows": []}, {"rows": []}]);
        let reply = json!({"id": id, "result": rows, "error": null});
        second.write_all(reply.to_string().as_bytes()).unwrap();
    });
    let target: OvsdbTarget = format!("unix:{}", path.display()).parse().unwrap();
    let mut host = KernelNetwork::open(&target).unwrap();
    let e = host.ports_with_external_id("lxcri-owner").unwrap_err();
    assert!(
        matches!(e, HostError::Ovsdb(OvsdbError::Closed { .. })),
        "{e:?}"
    );
    assert_eq!(host.ports_with_external_id("lxcri-owner").unwrap(), []);
    server.join().unwrap();
}

#[test]
fn a_default_route_already_there_names_key_family_and_nic() {
    let source = NetlinkError::Kernel {
        op: "adding route default".into(),
        source: std::io::Error::from_raw_os_error(libc::EEXIST),
        kernel_message: None,
    };
    let e = HostError::DefaultRouteExists {
        gateway: ip("fd00::1"),
        dev: "net1".into(),
        source,
    };
    assert_eq!(
        e.to_string(),
        "gw6=fd00::1: the network namespace has a default IPv6 route already (in a pod: CNI's), and it takes one per family: leave gw6= off net1"
    );
}
