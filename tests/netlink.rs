//! `lxcri::network::netlink`, and the NIC setup of
//! `lxcri::network::host::KernelNetwork` built on it, against the real
//! kernel (root).
//!
//! Each test makes two network namespaces of its own, held only by file
//! descriptors: "host" (the bridge and the host end of the veth) and
//! "ct" (the container's end). Nothing is created in the machine's own
//! namespace, and closing the descriptors at the end of a test, passed or
//! failed, destroys the namespaces with everything in them. Names carry
//! the pid anyway, so nothing could collide if that ever changed.
//!
//! Run: `cargo test -p lxcri --test netlink -- --ignored`.

use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use lxcri::network::host::{HostError, HostNetwork, KernelNetwork, PeerConfig};
use lxcri::network::netlink::{disable_tx_checksum, in_netns, Netlink, NetlinkError};
use lxcri::network::ovsdb::OvsdbError;
use nix::sched::{unshare, CloneFlags};

/// A new, empty network namespace, alive as long as this value.
struct Netns(OwnedFd);

impl Netns {
    fn new() -> Self {
        // unshare moves only the calling thread: a throwaway one.
        let fd = std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): run as root");
            File::open("/proc/thread-self/ns/net").expect("open the new netns")
        })
        .join()
        .expect("netns thread");
        Netns(fd.into())
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    fn netlink(&self) -> Netlink {
        in_netns(self.fd(), Netlink::open)
            .expect("join netns")
            .expect("open netlink")
    }

    fn read(&self, path: &'static str) -> String {
        in_netns(self.fd(), || std::fs::read_to_string(path))
            .expect("join netns")
            .expect(path)
    }
}

fn name(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id() % 100_000)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

#[test]
#[ignore = "needs root: run by scripts/test"]
fn veth_peer_is_made_in_the_netns_under_its_final_name() {
    let (host, ct) = (Netns::new(), Netns::new());
    let mut nl = host.netlink();
    let mut nl_ct = ct.netlink();
    let veth = name("lxt");
    let alias = format!("lxcri-test/{veth}/net0");

    nl.create_veth(&veth, "eth1", ct.fd(), &alias)
        .expect("create veth");

    let host_end = nl.link(&veth).expect("look up").expect("host end");
    assert_eq!(host_end.kind.as_deref(), Some("veth"));
    assert_eq!(host_end.alias.as_deref(), Some(alias.as_str()));
    assert_eq!(host_end.vlan_filtering, None);
    assert!(
        nl.link("eth1").expect("look up").is_none(),
        "peer on the host side"
    );
    let peer = nl_ct.link("eth1").expect("look up").expect("peer in ct");
    assert_eq!(peer.kind.as_deref(), Some("veth"));
    assert_eq!(peer.alias, None);

    assert_eq!(
        nl.links_with_alias_prefix("lxcri-test/").expect("list"),
        vec![(veth.clone(), alias.clone())]
    );
    assert!(nl
        .links_with_alias_prefix("other/")
        .expect("list")
        .is_empty());

    let err = nl
        .create_veth(&veth, "eth2", ct.fd(), &alias)
        .expect_err("the name is taken");
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("creating veth {veth} (peer eth2): File exists")),
        "{err}"
    );
    assert!(nl_ct.link("eth2").expect("look up").is_none());

    assert!(nl.delete_link(&veth).expect("delete"));
    assert!(!nl.delete_link(&veth).expect("delete again"));
    assert!(nl_ct.link("eth1").expect("look up").is_none(), "peer left");
}

#[test]
#[ignore = "needs root: run by scripts/test"]
fn port_on_a_bridge_with_mtu_mac_and_up() {
    let (host, ct) = (Netns::new(), Netns::new());
    let mut nl = host.netlink();
    let (bridge, veth) = (name("lxtbr"), name("lxtp"));

    nl.create_bridge(&bridge).expect("create bridge");
    nl.set_up(&bridge).expect("bridge up");
    nl.create_veth(&veth, "eth0", ct.fd(), "lxcri-test")
        .expect("create veth");
    nl.set_mtu(&veth, 1400).expect("mtu");
    nl.set_mac(&veth, [0x02, 0, 0, 0x12, 0x34, 0x56])
        .expect("mac");
    nl.set_master(&veth, &bridge).expect("master");
    nl.set_up(&veth).expect("up");

    let br = nl.link(&bridge).expect("look up").expect("bridge");
    assert_eq!(br.kind.as_deref(), Some("bridge"));
    assert!(br.up);
    // This kernel has no bridge VLAN filtering: reported as off.
    assert_eq!(br.vlan_filtering, Some(false));
    let port = nl.link(&veth).expect("look up").expect("port");
    assert_eq!(port.master, Some(br.index));
    assert_eq!(port.mtu, 1400);
    assert!(port.up);
    assert_eq!(host.mac(&veth), "02:00:00:12:34:56");

    let err = nl
        .set_bridge_port_vlans(&veth, Some(10), &[])
        .expect_err("bridge does not filter");
    assert!(matches!(err, NetlinkError::NotVlanAware { .. }), "{err}");
    assert!(err.to_string().contains(&bridge), "{err}");

    let err = nl
        .set_master(&veth, "nosuchbr0")
        .expect_err("no such bridge");
    assert!(matches!(err, NetlinkError::NoSuchLink { .. }), "{err}");
    let err = nl.set_mtu("nosuchlink0", 1500).expect_err("no such link");
    assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err}");

    in_netns(host.fd(), || disable_tx_checksum(&veth))
        .expect("join netns")
        .expect("tx checksum off");
    assert!(!host.tx_checksum(&veth), "tx checksum still on");
    let err = in_netns(host.fd(), || disable_tx_checksum("nosuchlink0"))
        .expect("join netns")
        .expect_err("no such link");
    assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err}");
}

#[test]
#[ignore = "needs root: run by scripts/test"]
fn addresses_and_routes_inside_the_netns() {
    let (host, ct) = (Netns::new(), Netns::new());
    let mut nl = host.netlink();
    let veth = name("lxta");
    nl.create_veth(&veth, "eth0", ct.fd(), "lxcri-test")
        .expect("create veth");

    let mut nl_ct = ct.netlink();
    nl_ct.set_up("eth0").expect("up");
    nl_ct
        .add_address("eth0", ip("10.77.0.2"), 24)
        .expect("ipv4 address");
    nl_ct
        .add_address("eth0", ip("fd77::2"), 64)
        .expect("ipv6 address");
    nl_ct
        .add_route(None, ip("10.77.0.1"), "eth0")
        .expect("default route");
    nl_ct
        .add_route(Some((ip("10.78.0.0"), 16)), ip("10.77.0.254"), "eth0")
        .expect("route");
    nl_ct
        .add_route(None, ip("fd77::1"), "eth0")
        .expect("ipv6 default route");

    // /proc/net/route: iface, destination, gateway (hex, little endian).
    let routes = ct.read("/proc/thread-self/net/route");
    let has = |dest: &str, gw: &str| {
        routes.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 2 && f[0] == "eth0" && f[1] == dest && f[2] == gw
        })
    };
    assert!(has("00000000", "01004D0A"), "{routes}");
    assert!(has("00004E0A", "FE004D0A"), "{routes}");
    let v6 = ct.read("/proc/thread-self/net/ipv6_route");
    assert!(
        v6.lines().any(|l| l.starts_with(&format!("{:032x} 00", 0))
            && l.contains("fd770000000000000000000000000001")),
        "{v6}"
    );
    let v6_addrs = ct.read("/proc/thread-self/net/if_inet6");
    assert!(
        v6_addrs.contains("fd770000000000000000000000000002"),
        "{v6_addrs}"
    );

    let err = nl_ct
        .add_address("eth0", ip("10.77.0.2"), 24)
        .expect_err("already there");
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err}");
    let err = nl_ct
        .add_route(None, ip("10.99.0.1"), "eth0")
        .expect_err("gateway not on any link");
    assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH), "{err}");
    // The kernel's extended ack explains it ("Nexthop has invalid gateway").
    match &err {
        NetlinkError::Kernel {
            op, kernel_message, ..
        } => {
            assert_eq!(op, "adding route default via 10.99.0.1 dev eth0");
            assert!(kernel_message.is_some(), "{err}");
        }
        _ => panic!("{err}"),
    }
    let err = nl_ct
        .add_address("nosuch0", ip("10.77.0.3"), 24)
        .expect_err("no such link");
    assert!(matches!(err, NetlinkError::NoSuchLink { .. }), "{err}");
}

/// A `KernelNetwork` whose netlink socket is in `ns`, and whose OVSDB is a
/// socket that does not exist.
fn kernel_network(ns: &Netns, dir: &tempfile::TempDir) -> KernelNetwork {
    let target = format!("unix:{}", dir.path().join("no-db.sock").display())
        .parse()
        .expect("target");
    in_netns(ns.fd(), || KernelNetwork::open(&target))
        .expect("join netns")
        .expect("open")
}

fn peer(name: &str, addresses: &[(&str, u8)], gateways: &[&str]) -> PeerConfig {
    PeerConfig {
        name: name.into(),
        mac: None,
        mtu: 1500,
        addresses: addresses.iter().map(|(a, p)| (ip(a), *p)).collect(),
        gateways: gateways.iter().map(|g| ip(g)).collect(),
        tx_checksum_off: false,
    }
}

#[test]
#[ignore = "needs root: run by scripts/test"]
fn a_gateway_outside_every_prefix_is_reached_by_a_link_route() {
    let (host, ct) = (Netns::new(), Netns::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut nl = host.netlink();
    nl.create_veth(&name("lxtg"), "eth0", ct.fd(), "lxcri-test")
        .expect("create veth");
    let mut kn = kernel_network(&host, &dir);
    let nic = peer(
        "eth0",
        &[("203.0.113.5", 32), ("2001:db8:5::5", 128)],
        &["198.51.100.1", "2001:db8:1::1"],
    );
    kn.configure_peer(ct.fd(), &nic).expect("configure eth0");

    // /proc/net/route: iface, destination, gateway, flags, ..., mask.
    let routes = ct.read("/proc/thread-self/net/route");
    let has = |dest: &str, gw: &str, mask: &str| {
        routes.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 7 && f[0] == "eth0" && f[1] == dest && f[2] == gw && f[7] == mask
        })
    };
    assert!(has("016433C6", "00000000", "FFFFFFFF"), "{routes}");
    assert!(has("00000000", "016433C6", "00000000"), "{routes}");
    // /proc/net/ipv6_route: dest, its length, source, its length, nexthop,
    // metric, refcount, use, flags, device.
    let v6 = ct.read("/proc/thread-self/net/ipv6_route");
    let gw6 = "20010db8000100000000000000000001";
    let has6 = |dest: &str, len: &str, nexthop: &str| {
        v6.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 9 && f[0] == dest && f[1] == len && f[4] == nexthop && f[9] == "eth0"
        })
    };
    assert!(has6(gw6, "80", &"0".repeat(32)), "{v6}");
    assert!(has6(&"0".repeat(32), "00", gw6), "{v6}");
}

#[test]
#[ignore = "needs root: run by scripts/test"]
fn a_second_default_route_of_a_family_names_the_one_there() {
    let (host, ct) = (Netns::new(), Netns::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut nl = host.netlink();
    nl.create_veth(&name("lxtc"), "eth0", ct.fd(), "lxcri-test")
        .expect("create veth");
    nl.create_veth(&name("lxtn"), "net1", ct.fd(), "lxcri-test")
        .expect("create veth");
    // As CNI leaves a pod's namespace: its interface and default route.
    let mut nl_ct = ct.netlink();
    nl_ct.set_up("eth0").expect("up");
    nl_ct
        .add_address("eth0", ip("10.88.0.2"), 16)
        .expect("address");
    nl_ct
        .add_route(None, ip("10.88.0.1"), "eth0")
        .expect("CNI's default route");

    let mut kn = kernel_network(&host, &dir);
    let nic = peer("net1", &[("10.30.0.5", 24)], &["10.30.0.1"]);
    let err = kn
        .configure_peer(ct.fd(), &nic)
        .expect_err("a second default");
    assert!(
        matches!(err, HostError::DefaultRouteExists { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "gw=10.30.0.1: the network namespace has a default IPv4 route already (in a pod: CNI's), and it takes one per family: leave gw= off net1"
    );
}

#[test]
#[ignore = "needs root: run by scripts/test"]
fn remove_deletes_the_veth_even_when_ovs_cannot_be_asked() {
    let (host, ct) = (Netns::new(), Netns::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut nl = host.netlink();
    let veth = name("lxtr");
    nl.create_veth(&veth, "eth0", ct.fd(), "lxcri-test")
        .expect("create veth");
    let mut kn = kernel_network(&host, &dir);
    let err = kn
        .remove(&veth, Some("ns/netlink-test"))
        .expect_err("no OVSDB there");
    assert!(
        matches!(err, HostError::Ovsdb(OvsdbError::Connect { .. })),
        "{err:?}"
    );
    assert!(nl.link(&veth).expect("look up").is_none(), "veth left");
}

#[test]
#[ignore = "needs root: run by scripts/test"]
fn in_netns_runs_in_that_namespace_only() {
    let ns = Netns::new();
    let want = File::from(ns.0.try_clone().expect("dup"))
        .metadata()
        .expect("stat netns")
        .ino();
    let inside = in_netns(ns.fd(), || {
        std::fs::metadata("/proc/thread-self/ns/net").map(|m| m.ino())
    })
    .expect("join netns")
    .expect("stat");
    assert_eq!(inside, want);
    let here = std::fs::metadata("/proc/thread-self/ns/net")
        .expect("stat")
        .ino();
    assert_ne!(here, want, "the calling thread moved");

    let panicked = std::panic::catch_unwind(|| in_netns(ns.fd(), || panic!("inside")));
    assert!(panicked.is_err(), "the panic goes on in the caller");

    let not_a_netns = File::open("/proc/self/ns/uts").expect("open uts ns");
    let err = in_netns(not_a_netns.as_fd(), || ()).expect_err("not a netns");
    assert!(matches!(err, NetlinkError::Setns(_)), "{err}");
}

impl Netns {
    /// `link`'s MAC address (`SIOCGIFHWADDR`): /sys/class/net shows the
    /// namespace that mounted sysfs, not this one.
    fn mac(&self, link: &str) -> String {
        in_netns(self.fd(), || hw_addr(link))
            .expect("join netns")
            .expect("SIOCGIFHWADDR")
    }

    /// `ETHTOOL_GTXCSUM` on `link`.
    fn tx_checksum(&self, link: &str) -> bool {
        in_netns(self.fd(), || ethtool_get(link, 0x16))
            .expect("join netns")
            .expect("ETHTOOL_GTXCSUM")
            != 0
    }
}

fn ifreq(link: &str) -> libc::ifreq {
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(link.bytes()) {
        *d = s as libc::c_char;
    }
    req
}

fn inet_socket() -> io::Result<OwnedFd> {
    nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

fn hw_addr(link: &str) -> io::Result<String> {
    let sock = inet_socket()?;
    let mut req = ifreq(link);
    // SAFETY: a valid ifreq for the call; the kernel fills ifru_hwaddr.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    Ok(data[..6]
        .iter()
        .map(|b| format!("{:02x}", *b as u8))
        .collect::<Vec<_>>()
        .join(":"))
}

fn ethtool_get(link: &str, cmd: u32) -> io::Result<u32> {
    let sock = inet_socket()?;
    let mut value = [cmd, 0u32];
    let mut req = ifreq(link);
    req.ifr_ifru.ifru_data = value.as_mut_ptr().cast();
    // SAFETY: the ifreq points at a live ethtool_value for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value[1])
}
