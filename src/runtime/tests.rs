//! The one create pipeline and destroy, driven through a recording backend
//! and rootfs provider: the order of the steps, and that a failure at any
//! step undoes exactly what was made, in reverse.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lxcri_init_spec::{InitMessage, INIT_SOCKET};

use super::*;
use crate::config::{BackendKind, Config};
use crate::rootfs::{RootfsProvider, RootfsRequest};
use crate::runtime::LeftoverKind;
use crate::state::{ContainerRecord, StateStore};

type Events = Arc<Mutex<Vec<String>>>;

/// Which step fails, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Nothing,
    Configure,
    Reserve,
    WriteConfig,
    /// The start fails and the init said why.
    StartWithInitReport,
    /// The container stops before its init reports.
    StoppedEarly,
    /// The init could not connect and wrote why to its error file.
    StoppedEarlyWithLastWords,
    /// The start fails and the init could not connect: it wrote why.
    StartWithLastWords,
}

#[derive(Debug)]
struct FakeBackend {
    events: Events,
    fail: Fail,
}

struct FakeCreate<'a> {
    backend: &'a FakeBackend,
    run_dir: PathBuf,
    /// The fake init's connection, held like a running init holds it.
    init: Option<UnixStream>,
}

impl FakeBackend {
    fn log(&self, e: impl Into<String>) {
        self.events.lock().unwrap().push(e.into());
    }

    fn step(&self, name: &str, fail_at: Fail) -> Result<()> {
        self.log(name);
        if self.fail == fail_at {
            return Err(RuntimeError::Exists(format!("{name} failed")));
        }
        Ok(())
    }
}

impl Backend for FakeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Lxc
    }

    fn begin_create<'a>(&'a self, _: &'a CreateRequest) -> Result<Box<dyn CreateSteps + 'a>> {
        self.log("begin");
        Ok(Box::new(FakeCreate {
            backend: self,
            run_dir: PathBuf::new(),
            init: None,
        }))
    }

    fn volume(&self, _: &str, id: &str, _: Option<&ContainerRecord>) -> Option<String> {
        Some(format!("vol-{id}"))
    }

    fn stop(&self, _: &str, _: &str, _: Option<&ContainerRecord>) -> Result<()> {
        self.log("stop");
        Ok(())
    }

    fn teardown(&self, _: &str, _: &str, record: Option<&ContainerRecord>) -> Result<()> {
        let name = record.map(|r| r.backend_name.clone()).unwrap_or_default();
        self.log(format!("teardown {name}"));
        Ok(())
    }
}

impl CreateSteps for FakeCreate<'_> {
    fn volume(&self) -> Option<String> {
        Some("vol-now".into())
    }

    fn configure(&mut self, bundle: &PreparedBundle) -> Result<()> {
        self.run_dir = bundle.run_dir.clone();
        self.backend.step("configure", Fail::Configure)
    }

    fn reserve(
        &mut self,
        record: &mut ContainerRecord,
        _: &dyn Fn(&ContainerRecord) -> Result<()>,
    ) -> Result<()> {
        record.backend_name = "fake-1".into();
        self.backend.step("reserve", Fail::Reserve)
    }

    fn write_config(&mut self, _: &PreparedBundle, _: &mut BundleUndo) -> Result<()> {
        self.backend.step("write_config", Fail::WriteConfig)
    }

    fn start(&mut self) -> Result<()> {
        self.backend.log("start");
        let last_words = |dir: &Path| {
            let file = dir.join(lxcri_init_spec::INIT_ERROR_FILE);
            // The init only appends: the shim must have made the file.
            let mut f = std::fs::OpenOptions::new().append(true).open(file).unwrap();
            f.write_all(b"lxcri-init: connect /.lxcri/init.sock: Permission denied\n")
                .unwrap();
        };
        let message = match self.backend.fail {
            Fail::StoppedEarly => return Ok(()),
            Fail::StoppedEarlyWithLastWords => {
                last_words(&self.run_dir);
                return Ok(());
            }
            Fail::StartWithLastWords => {
                last_words(&self.run_dir);
                return Err(RuntimeError::Exists("start failed".into()));
            }
            Fail::StartWithInitReport => InitMessage::Failed {
                message: "exec: /nope: not found".into(),
            },
            _ => InitMessage::Ready,
        };
        let mut init = UnixStream::connect(self.run_dir.join(INIT_SOCKET)).unwrap();
        let mut line = serde_json::to_string(&message).unwrap() + "\n";
        if message == InitMessage::Ready {
            // The init pauses with its mounts made (the go-ahead is
            // checked in init_channel's tests).
            line = serde_json::to_string(&InitMessage::Mounted).unwrap() + "\n" + &line;
        }
        init.write_all(line.as_bytes()).unwrap();
        self.init = Some(init);
        if self.backend.fail == Fail::StartWithInitReport {
            return Err(RuntimeError::Exists("start failed".into()));
        }
        Ok(())
    }

    fn is_running(&self) -> bool {
        !matches!(
            self.backend.fail,
            Fail::StoppedEarly | Fail::StoppedEarlyWithLastWords
        )
    }

    fn stopped_early(&self) -> RuntimeError {
        RuntimeError::Exists("stopped early".into())
    }

    fn rollback(&mut self) {
        self.backend.log("rollback");
    }
}

/// Records what the pipeline asks of the rootfs.
#[derive(Debug)]
struct FakeRootfs(Events);

impl RootfsProvider for FakeRootfs {
    fn prepare(&self, req: &RootfsRequest<'_>) -> crate::rootfs::Result<bool> {
        self.0.lock().unwrap().push(format!(
            "rootfs prepare {} {}",
            req.owner,
            req.volume.unwrap_or("-")
        ));
        Ok(true)
    }

    fn release(
        &self,
        target: Option<&Path>,
        owner: &str,
        volume: Option<&str>,
    ) -> crate::rootfs::Result<()> {
        let target = target.map(|t| t.display().to_string()).unwrap_or_default();
        self.0.lock().unwrap().push(format!(
            "rootfs release {} {owner} {}",
            target.rsplit('/').next().unwrap_or_default(),
            volume.unwrap_or("-")
        ));
        Ok(())
    }
}

/// A runtime over the fake rootfs and backend, logging into `events`.
fn fake_runtime(config: Config, events: &Events, fail: Fail) -> Runtime {
    Runtime::with_backend(
        config,
        Arc::new(FakeRootfs(events.clone())),
        Box::new(FakeBackend {
            events: events.clone(),
            fail,
        }),
    )
}

struct Node {
    tmp: tempfile::TempDir,
    events: Events,
    runtime: Runtime,
}

impl Node {
    fn new(fail: Fail) -> Self {
        Self::with_env(fail, &[])
    }

    /// With more `LXCRI_*` settings.
    fn with_env(fail: Fail, more: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let init = tmp.path().join("lxcri-init");
        std::fs::write(&init, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = tmp.path().join("run");
        let lxcpath = tmp.path().join("lxc");
        let env = |name: &str| match name {
            "LXCRI_RUNTIME_ROOT" => Some(root.display().to_string()),
            "LXCRI_LXC_LXCPATH" => Some(lxcpath.display().to_string()),
            "LXCRI_LXC_INIT_BINARY" => Some(init.display().to_string()),
            "LXCRI_LXC_START_TIMEOUT_SECS" => Some("2".into()),
            other => more
                .iter()
                .find(|(k, _)| *k == other)
                .map(|(_, v)| v.to_string()),
        };
        let file = tmp.path().join("config.toml");
        std::fs::write(&file, "").unwrap();
        let config = Config::load_with(Some(&file), &env).unwrap();
        let events = Events::default();
        let runtime = fake_runtime(config, &events, fail);
        Node {
            tmp,
            events,
            runtime,
        }
    }

    fn bundle(&self, config_json: &str) -> PathBuf {
        let bundle = self.tmp.path().join("bundle");
        std::fs::create_dir_all(bundle.join("root")).unwrap();
        std::fs::write(bundle.join("config.json"), config_json).unwrap();
        bundle
    }

    fn request(&self, bundle: PathBuf) -> CreateRequest {
        CreateRequest {
            namespace: "ns".into(),
            id: "c1".into(),
            bundle,
            rootfs_mounts: vec![crate::rootfs::RootfsMount {
                kind: "overlay".into(),
                source: "overlay".into(),
                options: vec![],
            }],
        }
    }

    fn events(&self) -> Vec<String> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }

    fn state_dir(&self) -> PathBuf {
        self.tmp.path().join("run/ns/c1")
    }
}

const SPEC: &str = r#"{
  "ociVersion": "1.1.0",
  "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
  "root": {"path": "root"},
  "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
}"#;

#[test]
fn create_runs_the_steps_in_order_and_destroy_undoes_them() {
    let node = Node::new(Fail::Nothing);
    let bundle = node.bundle(SPEC);
    let created = node.runtime.create(&node.request(bundle.clone())).unwrap();
    assert_eq!(
        node.events(),
        [
            "begin",
            "rootfs prepare ns/c1 vol-now",
            "configure",
            "reserve",
            "write_config",
            "start"
        ]
    );
    let record = &created.container.record;
    assert_eq!(record.backend_name, "fake-1");
    assert_eq!(record.pid, Some(std::process::id() as i32));
    assert_eq!(
        record.rootfs.as_deref(),
        Some(bundle.join("root").as_path())
    );
    let saved = StateStore::new(node.tmp.path().join("run"))
        .load("ns", "c1")
        .unwrap()
        .unwrap();
    assert_eq!(&saved, record);

    // The rootfs is released where root.path put it, with the backend's volume.
    node.runtime.destroy("ns", "c1", &bundle, None).unwrap();
    assert_eq!(
        node.events(),
        ["teardown fake-1", "rootfs release root ns/c1 vol-c1"]
    );
    assert!(!node.state_dir().exists());
    // Again: nothing left, nothing fails.
    node.runtime.destroy("ns", "c1", &bundle, None).unwrap();
    assert!(!node.state_dir().exists());
}

#[test]
fn a_failure_at_any_step_undoes_the_backend_then_the_bundle() {
    let cases = [
        (Fail::Configure, "configure failed", "configure"),
        (Fail::Reserve, "reserve failed", "reserve"),
        (Fail::WriteConfig, "write_config failed", "write_config"),
        (Fail::StartWithInitReport, "exec: /nope: not found", "start"),
        (Fail::StoppedEarly, "stopped early", "start"),
        (
            Fail::StoppedEarlyWithLastWords,
            "lxcri-init: connect /.lxcri/init.sock: Permission denied",
            "start",
        ),
        (
            Fail::StartWithLastWords,
            "lxcri-init: connect /.lxcri/init.sock: Permission denied",
            "start",
        ),
    ];
    for (fail, message, last) in cases {
        let node = Node::new(fail);
        let bundle = node.bundle(SPEC);
        let err = node.runtime.create(&node.request(bundle)).unwrap_err();
        assert!(err.to_string().contains(message), "{fail:?}: {err}");
        let events = node.events();
        let at = events.iter().position(|e| e == last).unwrap();
        assert_eq!(
            events[at + 1..],
            ["rollback", "rootfs release root ns/c1 vol-now"],
            "{fail:?}: {events:?}"
        );
        assert!(!node.state_dir().exists(), "{fail:?}: state left");
    }
}

#[test]
fn a_broken_bundle_makes_nothing() {
    let node = Node::new(Fail::Nothing);
    let bundle = node.bundle(r#"{"ociVersion": "1.1.0", "process": 7}"#);
    let err = node.runtime.create(&node.request(bundle)).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
    assert_eq!(node.events(), ["begin", "rollback"]);
    assert!(!node.state_dir().exists());
}

#[test]
fn a_second_create_of_the_same_container_is_refused_and_keeps_the_first() {
    let node = Node::new(Fail::Nothing);
    let bundle = node.bundle(SPEC);
    let _first = node.runtime.create(&node.request(bundle.clone())).unwrap();
    node.events();
    let err = node.runtime.create(&node.request(bundle)).unwrap_err();
    assert!(
        matches!(err, RuntimeError::Exists(ref s) if s == "ns/c1"),
        "{err}"
    );
    assert_eq!(node.events(), ["begin", "rollback"]);
    assert!(node.state_dir().join("state.json").exists());
}

#[test]
fn a_container_containerd_forgot_is_an_orphan_and_gc_removes_it() {
    let node = Node::new(Fail::Nothing);
    let bundle = node.bundle(SPEC);
    let created = node.runtime.create(&node.request(bundle.clone())).unwrap();
    drop(created);
    node.events();
    // An LXC container directory with no state is found too.
    let lxcpath = node.runtime.config().lxc.lxcpath.clone();
    std::fs::create_dir_all(lxcpath.join("ns_stray")).unwrap();
    std::fs::create_dir_all(lxcpath.join("not-ours")).unwrap();

    let found = node.runtime.scan_leftovers().unwrap();
    let state = found.iter().find(|l| l.id == "c1").unwrap();
    // The bundle exists: containerd still has it.
    assert!(!state.orphan, "{state:?}");
    let stray = found.iter().find(|l| l.id == "stray").unwrap().clone();
    assert!(
        stray.orphan && stray.what == LeftoverKind::LxcContainer,
        "{stray:?}"
    );
    assert_eq!(found.len(), 2, "{found:?}");

    std::fs::remove_dir_all(&bundle).unwrap();
    let found = node.runtime.scan_leftovers().unwrap();
    let state = found.iter().find(|l| l.id == "c1").unwrap().clone();
    // Its "init" is this test process: alive, so still kept.
    assert!(!state.orphan, "{state:?}");
    let mut record = StateStore::new(node.tmp.path().join("run"))
        .load("ns", "c1")
        .unwrap()
        .unwrap();
    record.pid_start_time = record.pid_start_time.map(|t| t + 1);
    StateStore::new(node.tmp.path().join("run"))
        .save(&record)
        .unwrap();
    let state = node
        .runtime
        .scan_leftovers()
        .unwrap()
        .into_iter()
        .find(|l| l.id == "c1")
        .unwrap();
    assert!(state.orphan, "a reused pid is not its init: {state:?}");
    assert!(node.runtime.remove_leftover(&state).unwrap());
    assert_eq!(
        node.events(),
        ["teardown fake-1", "rootfs release root ns/c1 vol-c1"]
    );
    assert!(!node.state_dir().exists());
    assert!(
        !node.runtime.remove_leftover(&state).unwrap(),
        "gone already"
    );
    assert!(node.runtime.remove_leftover(&stray).unwrap());
    assert!(!lxcpath.join("ns_stray").exists());
    assert!(
        lxcpath.join("not-ours").exists(),
        "not an lxcri name: left alone"
    );
}

#[test]
fn a_pod_container_without_its_sandbox_is_refused_and_leaves_nothing() {
    let node = Node::with_env(Fail::Nothing, &[("LXCRI_USERNS_UNPRIVILEGED", "true")]);
    let pod = SPEC.replace(
        r#""root": {"path": "root"},"#,
        r#""root": {"path": "root"},
  "annotations": {"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "s1"},"#,
    );
    let bundle = node.bundle(&pod);
    let err = node.runtime.create(&node.request(bundle)).unwrap_err();
    assert!(matches!(err, RuntimeError::UsernsSandbox { .. }), "{err}");
    assert!(err.to_string().contains("pod sandbox s1"), "{err}");
    assert_eq!(
        node.events(),
        ["begin", "rollback"],
        "no rootfs, no backend step"
    );
    assert!(!node.state_dir().exists(), "state left");
    let slots = node.tmp.path().join("run/.userns-slots");
    let taken: Vec<_> = std::fs::read_dir(&slots)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .collect();
    assert!(taken.is_empty(), "{taken:?}");
}

#[test]
fn a_failed_create_frees_the_range_it_took() {
    let node = Node::with_env(Fail::Configure, &[("LXCRI_USERNS_UNPRIVILEGED", "true")]);
    let bundle = node.bundle(SPEC);
    node.runtime.create(&node.request(bundle)).unwrap_err();
    let events = node.events();
    // Without root the bundle cannot be given to the range's root: the
    // create fails earlier, and must free the range all the same.
    if nix::unistd::geteuid().is_root() {
        assert!(events.iter().any(|e| e == "configure"), "{events:?}");
    }
    let slots = node.tmp.path().join("run/.userns-slots");
    let taken: Vec<String> = std::fs::read_dir(&slots)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<u32>().is_ok())
        .collect();
    assert!(taken.is_empty(), "{taken:?}");
    assert!(!node.state_dir().exists());
}

#[test]
fn an_unreadable_record_is_kept_with_what_it_holds_and_the_scan_goes_on() {
    let node = Node::new(Fail::Nothing);
    let root = node.tmp.path().join("run");
    let store = StateStore::new(&root);
    let torn = store.container_dir("ns", "torn").unwrap();
    std::fs::create_dir_all(&torn).unwrap();
    std::fs::write(torn.join("state.json"), b"{\"id\": ").unwrap();
    // What the record would have named: its LXC container (not running)
    // and an id range.
    let lxcpath = node.runtime.config().lxc.lxcpath.clone();
    std::fs::create_dir_all(lxcpath.join("ns_torn")).unwrap();
    let slots = crate::userns::IdSlots::new(&store.userns_slots_dir());
    let pool = node.runtime.config().userns.pool();
    let (slot, _) = slots.take(&pool, "ns/torn").unwrap();
    // An orphan of another container is still found.
    std::fs::create_dir_all(lxcpath.join("ns_stray")).unwrap();

    let found = node.runtime.scan_leftovers().unwrap();
    let torn_found: Vec<_> = found.iter().filter(|l| l.id == "torn").collect();
    assert_eq!(torn_found.len(), 1, "{found:?}");
    let l = torn_found[0];
    assert!(
        !l.orphan && l.what == LeftoverKind::State && l.backend == "unknown",
        "{l:?}"
    );
    assert!(
        l.reason.contains("state unreadable") && l.reason.contains("ns/torn/state.json"),
        "{}",
        l.reason
    );
    assert!(
        found.iter().any(|l| l.id == "stray" && l.orphan),
        "{found:?}"
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(slots.taken().unwrap(), vec![(slot, "ns/torn".to_string())]);
}

#[test]
fn a_torn_record_is_torn_down_from_the_copy_its_shim_holds() {
    let node = Node::new(Fail::Nothing);
    let bundle = node.bundle(SPEC);
    let created = node.runtime.create(&node.request(bundle.clone())).unwrap();
    node.events();
    std::fs::write(node.state_dir().join("state.json"), b"{\"id\": ").unwrap();
    node.runtime
        .destroy("ns", "c1", &bundle, Some(&created.container.record))
        .unwrap();
    // The backend's name and the rootfs' place came from the shim's copy.
    assert_eq!(
        node.events(),
        ["teardown fake-1", "rootfs release root ns/c1 vol-c1"]
    );
    assert!(!node.state_dir().exists());
}

#[test]
fn without_a_copy_a_torn_record_stops_a_pve_delete_and_everything_stays() {
    let node = Node::new(Fail::Nothing);
    let bundle = node.bundle(SPEC);
    node.runtime.create(&node.request(bundle.clone())).unwrap();
    node.events();
    std::fs::write(node.state_dir().join("state.json"), b"{\"id\": ").unwrap();
    let mut config = node.runtime.config().clone();
    config.backend = BackendKind::Pve;
    let pve = fake_runtime(config, &node.events, Fail::Nothing);
    let err = pve.destroy("ns", "c1", &bundle, None).unwrap_err();
    assert!(
        err.to_string().contains("ns/c1/state.json is corrupt"),
        "{err}"
    );
    assert!(node.events().is_empty(), "nothing torn down");
    assert!(node.state_dir().join("state.json").exists());
    // On the lxc backend the LXC container is found by its name.
    node.runtime.destroy("ns", "c1", &bundle, None).unwrap();
    assert_eq!(
        node.events(),
        ["teardown ", "rootfs release rootfs ns/c1 vol-c1"]
    );
    assert!(!node.state_dir().exists());
}
