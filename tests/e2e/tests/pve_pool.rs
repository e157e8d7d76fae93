//! The warm pool of the pve backend (`pve.warm_pool_size`), through
//! containerd and a private pve-sim per test: an empty pool falls back to a
//! create and is refilled in the background, a create claims a member with
//! one `PUT .../config` and a start, a member of another fingerprint is
//! not taken and `lxcri gc` drains it, a shim killed right after its claim
//! leaves nothing once containerd cleaned up, pods claim members too, and
//! `warm_pool_size = 0` with `lxcri gc --force` empties the pool. These
//! always run on the pve backend, whatever `LXCRI_E2E_BACKEND` says.

use std::fs;
use std::time::Duration;

use serde_json::Value;

use lxcri_e2e::cri::api::ContainerState;
use lxcri_e2e::cri::pod::{base_pod_config, Pod};
use lxcri_e2e::node_faults::sigkill;
use lxcri_e2e::pve::PveSim;
use lxcri_e2e::pve_pool::{self as pool, members, MEMBER_HEADER};
use lxcri_e2e::{cleanup, cmd, require, Containerd, Runtime};

const LONG: Duration = Duration::from_secs(60);

fn sim(ctd: &Containerd) -> &PveSim {
    ctd.pve().expect("pve backend")
}

/// A stand-in whose shims keep a pool of `size`.
fn pool_sim(size: u32) -> PveSim {
    let mut sim = PveSim::start();
    sim.set_env("LXCRI_PVE_WARM_POOL_SIZE", &size.to_string());
    sim
}

/// Waits until the refill made `n` members (of any fingerprint).
#[track_caller]
fn wait_members(ctd: &Containerd, n: usize) -> Vec<(u32, String)> {
    pool::wait_members(sim(ctd), n, LONG).unwrap_or_else(|| {
        panic!(
            "expected {n} pool members, have {:?}\n{}",
            members(sim(ctd)),
            ctd.log_tail(40)
        )
    })
}

/// `METHOD template` of the requests about CT `vmid` from `from` on,
/// without task polls.
fn calls_on(sim: &PveSim, vmid: u32, from: usize) -> Vec<String> {
    sim.requests()
        .iter()
        .skip(from)
        .filter(|r| !pool::is_poll(r) && pool::request_vmid(r) == Some(vmid))
        .map(pool::call_name)
        .collect()
}

/// Whether CT `vmid` was made by a `POST /nodes/{node}/lxc` (not claimed).
fn created(ctd: &Containerd, vmid: u32) -> bool {
    calls_on(sim(ctd), vmid, 0).contains(&"POST /nodes/{node}/lxc".to_string())
}

/// `lxcri gc --force` with the shims' settings and `size`.
fn gc_force(ctd: &Containerd, size: u32) -> String {
    let out = pool::gc_force(sim(ctd), size);
    assert!(out.success(), "lxcri gc: {out}");
    out.stdout
}

/// Drains the pool and checks that nothing of any CT is left.
#[track_caller]
fn drain_and_check_clean(ctd: &Containerd) {
    assert!(
        pool::wait_refills_over(sim(ctd), &ctd.socket(), LONG),
        "refills still running\n{}",
        ctd.log_tail(40)
    );
    let report = gc_force(ctd, 0);
    assert!(members(sim(ctd)).is_empty(), "{report}");
    let clean = cmd::poll(LONG, || sim(ctd).leftovers().is_empty().then_some(()));
    assert!(
        clean.is_some(),
        "left behind: {:#?}\n{report}",
        sim(ctd).leftovers()
    );
}

fn run_sleeper(ctd: &Containerd, id: &str) -> u32 {
    ctd.run_detached(Runtime::Lxcri, id, &["sleep", "1000"], &[]);
    ctd.wait_status(id, "RUNNING");
    sim(ctd).ct_of(ctd.namespace(), id).expect("a CT").0
}

fn remove(ctd: &Containerd, id: &str) {
    ctd.kill(id, "SIGKILL").ok();
    ctd.wait_status(id, "STOPPED");
    ctd.remove(id);
    assert_eq!(ctd.leftovers(id), Vec::<String>::new(), "{id}");
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn ctr_run_claims_members_falls_back_and_gc_drains() {
    if !require(Runtime::Lxcri, "warm_pool_ctr_run") {
        return;
    }
    let ctd = Containerd::start_pve(pool_sim(2));
    ctd.import_busybox();

    // An empty pool: the create makes its CT, then the refill fills it.
    let first = ctd.new_id("pool-a");
    let vmid = run_sleeper(&ctd, &first);
    assert!(created(&ctd, vmid));
    let pool = wait_members(&ctd, 2);
    let fingerprint = pool[0].1.clone();
    assert!(pool.iter().all(|(_, fp)| *fp == fingerprint), "{pool:?}");

    // A claim: the container's settings in one PUT, then the start.
    let from = sim(&ctd).requests().len();
    let second = ctd.new_id("pool-b");
    let vmid = run_sleeper(&ctd, &second);
    assert!(
        pool.iter().any(|(v, _)| *v == vmid),
        "CT {vmid} is no member of {pool:?}"
    );
    assert_eq!(
        calls_on(sim(&ctd), vmid, from)[..2],
        [
            "PUT /nodes/{node}/lxc/{vmid}/config",
            "POST /nodes/{node}/lxc/{vmid}/status/start"
        ]
    );
    let (_, text) = sim(&ctd).ct_of(ctd.namespace(), &second).unwrap();
    for line in [
        "entrypoint: /.lxcri/lxcri-init",
        "tags: lxcri",
        "console: 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
    }
    assert!(text.contains(&format!("hostname: {second}")), "{text}");
    assert!(!text.contains(MEMBER_HEADER), "{text}");
    let refilled = wait_members(&ctd, 2);
    assert!(!refilled.iter().any(|(v, _)| *v == vmid), "{refilled:?}");

    // Members made for other settings (say, before a template change) are
    // not taken; the refill makes members that fit, gc drains the others.
    for (vmid, fp) in &refilled {
        let path = sim(&ctd).config_file(*vmid);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace(fp.as_str(), "bbbbbbbbbbbbbbbb")).unwrap();
    }
    let third = ctd.new_id("pool-c");
    let vmid = run_sleeper(&ctd, &third);
    assert!(!refilled.iter().any(|(v, _)| *v == vmid));
    assert!(created(&ctd, vmid));
    wait_members(&ctd, 4);
    let report = gc_force(&ctd, 2);
    let left = members(sim(&ctd));
    assert_eq!(left.len(), 2, "{left:?}\n{report}");
    assert!(
        left.iter().all(|(_, fp)| *fp == fingerprint),
        "{left:?}\n{report}"
    );

    for id in [&first, &second, &third] {
        remove(&ctd, id);
    }
    drain_and_check_clean(&ctd);
    assert_eq!(sim(&ctd).invalid_requests(), Vec::<Value>::new());
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn a_shim_killed_after_its_claim_leaves_nothing() {
    if !require(Runtime::Lxcri, "warm_pool_crash_claimed") {
        return;
    }
    let points = tempfile::tempdir().unwrap();
    let dir = points.path().to_str().unwrap().to_string();
    let ctd =
        Containerd::start_pve_with_env(pool_sim(1), &[(lxcri::runtime::CRASH_POINTS_ENV, &dir)]);
    ctd.import_busybox();
    let warm = ctd.new_id("pool-warm");
    run_sleeper(&ctd, &warm);
    let pool = wait_members(&ctd, 1);

    let id = ctd.new_id("pool-crash");
    let point = points.path().join(ctd.namespace()).join(&id);
    fs::create_dir_all(point.parent().unwrap()).unwrap();
    fs::write(&point, "claimed").unwrap();
    let run = ctd.spawn_run_detached(Runtime::Lxcri, &id, &["sleep", "1000"]);
    let reached = point.with_file_name(format!("{id}.reached"));
    assert!(
        cmd::poll(LONG, || reached.exists().then_some(())).is_some(),
        "{id} never reached the claim\n{}",
        ctd.log_tail(40)
    );
    // The member is the container's now, and only its.
    let (vmid, _) = sim(&ctd).ct_of(ctd.namespace(), &id).expect("claimed CT");
    assert_eq!(vmid, pool[0].0);
    sigkill(cleanup::shim_pids(ctd.namespace(), Runtime::Lxcri, &id));
    let out = run.wait(LONG);
    assert!(
        !out.success(),
        "ctr run succeeded though its shim died: {out}"
    );
    ctd.ctr(&["task", "rm", "-f", &id]);
    ctd.ctr(&["containers", "rm", &id]);
    let clean = cmd::poll(LONG, || ctd.leftovers(&id).is_empty().then_some(()));
    assert!(clean.is_some(), "left behind: {:#?}", ctd.leftovers(&id));
    assert!(!sim(&ctd).config_file(vmid).exists(), "CT {vmid} left");

    remove(&ctd, &warm);
    drain_and_check_clean(&ctd);
}

#[test]
#[ignore = "needs root, containerd, LXC, CNI and pve-sim: run by scripts/test"]
fn pods_claim_members_for_the_sandbox_and_the_container() {
    if !require(Runtime::Lxcri, "warm_pool_pods") {
        return;
    }
    let ctd = Containerd::start_cri_pve(pool_sim(2));
    let first = Pod::run(&ctd, Runtime::Lxcri, base_pod_config(&ctd, "pool-1", false))
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", ctd.log_tail(40)));
    let c1 = first.start(first.container("c", &["sleep", "1000"]));
    first.wait_state(&c1, ContainerState::ContainerRunning, LONG);
    let pool = wait_members(&ctd, 2);

    let second = Pod::run(&ctd, Runtime::Lxcri, base_pod_config(&ctd, "pool-2", false))
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", ctd.log_tail(40)));
    let c2 = second.start(second.container("c", &["sleep", "1000"]));
    second.wait_state(&c2, ContainerState::ContainerRunning, LONG);
    let sandbox = sim(&ctd).ct_of(ctd.namespace(), &second.id).unwrap().0;
    let container = sim(&ctd).ct_of(ctd.namespace(), &c2).unwrap().0;
    let pooled: Vec<u32> = pool.iter().map(|(v, _)| *v).collect();
    // The sandbox claimed one; the container, created right after, the
    // other or, if the refill had not made it yet, a new one it created.
    assert!(
        pooled.contains(&sandbox),
        "sandbox CT {sandbox} not of {pool:?}"
    );
    assert!(
        pooled.contains(&container) || created(&ctd, container),
        "container CT {container}"
    );

    first.remove().unwrap();
    second.remove().unwrap();
    drain_and_check_clean(&ctd);
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn a_bad_pool_size_fails_the_create_naming_the_key_and_leaves_nothing() {
    if !require(Runtime::Lxcri, "warm_pool_bad_size") {
        return;
    }
    let mut bad = PveSim::start();
    bad.set_env("LXCRI_PVE_WARM_POOL_SIZE", "lots");
    let ctd = Containerd::start_pve(bad);
    ctd.import_busybox();
    let id = ctd.new_id("pool-bad");
    let out = ctd.run(Runtime::Lxcri, &id, &["true"], &[]);
    assert!(!out.success(), "{out}");
    let text = out.all_output();
    assert!(
        text.contains("pve.warm_pool_size") && text.contains("LXCRI_PVE_WARM_POOL_SIZE"),
        "{text}"
    );
    ctd.ctr(&["containers", "rm", &id]);
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
    assert_eq!(sim(&ctd).leftovers(), Vec::<String>::new());
    assert!(sim(&ctd).vmids().is_empty());
}
