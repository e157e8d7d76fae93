//! The NICs lxcri plugged ([`crate::network::plug`]) whose container is
//! gone: what `lxcri gc` finds besides the containers themselves
//! (`leftovers.rs`), and removes.
//!
//! A host end mostly goes by itself: it is one half of a veth pair whose
//! other half is in the container's network namespace, and the kernel
//! removes the pair with that namespace. What outlives a container is a
//! host end whose namespace something still holds (a pod's, pinned by
//! containerd and CNI; a process left in it), and an Open vSwitch port,
//! whose row stays in the database when its interface disappears. Both
//! carry their owner, `namespace/id`: the link's alias `lxcri:<owner>`, the
//! port's `external_ids:lxcri-owner`. They are orphans when their container
//! is one by the rules for its other leftovers (its state record, else its
//! LXC container, else nothing is left of it). A mark that names no
//! containerd container, and a link and a port of one name marked for
//! different containers, are left alone.

use std::collections::BTreeMap;

use super::container::owner;
use super::error::{Result, RuntimeError};
use super::leftovers::Verdict;
use super::lifecycle::Runtime;
use crate::network::host::{HostError, HostNetwork};
use crate::network::ovsdb::OvsPort;
use crate::network::plug::ALIAS_PREFIX;
use crate::network::OVS_OWNER_KEY;
use crate::state::validate_name;

/// A host end lxcri made, found by its owner mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicLeftover {
    /// The link's name, which its Open vSwitch port has too.
    pub host: String,
    /// Whose it is, as marked on it (`namespace/id`).
    pub owner: String,
    /// A link of that name carries the mark.
    pub link: bool,
    /// An Open vSwitch port of that name carries the mark.
    pub port: bool,
    /// The Open vSwitch bridge holding the port.
    pub bridge: Option<String>,
    pub orphan: bool,
    /// Why, in words.
    pub reason: String,
}

/// Whether Open vSwitch's ports were looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OvsCheck {
    Checked,
    /// `network.ovsdb` could not be asked, and no state record names an
    /// OVS port: most likely this node has no Open vSwitch.
    Unchecked {
        why: String,
    },
    /// `network.ovsdb` could not be asked, yet state records name OVS
    /// ports (`namespace/id (port)`): ports that exist went unseen.
    Failed {
        why: String,
        needed_by: Vec<String>,
    },
}

/// What [`Runtime::scan_nic_leftovers`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicScan {
    /// By owner, then host end.
    pub nics: Vec<NicLeftover>,
    pub ovs: OvsCheck,
}

impl Runtime {
    /// Every host link and Open vSwitch port marked as lxcri's, with the
    /// verdict on its container.
    pub fn scan_nic_leftovers(&self, host: &mut dyn HostNetwork) -> Result<NicScan> {
        let links = host
            .links_with_alias_prefix(ALIAS_PREFIX)
            .map_err(host_error)?;
        let (ports, ovs) = match host.ports_with_external_id(OVS_OWNER_KEY) {
            Ok(ports) => (ports, OvsCheck::Checked),
            Err(e) => (Vec::new(), self.ovs_unchecked(&e)?),
        };
        let nics = judge(&marks(links, ports), |ns, id| self.judge_owner(ns, id));
        Ok(NicScan { nics, ovs })
    }

    /// Removes an orphan found by [`Runtime::scan_nic_leftovers`] (its OVS
    /// port, then its link), after finding and judging it again.
    /// `Ok(false)`: it is gone or no orphan any more.
    pub fn remove_nic_leftover(
        &self,
        host: &mut dyn HostNetwork,
        found: &NicLeftover,
    ) -> Result<bool> {
        let links = host
            .links_with_alias_prefix(ALIAS_PREFIX)
            .map_err(host_error)?;
        let ports = if found.port {
            host.ports_with_external_id(OVS_OWNER_KEY)
                .map_err(host_error)?
        } else {
            Vec::new()
        };
        let same_name: Vec<Mark> = marks(links, ports)
            .into_iter()
            .filter(|m| m.host == found.host)
            .collect();
        let now = judge(&same_name, |ns, id| self.judge_owner(ns, id));
        let Some(now) = now.iter().find(|n| n.owner == found.owner && n.orphan) else {
            return Ok(false);
        };
        let ovs_owner = now.port.then_some(now.owner.as_str());
        host.remove(&now.host, ovs_owner).map_err(host_error)?;
        Ok(true)
    }

    fn ovs_unchecked(&self, error: &HostError) -> Result<OvsCheck> {
        let why = crate::error_chain(error);
        let needed_by: Vec<String> = self
            .store
            .list()?
            .records
            .iter()
            .flat_map(|r| {
                r.nics
                    .iter()
                    .filter(|n| n.ovs)
                    .map(|n| format!("{} ({})", owner(&r.namespace, &r.id), n.host))
            })
            .collect();
        Ok(if needed_by.is_empty() {
            OvsCheck::Unchecked { why }
        } else {
            OvsCheck::Failed { why, needed_by }
        })
    }
}

fn host_error(e: HostError) -> RuntimeError {
    RuntimeError::HostNetwork(Box::new(e))
}

/// One host end name with one owner mark, on its link, its port or both.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mark {
    host: String,
    owner: String,
    link: bool,
    port: bool,
    bridge: Option<String>,
}

/// The marked links and ports, merged by name and owner, sorted by owner.
fn marks(links: Vec<(String, String)>, ports: Vec<OvsPort>) -> Vec<Mark> {
    fn at(found: &mut BTreeMap<(String, String), Mark>, host: String, owner: String) -> &mut Mark {
        found
            .entry((owner.clone(), host.clone()))
            .or_insert_with(|| Mark {
                host,
                owner,
                link: false,
                port: false,
                bridge: None,
            })
    }
    let mut found: BTreeMap<(String, String), Mark> = BTreeMap::new();
    for (host, alias) in links {
        let owner = alias
            .strip_prefix(ALIAS_PREFIX)
            .unwrap_or(&alias)
            .to_string();
        at(&mut found, host, owner).link = true;
    }
    for port in ports {
        let Some(owner) = port.external_ids.get(OVS_OWNER_KEY).cloned() else {
            continue;
        };
        let m = at(&mut found, port.name, owner);
        m.port = true;
        m.bridge = port.bridge;
    }
    found.into_values().collect()
}

/// Each mark with its owner's verdict (`verdict` is asked once per owner).
fn judge(marks: &[Mark], mut verdict: impl FnMut(&str, &str) -> Verdict) -> Vec<NicLeftover> {
    let mut known: BTreeMap<&str, Verdict> = BTreeMap::new();
    let mut out = Vec::new();
    for m in marks {
        let other = marks
            .iter()
            .find(|o| o.host == m.host && o.owner != m.owner);
        let v = if let Some(other) = other {
            Verdict {
                orphan: false,
                reason: format!(
                    "{} is marked for {} and for {}: left alone",
                    m.host, m.owner, other.owner
                ),
            }
        } else if let Some(v) = known.get(m.owner.as_str()) {
            v.clone()
        } else {
            let v = match split_owner(&m.owner) {
                Some((ns, id)) => verdict(ns, id),
                None => Verdict {
                    orphan: false,
                    reason: format!("{:?} names no containerd namespace/id: left alone", m.owner),
                },
            };
            known.insert(&m.owner, v.clone());
            v
        };
        out.push(NicLeftover {
            host: m.host.clone(),
            owner: m.owner.clone(),
            link: m.link,
            port: m.port,
            bridge: m.bridge.clone(),
            orphan: v.orphan,
            reason: v.reason,
        });
    }
    out
}

/// `namespace/id` as lxcri marks its NICs, both valid containerd names.
fn split_owner(owner: &str) -> Option<(&str, &str)> {
    let (ns, id) = owner.split_once('/')?;
    (validate_name("namespace", ns).is_ok() && validate_name("container id", id).is_ok())
        .then_some((ns, id))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::fd::BorrowedFd;

    use super::*;
    use crate::config::Config;
    use crate::network::host::{Bridge, PeerConfig, PortConfig};
    use crate::network::ovsdb::OvsdbError;
    use crate::network::plug::PluggedNic;
    use crate::state::{ContainerRecord, StateStore};

    type HostResult<T> = std::result::Result<T, HostError>;

    /// Marked links and ports; records what is removed.
    #[derive(Default)]
    struct FakeHost {
        links: BTreeMap<String, String>,
        ports: Vec<OvsPort>,
        ovs_down: bool,
        removed: Vec<String>,
    }

    impl FakeHost {
        fn link(mut self, name: &str, owner: &str) -> Self {
            self.links
                .insert(name.into(), format!("{ALIAS_PREFIX}{owner}"));
            self
        }

        fn port(mut self, name: &str, owner: &str) -> Self {
            self.ports.push(OvsPort {
                name: name.into(),
                bridge: Some("ovsbr0".into()),
                tag: None,
                trunks: Vec::new(),
                vlan_mode: None,
                external_ids: [(OVS_OWNER_KEY.to_string(), owner.to_string())].into(),
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
            if let Some(owner) = ovs_owner {
                self.ports.retain(|p| {
                    p.name != host
                        || p.external_ids.get(OVS_OWNER_KEY).map(String::as_str) != Some(owner)
                });
            }
            Ok(())
        }
        fn links_with_alias_prefix(&mut self, prefix: &str) -> HostResult<Vec<(String, String)>> {
            Ok(self
                .links
                .iter()
                .filter(|(_, alias)| alias.starts_with(prefix))
                .map(|(n, a)| (n.clone(), a.clone()))
                .collect())
        }
        fn ports_with_external_id(&mut self, key: &str) -> HostResult<Vec<OvsPort>> {
            if self.ovs_down {
                return Err(HostError::Ovsdb(OvsdbError::Connect {
                    target: "unix:/run/ovs/db.sock".into(),
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

    /// A node's runtime_root and lxcpath in a tempdir.
    struct Node {
        tmp: tempfile::TempDir,
        runtime: Runtime,
    }

    impl Node {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let mut config = Config::default();
            config.runtime_root = tmp.path().join("run");
            config.lxc.lxcpath = tmp.path().join("lxc");
            Node {
                runtime: Runtime::new(config),
                tmp,
            }
        }

        /// The state record of `ns/id`, with no init running; containerd
        /// has it while `bundle` is true (its bundle exists).
        fn state(&self, id: &str, bundle: bool, ovs_nics: &[&str]) {
            let dir = self.tmp.path().join("bundles").join(id);
            if bundle {
                std::fs::create_dir_all(&dir).unwrap();
            }
            let record = ContainerRecord {
                id: id.into(),
                namespace: "ns".into(),
                bundle: dir,
                backend: "lxc".into(),
                backend_name: format!("ns_{id}"),
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
                nics: ovs_nics
                    .iter()
                    .map(|h| PluggedNic {
                        host: h.to_string(),
                        name: "eth1".into(),
                        bridge: Some("ovsbr0".into()),
                        ovs: true,
                    })
                    .collect(),
                userns_slot: None,
                container_name: None,
                image: None,
                poststop_hooks: false,
            };
            StateStore::new(self.tmp.path().join("run"))
                .save(&record)
                .unwrap();
        }

        fn bundle(&self, id: &str) -> std::path::PathBuf {
            self.tmp.path().join("bundles").join(id)
        }
    }

    fn summary(scan: &NicScan) -> Vec<(String, String, &'static str, bool)> {
        scan.nics
            .iter()
            .map(|n| {
                let kind = match (n.link, n.port) {
                    (true, true) => "both",
                    (true, false) => "link",
                    _ => "port",
                };
                (n.owner.clone(), n.host.clone(), kind, n.orphan)
            })
            .collect()
    }

    #[test]
    fn marks_are_judged_by_their_containers_verdicts() {
        let node = Node::new();
        node.state("live", true, &["lxlive0"]);
        node.state("dead", false, &[]);
        let mut host = FakeHost::default()
            .link("lxgone0", "ns/gone")
            .port("lxgone0", "ns/gone")
            .link("lxlive0", "ns/live")
            // A live container's port whose interface went: not ours to judge.
            .port("lxlive1", "ns/live")
            .port("lxdead0", "ns/dead")
            .link("lxodd0", "no-slash")
            .link("lxboth0", "ns/gone")
            .port("lxboth0", "ns/live");
        host.links.insert("vmbr0".into(), "uplink".into());
        let scan = node.runtime.scan_nic_leftovers(&mut host).unwrap();
        assert_eq!(scan.ovs, OvsCheck::Checked);
        let s = |o: &str, h: &str, k, orphan| (o.to_string(), h.to_string(), k, orphan);
        assert_eq!(
            summary(&scan),
            [
                s("no-slash", "lxodd0", "link", false),
                s("ns/dead", "lxdead0", "port", true),
                s("ns/gone", "lxboth0", "link", false),
                s("ns/gone", "lxgone0", "both", true),
                s("ns/live", "lxboth0", "port", false),
                s("ns/live", "lxlive0", "link", false),
                s("ns/live", "lxlive1", "port", false),
            ]
        );
        let reason = |h: &str, o: &str| {
            let n = scan.nics.iter().find(|n| n.host == h && n.owner == o);
            n.unwrap().reason.clone()
        };
        assert_eq!(
            reason("lxgone0", "ns/gone"),
            "ns/gone has no state and no LXC container"
        );
        assert!(
            reason("lxdead0", "ns/dead").contains("its bundle is gone"),
            "{scan:?}"
        );
        assert!(reason("lxlive1", "ns/live").contains("bundle exists"));
        assert!(reason("lxboth0", "ns/gone").contains("marked for ns/gone and for ns/live"));
        assert!(reason("lxodd0", "no-slash").contains("no containerd namespace/id"));
        assert_eq!(scan.nics[3].bridge.as_deref(), Some("ovsbr0"), "{scan:?}");
    }

    #[test]
    fn an_orphan_is_judged_again_before_it_is_removed() {
        let node = Node::new();
        node.state("dead", false, &[]);
        let mut host = FakeHost::default()
            .link("lxgone0", "ns/gone")
            .port("lxgone0", "ns/gone")
            .link("lxgone1", "ns/gone")
            .port("lxdead0", "ns/dead");
        let scan = node.runtime.scan_nic_leftovers(&mut host).unwrap();
        for n in &scan.nics {
            assert!(
                node.runtime.remove_nic_leftover(&mut host, n).unwrap(),
                "{n:?}"
            );
        }
        assert_eq!(
            host.removed,
            [
                "lxdead0 ovs=Some(\"ns/dead\")",
                "lxgone0 ovs=Some(\"ns/gone\")",
                "lxgone1 ovs=None"
            ]
        );
        assert!(
            !node
                .runtime
                .remove_nic_leftover(&mut host, &scan.nics[1])
                .unwrap(),
            "gone already"
        );

        // containerd has the container again by the time --force comes.
        let mut host = FakeHost::default().port("lxdead0", "ns/dead");
        let scan = node.runtime.scan_nic_leftovers(&mut host).unwrap();
        std::fs::create_dir_all(node.bundle("dead")).unwrap();
        assert!(!node
            .runtime
            .remove_nic_leftover(&mut host, &scan.nics[0])
            .unwrap());
        assert!(host.removed.is_empty());
    }

    #[test]
    fn an_lxc_container_without_state_decides_while_it_exists() {
        let node = Node::new();
        // No lxc-info on a test machine answers RUNNING for it.
        std::fs::create_dir_all(node.tmp.path().join("lxc/ns_stray")).unwrap();
        let mut host = FakeHost::default().link("lxstray0", "ns/stray");
        let scan = node.runtime.scan_nic_leftovers(&mut host).unwrap();
        assert!(scan.nics[0].orphan);
        assert_eq!(scan.nics[0].reason, "LXC container ns_stray has no state");
    }

    #[test]
    fn ovs_out_of_reach_is_an_error_only_when_a_record_names_an_ovs_port() {
        let node = Node::new();
        node.state("plain", true, &[]);
        let mut host = FakeHost {
            ovs_down: true,
            ..FakeHost::default()
        }
        .link("lxgone0", "ns/gone");
        let scan = node.runtime.scan_nic_leftovers(&mut host).unwrap();
        assert_eq!(scan.nics.len(), 1, "links are still listed");
        let OvsCheck::Unchecked { why } = &scan.ovs else {
            panic!("{:?}", scan.ovs)
        };
        assert!(
            why.contains("cannot connect to unix:/run/ovs/db.sock"),
            "{why}"
        );

        node.state("onovs", true, &["lxonovs0"]);
        let scan = node.runtime.scan_nic_leftovers(&mut host).unwrap();
        assert!(
            matches!(&scan.ovs, OvsCheck::Failed { needed_by, .. }
                if needed_by == &["ns/onovs (lxonovs0)"]),
            "{:?}",
            scan.ovs
        );
        // A link-only orphan is still removed without asking Open vSwitch.
        assert!(node
            .runtime
            .remove_nic_leftover(&mut host, &scan.nics[0])
            .unwrap());
        assert_eq!(host.removed, ["lxgone0 ovs=None"]);
    }
}
