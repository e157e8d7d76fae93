//! `lxcri gc` finds what a container left when nobody cleaned up after it
//! (its shim killed while containerd was down, and its bundle removed as
//! containerd does on delete) and removes it all with `--force`, its NICs
//! too; a running container is never touched, nor one whose state record
//! cannot be read, which hides no other container from gc, `ps` or the
//! exporter.
//!
//! `gc --force` removes the orphans of every test on the machine, so the
//! tests here take turns ([`GC_LOCK`]): one's orphans are the other's
//! to find.

use std::fs::File;
use std::path::Path;
use std::process::Command;

use lxcri_e2e::containerd::bin_dir;
use lxcri_e2e::node_faults::{sigkill, wait_gone};
use lxcri_e2e::ovs::OvsSwitch;
use lxcri_e2e::prometheus::{sample, Exporter};
use lxcri_e2e::pve::{backend, BackendKind};
use lxcri_e2e::{cleanup, machine_lock, random_u32, require, Containerd, Runtime, LXCRI_RUN_ROOT};

const GC_LOCK: &str = "/run/lock/lxcri-e2e-gc.lock";

/// `lxcri gc [--force] --json` with the shims' environment (`env` is what
/// the test gave containerd).
fn gc(ctd: &Containerd, force: bool, env: &[(&str, &str)]) -> serde_json::Value {
    let mut c = Command::new(bin_dir().join("lxcri"));
    c.args(["gc", "--json"]);
    if force {
        c.arg("--force");
    }
    if let Some(sim) = ctd.pve() {
        c.envs(sim.env());
    }
    c.envs(env.iter().copied());
    let out = c.output().expect("run lxcri gc");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lxcri gc: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("gc JSON ({e}): {text}"))
}

/// gc's verdict on container `id` of `ctd`.
fn verdict(doc: &serde_json::Value, ctd: &Containerd, id: &str) -> Option<(String, String)> {
    doc["containers"].as_array()?.iter().find_map(|c| {
        (c["namespace"] == ctd.namespace() && c["id"] == id).then(|| {
            (
                c["verdict"].as_str().unwrap_or("").to_string(),
                c["action"].as_str().unwrap_or("").to_string(),
            )
        })
    })
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn gc_removes_what_a_forgotten_container_left() {
    if !require(Runtime::Lxcri, "gc_removes_what_a_forgotten_container_left") {
        return;
    }
    let _turn = machine_lock(GC_LOCK, "gc test");
    let mut ctd = Containerd::start();
    ctd.import_busybox();
    let keep = ctd.new_id("keep");
    ctd.run_detached(Runtime::Lxcri, &keep, &["sleep", "1000"], &[]);
    let id = ctd.new_id("lost");
    ctd.run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    let (pid, _) = ctd.task(&id).expect("task listed");
    let doc = gc(&ctd, false, &[]);
    assert_eq!(
        verdict(&doc, &ctd, &id).map(|v| v.0),
        Some("live".into()),
        "{doc:#}"
    );

    forget(&mut ctd, &id, pid);
    assert!(!ctd.leftovers(&id).is_empty(), "nothing left to collect");

    let doc = gc(&ctd, false, &[]);
    assert_eq!(
        verdict(&doc, &ctd, &id),
        Some(("orphan".into(), "would-remove".into())),
        "{doc:#}"
    );
    assert!(
        !ctd.leftovers(&id).is_empty(),
        "a dry run removed something"
    );
    let doc = gc(&ctd, true, &[]);
    assert_eq!(
        verdict(&doc, &ctd, &id),
        Some(("orphan".into(), "removed".into())),
        "{doc:#}"
    );
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
    assert_eq!(
        verdict(&doc, &ctd, &keep).map(|v| v.1),
        Some("keep".into()),
        "{doc:#}"
    );
    ctd.restart();
    ctd.remove(&keep);
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_torn_state_record_is_kept_and_hides_no_other_container() {
    if !require(
        Runtime::Lxcri,
        "a_torn_state_record_is_kept_and_hides_no_other_container",
    ) {
        return;
    }
    let _turn = machine_lock(GC_LOCK, "gc test");
    let ctd = Containerd::start();
    ctd.import_busybox();
    let keep = ctd.new_id("keep");
    ctd.run_detached(Runtime::Lxcri, &keep, &["sleep", "1000"], &[]);
    let torn = ctd.new_id("torn");
    ctd.run_detached(Runtime::Lxcri, &torn, &["sleep", "1000"], &[]);
    let record = Path::new(LXCRI_RUN_ROOT)
        .join(ctd.namespace())
        .join(&torn)
        .join("state.json");
    std::fs::write(&record, "{\"id\": ").expect("tear the record");
    let env = ctd.pve().map(|sim| sim.env()).unwrap_or_default();

    // `lxcri ps` lists the others and names the torn one on stderr.
    let out = Command::new(bin_dir().join("lxcri"))
        .args(["ps", "--json"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run lxcri ps");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "lxcri ps: {stdout}{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).expect("ps JSON");
    let listed = |id: &str| {
        rows.as_array().is_some_and(|a| {
            a.iter()
                .any(|r| r["namespace"] == ctd.namespace() && r["id"] == id)
        })
    };
    assert!(listed(&keep) && !listed(&torn), "{stdout}");
    assert!(
        stderr.contains(&format!("left out {}/{torn}: ", ctd.namespace())),
        "{stderr}"
    );

    // gc, even with --force, keeps it and what it holds, and still judges
    // the others.
    let doc = gc(&ctd, true, &[]);
    let row = doc["containers"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|c| c["namespace"] == ctd.namespace() && c["id"] == torn.as_str())
        })
        .unwrap_or_else(|| panic!("no row for {torn}: {doc:#}"));
    assert_eq!(
        (&row["verdict"], &row["action"], &row["backend"]),
        (&"live".into(), &"keep".into(), &"unknown".into()),
        "{doc:#}"
    );
    assert!(
        row["reason"]
            .as_str()
            .unwrap_or("")
            .contains("state unreadable"),
        "{doc:#}"
    );
    assert_eq!(
        verdict(&doc, &ctd, &keep),
        Some(("live".into(), "keep".into()))
    );
    assert_eq!(
        ctd.task(&torn).map(|t| t.1),
        Some("RUNNING".into()),
        "gc touched the torn one's container"
    );

    // The exporter counts it and still samples the others.
    let exporter = Exporter::start(&bin_dir(), &env, &ctd.dir().join("exporter.log"));
    let text = exporter.scrape();
    assert!(
        sample(&text, "lxcri_state_records_unreadable", &[]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    let keep_label = format!("container_id=\"{keep}\"");
    assert!(
        sample(&text, "container_memory_usage_bytes", &[&keep_label]).is_some(),
        "{text}"
    );

    // containerd's delete tears it down from what its shim holds: nothing
    // of it is left, on pve its CT neither.
    ctd.remove(&torn);
    assert_eq!(ctd.leftovers(&torn), Vec::<String>::new());
    ctd.remove(&keep);
    assert_eq!(ctd.leftovers(&keep), Vec::<String>::new());
}

/// containerd goes down, container `id`'s shim and process (`pid`) die,
/// and its bundle goes as containerd's delete removes it: nobody is left
/// to run `<shim> delete`.
fn forget(ctd: &mut Containerd, id: &str, pid: u32) {
    ctd.stop();
    let bundle = ctd.bundle(id);
    sigkill(cleanup::shim_pids(ctd.namespace(), Runtime::Lxcri, id));
    sigkill([pid as i32]);
    assert!(wait_gone(pid), "the container's process {pid} lives on");
    cleanup::unmount_under(std::slice::from_ref(&bundle));
    std::fs::remove_dir_all(&bundle).expect("remove the bundle");
}

/// gc's NIC rows of container `id`: (host end, kind, bridge, verdict, action).
fn nics_of(
    doc: &serde_json::Value,
    ctd: &Containerd,
    id: &str,
) -> Vec<(String, String, String, String, String)> {
    let owner = format!("{}/{id}", ctd.namespace());
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    doc["nics"]
        .as_array()
        .map(|nics| {
            nics.iter()
                .filter(|n| n["owner"] == owner.as_str())
                .map(|n| {
                    (
                        text(&n["host"]),
                        text(&n["kind"]),
                        text(&n["bridge"]),
                        text(&n["verdict"]),
                        text(&n["action"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "needs root, containerd, LXC and Open vSwitch: run by scripts/test"]
fn gc_removes_the_nics_of_a_forgotten_container() {
    if backend() == BackendKind::Pve {
        eprintln!(
            "gc nics: skipped on pve: a ctr container's NICs there are PVE's netN, not plugged by lxcri"
        );
        return;
    }
    if !require(
        Runtime::Lxcri,
        "gc_removes_the_nics_of_a_forgotten_container",
    ) {
        return;
    }
    let _turn = machine_lock(GC_LOCK, "gc test");
    let sw = OvsSwitch::start();
    let br = format!("lxgc{:06x}", random_u32() & 0xff_ffff);
    sw.add_bridge(&br);
    let db = sw.db();
    let env = [("LXCRI_NETWORK_OVSDB", db.as_str())];
    let mut ctd = Containerd::start_with_env(&env);
    ctd.import_busybox();
    let nic = format!("io.lxcri.net0=name=eth1,bridge={br},tag=10");
    let keep = ctd.new_id("nickeep");
    ctd.run_detached(
        Runtime::Lxcri,
        &keep,
        &["sleep", "1000"],
        &["--annotation", &nic],
    );
    let id = ctd.new_id("niclost");
    ctd.run_detached(
        Runtime::Lxcri,
        &id,
        &["sleep", "1000"],
        &["--annotation", &nic],
    );
    let (pid, _) = ctd.task(&id).expect("task listed");

    let doc = gc(&ctd, false, &env);
    let lost = nics_of(&doc, &ctd, &id);
    assert_eq!(lost.len(), 1, "{doc:#}");
    let host = lost[0].0.clone();
    assert_eq!(
        lost[0],
        (
            host.clone(),
            "veth+ovs-port".into(),
            br.clone(),
            "live".into(),
            "keep".into()
        ),
        "{doc:#}"
    );
    let kept = nics_of(&doc, &ctd, &keep);
    assert_eq!(kept.len(), 1, "{doc:#}");
    let kept_host = kept[0].0.clone();

    // A veth goes with its container's network namespace; what outlives
    // the container is one that something still holds (a pod's, pinned by
    // containerd and CNI). This test holds it.
    let netns = File::open(format!("/proc/{pid}/ns/net")).expect("open the container's netns");
    forget(&mut ctd, &id, pid);
    let link = Path::new("/sys/class/net").join(&host);
    assert!(link.exists(), "the host end went with the container");

    let doc = gc(&ctd, false, &env);
    assert_eq!(
        nics_of(&doc, &ctd, &id),
        [(
            host.clone(),
            "veth+ovs-port".into(),
            br.clone(),
            "orphan".into(),
            "would-remove".into()
        )],
        "{doc:#}"
    );
    assert_eq!(doc["ovs"]["checked"], true, "{doc:#}");
    assert!(link.exists(), "a dry run removed the host end");
    assert!(sw.ports(&br).contains(&host), "a dry run removed the port");

    let doc = gc(&ctd, true, &env);
    assert_eq!(
        nics_of(&doc, &ctd, &id)
            .into_iter()
            .map(|n| n.4)
            .collect::<Vec<_>>(),
        ["removed"],
        "{doc:#}"
    );
    assert!(!link.exists(), "the host end is left");
    assert_eq!(sw.ports(&br), std::slice::from_ref(&kept_host), "{doc:#}");
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
    assert_eq!(
        nics_of(&doc, &ctd, &keep)
            .into_iter()
            .map(|n| (n.3, n.4))
            .collect::<Vec<_>>(),
        [("live".to_string(), "keep".to_string())],
        "{doc:#}"
    );
    assert!(Path::new("/sys/class/net").join(&kept_host).exists());
    drop(netns);
    ctd.restart();
    ctd.remove(&keep);
    assert!(
        sw.ports(&br).is_empty(),
        "delete removes the kept one's port"
    );
}
