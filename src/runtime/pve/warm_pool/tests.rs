//! Claims, refills and drains against a node directory in a tempdir and a
//! fake API that creates members as PVE's create task would.

use std::sync::Mutex;

use super::*;
use crate::config::Config;
use crate::pve::client::NodeCt;
use crate::pve::config::{DescriptionInfo, PveConfig, PveConfigFile, PveVersion};

const NODE: &str = "pve1";

/// Writes each created member's `VMID.conf` (with its description) and
/// remembers what it was asked.
#[derive(Debug)]
struct FakeApi {
    paths: NodePaths,
    calls: Mutex<Vec<String>>,
    listed: Mutex<Vec<u32>>,
}

impl FakeApi {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl CtApi for FakeApi {
    fn version(&self) -> std::result::Result<PveVersion, PveError> {
        self.calls.lock().unwrap().push("GET /version".into());
        Ok(PveVersion::new(9, 1))
    }
    fn next_id(&self, from: u32) -> std::result::Result<Option<u32>, PveError> {
        Ok(Some(from))
    }
    fn create(&self, _: &str, params: &[(String, String)]) -> std::result::Result<(), PveError> {
        let get = |k: &str| params.iter().find(|(key, _)| key == k).unwrap().1.clone();
        let vmid: u32 = get("vmid").parse().unwrap();
        let mut file = PveConfigFile::parse("ostype: unmanaged\n").unwrap();
        file.set_description(&get("description"));
        fs::create_dir_all(self.paths.config_dir.join("lxc")).unwrap();
        fs::write(self.paths.config_file(vmid), file.render()).unwrap();
        self.listed.lock().unwrap().push(vmid);
        self.calls.lock().unwrap().push(format!("POST lxc {vmid}"));
        Ok(())
    }
    fn update_config(
        &self,
        _: &str,
        vmid: u32,
        _: &[(String, String)],
    ) -> std::result::Result<(), PveError> {
        self.calls.lock().unwrap().push(format!("PUT {vmid}"));
        Ok(())
    }
    fn begin_start(
        &self,
        _: &str,
        _: u32,
    ) -> std::result::Result<super::super::PendingTask, PveError> {
        unreachable!("a pool never starts a CT")
    }
    fn task_done(&self, _: &crate::pve::client::Upid) -> std::result::Result<bool, PveError> {
        unreachable!("a pool waits for its tasks")
    }
    fn finish(&self, _: &super::super::PendingTask) -> std::result::Result<(), PveError> {
        unreachable!("a pool never starts a CT")
    }
    fn stop(&self, _: &str, _: u32) -> std::result::Result<(), PveError> {
        unreachable!("a pool never stops a CT")
    }
    fn destroy(&self, _: &str, vmid: u32) -> std::result::Result<(), PveError> {
        fs::remove_file(self.paths.config_file(vmid)).unwrap();
        self.listed.lock().unwrap().retain(|v| *v != vmid);
        self.calls.lock().unwrap().push(format!("DELETE {vmid}"));
        Ok(())
    }
    fn list(&self, _: &str) -> std::result::Result<Vec<NodeCt>, PveError> {
        let listed = self.listed.lock().unwrap().clone();
        Ok(listed
            .into_iter()
            .map(|vmid| NodeCt {
                vmid,
                status: Some("stopped".into()),
                name: None,
                tags: Some("lxcri".into()),
                lock: None,
                template: None,
                uptime: None,
                mem: None,
                maxmem: None,
            })
            .collect())
    }
}

struct Node {
    _tmp: tempfile::TempDir,
    api: Arc<FakeApi>,
    backend: PveBackend,
}

fn node(size: u32) -> Node {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.runtime_root = tmp.path().join("run/lxcri");
    config.pve.node = Some(NODE.into());
    config.pve.config_dir = tmp.path().join("etc/pve");
    config.pve.lock_dir = tmp.path().join("run/lock/lxc");
    config.pve.lxcpath = tmp.path().join("var/lib/lxc");
    config.pve.warm_pool_size = size;
    // pmxcfs's `local` of a quorate node.
    std::fs::create_dir_all(config.pve.config_dir.join("local")).unwrap();
    let api = Arc::new(FakeApi {
        paths: NodePaths {
            config_dir: config.pve.config_dir.clone(),
            lock_dir: config.pve.lock_dir.clone(),
        },
        calls: Mutex::default(),
        listed: Mutex::default(),
    });
    let rootfs = crate::rootfs::provider_for(&config);
    let backend = PveBackend::with_api(config, rootfs, Arc::clone(&api) as Arc<dyn CtApi>);
    Node {
        _tmp: tmp,
        api,
        backend,
    }
}

fn claim_for(id: &str, unprivileged: bool) -> PoolClaim {
    let mut c = PveConfig::new(
        PveVersion::new(9, 1),
        crate::pve::config::Hostname::sanitize(id),
    );
    c.ostemplate = Some("local:vztmpl/lxcri-empty.tar.gz".into());
    c.unprivileged = unprivileged;
    c.description = Some(Description::for_container(&DescriptionInfo {
        container_id: id.into(),
        containerd_namespace: Some("ns".into()),
        ..DescriptionInfo::default()
    }));
    c.pool_claim().unwrap()
}

fn record(id: &str) -> ContainerRecord {
    ContainerRecord {
        id: id.into(),
        namespace: "ns".into(),
        bundle: "/b".into(),
        backend: "pve".into(),
        backend_name: String::new(),
        pid: None,
        pid_start_time: None,
        sandbox_id: None,
        pod: None,
        pod_namespace: None,
        rootfs_mounted: false,
        rootfs: None,
        created_at_ns: 1,
        vmid: None,
        node: None,
        nics: Vec::new(),
        userns_slot: None,
        container_name: None,
        image: None,
        poststop_hooks: false,
    }
}

impl Node {
    fn refill(&self, claim: &PoolClaim) -> u32 {
        Refill {
            api: Arc::clone(&self.api) as Arc<dyn CtApi>,
            node: NODE.into(),
            paths: self.backend.paths.clone(),
            dir: self.backend.warm_pool_dir(),
            size: self.backend.config.pve.warm_pool_size,
            range: self.backend.config.pve.vmid_range,
            member: claim.member.clone(),
            fingerprint: claim.fingerprint.clone(),
        }
        .run()
        .unwrap()
    }

    /// A claim, with the records it saved on the way.
    fn claim(&self, claim: &PoolClaim, id: &str) -> (Option<u32>, Vec<Option<u32>>) {
        let saved = Mutex::new(Vec::new());
        let mut r = record(id);
        let got = self
            .backend
            .claim_member(claim, &mut r, &|r| {
                // The VMID is saved while the CT is still a member.
                if let Some(vmid) = r.vmid {
                    assert!(matches!(
                        self.backend.ct_owner(vmid),
                        Ok(CtOwner::PoolMember(_))
                    ));
                }
                saved.lock().unwrap().push(r.vmid);
                Ok(())
            })
            .unwrap();
        assert_eq!(r.vmid, got);
        (got, saved.into_inner().unwrap())
    }
}

#[test]
fn a_claim_takes_a_member_of_its_fingerprint_once() {
    let node = node(2);
    let claim = claim_for("c1", true);
    assert_eq!(node.claim(&claim, "c1"), (None, vec![]), "an empty pool");
    assert_eq!(node.refill(&claim), 2);
    let state = PoolState::read(&node.backend.warm_pool_dir());
    assert_eq!(state.members.len(), 2);
    assert_eq!(state.wanted(), Some(claim.fingerprint.clone()));
    assert_eq!(state.fresh_version(unix_now()), Some(PveVersion::new(9, 1)));
    assert_eq!(node.backend.cached_version(), Some(PveVersion::new(9, 1)));

    let other = claim_for("c2", false);
    assert_eq!(node.claim(&other, "c2").0, None, "another fingerprint");

    let (first, saved) = node.claim(&claim, "c1");
    let first = first.unwrap();
    assert_eq!(saved, vec![Some(first)]);
    assert_eq!(
        node.backend.ct_owner(first).unwrap(),
        CtOwner::Container {
            namespace: "ns".into(),
            id: "c1".into()
        }
    );
    // The hint still names the first: the next claim skips it.
    let (second, saved) = node.claim(&claim_for("c3", true), "c3");
    assert!(second.is_some() && second != Some(first));
    assert_eq!(saved, vec![second]);
    assert_eq!(
        node.claim(&claim_for("c4", true), "c4").0,
        None,
        "exhausted"
    );
    assert_eq!(node.refill(&claim), 2, "refilled to the size");
}

#[test]
fn a_claim_that_loses_the_member_clears_its_record() {
    let node = node(1);
    let claim = claim_for("c1", true);
    node.refill(&claim);
    let vmid = PoolState::read(&node.backend.warm_pool_dir()).members[0];
    // Another shim's claim between the look and the lock: simulated by
    // a member locked by PVE.
    update_node_config(&node.backend.paths, vmid, |f| f.set_key("lock", "backup")).unwrap();
    let saved = Mutex::new(Vec::new());
    let mut r = record("c1");
    // The cheap look passes (lock not read), the locked check refuses.
    let got = node
        .backend
        .claim_member(&claim, &mut r, &|r| {
            saved.lock().unwrap().push(r.vmid);
            Ok(())
        })
        .unwrap();
    assert_eq!(got, None);
    assert_eq!(saved.into_inner().unwrap(), vec![Some(vmid), None]);
    assert_eq!(r.vmid, None);
}

#[test]
fn drain_takes_only_a_member_still_in_the_pool() {
    let node = node(1);
    let claim = claim_for("c1", true);
    node.refill(&claim);
    let vmid = PoolState::read(&node.backend.warm_pool_dir()).members[0];
    let other = claim_for("c2", false).fingerprint;
    assert!(!node.backend.drain_member(vmid, &other).unwrap());
    assert!(node.backend.drain_member(vmid, &claim.fingerprint).unwrap());
    assert_eq!(node.backend.ct_owner(vmid).unwrap(), CtOwner::Gone);
    assert!(node.api.calls().contains(&format!("DELETE {vmid}")));
}

#[test]
fn a_stale_state_is_no_version_and_a_broken_one_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let state = PoolState {
        members: vec![10000],
        wanted: Some("0123456789abcdef".into()),
        version: Some("9.1".into()),
        version_read_at: 1_000,
    };
    state.write(dir.path()).unwrap();
    assert_eq!(PoolState::read(dir.path()), state);
    assert_eq!(
        state.fresh_version(1_000 + 600),
        Some(PveVersion::new(9, 1))
    );
    assert_eq!(state.fresh_version(1_000 + 601), None);
    assert_eq!(state.fresh_version(999), None, "a clock set back");
    fs::write(dir.path().join(STATE_FILE), "{").unwrap();
    assert_eq!(PoolState::read(dir.path()), PoolState::default());
}

#[test]
fn a_done_shim_waits_for_its_refills_but_not_forever() {
    let quick = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(100)));
    let slow = std::thread::spawn(|| std::thread::sleep(Duration::from_secs(3)));
    REFILLS.lock().unwrap().extend([quick, slow]);
    let began = Instant::now();
    finish_refills(Duration::from_millis(500));
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(REFILLS.lock().unwrap().is_empty());
}

#[test]
fn a_refill_is_seen_running_while_it_holds_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(!is_refilling(tmp.path()), "no lock file: no refill");
    let lock = RefillLock::acquire(tmp.path(), Duration::ZERO).unwrap();
    assert!(is_refilling(tmp.path()));
    drop(lock);
    assert!(!is_refilling(tmp.path()));
}
