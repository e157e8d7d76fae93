//! `lxcri gc` against a fake PVE API: CT configs in a tempdir as the
//! node's `config_dir`, state records in a tempdir as `runtime_root`.

use std::fs;
use std::sync::{Arc, Mutex};

use lxcri::config::Config;
use lxcri::pve::client::{NodeCt, PveError, Upid};
use lxcri::pve::config::{Description, DescriptionInfo, PveConfigFile, PveVersion};
use lxcri::runtime::pve::{CtApi, PendingTask};
use lxcri::runtime::PveBackend;
use lxcri::state::{ContainerRecord, StateStore};

use super::*;

const NODE: &str = "pve1";

/// Answers `list` with fixed CTs and records every call that changes
/// something; `destroy` of a VMID in `fail_destroy` fails.
#[derive(Debug, Default)]
struct FakeApi {
    cts: Vec<NodeCt>,
    fail_destroy: Vec<u32>,
    list_error: bool,
    calls: Mutex<Vec<String>>,
}

impl FakeApi {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn deletes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with("DELETE"))
            .collect()
    }
}

impl CtApi for FakeApi {
    fn version(&self) -> Result<PveVersion, PveError> {
        Ok(PveVersion::new(9, 1))
    }
    fn next_id(&self, from: u32) -> Result<Option<u32>, PveError> {
        Ok(Some(from))
    }
    fn create(&self, node: &str, _params: &[(String, String)]) -> Result<(), PveError> {
        self.record(format!("POST {node}/lxc"));
        Ok(())
    }
    fn update_config(
        &self,
        node: &str,
        vmid: u32,
        _params: &[(String, String)],
    ) -> Result<(), PveError> {
        self.record(format!("PUT {node}/{vmid}/config"));
        Ok(())
    }
    fn begin_start(&self, _: &str, _: u32) -> Result<PendingTask, PveError> {
        unreachable!("gc never starts a CT")
    }
    fn task_done(&self, _: &Upid) -> Result<bool, PveError> {
        unreachable!("gc never starts a CT")
    }
    fn finish(&self, _: &PendingTask) -> Result<(), PveError> {
        unreachable!("gc never starts a CT")
    }
    fn stop(&self, node: &str, vmid: u32) -> Result<(), PveError> {
        self.record(format!("STOP {node}/{vmid}"));
        Ok(())
    }
    fn destroy(&self, node: &str, vmid: u32) -> Result<(), PveError> {
        self.record(format!("DELETE {node}/{vmid}"));
        if self.fail_destroy.contains(&vmid) {
            return Err(PveError::Server {
                method: reqwest::Method::DELETE,
                path: format!("/nodes/{node}/lxc/{vmid}"),
                message: format!("CT {vmid} is locked (backup)"),
            });
        }
        Ok(())
    }
    fn list(&self, node: &str) -> Result<Vec<NodeCt>, PveError> {
        assert_eq!(node, NODE);
        if self.list_error {
            return Err(PveError::Server {
                method: reqwest::Method::GET,
                path: format!("/nodes/{node}/lxc"),
                message: "pmxcfs not ready".into(),
            });
        }
        Ok(self.cts.clone())
    }
}

fn ct(vmid: u32, tags: &str) -> NodeCt {
    NodeCt {
        vmid,
        status: Some("stopped".into()),
        name: Some(format!("ct{vmid}")),
        tags: Some(tags.into()),
        lock: None,
        template: None,
        uptime: None,
        mem: None,
        maxmem: None,
    }
}

/// A node: its `config_dir` and `runtime_root`, and the config naming them.
struct Node {
    _tmp: tempfile::TempDir,
    config: Config,
}

impl Node {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.runtime_root = tmp.path().join("run/lxcri");
        config.pve.node = Some(NODE.into());
        config.pve.config_dir = tmp.path().join("etc/pve");
        config.pve.lock_dir = tmp.path().join("run/lock/lxc");
        config.pve.lxcpath = tmp.path().join("var/lib/lxc");
        fs::create_dir_all(config.pve.config_dir.join("lxc")).unwrap();
        // pmxcfs's `local` of a quorate node: lxcri's own config edits read it.
        fs::create_dir(config.pve.config_dir.join("local")).unwrap();
        Node { _tmp: tmp, config }
    }

    /// Writes `VMID.conf` with `description` as its `#` lines.
    fn conf(&self, vmid: u32, description: &str) {
        let mut file =
            PveConfigFile::parse("arch: amd64\nhostname: x\nostype: unmanaged\n").unwrap();
        file.set_description(description);
        let path = self.config.pve.config_dir.join(format!("lxc/{vmid}.conf"));
        fs::write(path, file.render()).unwrap();
    }

    /// A `VMID.conf` whose description lxcri wrote for `ns/id`.
    fn ours(&self, vmid: u32, ns: &str, id: &str) {
        let info = DescriptionInfo {
            container_id: id.into(),
            containerd_namespace: Some(ns.into()),
            ..DescriptionInfo::default()
        };
        self.conf(vmid, Description::for_container(&info).as_str());
    }

    /// The state record of `ns/id`, running as CT `vmid` (or not yet).
    fn state(&self, ns: &str, id: &str, vmid: Option<u32>) {
        let record = ContainerRecord {
            id: id.into(),
            namespace: ns.into(),
            bundle: "/b".into(),
            backend: "pve".into(),
            backend_name: vmid.map(|v| v.to_string()).unwrap_or_default(),
            pid: None,
            pid_start_time: None,
            sandbox_id: None,
            pod: None,
            pod_namespace: None,
            rootfs_mounted: false,
            rootfs: None,
            created_at_ns: 1,
            vmid,
            node: Some(NODE.into()),
            nics: Vec::new(),
            userns_slot: None,
            container_name: None,
            image: None,
            poststop_hooks: false,
        };
        StateStore::new(&self.config.runtime_root)
            .save(&record)
            .unwrap();
    }

    fn runtime(&self, api: &Arc<FakeApi>) -> PveBackend {
        let api: Arc<dyn CtApi> = Arc::clone(api) as Arc<dyn CtApi>;
        let rootfs = lxcri::rootfs::provider_for(&self.config);
        PveBackend::with_api(self.config.clone(), rootfs, api)
    }
}

/// One CT of each kind:
/// - 10000: orphan (no state),
/// - 10001: live,
/// - 10002: foreign description,
/// - 100: lxcri's description, outside `vmid_range`,
/// - 10003: lxcri's description but not tagged `lxcri` (not listed),
/// - 10004: orphan (its container runs as CT 10005),
/// - 10006: its container is being created (no VMID recorded yet).
fn node_with_cts(fail_destroy: Vec<u32>) -> (Node, Arc<FakeApi>) {
    let node = Node::new();
    node.ours(10000, "k8s.io", "gone");
    node.ours(10001, "k8s.io", "live");
    node.state("k8s.io", "live", Some(10001));
    node.conf(10002, "My own CT, tagged lxcri by hand.\n");
    node.ours(100, "k8s.io", "old");
    node.ours(10003, "k8s.io", "untagged");
    node.ours(10004, "default", "moved");
    node.state("default", "moved", Some(10005));
    node.ours(10006, "k8s.io", "creating");
    node.state("k8s.io", "creating", None);
    let mut live = ct(10001, "lxcri;k8s");
    live.status = Some("running".into());
    let api = Arc::new(FakeApi {
        cts: vec![
            ct(10006, "lxcri"),
            ct(10004, "lxcri"),
            ct(10003, "other"),
            ct(100, "lxcri"),
            ct(10002, "lxcri"),
            live,
            ct(10000, "lxcri"),
        ],
        fail_destroy,
        ..FakeApi::default()
    });
    (node, api)
}

fn args(force: bool, json: bool) -> Args {
    Args { force, json }
}

#[test]
fn verdicts_of_each_kind() {
    let (node, api) = node_with_cts(vec![]);
    let entries = node.runtime(&api).gc_scan().unwrap();
    let got: Vec<(u32, CtVerdict)> = entries
        .iter()
        .map(|e| (e.vmid, e.verdict.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (100, CtVerdict::Foreign),
            (10000, CtVerdict::Orphan),
            (10001, CtVerdict::Live),
            (10002, CtVerdict::Foreign),
            (10004, CtVerdict::Orphan),
            (10006, CtVerdict::Live),
        ]
    );
}

#[test]
fn dry_run_lists_orphans_and_removes_nothing() {
    let (node, api) = node_with_cts(vec![]);
    let report = collect(&node.runtime(&api), &args(false, false)).unwrap();
    let out = &report.output;
    assert!(!report.failed);
    assert!(api.deletes().is_empty(), "{:?}", api.calls());
    assert!(out.starts_with("VMID   STATUS   CONTAINER"), "{out}");
    assert!(
        out.contains("would remove CT 10000 (k8s.io/gone)\n"),
        "{out}"
    );
    assert!(
        out.contains("would remove CT 10004 (default/moved)\n"),
        "{out}"
    );
    for kept in [100, 10001, 10002, 10003, 10006] {
        assert!(!out.contains(&format!("remove CT {kept} ")), "{out}");
    }
    assert!(!out.contains("10003"), "untagged CTs are not listed: {out}");
    assert!(
        out.ends_with("dry run: nothing removed; `lxcri gc --force` removes the 2 orphan(s)\n"),
        "{out}"
    );
    // The table says why.
    let line = |vmid: &str| {
        out.lines()
            .find(|l| l.starts_with(vmid))
            .unwrap_or_else(|| panic!("no row {vmid}: {out}"))
            .to_string()
    };
    assert!(line("10000 ").contains("orphan"), "{out}");
    assert!(
        line("10000 ").contains("has no state on this node"),
        "{out}"
    );
    assert!(line("10001 ").contains("running"), "{out}");
    assert!(line("10001 ").contains("live"), "{out}");
    assert!(line("10002 ").contains("foreign"), "{out}");
    assert!(line("10002 ").contains("not written by lxcri"), "{out}");
    assert!(line("100 ").contains("outside vmid_range"), "{out}");
    assert!(line("10004 ").contains("runs as CT 10005"), "{out}");
    // The config files are all still there.
    for vmid in [100, 10000, 10001, 10002, 10003, 10004, 10006] {
        assert!(node
            .config
            .pve
            .config_dir
            .join(format!("lxc/{vmid}.conf"))
            .exists());
    }
}

#[test]
fn force_destroys_only_orphans() {
    let (node, api) = node_with_cts(vec![]);
    let report = collect(&node.runtime(&api), &args(true, false)).unwrap();
    let out = &report.output;
    assert!(!report.failed, "{out}");
    assert_eq!(
        api.deletes(),
        vec![
            "DELETE pve1/10000".to_string(),
            "DELETE pve1/10004".to_string()
        ]
    );
    assert!(out.contains("removed CT 10000 (k8s.io/gone)\n"), "{out}");
    assert!(out.contains("removed CT 10004 (default/moved)\n"), "{out}");
    assert!(!out.contains("would remove"), "{out}");
    assert!(out.ends_with("removed 2, skipped 0, failed 0\n"), "{out}");
    // The live container's state is untouched.
    assert!(node
        .config
        .runtime_root
        .join("k8s.io/live/state.json")
        .exists());
}

#[test]
fn a_failed_removal_is_reported_and_fails_the_command() {
    let (node, api) = node_with_cts(vec![10000]);
    let report = collect(&node.runtime(&api), &args(true, false)).unwrap();
    let out = &report.output;
    assert!(report.failed, "{out}");
    // The other orphan still goes.
    assert_eq!(api.deletes().len(), 2);
    let line = out
        .lines()
        .find(|l| l.starts_with("failed to remove CT 10000 (k8s.io/gone): "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("CT 10000 is locked (backup)"), "{line}");
    assert!(line.contains("lxcri gc --force"), "{line}");
    assert!(out.contains("removed CT 10004"), "{out}");
    assert!(out.ends_with("removed 1, skipped 0, failed 1\n"), "{out}");
}

#[test]
fn an_orphan_that_came_back_is_skipped() {
    let (node, api) = node_with_cts(vec![]);
    let rt = node.runtime(&api);
    let entries = rt.gc_scan().unwrap();
    // Between the scan and the removal, containerd creates k8s.io/gone
    // again, as CT 10000.
    node.state("k8s.io", "gone", Some(10000));
    let actions = remove(&rt, &entries);
    let by_vmid: Vec<(u32, Action)> = entries.iter().map(|e| e.vmid).zip(actions).collect();
    assert_eq!(
        by_vmid,
        vec![
            (100, Action::Keep),
            (10000, Action::Skipped),
            (10001, Action::Keep),
            (10002, Action::Keep),
            (10004, Action::Removed),
            (10006, Action::Keep),
        ]
    );
    assert_eq!(api.deletes(), vec!["DELETE pve1/10004".to_string()]);
}

#[test]
fn json_output() {
    let (node, api) = node_with_cts(vec![10004]);
    let dry = collect(&node.runtime(&api), &args(false, true)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&dry.output).unwrap();
    assert_eq!(v["node"], "pve1");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["ok"], true);
    let cts = v["cts"].as_array().unwrap();
    assert_eq!(cts.len(), 6);
    assert_eq!(cts[0]["vmid"], 100);
    assert_eq!(cts[0]["verdict"], "foreign");
    assert_eq!(cts[0]["action"], "keep");
    // Outside the range, but its notes still name the container.
    assert_eq!(cts[0]["namespace"], "k8s.io");
    assert_eq!(cts[1]["vmid"], 10000);
    assert_eq!(cts[1]["namespace"], "k8s.io");
    assert_eq!(cts[1]["id"], "gone");
    assert_eq!(cts[1]["verdict"], "orphan");
    assert_eq!(cts[1]["action"], "would-remove");
    assert!(api.deletes().is_empty());

    let forced = collect(&node.runtime(&api), &args(true, true)).unwrap();
    assert!(forced.failed);
    let v: serde_json::Value = serde_json::from_str(&forced.output).unwrap();
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["ok"], false);
    assert_eq!(v["cts"][1]["action"], "removed");
    assert_eq!(v["cts"][4]["vmid"], 10004);
    assert_eq!(v["cts"][4]["action"], "failed");
    assert!(v["cts"][4]["error"]
        .as_str()
        .unwrap()
        .contains("is locked (backup)"));
    assert_eq!(v["cts"][2].get("error"), None);
}

#[test]
fn nothing_to_do() {
    let node = Node::new();
    let api = Arc::new(FakeApi {
        cts: vec![ct(101, "web")],
        ..FakeApi::default()
    });
    let report = collect(&node.runtime(&api), &args(true, false)).unwrap();
    assert_eq!(report.output, "no CTs tagged lxcri on node pve1\n");
    assert!(!report.failed);

    // Only live CTs: a table and "no orphans".
    node.ours(10001, "k8s.io", "live");
    node.state("k8s.io", "live", Some(10001));
    let api = Arc::new(FakeApi {
        cts: vec![ct(10001, "lxcri")],
        ..FakeApi::default()
    });
    let report = collect(&node.runtime(&api), &args(false, false)).unwrap();
    assert!(
        report.output.ends_with("\nno orphans\n"),
        "{}",
        report.output
    );
}

#[test]
fn an_unreadable_config_is_kept_and_does_not_stop_the_scan() {
    let node = Node::new();
    // A VMID.conf that cannot be read: the CT's owner cannot be told.
    fs::create_dir(node.config.pve.config_dir.join("lxc/10000.conf")).unwrap();
    node.ours(10001, "k8s.io", "gone");
    let api = Arc::new(FakeApi {
        cts: vec![ct(10000, "lxcri"), ct(10001, "lxcri")],
        ..FakeApi::default()
    });
    let report = collect(&node.runtime(&api), &args(true, false)).unwrap();
    assert!(
        report.output.contains("10000") && report.output.contains("config unreadable"),
        "{}",
        report.output
    );
    assert_eq!(api.deletes(), vec!["DELETE pve1/10001".to_string()]);
}

#[test]
fn a_failed_listing_is_an_error() {
    let node = Node::new();
    let api = Arc::new(FakeApi {
        list_error: true,
        ..FakeApi::default()
    });
    let err = collect(&node.runtime(&api), &args(true, false)).unwrap_err();
    assert!(matches!(err, GcError::Scan(_)), "{err:?}");
    assert!(api.deletes().is_empty());
}

#[test]
fn without_pve_or_zfs_only_containers_are_collected() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.runtime_root = tmp.path().join("run");
    config.lxc.lxcpath = tmp.path().join("lxc");
    let report = run(config, &args(false, true)).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&report.output).unwrap();
    assert_eq!(doc["containers"], serde_json::json!([]));
    assert!(
        doc.get("cts").is_none() && doc.get("images").is_none(),
        "{doc}"
    );
    assert_eq!(doc["ok"], true);
}

/// Warm pool members: kept up to `warm_pool_size` when of the fingerprint
/// refills make and stopped; stale, broken and excess ones drained, and
/// all of them once the size is 0.
#[test]
fn gc_drains_stale_broken_and_excess_pool_members() {
    use lxcri::pve::config::MemberFingerprint;
    use lxcri::runtime::pve::PoolState;
    let mut node = Node::new();
    node.config.pve.warm_pool_size = 1;
    let (a, b) = ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb");
    let member = |vmid, fp: &str| {
        let fp = MemberFingerprint::parse(fp).unwrap();
        node.conf(vmid, Description::pool_member(&fp).as_str());
    };
    member(10010, a);
    member(10011, a);
    member(10012, b);
    member(10013, a);
    let dir = node.runtime(&Arc::new(FakeApi::default())).warm_pool_dir();
    fs::create_dir_all(&dir).unwrap();
    let state = PoolState {
        wanted: Some(a.into()),
        ..PoolState::default()
    };
    fs::write(dir.join("pool.json"), serde_json::to_vec(&state).unwrap()).unwrap();
    let mut running = ct(10013, "lxcri");
    running.status = Some("running".into());
    let api = Arc::new(FakeApi {
        cts: vec![
            ct(10010, "lxcri"),
            ct(10011, "lxcri"),
            ct(10012, "lxcri"),
            running,
        ],
        ..FakeApi::default()
    });
    let entries = node.runtime(&api).gc_scan().unwrap();
    let got: Vec<(u32, CtVerdict, &str)> = entries
        .iter()
        .map(|e| (e.vmid, e.verdict.clone(), e.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (10010, CtVerdict::PoolMember, "warm pool member (aaaaaaaaaaaaaaaa)"),
            (
                10011,
                CtVerdict::Orphan,
                "warm pool member beyond pve.warm_pool_size = 1"
            ),
            (
                10012,
                CtVerdict::Orphan,
                "warm pool member of a stale fingerprint bbbbbbbbbbbbbbbb (the pool makes aaaaaaaaaaaaaaaa)"
            ),
            (
                10013,
                CtVerdict::Orphan,
                "broken warm pool member: running instead of stopped"
            ),
        ]
    );
    let report = collect(&node.runtime(&api), &args(true, false)).unwrap();
    assert!(!report.failed, "{}", report.output);
    assert_eq!(
        api.deletes(),
        [
            "DELETE pve1/10011",
            "DELETE pve1/10012",
            "DELETE pve1/10013"
        ]
    );
    // The fake leaves the configs: the drained ones say so, and are
    // removed again by the next gc; 10010 is still a member.
    let again = node.runtime(&api).gc_scan().unwrap();
    assert_eq!(again[0].verdict, CtVerdict::PoolMember);
    assert_eq!(again[1].reason, "warm pool member being drained");

    node.config.pve.warm_pool_size = 0;
    let entries = node.runtime(&api).gc_scan().unwrap();
    assert_eq!(
        entries[0].reason,
        "warm pool member beyond pve.warm_pool_size = 0"
    );
}
