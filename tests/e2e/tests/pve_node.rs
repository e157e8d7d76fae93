//! The pve backend within the rules of a real PVE node, as pve-sim models
//! them from the Proxmox sources: the documented role is enough (the
//! suite's stand-ins all run with it) and no more than needed; a
//! privileged CT without `Sys.Modify` fails fast and clearly; CTs join
//! `pve.pool`; PVE's locks hold a delete back, then fail it, leaving the
//! CT; a failed start quotes `/run/pve/ct-VMID.stderr`; a cpuset is a raw
//! line of `VMID.conf` that PVE leaves alone; limits, stats, freezing and
//! exec use PVE's `lxc/VMID` + `lxc/VMID/ns` cgroup layout. These always
//! run on the pve backend, whatever `LXCRI_E2E_BACKEND` says.

use std::fs;
use std::time::Duration;

use serde_json::json;

use lxcri_e2e::cgroup_files::process_dir;
use lxcri_e2e::pve::{PveSim, TOKEN_ID};
use lxcri_e2e::pve_acl::documented_user_cfg;
use lxcri_e2e::{cmd, require, runtimes, spec, Containerd, Runtime};

fn started(sim: PveSim) -> Containerd {
    let ctd = Containerd::start_pve(sim);
    ctd.import_busybox();
    ctd
}

fn sim(ctd: &Containerd) -> &PveSim {
    ctd.pve().expect("pve backend")
}

/// `ctr containers rm`, then waits until nothing of `id` is left on the
/// node or in PVE.
#[track_caller]
fn assert_nothing_left(ctd: &Containerd, id: &str) {
    ctd.ctr(&["containers", "rm", id]);
    let clean = cmd::poll(Duration::from_secs(15), || {
        ctd.leftovers(id).is_empty().then_some(())
    });
    assert!(clean.is_some(), "left behind: {:#?}", ctd.leftovers(id));
    assert_eq!(sim(ctd).leftovers(), Vec::<String>::new());
}

/// The documented role without the one line that grants `Sys.Modify`.
fn role_without_sys_modify() -> String {
    documented_user_cfg(TOKEN_ID)
        .lines()
        .filter(|l| !l.starts_with("acl:0:/:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn a_privileged_ct_without_sys_modify_fails_naming_the_privilege_and_the_ways_out() {
    if !require(Runtime::Lxcri, "privileged without Sys.Modify") {
        return;
    }
    let ctd = started(PveSim::start_with_user_cfg(&role_without_sys_modify(), &[]));
    let id = ctd.new_id("priv");
    // No user namespace: the CT would be privileged.
    let out = ctd.run(Runtime::Lxcri, &id, &["echo", "never"], &[]);
    let text = out.all_output();
    assert!(!out.success(), "{out}");
    for want in [
        "Sys.Modify on /",
        "pveum acl modify / --users lxcri@pve --roles LxcriPrivileged --propagate 0",
        "hostUsers: false",
    ] {
        assert!(text.contains(want), "{want:?} missing in {out}");
    }
    // PVE refused before its task: one create, no start, nothing left.
    let requests = sim(&ctd).requests();
    let creates: Vec<_> = requests
        .iter()
        .filter(|r| r["method"] == "POST" && r["template"] == "/nodes/{node}/lxc")
        .collect();
    assert_eq!(creates.len(), 1, "{creates:#?}");
    assert_eq!(creates[0]["status"], 403);
    assert!(!requests
        .iter()
        .any(|r| r["path"].as_str().unwrap_or("").ends_with("/status/start")));
    assert_nothing_left(&ctd, &id);
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn cts_join_pve_pool_and_leave_it_when_deleted() {
    if !require(Runtime::Lxcri, "pve.pool") {
        return;
    }
    let pool = "lxcri-e2e";
    let user_cfg = format!("{}pool:{pool}:lxcri e2e::\n", documented_user_cfg(TOKEN_ID));
    let mut stand_in = PveSim::start_with_user_cfg(&user_cfg, &[]);
    stand_in.set_env("LXCRI_PVE_POOL", pool);
    let ctd = started(stand_in);
    let id = ctd.new_id("pool");
    ctd.run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    let (vmid, _) = sim(&ctd).ct_of(ctd.namespace(), &id).expect("CT");
    let members = |cfg: &str| -> Vec<String> {
        let line = cfg
            .lines()
            .find(|l| l.starts_with(&format!("pool:{pool}:")))
            .unwrap_or_else(|| panic!("pool line in\n{cfg}"));
        let vms = line.split(':').nth(3).unwrap_or("");
        vms.split([',', ';', ' '])
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    };
    assert_eq!(members(&sim(&ctd).user_cfg()), [vmid.to_string()]);
    ctd.remove(&id);
    assert!(members(&sim(&ctd).user_cfg()).is_empty());
    assert_nothing_left(&ctd, &id);

    // A pool PVE does not know: create fails with PVE's words, nothing left.
    let mut sim2 = PveSim::start();
    sim2.set_env("LXCRI_PVE_POOL", "nope");
    let ctd2 = started(sim2);
    let id2 = ctd2.new_id("nopool");
    let out = ctd2.run(Runtime::Lxcri, &id2, &["true"], &[]);
    assert!(
        !out.success() && out.all_output().contains("pool 'nope' does not exist"),
        "{out}"
    );
    assert_nothing_left(&ctd2, &id2);
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn a_pve_lock_holds_delete_back_then_fails_it_and_a_later_delete_works() {
    if !require(Runtime::Lxcri, "locked delete") {
        return;
    }
    let mut stand_in = PveSim::start();
    stand_in.set_env("LXCRI_PVE_LOCK_WAIT_SECS", "2");
    let ctd = started(stand_in);
    let id = ctd.new_id("lock");
    ctd.run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    let (vmid, _) = sim(&ctd).ct_of(ctd.namespace(), &id).expect("CT");
    sim(&ctd).set_lock(vmid, Some("backup"));
    // PVE refuses to stop a locked CT; a SIGKILL still ends the container.
    assert!(ctd.kill(&id, "SIGKILL").success());
    ctd.wait_status(&id, "STOPPED");
    let out = ctd.ctr(&["task", "rm", &id]);
    assert!(!out.success(), "a delete of a locked CT: {out}");
    let text = out.all_output();
    assert!(
        text.contains(&format!("CT {vmid} is locked (backup)")) && text.contains("lxcri gc"),
        "{out}"
    );
    assert!(sim(&ctd).config_file(vmid).exists(), "the CT is left");
    // Once the backup is done, containerd's next delete removes it all.
    sim(&ctd).set_lock(vmid, None);
    let out = ctd.ctr(&["task", "rm", &id]);
    assert!(out.success(), "{out}");
    assert_nothing_left(&ctd, &id);
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn a_failed_start_quotes_what_lxc_start_said() {
    if !require(Runtime::Lxcri, "start stderr") {
        return;
    }
    // LXC 7 refuses the v1 `lxc.cgroup` keys this cgroup v1 host needs.
    let ctd = started(PveSim::start_with(&["--lxc-version", "7"]));
    let id = ctd.new_id("stderr");
    let out = ctd.run(Runtime::Lxcri, &id, &["true"], &[]);
    let text = out.all_output();
    assert!(!out.success(), "{out}");
    assert!(
        text.contains("/run/pve/ct-") && text.contains(".stderr: "),
        "the error quotes the stderr file: {out}"
    );
    assert!(text.contains("lxc.cgroup"), "LXC's complaint: {out}");
    assert_nothing_left(&ctd, &id);
}

/// `Cpus_allowed_list` of the container's process.
fn cpus_allowed(ctd: &Containerd, id: &str, exec_id: &str) -> String {
    let out = ctd.exec(
        id,
        exec_id,
        &["sh", "-c", "grep Cpus_allowed_list /proc/self/status"],
        &[],
    );
    assert!(out.success(), "{out}");
    out.stdout
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_string()
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn a_cpuset_is_a_raw_line_pve_leaves_alone_and_updates_follow_it() {
    if !require(Runtime::Lxcri, "cpuset") {
        return;
    }
    let ctd = started(PveSim::start());
    let id = ctd.new_id("cpuset");
    let mut s = spec::busybox_spec(&ctd, &id, &["sleep", "1000"]);
    s["linux"]["resources"]["cpu"] = json!({"cpus": "0"});
    let path = spec::write(&ctd, &id, &s);
    let out = ctd.run_config_detached(Runtime::Lxcri, &id, &path);
    assert!(out.success(), "{out}");
    ctd.wait_status(&id, "RUNNING");
    let (vmid, text) = sim(&ctd).ct_of(ctd.namespace(), &id).unwrap_or_else(|| {
        let all: Vec<String> = sim(&ctd)
            .vmids()
            .iter()
            .map(|v| fs::read_to_string(sim(&ctd).config_file(*v)).unwrap_or_default())
            .collect();
        panic!("no CT for {id}: {all:#?}")
    });
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let key = if v2 {
        "lxc.cgroup2.cpuset.cpus"
    } else {
        "lxc.cgroup.cpuset.cpus"
    };
    assert!(text.lines().any(|l| l == format!("{key}: 0")), "{text}");
    // On a v1 cpuset PVE would append its own set whenever `cores` is set.
    assert_eq!(text.lines().any(|l| l.starts_with("cores:")), v2, "{text}");
    let generated = fs::read_to_string(sim(&ctd).lxcpath().join(format!("{vmid}/config")))
        .expect("generated LXC config");
    let last = generated
        .lines()
        .rfind(|l| l.starts_with(&format!("{key} =")));
    assert!(
        last.is_none_or(|l| l.ends_with("= 0")),
        "PVE appended another cpuset:\n{generated}"
    );
    assert_eq!(cpus_allowed(&ctd, &id, "c1"), "0");
    // An update moves the set, in the cgroup and in VMID.conf.
    lxcri_e2e::grpc::update_task(
        &ctd.socket(),
        ctd.namespace(),
        &id,
        r#"{"cpu":{"cpus":"1"}}"#,
    )
    .unwrap_or_else(|e| panic!("update: {e}"));
    assert_eq!(cpus_allowed(&ctd, &id, "c2"), "1");
    let text = fs::read_to_string(sim(&ctd).config_file(vmid)).unwrap();
    assert!(text.lines().any(|l| l == format!("{key}: 1")), "{text}");
    ctd.remove(&id);
    assert_nothing_left(&ctd, &id);
}

/// The memory limit files of the cgroup `dir`, as `name=value` lines.
fn memory_limits(dir: &std::path::Path) -> Vec<String> {
    [
        "memory.max",
        "memory.swap.max",
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
    ]
    .iter()
    .filter_map(|f| {
        Some(format!(
            "{f}={}",
            fs::read_to_string(dir.join(f)).ok()?.trim()
        ))
    })
    .collect()
}

/// PVE's create stores `memory: 512` and `swap: 512` when the call gives none
/// (pve-container src/PVE/API2/LXC.pm, "set some defaults"), and `pct start` renders
/// them into cgroup limits. A container the spec leaves unlimited still runs unlimited,
/// as on runc: lxcri's fragment clears PVE's cgroup lines.
#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn a_container_without_limits_runs_unlimited_as_on_runc() {
    if !require(Runtime::Lxcri, "no limits") {
        return;
    }
    let ctd = started(PveSim::start());
    let mut limits = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id(&format!("nolimit-{rt}"));
        ctd.run_detached(rt, &id, &["sleep", "1000"], &[]);
        let (pid, _) = ctd.task(&id).expect("task");
        let mut dir = process_dir(pid, "memory");
        if rt == Runtime::Lxcri {
            let (vmid, conf) = sim(&ctd).ct_of(ctd.namespace(), &id).expect("CT");
            assert!(
                conf.contains("\nmemory: 512\n") && conf.contains("\nswap: 512\n"),
                "PVE's defaults: {conf}"
            );
            // PVE sets a CT's limits on lxc/VMID, above the processes' lxc/VMID/ns.
            dir = dir.parent().unwrap().to_path_buf();
            assert!(dir.ends_with(format!("lxc/{vmid}")), "{}", dir.display());
        }
        let got = memory_limits(&dir);
        assert!(
            !got.is_empty(),
            "no memory limit files in {}",
            dir.display()
        );
        limits.push((rt, got));
        ctd.remove(&id);
        if rt == Runtime::Lxcri {
            assert_nothing_left(&ctd, &id);
        }
    }
    let unlimited = memory_limits(std::path::Path::new("/sys/fs/cgroup/memory"));
    for (rt, got) in &limits {
        for line in got {
            let (file, value) = line.split_once('=').unwrap();
            let root = unlimited
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{file}=")));
            assert!(
                value == "max" || Some(value) == root,
                "{rt}: {file} is {value}, not unlimited ({unlimited:?})"
            );
        }
    }
}

#[test]
#[ignore = "needs root, containerd, LXC and pve-sim: run by scripts/test"]
fn limits_stats_freezer_and_exec_use_pves_cgroup_layout() {
    if !require(Runtime::Lxcri, "cgroup layout") {
        return;
    }
    let ctd = started(PveSim::start());
    let id = ctd.new_id("layout");
    ctd.run_detached(
        Runtime::Lxcri,
        &id,
        &["sleep", "1000"],
        &["--memory-limit", "268435456"],
    );
    let (vmid, _) = sim(&ctd).ct_of(ctd.namespace(), &id).expect("CT");
    let (pid, _) = ctd.task(&id).expect("task");
    let inner = process_dir(pid, "memory");
    assert!(
        inner.ends_with(format!("lxc/{vmid}/ns")),
        "PVE puts the processes in lxc/VMID/ns: {}",
        inner.display()
    );
    let outer = inner.parent().unwrap().to_path_buf();
    let limit_file = if outer.join("memory.max").exists() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    // An update lands where PVE keeps the CT's limits.
    let bytes = (96u64 << 20) + 4096;
    ctd.update_memory_limit(&id, bytes)
        .unwrap_or_else(|e| panic!("update: {e}"));
    let limit = fs::read_to_string(outer.join(limit_file)).unwrap();
    assert_eq!(limit.trim(), bytes.to_string());
    // An exec'd process joins the processes' cgroup, not the limits'.
    let out = ctd.exec(&id, "cg", &["cat", "/proc/self/cgroup"], &[]);
    assert!(out.success(), "{out}");
    let v1 = !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let ns_line = out
        .stdout
        .lines()
        .find(|l| match l.split(':').nth(1) {
            Some(list) if v1 => list.split(',').any(|c| c == "memory"),
            Some(list) => list.is_empty(),
            None => false,
        })
        .unwrap_or_else(|| panic!("no memory cgroup line: {out}"))
        .to_string();
    // The CT has its own cgroup namespace: its root is lxc/VMID/ns.
    assert!(
        ns_line.ends_with(":/") || ns_line.ends_with(&format!("lxc/{vmid}/ns")),
        "{ns_line}"
    );
    // Pause freezes the whole CT; the task's state says so.
    assert!(ctd.ctr(&["task", "pause", &id]).success());
    ctd.wait_status(&id, "PAUSED");
    assert!(ctd.ctr(&["task", "resume", &id]).success());
    ctd.wait_status(&id, "RUNNING");
    // Stats see the CT's memory limit.
    let metrics = ctd.ctr(&["task", "metrics", &id]);
    assert!(metrics.success(), "{metrics}");
    assert!(
        metrics.stdout.contains(&bytes.to_string()),
        "the metrics name the CT's limit: {metrics}"
    );
    ctd.remove(&id);
    assert_nothing_left(&ctd, &id);
}
