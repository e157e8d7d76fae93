//! A shim SIGKILLed at each step of create and of delete: containerd's
//! cleanup of a dead shim (`<shim> delete`) or `lxcri gc` must remove all
//! the container had: LXC container or CT and its VMID, rootfs mounts,
//! runtime and state directories, cgroups, processes. runc's shim killed
//! at the same moments of its create is the reference: containerd cleans
//! up after it too.
//!
//! The shim is held at a step with `LXCRI_TEST_CRASH_POINTS` (see
//! src/runtime/crash_points.rs) and killed there; on the pve backend also
//! while PVE's create and destroy tasks run (pve-sim's slow tasks).

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use lxcri_e2e::cmd::Background;
use lxcri_e2e::node_faults::{lxcri, sigkill};
use lxcri_e2e::pve::{backend, BackendKind};
use lxcri_e2e::{cleanup, cmd, require, Containerd, Runtime};

const CREATE_POINTS: [&str; 5] = ["prepared", "reserved", "configured", "started", "created"];

/// A containerd whose lxcri shims stop at the crash points the test names.
struct Crashable {
    ctd: Containerd,
    points: tempfile::TempDir,
}

impl Crashable {
    fn start() -> Self {
        let points = tempfile::tempdir().expect("temp dir");
        let dir = points.path().to_str().expect("utf-8").to_string();
        let ctd = Containerd::start_with_env(&[(lxcri::runtime::CRASH_POINTS_ENV, &dir)]);
        ctd.import_busybox();
        Self { ctd, points }
    }

    fn point_file(&self, id: &str) -> PathBuf {
        self.points.path().join(self.ctd.namespace()).join(id)
    }

    /// The next create or delete of `id` stops at `point`.
    fn hold(&self, id: &str, point: &str) {
        let f = self.point_file(id);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, point).unwrap();
    }

    /// Waits until `id`'s shim is held at its point.
    #[track_caller]
    fn wait_held(&self, id: &str, point: &str) {
        let mut marker = self.point_file(id).into_os_string();
        marker.push(".reached");
        let held = cmd::poll(Duration::from_secs(60), || {
            fs::read_to_string(&marker).ok().filter(|p| p == point)
        });
        assert!(
            held.is_some(),
            "{id} never reached {point}\n{}",
            self.ctd.log_tail(40)
        );
    }
}

/// SIGKILLs the shim(s) of `rt` serving `id`.
fn kill_shim(ctd: &Containerd, rt: Runtime, id: &str) {
    let shims = cleanup::shim_pids(ctd.namespace(), rt, id);
    assert!(!shims.is_empty(), "{rt}: no shim of {id} found");
    sigkill(shims);
}

/// Nothing of `id` is left once containerd cleaned up (it runs
/// `<shim> delete` in the background; on pve that waits for PVE).
#[track_caller]
fn assert_clean(ctd: &Containerd, id: &str, when: &str) {
    let clean = cmd::poll(Duration::from_secs(60), || {
        ctd.leftovers(id).is_empty().then_some(())
    });
    let left = ctd.leftovers(id);
    assert!(
        clean.is_some(),
        "killed at {when}: left behind: {left:#?}\n{}",
        ctd.log_tail(40)
    );
    if let Some(sim) = ctd.pve() {
        assert_eq!(
            sim.leftovers(),
            Vec::<String>::new(),
            "killed at {when}: CTs left in pve-sim"
        );
    }
}

/// `ctr run -d` whose shim dies: ctr fails, and the container record goes.
fn finish_failed_run(ctd: &Containerd, run: Background, id: &str, when: &str) {
    let out = run.wait(Duration::from_secs(60));
    assert!(
        !out.success(),
        "ctr run succeeded though its shim was killed at {when}: {out}"
    );
    ctd.ctr(&["task", "rm", "-f", id]);
    ctd.ctr(&["containers", "rm", id]);
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn shim_killed_at_each_step_of_create_leaves_nothing() {
    if !require(
        Runtime::Lxcri,
        "shim_killed_at_each_step_of_create_leaves_nothing",
    ) {
        return;
    }
    let c = Crashable::start();
    for point in CREATE_POINTS {
        let id = c.ctd.new_id(&format!("crash-{point}"));
        c.hold(&id, point);
        let run = c
            .ctd
            .spawn_run_detached(Runtime::Lxcri, &id, &["sleep", "1000"]);
        c.wait_held(&id, point);
        kill_shim(&c.ctd, Runtime::Lxcri, &id);
        finish_failed_run(&c.ctd, run, &id, point);
        assert_clean(&c.ctd, &id, point);
    }
    // The same container name works again: nothing of it is in the way.
    let id = c.ctd.new_id("crash-after");
    c.ctd
        .run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    c.ctd.kill(&id, "SIGKILL").ok();
    c.ctd.wait_status(&id, "STOPPED");
    c.ctd.remove(&id);
    assert_clean(&c.ctd, &id, "a normal run after the crashes");
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn shim_killed_in_the_middle_of_delete_leaves_nothing() {
    if !require(
        Runtime::Lxcri,
        "shim_killed_in_the_middle_of_delete_leaves_nothing",
    ) {
        return;
    }
    let c = Crashable::start();
    let id = c.ctd.new_id("crash-delete");
    c.ctd
        .run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    c.ctd.kill(&id, "SIGKILL").ok();
    c.ctd.wait_status(&id, "STOPPED");
    c.hold(&id, "torn-down");
    let rm = Background::spawn(c.ctd.ctr_command().args(["task", "rm", &id]));
    c.wait_held(&id, "torn-down");
    kill_shim(&c.ctd, Runtime::Lxcri, &id);
    let _ = rm.wait(Duration::from_secs(60));
    c.ctd.ctr(&["task", "rm", "-f", &id]);
    c.ctd.ctr(&["containers", "rm", &id]);
    assert_clean(&c.ctd, &id, "torn-down");
}

/// runc's shim killed while its container is created and while it is
/// deleted: the reference for what containerd then shows and cleans.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn runc_shim_killed_in_create_is_cleaned_up_by_containerd_too() {
    if !require(
        Runtime::Runc,
        "runc_shim_killed_in_create_is_cleaned_up_by_containerd_too",
    ) {
        return;
    }
    let ctd = Containerd::start();
    ctd.import_busybox();
    let id = ctd.new_id("crash-runc");
    ctd.run_detached(Runtime::Runc, &id, &["sleep", "1000"], &[]);
    kill_shim(&ctd, Runtime::Runc, &id);
    let gone = cmd::poll(Duration::from_secs(30), || {
        ctd.task(&id)
            .is_none_or(|(_, s)| s == "STOPPED" || s == "UNKNOWN")
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "runc: task after shim kill: {:?}",
        ctd.task(&id)
    );
    ctd.ctr(&["task", "rm", "-f", &id]);
    ctd.ctr(&["containers", "rm", &id]);
    assert_clean(&ctd, &id, "runc's running container");
}

/// containerd is down when the shim dies mid-create, and the bundle goes
/// (as after a node's `/run` is lost): only `lxcri gc` is left to clean up.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn gc_removes_what_a_shim_killed_mid_create_left_with_containerd_down() {
    if !require(
        Runtime::Lxcri,
        "gc_removes_what_a_shim_killed_mid_create_left",
    ) {
        return;
    }
    let _turn = lxcri_e2e::machine_lock("/run/lock/lxcri-e2e-gc.lock", "gc test");
    let mut c = Crashable::start();
    let id = c.ctd.new_id("crash-gc");
    c.hold(&id, "configured");
    let run = c
        .ctd
        .spawn_run_detached(Runtime::Lxcri, &id, &["sleep", "1000"]);
    c.wait_held(&id, "configured");
    c.ctd.stop();
    kill_shim(&c.ctd, Runtime::Lxcri, &id);
    let _ = run.wait(Duration::from_secs(30));
    let bundle = c.ctd.bundle(&id);
    cleanup::unmount_under(std::slice::from_ref(&bundle));
    let _ = fs::remove_dir_all(&bundle);
    assert!(
        !c.ctd.leftovers(&id).is_empty(),
        "nothing left for gc to find"
    );
    let out = lxcri(&c.ctd, &["gc", "--force"]);
    assert!(out.success(), "lxcri gc --force: {out}");
    assert_clean(&c.ctd, &id, "configured, then gc");
    c.ctd.restart();
    c.ctd.ctr(&["containers", "rm", &id]);
}

/// pve: the shim dies while PVE's create task (then its destroy task) is
/// still running; the VMID is freed once the task ends and containerd's
/// cleanup or gc has run.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn pve_shim_killed_while_pves_tasks_run_leaves_no_ct() {
    if backend() != BackendKind::Pve {
        eprintln!("skipped: pve backend only (LXCRI_E2E_BACKEND=pve)");
        return;
    }
    let c = Crashable::start();
    let sim = c.ctd.pve().expect("pve backend");
    let id = c.ctd.new_id("crash-task");
    sim.fault(r#"{"template": "/nodes/{node}/lxc", "method": "POST", "task_delay_ms": 4000}"#);
    let run = c
        .ctd
        .spawn_run_detached(Runtime::Lxcri, &id, &["sleep", "1000"]);
    let asked = cmd::poll(Duration::from_secs(30), || {
        (!sim.vmids_of(c.ctd.namespace(), &id).is_empty()).then_some(())
    });
    assert!(asked.is_some(), "no create request for {id}");
    kill_shim(&c.ctd, Runtime::Lxcri, &id);
    finish_failed_run(&c.ctd, run, &id, "PVE's create task");
    assert_clean(&c.ctd, &id, "PVE's create task");

    let id = c.ctd.new_id("crash-destroy");
    c.ctd
        .run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    c.ctd.kill(&id, "SIGKILL").ok();
    c.ctd.wait_status(&id, "STOPPED");
    sim.fault(
        r#"{"template": "/nodes/{node}/lxc/{vmid}", "method": "DELETE", "task_delay_ms": 4000}"#,
    );
    let rm = Background::spawn(c.ctd.ctr_command().args(["task", "rm", &id]));
    let asked = cmd::poll(Duration::from_secs(30), || {
        sim.requests()
            .iter()
            .any(|r| r["method"] == "DELETE" && r["template"] == "/nodes/{node}/lxc/{vmid}")
            .then_some(())
    });
    assert!(asked.is_some(), "no destroy request for {id}");
    kill_shim(&c.ctd, Runtime::Lxcri, &id);
    let _ = rm.wait(Duration::from_secs(60));
    c.ctd.ctr(&["task", "rm", "-f", &id]);
    c.ctd.ctr(&["containers", "rm", &id]);
    assert_clean(&c.ctd, &id, "PVE's destroy task");
}
