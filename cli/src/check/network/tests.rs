use std::collections::BTreeMap;

use lxcri::network::nic::NicIndex;

use super::*;

fn nic(n: u8, text: &str) -> NicSpec {
    NicSpec::parse(NicIndex::new(n).unwrap(), text, &format!("network.net{n}")).unwrap()
}

fn link(name: &str, kind: Option<&str>, mtu: u32) -> LinkInfo {
    LinkInfo {
        index: 1,
        name: name.into(),
        mtu,
        master: None,
        kind: kind.map(String::from),
        vlan_filtering: (kind == Some("bridge")).then_some(true),
        up: true,
        alias: None,
    }
}

fn linux(name: &str, vlan_filtering: bool, mtu: u32) -> Bridge {
    Bridge {
        name: name.into(),
        kind: BridgeKind::Linux { vlan_filtering },
        mtu,
    }
}

fn ovs(name: &str, userspace: bool, mtu: u32) -> Bridge {
    Bridge {
        name: name.into(),
        kind: BridgeKind::Ovs { userspace },
        mtu,
    }
}

/// Bridges by name with their datapath_type; records what was asked.
#[derive(Default)]
struct FakeOvs {
    bridges: BTreeMap<&'static str, &'static str>,
    asked: Vec<String>,
    down: bool,
}

impl OvsBridges for FakeOvs {
    fn bridge(&mut self, name: &str) -> Result<Option<OvsBridge>, OvsdbError> {
        self.asked.push(name.into());
        if self.down {
            return Err(OvsdbError::Closed {
                target: "unix:/run/ovs/db.sock".into(),
                method: "transact".into(),
            });
        }
        Ok(self.bridges.get(name).map(|dp| OvsBridge {
            name: name.into(),
            datapath_type: dp.to_string(),
        }))
    }
}

#[test]
fn ovs_bridges_are_asked_for_among_their_kinds_of_links_and_the_nics_bridges() {
    let links = [
        link("vmbr0", Some("bridge"), 1500),
        link("ovs-system", Some("openvswitch"), 1500),
        link("ovsbr0", Some("openvswitch"), 9000),
        link("ovsnd", Some("tun"), 1500),
        link("tap100i0", Some("tun"), 1500),
        link("eth0", None, 1500),
    ];
    let mut db = FakeOvs {
        bridges: [("ovsbr0", ""), ("ovsnd", "netdev"), ("nolink", "system")].into(),
        ..FakeOvs::default()
    };
    let nics = [
        nic(0, "name=eth1,bridge=vmbr0"),
        nic(1, "name=eth2,bridge=nolink"),
    ];
    let nics: Vec<&NicSpec> = nics.iter().collect();
    let found = ovs_bridges(&mut db, &links, &nics).unwrap();
    assert_eq!(
        found,
        [
            ovs("nolink", false, DEFAULT_MTU),
            ovs("ovsbr0", false, 9000),
            ovs("ovsnd", true, 1500),
        ]
    );
    assert_eq!(
        db.asked,
        ["nolink", "ovs-system", "ovsbr0", "ovsnd", "tap100i0"],
        "not vmbr0, a Linux bridge, nor eth0"
    );
    db.down = true;
    let err = ovs_bridges(&mut db, &links, &nics).unwrap_err();
    assert!(err.contains("closed the connection"), "{err}");
    assert_eq!(
        linux_bridges(&links),
        [linux("vmbr0", true, 1500)],
        "{links:?}"
    );
}

fn node() -> NodeNetwork {
    NodeNetwork {
        linux: Ok(vec![
            linux("vmbr0", false, 1500),
            linux("vmbr1", true, 9000),
        ]),
        ovs: Ok(vec![ovs("ovsbr0", true, 1500)]),
    }
}

fn run(node: &NodeNetwork, nics: &[NicSpec]) -> Vec<(&'static str, Status, String)> {
    let nics: Vec<&NicSpec> = nics.iter().collect();
    run_for(node, &nics, Plugger::Lxcri)
}

fn run_for(
    node: &NodeNetwork,
    nics: &[&NicSpec],
    plugger: Plugger,
) -> Vec<(&'static str, Status, String)> {
    findings(node, "unix:/run/ovs/db.sock", nics, plugger)
        .into_iter()
        .map(|f| (f.name, f.status, f.detail))
        .collect()
}

#[test]
fn bridges_are_listed_and_each_default_nic_is_checked_against_its_own() {
    let found = run(
        &node(),
        &[
            nic(0, "name=eth0,bridge=vmbr1,tag=30,trunks=40;50,mtu=9000"),
            nic(1, "name=eth1,bridge=vmbr0,tag=5"),
            nic(2, "name=eth2,bridge=ovsbr0,mtu=9000"),
            nic(3, "name=eth3,bridge=nope"),
            nic(4, "name=eth4"),
            nic(5, "name=eth5,bridge=ovsbr0,tag=10"),
            nic(9, "name=eth9,bridge=vmbr0"),
        ],
    );
    let s = |name, status, detail: &str| (name, status, detail.to_string());
    assert_eq!(
        found,
        [
            s(
                "linux-bridges",
                Status::Ok,
                "vmbr0 (MTU 1500, VLAN filtering off), vmbr1 (MTU 9000, VLAN filtering on)"
            ),
            s(
                "openvswitch",
                Status::Ok,
                "unix:/run/ovs/db.sock: bridges ovsbr0 (datapath netdev, MTU 1500)"
            ),
            s(
                "network.net0",
                Status::Ok,
                "eth0 on Linux bridge vmbr1 (MTU 9000, VLAN filtering on), tag 30, trunks 40;50"
            ),
            s(
                "network.net1",
                Status::Fail,
                "tag=/trunks= on bridge vmbr0, which does not filter VLANs: make it VLAN-aware \
                 (`ip link set vmbr0 type bridge vlan_filtering 1`) or use an Open vSwitch bridge"
            ),
            s(
                "network.net2",
                Status::Fail,
                "mtu=9000 is above bridge ovsbr0's MTU 1500"
            ),
            s(
                "network.net3",
                Status::Fail,
                "bridge=nope: no Linux bridge and no Open vSwitch bridge \
                 (network.ovsdb = unix:/run/ovs/db.sock) of that name"
            ),
            s(
                "network.net4",
                Status::Ok,
                "eth4: no bridge (the host end stays unattached)"
            ),
            s(
                "network.net5",
                Status::Ok,
                "eth5 on Open vSwitch bridge ovsbr0 (datapath netdev, MTU 1500), tag 10"
            ),
            s(
                "network.net9",
                Status::Ok,
                "eth9 on Linux bridge vmbr0 (MTU 1500, VLAN filtering off)"
            ),
        ]
    );
}

#[test]
fn open_vswitch_out_of_reach_fails_only_what_needs_it() {
    let mut n = node();
    n.ovs = Err("ovsdb: cannot connect to unix:/run/ovs/db.sock: No such file".into());
    let found = run(&n, &[nic(0, "name=eth0,bridge=vmbr0")]);
    assert_eq!(found[1].1, Status::Ok);
    assert_eq!(
        found[1].2,
        "not reachable, and no default NIC needs it: ovsdb: cannot connect to unix:/run/ovs/db.sock: No such file"
    );
    assert_eq!(found[2].1, Status::Ok);
    assert!(run(&n, &[])[1].2.starts_with("not reachable"));

    let found = run(
        &n,
        &[
            nic(0, "name=eth0,bridge=vmbr0"),
            nic(3, "name=eth3,bridge=ovsbr0"),
        ],
    );
    assert_eq!(found[1].1, Status::Fail);
    assert!(
        found[1]
            .2
            .starts_with("not reachable, and network.net3 (bridge=ovsbr0) needs it"),
        "{}",
        found[1].2
    );
    assert_eq!(found[3].1, Status::Fail);
    assert!(
        found[3]
            .2
            .starts_with("bridge=ovsbr0: not a Linux bridge, and Open vSwitch could not be asked: ovsdb: cannot connect"),
        "{}",
        found[3].2
    );
}

#[test]
fn links_that_cannot_be_listed_leave_the_nics_unchecked() {
    let n = NodeNetwork {
        linux: Err("listing links: permission denied".into()),
        ovs: Err("ovsdb: cannot connect".into()),
    };
    let found = run(&n, &[nic(0, "name=eth0,bridge=vmbr0")]);
    assert_eq!(found[0].1, Status::Warn);
    assert!(found[0].2.contains("permission denied"), "{}", found[0].2);
    assert_eq!(found[2].1, Status::Warn);
    assert_eq!(
        found[2].2,
        "bridge=vmbr0: not checked (the node's links could not be listed)"
    );
}

#[test]
fn the_real_node_is_read_without_failing() {
    // Whatever this machine has: listing links works unprivileged, and an
    // OVSDB socket that does not exist is an answer, not a panic.
    let target: OvsdbTarget = "unix:/nonexistent/lxcri-check/db.sock".parse().unwrap();
    let node = read_node(&target, &[]);
    assert!(node.linux.is_ok(), "{node:?}");
    assert!(node.ovs.unwrap_err().contains("cannot connect"));
}

#[test]
fn what_the_plugger_takes_decides_the_default_nics() {
    let nics = [
        nic(0, "name=eth0,bridge=vmbr0,firewall=1"),
        nic(1, "name=eth1,bridge=vmbr0,rate=10"),
        nic(2, "name=eth2,bridge=vmbr0,tag=5"),
        nic(3, "name=eth3,bridge=vmbr0,trunks=7"),
    ];
    let refs: Vec<&NicSpec> = nics.iter().collect();
    let lxc = run_for(&node(), &refs, Plugger::Lxcri);
    let pve = run_for(&node(), &refs, Plugger::Pve);
    let status =
        |found: &[(&str, Status, String)]| found[2..].iter().map(|f| f.1).collect::<Vec<_>>();
    assert_eq!(status(&lxc), [Status::Fail; 4], "{lxc:?}");
    assert!(lxc[2].2.starts_with("firewall=1: "), "{}", lxc[2].2);
    assert!(lxc[3].2.starts_with("rate=10: "), "{}", lxc[3].2);
    // PVE has firewall bridges, shapes, and takes a tag on a plain bridge
    // through vmbr0v5; trunks need a VLAN-aware one there too.
    assert_eq!(
        status(&pve),
        [Status::Ok, Status::Ok, Status::Ok, Status::Fail],
        "{pve:?}"
    );
    assert!(
        pve[4].2.contains("PVE plugs it into vmbr0v5"),
        "{}",
        pve[4].2
    );
    assert!(pve[5].2.contains("VLAN-aware"), "{}", pve[5].2);
}
