//! The pve backend as PVE sees it, through containerd and a private
//! pve-sim per test: the CT's config, VMID allocation under concurrency,
//! rollback of a create failing at each step, TLS pinning, token errors,
//! the secret staying out of every log, and names that try to inject.
//! These always run on the pve backend, whatever `LXCRI_E2E_BACKEND` says.

use std::time::Duration;

use serde_json::{json, Value};

use lxcri_e2e::cgroup_files::own_dir;
use lxcri_e2e::pve::{description, PveSim};
use lxcri_e2e::{cmd, require, spec, Containerd, Runtime};

fn started(sim: PveSim) -> Containerd {
    let ctd = Containerd::start_pve(sim);
    ctd.import_busybox();
    ctd
}

fn sim(ctd: &Containerd) -> &PveSim {
    ctd.pve().expect("pve backend")
}

/// Requests of the log that are not task-status polls.
fn api_calls(requests: &[Value]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| !r["path"].as_str().unwrap_or("").contains("/tasks/"))
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap_or(""),
                r["template"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn ct_config_has_the_keys_tags_and_notes_and_delete_removes_it() {
    if !require(Runtime::Lxcri, "ct_config") {
        return;
    }
    let ctd = started(PveSim::start());
    let id = ctd.new_id("cfg");
    let mut s = spec::busybox_spec(&ctd, &id, &["sleep", "1000"]);
    s["hostname"] = json!("web-0");
    s["annotations"] = json!({
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.sandbox-id": "0123abcd",
        "io.kubernetes.cri.sandbox-name": "web-0",
        "io.kubernetes.cri.sandbox-namespace": "shop",
        "io.kubernetes.cri.container-name": "nginx",
        "io.kubernetes.cri.image-name": "docker.io/library/nginx:1.27",
    });
    s["linux"]["resources"]["memory"] = json!({"limit": 268435456});
    s["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000});
    let path = spec::write(&ctd, &id, &s);
    ctd.run_config_detached(Runtime::Lxcri, &id, &path).ok();
    ctd.wait_status(&id, "RUNNING");
    let (vmid, text) = sim(&ctd)
        .ct_of(ctd.namespace(), &id)
        .expect("a CT for the container");
    let (lo, hi) = sim(&ctd).vmid_range;
    assert!((lo..=hi).contains(&vmid), "VMID {vmid} outside {lo}-{hi}");
    for line in [
        "hostname: web-0",
        "tags: lxcri;ns-shop;pod-web-0",
        "memory: 256",
        "cpulimit: 0.5",
        "ostype: unmanaged",
        "console: 0",
        "tty: 0",
        "entrypoint: /.lxcri/lxcri-init",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing in\n{text}"
        );
    }
    // A privileged CT: PVE stores `unprivileged` only when it is 1.
    assert!(!text.contains("unprivileged:"), "{text}");
    let root = format!("rootfs: {}", ctd.bundle(&id).join("rootfs").display());
    assert!(
        text.lines().any(|l| l == root) || text.contains("rootfs: /"),
        "the container's rootfs is a host directory:\n{text}"
    );
    assert!(text.contains("unused0: local-zfs:subvol-"), "{text}");
    let include = format!(
        "lxc.include: /run/lxcri/{}/{id}/pve-lxc.conf",
        ctd.namespace()
    );
    assert!(text.lines().any(|l| l == include), "{include:?} in\n{text}");
    let raw: Vec<&str> = text.lines().filter(|l| l.starts_with("lxc.")).collect();
    assert!(
        raw.iter()
            .all(|l| l.starts_with("lxc.include: ") || l.starts_with("lxc.environment.runtime: ")),
        "raw lines other than lxcri's include and PVE's env: {raw:?}"
    );
    let notes = description(&text);
    for line in [
        format!("- container: {id}"),
        format!("- containerd namespace: {}", ctd.namespace()),
        "- pod: shop/web-0".to_string(),
        "- name: nginx".to_string(),
        "- image: docker.io/library/nginx:1.27".to_string(),
    ] {
        assert!(notes.contains(&line), "{line:?} missing in notes:\n{notes}");
    }
    // The container runs as the CT's LXC container, in the CT's cgroup.
    let (pid, _) = ctd.task(&id).expect("task");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cgroup.contains(&format!("/lxc/{vmid}")), "{cgroup}");
    // SIGKILL goes through PVE's stop endpoint, so PVE logs it.
    ctd.kill(&id, "SIGKILL").ok();
    ctd.wait_status(&id, "STOPPED");
    let calls = api_calls(&sim(&ctd).requests());
    assert!(
        calls.contains(&"POST /nodes/{node}/lxc/{vmid}/status/stop".to_string()),
        "{calls:#?}"
    );
    ctd.remove(&id);
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
    let calls = api_calls(&sim(&ctd).requests());
    assert!(
        calls.contains(&"DELETE /nodes/{node}/lxc/{vmid}".to_string()),
        "{calls:#?}"
    );
}

/// An OCI update keeps PVE's view true: the CT's `memory` changes through
/// the API (PVE counts MiB), and the cgroup gets the exact value, as on the
/// lxc backend. What PVE's hotplug writes besides (v2 `memory.high`, v1
/// `memory.memsw.limit_in_bytes`) is as before the update, as on runc.
#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn an_update_changes_the_ct_and_the_cgroup() {
    if !require(Runtime::Lxcri, "update") {
        return;
    }
    let ctd = started(PveSim::start());
    let id = ctd.new_id("update");
    ctd.run_detached(
        Runtime::Lxcri,
        &id,
        &["sleep", "1000"],
        &["--memory-limit", "268435456"],
    );
    let (vmid, text) = sim(&ctd).ct_of(ctd.namespace(), &id).expect("CT");
    assert!(text.lines().any(|l| l == "memory: 256"), "{text}");
    let (pid, _) = ctd.task(&id).expect("task");
    // PVE's processes are in lxc/VMID/ns, its limits on lxc/VMID.
    let ct = own_dir(pid, "memory").expect("the CT's memory cgroup");
    assert!(ct.ends_with(format!("lxc/{vmid}")), "{}", ct.display());
    // What PVE's hotplug of a new memory writes besides the limit, which
    // the update (no swap, no memory.high) leaves as runc would.
    let untouched = |ct: &std::path::Path| {
        ["memory.high", "memory.memsw.limit_in_bytes"]
            .iter()
            .filter_map(|f| Some((*f, std::fs::read_to_string(ct.join(f)).ok()?)))
            .collect::<Vec<_>>()
    };
    let before = untouched(&ct);
    assert!(
        !before.is_empty(),
        "no memory.high or memsw in {}",
        ct.display()
    );
    ctd.update_memory_limit(&id, (64 << 20) + 4096)
        .unwrap_or_else(|e| panic!("update: {e}"));
    let text = std::fs::read_to_string(sim(&ctd).config_file(vmid)).unwrap();
    assert!(
        text.lines().any(|l| l == "memory: 65"),
        "MiB, rounded up:\n{text}"
    );
    assert_eq!(untouched(&ct), before, "as before the update");
    let limit = ["memory.max", "memory.limit_in_bytes"]
        .iter()
        .find_map(|f| std::fs::read_to_string(ct.join(f)).ok())
        .expect("the CT's memory limit file");
    assert_eq!(limit.trim(), ((64u64 << 20) + 4096).to_string());
    let calls = api_calls(&sim(&ctd).requests());
    assert!(
        calls.contains(&"PUT /nodes/{node}/lxc/{vmid}/config".to_string()),
        "{calls:#?}"
    );
    ctd.remove(&id);
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn twenty_concurrent_creates_get_distinct_vmids() {
    if !require(Runtime::Lxcri, "twenty_concurrent_creates") {
        return;
    }
    let mut narrow = PveSim::start();
    // 30 ids for 20 containers: creates race for the same ids and must
    // retry with others.
    let lo = narrow.vmid_range.0;
    narrow.set_env("LXCRI_PVE_VMID_RANGE", &format!("{lo}-{}", lo + 29));
    let ctd = started(narrow);
    let ids: Vec<String> = (0..20).map(|_| ctd.new_id("many")).collect();
    std::thread::scope(|scope| {
        for id in &ids {
            let ctd = &ctd;
            scope.spawn(move || {
                let out = ctd.ctr(&[
                    "run",
                    "-d",
                    "--runtime",
                    Runtime::Lxcri.containerd_name(),
                    lxcri_e2e::image::BUSYBOX_REF,
                    id,
                    "sleep",
                    "1000",
                ]);
                assert!(out.success(), "{id}: {out}");
            });
        }
    });
    let mut vmids: Vec<u32> = ids
        .iter()
        .map(|id| sim(&ctd).ct_of(ctd.namespace(), id).expect("CT").0)
        .collect();
    vmids.sort();
    vmids.dedup();
    assert_eq!(vmids.len(), 20, "distinct VMIDs: {vmids:?}");
    for id in &ids {
        ctd.remove(id);
    }
    for id in &ids {
        assert_eq!(ctd.leftovers(id), Vec::<String>::new(), "{id}");
    }
    assert_eq!(sim(&ctd).leftovers(), Vec::<String>::new());
}

/// A fault at one step of create: ctr fails naming the cause, and nothing
/// of the container is left (on PVE or the node).
fn create_fails_cleanly(fault: &str, expect: &str) {
    let ctd = started(PveSim::start());
    sim(&ctd).fault(fault);
    let id = ctd.new_id("fault");
    let out = ctd.run(Runtime::Lxcri, &id, &["echo", "never"], &[]);
    assert!(
        !out.success() && out.all_output().contains(expect),
        "fault {fault}: expected a failure saying {expect:?}: {out}"
    );
    ctd.ctr(&["containers", "rm", &id]);
    let clean = cmd::poll(Duration::from_secs(15), || {
        ctd.leftovers(&id).is_empty().then_some(())
    });
    assert!(
        clean.is_some(),
        "fault {fault}: left behind {:#?}",
        ctd.leftovers(&id)
    );
    assert_eq!(sim(&ctd).leftovers(), Vec::<String>::new(), "fault {fault}");
}

/// `pve.storage` a default ext4 install's `local-lvm` (LVM-thin: no
/// `path`): outside zfs mode PVE would make the CT's unused root volume a
/// raw image of size 0, which it cannot allocate. The create fails first,
/// naming `pve.storage` and why, PVE never hears of the CT, and nothing is
/// left.
#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn a_storage_that_cannot_hold_an_empty_root_volume_fails_the_create_first() {
    if !require(
        Runtime::Lxcri,
        "a_storage_that_cannot_hold_an_empty_root_volume",
    ) {
        return;
    }
    let mut pve = PveSim::start();
    // lxcri reads the node's storage.cfg; the stand-in never allocates there.
    let cfg = pve.dir().join("etc/pve/storage.cfg");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        "\nlvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n\tcontent rootdir,images\n",
    );
    std::fs::write(&cfg, text).unwrap();
    pve.env_overrides
        .push(("LXCRI_PVE_STORAGE".into(), "local-lvm".into()));
    let ctd = started(pve);
    let id = ctd.new_id("lvm");
    let out = ctd.run(Runtime::Lxcri, &id, &["echo", "never"], &[]);
    assert!(
        !out.success()
            && out
                .all_output()
                .contains("pve.storage \"local-lvm\" is a lvmthin storage without a path"),
        "{out}"
    );
    ctd.ctr(&["containers", "rm", &id]);
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
    assert_eq!(sim(&ctd).leftovers(), Vec::<String>::new());
    let calls = api_calls(&sim(&ctd).requests());
    assert!(
        !calls.iter().any(|c| c.starts_with("POST")),
        "PVE heard of the CT: {calls:?}"
    );
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn a_failure_at_each_create_step_leaves_nothing() {
    if !require(Runtime::Lxcri, "a_failure_at_each_create_step") {
        return;
    }
    let cases = [
        (
            r#"{"path_regex": "^/version$", "method": "GET", "status": 500, "message": "pmxcfs not ready"}"#,
            "pmxcfs not ready",
        ),
        (
            r#"{"path_regex": "^/nodes/[^/]+/lxc$", "method": "POST", "status": 500, "message": "storage busy", "times": 0}"#,
            "storage busy",
        ),
        (
            r#"{"path_regex": "^/nodes/[^/]+/lxc$", "method": "POST", "task_fail": "unable to create CT - disk full", "times": 0}"#,
            "disk full",
        ),
        (
            r#"{"path_regex": "^/nodes/[^/]+/lxc$", "method": "POST", "drop_connection": true, "after": true, "times": 0}"#,
            "creating the CT",
        ),
        (
            r#"{"path_regex": "/status/start$", "method": "POST", "status": 500, "message": "start refused"}"#,
            "start refused",
        ),
        (
            r#"{"path_regex": "/status/start$", "method": "POST", "task_fail": "startup for container failed"}"#,
            "startup for container failed",
        ),
    ];
    for (fault, expect) in cases {
        create_fails_cleanly(fault, expect);
    }
}

/// PVE's destroy task fails (a volume it cannot free: pve-storage
/// `zfs_delete_zvol`): the delete fails naming PVE's words and keeps what
/// it has not removed; the next delete, as containerd or the kubelet
/// retries it, removes everything.
#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn a_failed_destroy_task_is_retried_by_the_next_delete() {
    if !require(Runtime::Lxcri, "a_failed_destroy_task") {
        return;
    }
    let ctd = started(PveSim::start());
    let id = ctd.new_id("destroy");
    ctd.run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    let (vmid, _) = sim(&ctd).ct_of(ctd.namespace(), &id).expect("CT");
    ctd.kill(&id, "SIGKILL").ok();
    ctd.wait_status(&id, "STOPPED");
    let why = format!("zfs error: cannot destroy 'tank/subvol-{vmid}-disk-0': I/O error");
    sim(&ctd).fault(&format!(
        r#"{{"template": "/nodes/{{node}}/lxc/{{vmid}}", "method": "DELETE", "task_fail": "{why}", "times": 1}}"#
    ));
    let failed = ctd.ctr(&["task", "rm", &id]);
    assert!(
        !failed.success() && failed.all_output().contains(&why),
        "{failed}"
    );
    assert!(
        sim(&ctd).ct_of(ctd.namespace(), &id).is_some(),
        "CT {vmid} gone after a failed destroy"
    );
    let again = ctd.ctr(&["task", "rm", &id]);
    assert!(again.success(), "{again}");
    ctd.ctr(&["containers", "rm", &id]);
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
    assert_eq!(sim(&ctd).leftovers(), Vec::<String>::new());
}

/// A storage PVE cannot activate (an NFS share that is down) fails a
/// destroy that looks for unreferenced volumes: PVE lists every CT storage
/// of the node for them (pve-storage `vdisk_list` -> `activate_storage`,
/// outside an `eval` in pve-container LXC.pm `destroy_lxc_container`). The
/// delete does not wait for the share: it destroys the CT once more
/// without that look, and nothing is left.
#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn an_unavailable_storage_does_not_hold_a_delete_back() {
    if !require(Runtime::Lxcri, "an_unavailable_storage") {
        return;
    }
    let ctd = started(PveSim::start());
    let id = ctd.new_id("nfs-down");
    ctd.run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    ctd.kill(&id, "SIGKILL").ok();
    ctd.wait_status(&id, "STOPPED");
    sim(&ctd).fault(
        r#"{"template": "/nodes/{node}/lxc/{vmid}", "method": "DELETE", "task_fail": "storage 'nfs-ct' is not online", "times": 1}"#,
    );
    let rm = ctd.ctr(&["task", "rm", &id]);
    assert!(rm.success(), "{rm}\n{}", ctd.log_tail(30));
    let deletes: Vec<Value> = sim(&ctd)
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "DELETE")
        .map(|r| r["params"]["destroy-unreferenced-disks"].clone())
        .collect();
    assert_eq!(
        deletes,
        [Value::from("1"), Value::Null],
        "with the look for unreferenced volumes, then without"
    );
    ctd.ctr(&["containers", "rm", &id]);
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
    assert_eq!(sim(&ctd).leftovers(), Vec::<String>::new());
}

/// PVE's start task ends after the CT runs (its post-start hookscript and
/// DHCP, under the CT's config lock); lxcri does not wait for that end. A
/// container that is done and deleted while the task still holds the lock
/// past the 10 s a destroy's worker waits for it is destroyed once the lock
/// is free, and nothing is left. A SIGKILL meanwhile still kills, and a
/// create whose init fails while the task runs is undone (its rollback
/// waits for the task).
#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn a_start_task_lingering_past_pves_lock_wait_holds_nothing_back() {
    if !require(Runtime::Lxcri, "a_start_task_lingering") {
        return;
    }
    let ctd = started(PveSim::start());
    let linger = || {
        sim(&ctd)
            .fault(r#"{"path_regex": "/status/start$", "method": "POST", "task_linger_ms": 12000}"#)
    };
    let nothing_left = |id: &str| {
        assert_eq!(ctd.leftovers(id), Vec::<String>::new());
        assert_eq!(sim(&ctd).leftovers(), Vec::<String>::new());
    };
    linger();
    let id = ctd.new_id("linger");
    let out = ctd.run(Runtime::Lxcri, &id, &["echo", "done"], &[]);
    assert!(out.success() && out.stdout == "done\n", "{out}");
    let requests = sim(&ctd).requests();
    let destroys: Vec<&Value> = requests
        .iter()
        .filter(|r| r["method"] == "DELETE" && r["template"] == "/nodes/{node}/lxc/{vmid}")
        .collect();
    assert!(
        destroys.len() >= 2,
        "the first destroy met the start task's lock: {destroys:#?}"
    );
    nothing_left(&id);

    // SIGKILL: the stop's worker times out on the lock too; the
    // container's processes are killed directly.
    linger();
    let id = ctd.new_id("linger");
    ctd.run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    let killed = ctd.kill(&id, "SIGKILL");
    assert!(killed.success(), "{killed}");
    ctd.wait_status(&id, "STOPPED");
    ctd.remove(&id);
    nothing_left(&id);

    linger();
    let id = ctd.new_id("linger");
    let out = ctd.run(Runtime::Lxcri, &id, &["/no/such/binary"], &[]);
    assert!(
        !out.success() && out.all_output().contains("/no/such/binary"),
        "{out}"
    );
    ctd.ctr(&["containers", "rm", &id]);
    nothing_left(&id);
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn a_failing_vmid_hint_only_costs_the_hint() {
    if !require(Runtime::Lxcri, "a_failing_vmid_hint") {
        return;
    }
    let ctd = started(PveSim::start());
    sim(&ctd).fault(
        r#"{"path_regex": "^/cluster/nextid$", "status": 500, "message": "hint down", "times": 0}"#,
    );
    let id = ctd.new_id("hint");
    let out = ctd.run(Runtime::Lxcri, &id, &["echo", "made"], &[]);
    assert!(out.success() && out.stdout == "made\n", "{out}");
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn wrong_fingerprint_is_refused_before_any_request() {
    if !require(Runtime::Lxcri, "wrong_fingerprint") {
        return;
    }
    let mut pinned = PveSim::start();
    pinned.set_env("LXCRI_PVE_FINGERPRINT", &["AB"; 32].join(":"));
    let ctd = started(pinned);
    let id = ctd.new_id("tls");
    let out = ctd.run(Runtime::Lxcri, &id, &["true"], &[]);
    assert!(
        !out.success() && out.all_output().to_lowercase().contains("fingerprint"),
        "{out}"
    );
    ctd.ctr(&["containers", "rm", &id]);
    assert!(
        sim(&ctd).requests().is_empty(),
        "requests got through: {:#?}",
        sim(&ctd).requests()
    );
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn bad_token_is_a_clear_error_and_the_secret_is_in_no_log() {
    if !require(Runtime::Lxcri, "bad_token") {
        return;
    }
    // Everything at the most verbose level: the secret must not show even so.
    let mut good = PveSim::start();
    good.set_env("LXCRI_LOG_LEVEL", "trace");
    let ctd = started(good);
    let id = ctd.new_id("tok");
    let out = ctd.run(Runtime::Lxcri, &id, &["echo", "ok"], &[]);
    assert!(out.success(), "{out}");
    let secret = sim(&ctd).secret().to_string();
    let mut logs = vec![
        ("ctr output".to_string(), out.all_output()),
        (
            "containerd log (with the shims')".to_string(),
            ctd.log_tail(100_000),
        ),
    ];
    for f in ["requests.jsonl", "pve-sim.log"] {
        logs.push((
            f.to_string(),
            std::fs::read_to_string(sim(&ctd).dir().join(f)).unwrap_or_default(),
        ));
    }
    drop(ctd);

    let mut bad_sim = PveSim::start();
    bad_sim.set_env("LXCRI_LOG_LEVEL", "trace");
    let wrong = bad_sim.dir().join("wrong-secret");
    std::fs::write(&wrong, "not-the-secret-4711\n").unwrap();
    bad_sim.set_env("LXCRI_PVE_TOKEN_SECRET_FILE", &wrong.display().to_string());
    let ctd = started(bad_sim);
    let id = ctd.new_id("badtok");
    let bad = ctd.run(Runtime::Lxcri, &id, &["true"], &[]);
    ctd.ctr(&["containers", "rm", &id]);
    assert!(
        !bad.success() && bad.all_output().contains("authentication failed"),
        "a bad token must fail create saying so: {bad}"
    );
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
    logs.push(("ctr output (bad token)".to_string(), bad.all_output()));
    logs.push((
        "containerd log (bad token)".to_string(),
        ctd.log_tail(100_000),
    ));
    for f in ["requests.jsonl", "pve-sim.log"] {
        logs.push((
            f.to_string(),
            std::fs::read_to_string(sim(&ctd).dir().join(f)).unwrap_or_default(),
        ));
    }
    let bad_secret = sim(&ctd).secret().to_string();
    for (what, text) in &logs {
        for s in [&secret, &bad_secret, &"not-the-secret-4711".to_string()] {
            assert!(
                !text.contains(s.as_str()),
                "a token secret is in the {what}"
            );
        }
    }
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn pod_names_cannot_inject_config_keys() {
    if !require(Runtime::Lxcri, "pod_names_cannot_inject") {
        return;
    }
    let ctd = started(PveSim::start());
    // A newline is refused up front, naming the annotation.
    let id = ctd.new_id("nl");
    let mut s = spec::busybox_spec(&ctd, &id, &["true"]);
    s["annotations"] = json!({"io.kubernetes.cri.sandbox-name": "web\nrootfs: /"});
    let out = ctd.run_config(Runtime::Lxcri, &id, &spec::write(&ctd, &id, &s));
    assert!(
        !out.success() && out.all_output().contains("io.kubernetes.cri.sandbox-name"),
        "{out}"
    );
    ctd.ctr(&["containers", "rm", &id]);
    assert!(sim(&ctd).vmids().is_empty(), "no CT for a refused spec");
    // ':' and other separators end up as harmless text.
    let id = ctd.new_id("colon");
    let mut s = spec::busybox_spec(&ctd, &id, &["sleep", "1000"]);
    s["annotations"] = json!({
        "io.kubernetes.cri.sandbox-name": "web: 1;lxc.apparmor.profile: unconfined",
        "io.kubernetes.cri.sandbox-namespace": "a:b",
        "io.kubernetes.cri.container-name": "c,mp0=/etc,mp=/x",
    });
    ctd.run_config_detached(Runtime::Lxcri, &id, &spec::write(&ctd, &id, &s))
        .ok();
    ctd.wait_status(&id, "RUNNING");
    let (_, text) = sim(&ctd).ct_of(ctd.namespace(), &id).expect("CT");
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split_once(':').map(|(k, _)| k))
        .collect();
    for k in &keys {
        assert!(
            [
                "arch",
                "console",
                "cpulimit",
                "entrypoint",
                "hostname",
                "memory",
                "ostype",
                "rootfs",
                "tags",
                "tty",
                "unprivileged",
                "unused0",
                "lxc.include",
                "lxc.environment.runtime",
                "cores",
                "cpuunits",
                "swap"
            ]
            .contains(k),
            "unexpected key {k:?} in\n{text}"
        );
    }
    assert!(!text.lines().any(|l| l.starts_with("mp")), "{text}");
    assert_eq!(
        keys.iter().filter(|k| **k == "lxc.include").count(),
        1,
        "{text}"
    );
    ctd.remove(&id);
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
}
