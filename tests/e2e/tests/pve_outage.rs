//! The PVE API answers 503 to everything for 30 s (a restarting
//! pveproxy): what is safe to ask again lxcri asks again, so a create whose
//! task is running comes through and a delete converges; what is not (a new
//! CT's create) fails at once, clearly, leaving nothing. A node that lost
//! its cluster quorum answers but refuses writes: creates fail clearly,
//! deletes wait for quorum. Once PVE is back nothing is left for a human.

use std::time::{Duration, Instant};

use lxcri_e2e::cmd::{self, Background};
use lxcri_e2e::pve::PveSim;
use lxcri_e2e::{require, Containerd, Runtime};

const OUTAGE: Duration = Duration::from_secs(30);

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_30_second_api_outage_is_ridden_out_or_fails_clearly() {
    if !require(
        Runtime::Lxcri,
        "a_30_second_api_outage_is_ridden_out_or_fails_clearly",
    ) {
        return;
    }
    let ctd = Containerd::start_pve(PveSim::start());
    ctd.import_busybox();
    let sim = ctd.pve().expect("pve backend");

    // To delete during the outage: a task that has exited.
    let deleted = ctd.new_id("outage-rm");
    let run = ctd.spawn_run_detached(Runtime::Lxcri, &deleted, &["true"]);
    assert!(run.wait(Duration::from_secs(60)).success());
    ctd.wait_status(&deleted, "STOPPED");

    // A create whose task is still running when the API goes away.
    let created = ctd.new_id("outage-create");
    sim.fault(r#"{"template": "/nodes/{node}/lxc", "method": "POST", "task_delay_ms": 3000}"#);
    let create = ctd.spawn_run_detached(Runtime::Lxcri, &created, &["sleep", "1000"]);
    let asked = cmd::poll(Duration::from_secs(30), || {
        (!sim.vmids_of(ctd.namespace(), &created).is_empty()).then_some(())
    });
    assert!(asked.is_some(), "no create request for {created}");

    sim.fault(
        r#"{"path_regex": ".", "status": 503, "message": "Service Unavailable", "times": 0}"#,
    );
    let outage = Instant::now();
    let rm = Background::spawn(ctd.ctr_command().args(["task", "rm", &deleted]));
    // A new container while the API is away.
    let refused = ctd.new_id("outage-new");
    let new = ctd.spawn_run_detached(Runtime::Lxcri, &refused, &["sleep", "1000"]);
    let new = new.wait(Duration::from_secs(60));
    assert!(
        outage.elapsed() < OUTAGE,
        "the new container's create was not refused during the outage"
    );
    assert!(!new.success(), "created while the API answered 503: {new}");
    assert!(
        new.stderr.contains("503") || new.stderr.contains("Service Unavailable"),
        "the error does not say what failed: {new}"
    );

    std::thread::sleep(OUTAGE.saturating_sub(outage.elapsed()));
    sim.clear_faults();

    let create = create.wait(Duration::from_secs(120));
    assert!(
        create.success(),
        "create across the outage: {create}\n{}",
        ctd.log_tail(30)
    );
    ctd.wait_status(&created, "RUNNING");
    let rm = rm.wait(Duration::from_secs(120));
    assert!(
        rm.success(),
        "delete across the outage: {rm}\n{}",
        ctd.log_tail(30)
    );
    ctd.ctr(&["containers", "rm", &deleted]).ok();
    ctd.ctr(&["task", "rm", "-f", &refused]);
    ctd.ctr(&["containers", "rm", &refused]);
    for id in [&deleted, &refused] {
        assert_eq!(ctd.leftovers(id), Vec::<String>::new(), "{id}");
    }
    ctd.kill(&created, "SIGKILL").ok();
    ctd.wait_status(&created, "STOPPED");
    ctd.remove(&created);
    assert_eq!(ctd.leftovers(&created), Vec::<String>::new());
    assert_eq!(sim.leftovers(), Vec::<String>::new(), "CTs left in PVE");
}

/// A node that lost its cluster quorum (pve-cluster: pmxcfs refuses every
/// write under `/etc/pve`; pve-container's create and start refuse with
/// "cluster not ready - no quorum?"): a new container fails at once and
/// says why, leaving nothing; a running one keeps running and takes execs
/// and signals (no PVE call); a delete fails with PVE's reason and goes
/// through once quorum is back, leaving nothing.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_node_without_quorum_refuses_clearly_and_recovers() {
    if !require(
        Runtime::Lxcri,
        "a_node_without_quorum_refuses_clearly_and_recovers",
    ) {
        return;
    }
    let ctd = Containerd::start_pve(PveSim::start());
    ctd.import_busybox();
    let sim = ctd.pve().expect("pve backend");

    let exited = ctd.new_id("noq-rm");
    let run = ctd.spawn_run_detached(Runtime::Lxcri, &exited, &["true"]);
    assert!(run.wait(Duration::from_secs(60)).success());
    ctd.wait_status(&exited, "STOPPED");
    let running = ctd.run_sleeper(Runtime::Lxcri, "noq-run");

    let quorum = sim.lose_quorum();
    let refused = ctd.new_id("noq-new");
    let new = ctd.spawn_run_detached(Runtime::Lxcri, &refused, &["true"]);
    let new = new.wait(Duration::from_secs(60));
    assert!(!new.success(), "created without quorum: {new}");
    assert!(
        new.stderr.contains("no quorum"),
        "the error does not say the node has no quorum: {new}"
    );
    ctd.ctr(&["containers", "rm", &refused]);
    assert_eq!(ctd.leftovers(&refused), Vec::<String>::new());
    assert_eq!(sim.vmids_of(ctd.namespace(), &refused), Vec::<u32>::new());

    let exec = ctd.exec(&running, "noq-exec", &["echo", "still here"], &[]);
    assert!(
        exec.success() && exec.stdout.contains("still here"),
        "{exec}"
    );

    let rm = ctd.ctr(&["task", "rm", &exited]);
    assert!(!rm.success(), "deleted without quorum: {rm}");
    assert!(
        rm.stderr.contains("Permission denied") || rm.stderr.contains("quorum"),
        "the delete's error does not say what PVE refused: {rm}"
    );
    let kill = ctd.kill(&running, "SIGKILL");
    assert!(kill.success(), "{kill}");
    ctd.wait_status(&running, "STOPPED");

    drop(quorum);
    let rm = ctd.ctr(&["task", "rm", &exited]);
    assert!(
        rm.success(),
        "delete with quorum back: {rm}\n{}",
        ctd.log_tail(30)
    );
    ctd.ctr(&["containers", "rm", &exited]);
    ctd.remove(&running);
    for id in [&exited, &running, &refused] {
        assert_eq!(ctd.leftovers(id), Vec::<String>::new(), "{id}");
    }
    assert_eq!(sim.leftovers(), Vec::<String>::new(), "CTs left in PVE");
}
