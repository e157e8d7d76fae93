//! The Open vSwitch fixture itself ([`lxcri_e2e::ovs::OvsSwitch`]): a
//! userspace switch forwards between namespaces on the same VLAN (ping and
//! TCP) and not across VLANs, and everything it made is gone after it.

use std::path::Path;
use std::time::Duration;

use lxcri_e2e::cmd;
use lxcri_e2e::ovs::OvsSwitch;
use lxcri_e2e::random_u32;

#[test]
#[ignore = "needs root and Open vSwitch: run by scripts/test"]
fn a_userspace_switch_keeps_vlans_apart() {
    let ovs = OvsSwitch::start();
    let bridge = format!("lxob{:08x}", random_u32());
    ovs.add_bridge(&bridge);
    let a = ovs.netns_port(&bridge, "ovs-a", "10.251.0.1/24", Some(10));
    let b = ovs.netns_port(&bridge, "ovs-b", "10.251.0.2/24", Some(10));
    let c = ovs.netns_port(&bridge, "ovs-c", "10.251.0.3/24", Some(20));
    let mut want = vec![a.host_if(), b.host_if(), c.host_if()];
    want.sort();
    assert_eq!(ovs.ports(&bridge), want);
    assert_eq!(ovs.vsctl(&["get", "port", a.host_if(), "tag"]), "10");

    // The first packets of a flow take the slow path: allow a retry.
    let reaches = |from: &lxcri_e2e::ovs::NetnsPort, to: &str| (0..3).any(|_| from.ping(to));
    assert!(reaches(&a, b.addr()), "VLAN 10 to VLAN 10");
    assert!(reaches(&b, a.addr()), "VLAN 10 to VLAN 10");
    assert!(!c.ping(a.addr()), "VLAN 20 reached VLAN 10");
    assert!(!a.ping(c.addr()), "VLAN 10 reached VLAN 20");

    // TCP needs the checksum offload off (see netns_port).
    let server = b.spawn(&["busybox", "nc", "-l", "-p", "7777"]);
    let sent = cmd::poll(Duration::from_secs(10), || {
        let out = cmd::run_with_stdin(
            std::process::Command::new("ip").args([
                "netns",
                "exec",
                a.ns(),
                "busybox",
                "nc",
                "-w",
                "3",
                b.addr(),
                "7777",
            ]),
            Some(b"over tcp\n"),
            Duration::from_secs(10),
        );
        out.success().then_some(out)
    });
    assert!(sent.is_some(), "TCP from VLAN 10 to VLAN 10 failed");
    let received = server.wait(Duration::from_secs(10));
    assert_eq!(received.stdout, "over tcp\n", "{received}");

    let (ns, host_if) = (a.ns().to_string(), a.host_if().to_string());
    drop(a);
    assert!(
        !Path::new("/run/netns").join(&ns).exists(),
        "netns {ns} left"
    );
    assert!(
        !Path::new("/sys/class/net").join(&host_if).exists(),
        "veth {host_if} left"
    );
    assert_eq!(ovs.ports(&bridge).len(), 2);
    drop((b, c));
    assert!(ovs.ports(&bridge).is_empty());

    drop(ovs);
    assert!(
        !Path::new("/sys/class/net").join(&bridge).exists(),
        "bridge {bridge} left"
    );
    assert!(
        !Path::new("/sys/class/net/ovs-netdev").exists(),
        "the datapath is left"
    );
}
