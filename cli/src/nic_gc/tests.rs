//! The network part of `lxcri gc` over a fake node: marked links and
//! ports, state records in a tempdir as `runtime_root`.

use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;

use lxcri::config::Config;
use lxcri::network::host::{Bridge, HostError, PeerConfig, PortConfig};
use lxcri::network::ovsdb::{OvsPort, OvsdbError};
use lxcri::network::plug::PluggedNic;
use lxcri::state::{ContainerRecord, StateStore};

use super::*;

type HostResult<T> = Result<T, HostError>;

const OVSDB: &str = "unix:/run/ovs/db.sock";

#[derive(Default)]
struct FakeHost {
    /// Name -> alias.
    links: BTreeMap<String, String>,
    ports: Vec<OvsPort>,
    ovs_down: bool,
    removed: Vec<String>,
}

impl FakeHost {
    fn link(mut self, name: &str, owner: &str) -> Self {
        self.links.insert(name.into(), format!("lxcri:{owner}"));
        self
    }

    fn port(mut self, name: &str, owner: &str) -> Self {
        self.ports.push(OvsPort {
            name: name.into(),
            bridge: Some("ovsbr0".into()),
            tag: Some(10),
            trunks: Vec::new(),
            vlan_mode: Some("access".into()),
            external_ids: [("lxcri-owner".to_string(), owner.to_string())].into(),
        });
        self
    }
}

impl HostNetwork for FakeHost {
    fn bridge(&mut self, _: &str) -> HostResult<Option<Bridge>> {
        unreachable!("gc looks up no bridge")
    }
    fn link_exists(&mut self, name: &str) -> HostResult<bool> {
        Ok(self.links.contains_key(name))
    }
    fn create_veth(&mut self, _: &str, _: &str, _: BorrowedFd<'_>, _: &str) -> HostResult<()> {
        unreachable!("gc plugs nothing")
    }
    fn attach(&mut self, _: &str, _: &PortConfig<'_>) -> HostResult<()> {
        unreachable!("gc plugs nothing")
    }
    fn set_host_end(&mut self, _: &str, _: u32, _: bool, _: bool) -> HostResult<()> {
        unreachable!("gc plugs nothing")
    }
    fn configure_peer(&mut self, _: BorrowedFd<'_>, _: &PeerConfig) -> HostResult<()> {
        unreachable!("gc plugs nothing")
    }
    fn remove(&mut self, host: &str, ovs_owner: Option<&str>) -> HostResult<()> {
        self.removed.push(format!("{host} ovs={ovs_owner:?}"));
        self.links.remove(host);
        if ovs_owner.is_some() {
            self.ports.retain(|p| p.name != host);
        }
        Ok(())
    }
    fn links_with_alias_prefix(&mut self, prefix: &str) -> HostResult<Vec<(String, String)>> {
        Ok(self
            .links
            .iter()
            .filter(|(_, a)| a.starts_with(prefix))
            .map(|(n, a)| (n.clone(), a.clone()))
            .collect())
    }
    fn ports_with_external_id(&mut self, key: &str) -> HostResult<Vec<OvsPort>> {
        if self.ovs_down {
            return Err(HostError::Ovsdb(OvsdbError::Connect {
                target: OVSDB.into(),
                source: std::io::ErrorKind::NotFound.into(),
            }));
        }
        Ok(self
            .ports
            .iter()
            .filter(|p| p.external_ids.contains_key(key))
            .cloned()
            .collect())
    }
}

/// A runtime over a tempdir holding the state of `ns/live` (its bundle
/// exists), with an OVS NIC when `ovs`.
fn node(ovs: bool) -> (tempfile::TempDir, Runtime) {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.runtime_root = tmp.path().join("run");
    config.lxc.lxcpath = tmp.path().join("lxc");
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let nics = if ovs {
        vec![PluggedNic {
            host: "lxlive0".into(),
            name: "eth1".into(),
            bridge: Some("ovsbr0".into()),
            ovs: true,
        }]
    } else {
        Vec::new()
    };
    let record = ContainerRecord {
        id: "live".into(),
        namespace: "ns".into(),
        bundle,
        backend: "lxc".into(),
        backend_name: "ns_live".into(),
        pid: None,
        pid_start_time: None,
        sandbox_id: None,
        pod: None,
        pod_namespace: None,
        rootfs_mounted: false,
        rootfs: None,
        created_at_ns: 0,
        vmid: None,
        node: None,
        nics,
        userns_slot: None,
        container_name: None,
        image: None,
        poststop_hooks: false,
    };
    StateStore::new(&config.runtime_root).save(&record).unwrap();
    (tmp, Runtime::new(config))
}

fn host() -> FakeHost {
    FakeHost::default()
        .link("lxgone0", "ns/gone")
        .port("lxgone0", "ns/gone")
        .link("lxlive0", "ns/live")
        .port("lxlive1", "ns/live")
}

#[test]
fn a_dry_run_lists_and_keeps_everything() {
    let (_tmp, rt) = node(false);
    let mut host = host();
    let r = collect(&rt, &mut host, OVSDB, false).unwrap();
    assert!(!r.failed, "{}", r.text);
    assert!(host.removed.is_empty());
    let lines: Vec<&str> = r.text.lines().collect();
    assert!(lines[0].starts_with("HOST END  KIND"), "{}", r.text);
    assert!(
        lines[1].starts_with("lxgone0   veth+ovs-port  ovsbr0  ns/gone    orphan"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("would remove NIC lxgone0 (ns/gone)\n"),
        "{}",
        r.text
    );
    assert!(
        r.text
            .ends_with("`lxcri gc --force` removes the 1 orphaned NIC(s)\n"),
        "{}",
        r.text
    );
    assert_eq!(r.json["ovs"]["checked"], true);
    assert_eq!(r.json["ovs"]["ovsdb"], OVSDB);
    let nics = r.json["nics"].as_array().unwrap();
    assert_eq!(nics.len(), 3);
    assert_eq!(nics[0]["host"], "lxgone0");
    assert_eq!(nics[0]["kind"], "veth+ovs-port");
    assert_eq!(nics[0]["action"], "would-remove");
    assert_eq!(nics[2]["kind"], "ovs-port");
    assert_eq!(nics[2]["verdict"], "live");
    assert_eq!(nics[2]["action"], "keep");
}

#[test]
fn force_removes_the_orphans_only() {
    let (_tmp, rt) = node(false);
    let mut host = host();
    let r = collect(&rt, &mut host, OVSDB, true).unwrap();
    assert!(!r.failed, "{}", r.text);
    assert_eq!(host.removed, ["lxgone0 ovs=Some(\"ns/gone\")"]);
    assert!(
        r.text.contains("removed NIC lxgone0 (ns/gone)\n"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("dry run"), "{}", r.text);
    assert_eq!(r.json["nics"][0]["action"], "removed");
}

#[test]
fn open_vswitch_out_of_reach_is_one_line_or_a_failure() {
    let (_tmp, rt) = node(false);
    let mut host = FakeHost {
        ovs_down: true,
        ..FakeHost::default()
    };
    let r = collect(&rt, &mut host, OVSDB, false).unwrap();
    assert!(!r.failed, "{}", r.text);
    assert_eq!(
        r.text,
        "no NICs lxcri plugged on this node\n\
         did not check Open vSwitch ports: ovsdb: cannot connect to unix:/run/ovs/db.sock: entity not found\n"
    );
    assert_eq!(r.json["ovs"]["checked"], false);

    let (_tmp, rt) = node(true);
    let r = collect(&rt, &mut host, OVSDB, false).unwrap();
    assert!(r.failed, "{}", r.text);
    assert!(
        r.text.contains(
            "failed to check Open vSwitch ports, which the state of ns/live (lxlive0) names: ovsdb: cannot connect"
        ),
        "{}",
        r.text
    );
    assert!(r.json["ovs"]["error"]
        .as_str()
        .unwrap()
        .contains("cannot connect"));
}
