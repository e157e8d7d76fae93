//! The plugging logic over a fake node: what is checked before anything is
//! made, what is made in which order, and that a failure removes it.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd};

use crate::network::host::{Bridge, BridgeKind, HostError, HostNetwork, PeerConfig, PortConfig};
use crate::network::netlink::NetlinkError;
use crate::network::nic::{NicIndex, NicSpec};
use crate::network::ovsdb::OvsPort;
use crate::network::plug::{host_name, plug_all, unplug, PluggedNic};

const OWNER: &str = "default/web";
const OVSDB: &str = "unix:/run/ovs/db.sock";

#[derive(Default)]
struct FakeHost {
    bridges: BTreeMap<String, Bridge>,
    /// Host ends that exist, and whether each is an OVS port.
    links: BTreeMap<String, bool>,
    calls: Vec<String>,
    /// A call that fails (its text's prefix).
    fail: Option<String>,
    ovs_down: bool,
}

impl FakeHost {
    fn with_bridges() -> Self {
        let mut h = Self::default();
        for (name, kind, mtu) in [
            (
                "vmbr0",
                BridgeKind::Linux {
                    vlan_filtering: false,
                },
                1500,
            ),
            (
                "vmbr1",
                BridgeKind::Linux {
                    vlan_filtering: true,
                },
                9000,
            ),
            ("ovs0", BridgeKind::Ovs { userspace: true }, 1500),
        ] {
            h.bridges.insert(
                name.into(),
                Bridge {
                    name: name.into(),
                    kind,
                    mtu,
                },
            );
        }
        h
    }

    fn call(&mut self, text: String) -> Result<(), HostError> {
        let failing = self
            .fail
            .as_ref()
            .is_some_and(|f| text.starts_with(f.as_str()));
        self.calls.push(text);
        if failing {
            return Err(HostError::Netlink(NetlinkError::Invalid {
                op: "fake".into(),
                reason: "injected".into(),
            }));
        }
        Ok(())
    }
}

impl HostNetwork for FakeHost {
    fn bridge(&mut self, name: &str) -> Result<Option<Bridge>, HostError> {
        let found = self.bridges.get(name).cloned();
        if found.is_none() && self.ovs_down {
            return Err(HostError::Netlink(NetlinkError::Invalid {
                op: "connecting".into(),
                reason: "no such socket".into(),
            }));
        }
        Ok(found)
    }

    fn link_exists(&mut self, name: &str) -> Result<bool, HostError> {
        Ok(self.links.contains_key(name))
    }

    fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        _: BorrowedFd<'_>,
        alias: &str,
    ) -> Result<(), HostError> {
        self.call(format!("veth {host} {peer} {alias}"))?;
        self.links.insert(host.into(), false);
        Ok(())
    }

    fn attach(&mut self, host: &str, port: &PortConfig<'_>) -> Result<(), HostError> {
        self.call(format!(
            "attach {host} {} tag={:?} trunks={:?} owner={}",
            port.bridge.name, port.tag, port.trunks, port.owner
        ))?;
        if matches!(port.bridge.kind, BridgeKind::Ovs { .. }) {
            self.links.insert(host.into(), true);
        }
        Ok(())
    }

    fn set_host_end(
        &mut self,
        host: &str,
        mtu: u32,
        up: bool,
        csum_off: bool,
    ) -> Result<(), HostError> {
        self.call(format!("host {host} mtu={mtu} up={up} csum_off={csum_off}"))
    }

    fn configure_peer(&mut self, _: BorrowedFd<'_>, p: &PeerConfig) -> Result<(), HostError> {
        self.call(format!(
            "peer {} mac={:?} mtu={} addrs={:?} gws={:?} csum_off={}",
            p.name, p.mac, p.mtu, p.addresses, p.gateways, p.tx_checksum_off
        ))
    }

    fn remove(&mut self, host: &str, ovs_owner: Option<&str>) -> Result<(), HostError> {
        self.call(format!("remove {host} ovs={ovs_owner:?}"))?;
        self.links.remove(host);
        Ok(())
    }

    // Plugging never lists.
    fn links_with_alias_prefix(&mut self, _: &str) -> Result<Vec<(String, String)>, HostError> {
        Ok(Vec::new())
    }

    fn ports_with_external_id(&mut self, _: &str) -> Result<Vec<OvsPort>, HostError> {
        Ok(Vec::new())
    }
}

fn nic(n: u8, text: &str) -> NicSpec {
    NicSpec::parse(NicIndex::new(n).unwrap(), text, &format!("io.lxcri.net{n}")).unwrap()
}

fn netns() -> std::fs::File {
    std::fs::File::open("/dev/null").unwrap()
}

fn plug(host: &mut FakeHost, nics: &[NicSpec]) -> Result<Vec<PluggedNic>, String> {
    let ns = netns();
    plug_all(host, nics, OWNER, ns.as_fd(), OVSDB).map_err(|e| e.to_string())
}

#[test]
fn host_ends_are_named_within_ifnamsiz_and_stable() {
    let a = host_name(OWNER, NicIndex::new(9).unwrap());
    assert!(
        a.starts_with("lx") && a.ends_with("i9") && a.len() == 15,
        "{a}"
    );
    assert_eq!(a, host_name(OWNER, NicIndex::new(9).unwrap()));
    assert_ne!(a, host_name("default/web2", NicIndex::new(9).unwrap()));
}

#[test]
fn an_ovs_vlan_port_and_a_plain_bridge_port_are_made_in_order() {
    let mut host = FakeHost::with_bridges();
    let nics = [
        nic(0, "name=eth0,bridge=ovs0,tag=10,trunks=20;30,ip=10.10.0.2/24,gw=10.10.0.1,hwaddr=02:00:00:00:00:01"),
        nic(1, "name=eth1,bridge=vmbr0,mtu=1400,ip6=fd00::2/64,link_down=1"),
    ];
    let plugged = plug(&mut host, &nics).unwrap();
    let (h0, h1) = (
        host_name(OWNER, nics[0].index),
        host_name(OWNER, nics[1].index),
    );
    assert_eq!(
        host.calls,
        [
            format!("veth {h0} eth0 lxcri:{OWNER}"),
            format!("host {h0} mtu=1500 up=true csum_off=true"),
            format!("attach {h0} ovs0 tag=Some(10) trunks=[20, 30] owner={OWNER}"),
            "peer eth0 mac=Some([2, 0, 0, 0, 0, 1]) mtu=1500 addrs=[(10.10.0.2, 24)] gws=[10.10.0.1] csum_off=true".to_string(),
            format!("veth {h1} eth1 lxcri:{OWNER}"),
            format!("host {h1} mtu=1500 up=false csum_off=false"),
            format!("attach {h1} vmbr0 tag=None trunks=[] owner={OWNER}"),
            "peer eth1 mac=None mtu=1400 addrs=[(fd00::2, 64)] gws=[] csum_off=false".to_string(),
        ]
    );
    assert_eq!(
        plugged,
        [
            PluggedNic {
                host: h0.clone(),
                name: "eth0".into(),
                bridge: Some("ovs0".into()),
                ovs: true
            },
            PluggedNic {
                host: h1.clone(),
                name: "eth1".into(),
                bridge: Some("vmbr0".into()),
                ovs: false
            },
        ]
    );
    host.calls.clear();
    unplug(&mut host, &plugged, OWNER).unwrap();
    // Only a port marked as the container's goes: one made meanwhile under
    // the same name for another stays.
    assert_eq!(
        host.calls,
        [
            format!("remove {h0} ovs=Some({OWNER:?})"),
            format!("remove {h1} ovs=None")
        ]
    );
}

#[test]
fn what_cannot_be_plugged_is_refused_before_anything_is_made() {
    let cases = [
        ("name=eth1,bridge=nobr", "io.lxcri.net1: bridge=nobr: no Linux bridge and no Open vSwitch bridge (network.ovsdb = unix:/run/ovs/db.sock)"),
        ("name=eth1,bridge=vmbr0,tag=30", "io.lxcri.net1: tag=/trunks= on bridge vmbr0, which does not filter VLANs"),
        ("name=eth1,bridge=vmbr0,trunks=30", "which does not filter VLANs"),
        ("name=eth1,bridge=vmbr0,mtu=9000", "io.lxcri.net1: mtu=9000 is above bridge vmbr0's MTU 1500"),
        ("name=eth1,bridge=vmbr0,firewall=1", "io.lxcri.net1: firewall=1"),
        ("name=eth1,bridge=vmbr0,rate=10", "io.lxcri.net1: rate="),
    ];
    for (text, says) in cases {
        let mut host = FakeHost::with_bridges();
        // The good NIC first: the bad one must stop the create before it.
        let e = plug(
            &mut host,
            &[nic(0, "name=eth0,bridge=ovs0,tag=10"), nic(1, text)],
        )
        .unwrap_err();
        assert!(e.starts_with(says) || e.contains(says), "{text}: {e}");
        assert!(host.calls.is_empty(), "{text}: {:?}", host.calls);
    }
    // A VLAN-aware bridge takes tags and an MTU up to its own.
    let mut host = FakeHost::with_bridges();
    plug(
        &mut host,
        &[nic(0, "name=eth0,bridge=vmbr1,tag=30,trunks=40,mtu=9000")],
    )
    .unwrap();
    assert!(
        host.calls
            .iter()
            .any(|c| c.contains("attach") && c.contains("tag=Some(30) trunks=[40]")),
        "{:?}",
        host.calls
    );
}

#[test]
fn an_unreachable_ovsdb_is_named_when_the_bridge_is_not_a_linux_one() {
    let mut host = FakeHost::with_bridges();
    host.ovs_down = true;
    let e = plug(&mut host, &[nic(2, "name=eth2,bridge=ovs9")]).unwrap_err();
    assert!(e.contains("io.lxcri.net2: bridge=ovs9: not a Linux bridge, and Open vSwitch could not be asked (network.ovsdb = unix:/run/ovs/db.sock)"), "{e}");
}

#[test]
fn a_leftover_host_end_is_refused_not_reused() {
    let mut host = FakeHost::with_bridges();
    let n = nic(0, "name=eth0,bridge=vmbr0");
    host.links.insert(host_name(OWNER, n.index), false);
    let e = plug(&mut host, &[n]).unwrap_err();
    assert!(
        e.contains("exists already") && e.contains("lxcri gc"),
        "{e}"
    );
    assert!(host.calls.is_empty());
}

#[test]
fn a_failure_part_way_removes_every_nic_made_so_far() {
    for failing in ["attach", "host", "peer eth1", "veth"] {
        let mut host = FakeHost::with_bridges();
        let nics = [
            nic(0, "name=eth0,bridge=ovs0,tag=10"),
            nic(1, "name=eth1,bridge=ovs0,tag=10"),
        ];
        let h1 = host_name(OWNER, nics[1].index);
        host.fail = Some(if failing == "veth" {
            format!("veth {h1}")
        } else if failing == "peer eth1" {
            failing.into()
        } else {
            format!("{failing} {h1}")
        });
        let e = plug(&mut host, &nics).unwrap_err();
        assert!(e.starts_with("io.lxcri.net1: "), "{failing}: {e}");
        assert!(
            host.links.is_empty(),
            "{failing}: left {:?} after {:?}",
            host.links,
            host.calls
        );
    }
}
