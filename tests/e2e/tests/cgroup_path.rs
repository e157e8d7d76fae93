//! `linux.cgroupsPath`: a container's cgroup is where its spec says, as on
//! runc (containerd's `/<namespace>/<id>` for `ctr`, the pod's cgroup
//! parent and the id under CRI), holds the spec's limits, and goes with the
//! container. A cgroup with a process in it is refused, in runc's words; a
//! path lxcri cannot follow fails naming the field and leaves nothing.
//!
//! On the pve backend PVE names a CT's cgroups itself (`lxc/VMID`, with the
//! processes in `lxc/VMID/ns`) and the path is not followed: the tests check
//! that instead (docs/kubernetes.md, "cgroup driver").

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lxcri_e2e::cleanup::cgroup_dirs;
use lxcri_e2e::{assert_same, cmd, runtimes, spec, Containerd, Runtime};
use serde_json::json;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether lxcri follows `linux.cgroupsPath` under this containerd: on
/// the lxc backend, and not on pve.
fn follows_path(ctd: &Containerd, rt: Runtime) -> bool {
    rt == Runtime::Runc || ctd.pve().is_none()
}

/// Asserts the `/proc/PID/cgroup` text `host` is PVE's CT placement.
#[track_caller]
fn assert_pve_placement(host: &str) {
    assert!(
        host.lines()
            .all(|l| l.contains(":/lxc/") && l.ends_with("/ns")),
        "not in PVE's lxc/VMID/ns: {host}"
    );
}

/// The memory limit of the cgroup at `rel`: v2's `memory.max` or v1's
/// `memory.limit_in_bytes`.
fn memory_limit(rel: &str) -> String {
    let v2 = Path::new(CGROUP_ROOT).join(rel).join("memory.max");
    let v1 = Path::new(CGROUP_ROOT)
        .join("memory")
        .join(rel)
        .join("memory.limit_in_bytes");
    fs::read_to_string(&v2)
        .or_else(|_| fs::read_to_string(&v1))
        .unwrap_or_else(|e| {
            panic!(
                "no memory limit file at {} or {}: {e}",
                v2.display(),
                v1.display()
            )
        })
        .trim()
        .to_string()
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_container_is_in_the_cgroup_its_spec_names() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("cgpath");
        ctd.run_detached(rt, &id, &["sleep", "600"], &["--memory-limit", "33554432"]);
        let rel = format!("{}/{id}", ctd.namespace());
        let (pid, _) = ctd.task(&id).expect("task listed");
        // The app's cgroups as the host sees them, and as it sees them
        // itself (no cgroup namespace in ctr's default spec).
        let host = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let inside = ctd.exec(&id, "cg", &["cat", "/proc/self/cgroup"], &[]);
        assert_eq!(inside.code, Some(0), "{rt}: {inside}");
        if !follows_path(&ctd, rt) {
            assert_pve_placement(&host);
            assert!(cgroup_dirs(&rel).is_empty(), "pve: a cgroup at /{rel}");
            ctd.remove(&id);
            continue;
        }
        assert!(
            host.lines().all(|l| l.ends_with(&format!(":/{rel}"))),
            "{rt}: the app is not in /{rel} everywhere:\n{host}"
        );
        assert_eq!(memory_limit(&rel), "33554432", "{rt}: the limit in /{rel}");
        let dirs = cgroup_dirs(&rel);
        assert!(!dirs.is_empty(), "{rt}: no cgroup at /{rel}");
        ctd.remove(&id);
        let left: Vec<&PathBuf> = dirs.iter().filter(|d| d.exists()).collect();
        assert!(left.is_empty(), "{rt}: cgroups left after delete: {left:?}");
        results.push((
            rt,
            format!("{host}==\n{}", inside.stdout).replace(&id, "ID"),
        ));
    }
    assert_same("the container's cgroups", &results);
}

/// A second container asked into the cgroup a running one is in: runc
/// refuses it since 1.2 (libcontainer/factory_linux.go `Create`; 1.1, as
/// on Debian 12, only warns and runs it there), and so does lxcri, leaving
/// the first one running and nothing of the second.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_cgroup_with_a_process_in_it_is_refused() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let rt = Runtime::Lxcri;
    let first = ctd.new_id("cgbusy");
    ctd.run_detached(rt, &first, &["sleep", "600"], &[]);
    let taken = format!("/{}/{first}", ctd.namespace());
    let second = ctd.new_id("cgtaken");
    let out = ctd.run(rt, &second, &["true"], &["--cgroup", &taken]);
    if !follows_path(&ctd, rt) {
        // Nothing to refuse: PVE puts the CT in a cgroup of its own.
        assert_eq!(out.code, Some(0), "pve: {out}");
        ctd.remove(&first);
        return;
    }
    assert_ne!(out.code, Some(0), "{rt}: should fail: {out}");
    assert!(
        out.all_output()
            .contains("linux.cgroupsPath: container's cgroup is not empty"),
        "{rt}: {out}"
    );
    ctd.ctr(&["containers", "rm", &second]);
    let left = cmd::poll(Duration::from_secs(15), || {
        let left = ctd.leftovers(&second);
        left.is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "{rt}: {second} left: {:?}",
        ctd.leftovers(&second)
    );
    assert_eq!(
        ctd.task(&first).map(|(_, s)| s).as_deref(),
        Some("RUNNING"),
        "{rt}: the first container"
    );
    let (pid, _) = ctd.task(&first).unwrap();
    let procs = fs::read_to_string(format!("{CGROUP_ROOT}/pids{taken}/cgroup.procs"))
        .or_else(|_| fs::read_to_string(format!("{CGROUP_ROOT}{taken}/cgroup.procs")))
        .unwrap();
    assert!(
        procs.lines().any(|p| p == pid.to_string()),
        "{rt}: the first container's cgroup lost its app: {procs}"
    );
    ctd.remove(&first);
}

/// An empty cgroup at the path, as a crash could leave it: runc takes it
/// over, lxcri clears it for LXC to make again; either way the container
/// runs there and the cgroup goes with it.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn an_empty_cgroup_left_at_the_path_is_taken_over() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    for rt in runtimes() {
        let id = ctd.new_id("cgstale");
        let rel = format!("{}/{id}", ctd.namespace());
        for controller in ["pids", "memory", "unified", ""] {
            let base = Path::new(CGROUP_ROOT).join(controller);
            if base.join("cgroup.procs").exists() {
                fs::create_dir_all(base.join(&rel)).unwrap();
            }
        }
        let out = ctd.run(rt, &id, &["sh", "-c", "cat /proc/self/cgroup"], &[]);
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        let left = cgroup_dirs(&rel);
        if !follows_path(&ctd, rt) {
            // Not lxcri's to take over or remove on pve.
            assert!(!left.is_empty(), "pve: the empty cgroup went");
            left.iter().for_each(|d| fs::remove_dir(d).unwrap());
            continue;
        }
        assert!(out.stdout.contains(&format!(":/{rel}\n")), "{rt}: {out}");
        assert!(left.is_empty(), "{rt}: left {left:?}");
    }
}

/// A relative path is below the runtime's own cgroup in each hierarchy
/// (runc). LXC takes one path for all, and this host's test containerd
/// (so each shim) has its memory cgroup elsewhere than its others: create
/// fails naming the field and the hierarchies, and nothing is left. On pve
/// the path is not followed, so nothing fails.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_relative_path_lxcri_cannot_follow_fails_naming_the_field() {
    let ctd = Containerd::start();
    let id = ctd.new_id("cgrel");
    let mut s = spec::busybox_spec(&ctd, &id, &["true"]);
    s["linux"]["cgroupsPath"] = json!(format!("{}/{id}", ctd.namespace()));
    let out = ctd.run_config(Runtime::Lxcri, &id, &spec::write(&ctd, &id, &s));
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let places: std::collections::BTreeSet<&str> =
        own.lines().filter_map(|l| l.rsplit(':').next()).collect();
    if !follows_path(&ctd, Runtime::Lxcri) || places.len() == 1 {
        // Followed below the shim's own cgroup (unit-tested), or not at all.
        assert_eq!(out.code, Some(0), "{out}");
        return;
    }
    assert_ne!(out.code, Some(0), "{out}");
    assert!(
        out.all_output().contains("linux.cgroupsPath") && out.all_output().contains("relative"),
        "{out}"
    );
    ctd.ctr(&["containers", "rm", &id]);
    let left = cmd::poll(Duration::from_secs(15), || {
        ctd.leftovers(&id).is_empty().then_some(())
    });
    assert!(left.is_some(), "left: {:?}", ctd.leftovers(&id));
}

/// A pod's sandbox and containers sit below the pod's cgroup parent, each
/// in a cgroup named by its id, as on runc (the kubelet's pod-level and
/// QoS limits are on that parent), and go with the pod. Seen from the host:
/// a pod container on lxcri has a cgroup namespace of its own where runc's
/// has none on a cgroup v1 host (docs/kubernetes.md, "Node caveats").
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_pod_container_is_below_the_pods_cgroup_parent() {
    use lxcri_e2e::cri::api::LinuxSandboxSecurityContext;
    use lxcri_e2e::cri::validate::{remove, run_pod};

    let ctd = Containerd::start_cri();
    let parent = ctd.pod_cgroup_parent().trim_start_matches('/').to_string();
    let mut results = Vec::new();
    for rt in runtimes() {
        if !follows_path(&ctd, rt) {
            // PVE's placement is checked by the ctr case above.
            continue;
        }
        let pod = run_pod(
            &ctd,
            rt,
            "cgpod",
            LinuxSandboxSecurityContext::default(),
            &[],
        );
        let id = pod.start(pod.container("c", &["sleep", "600"]));
        let mut seen = Vec::new();
        let mut dirs = Vec::new();
        for (what, cid) in [("sandbox", &pod.id), ("container", &id)] {
            let rel = format!("{parent}/{cid}");
            let found = cgroup_dirs(&rel);
            let procs: Vec<String> = found
                .iter()
                .map(|d| fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default())
                .collect();
            assert!(
                !found.is_empty() && procs.iter().all(|p| !p.trim().is_empty()),
                "{rt}: the {what} is not in /{rel} everywhere: {found:?} {procs:?}"
            );
            // Which hierarchies have it, by name.
            let mut names: Vec<String> = found
                .iter()
                .map(|d| d.display().to_string().replace(cid.as_str(), "ID"))
                .collect();
            names.sort();
            seen.push(format!("{what}: {}", names.join(" ")));
            dirs.extend(found);
        }
        remove(&ctd, rt, pod);
        let left: Vec<&PathBuf> = dirs.iter().filter(|d| d.exists()).collect();
        assert!(
            left.is_empty(),
            "{rt}: cgroups left after the pod: {left:?}"
        );
        results.push((rt, seen.join("\n")));
    }
    assert_same("a pod's cgroups", &results);
}

/// What a pod container sees of its own cgroups is runc's: LXC gives every
/// container that joins another's namespace a cgroup namespace the spec
/// did not ask for, and lxcri's init joins the shim's back before the
/// process runs. (On cgroup v2 containerd asks for a cgroup namespace and
/// both show `0::/`.)
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_pod_container_sees_its_cgroups_as_on_runc() {
    use lxcri_e2e::cri::api::LinuxSandboxSecurityContext;
    use lxcri_e2e::cri::validate::{exited, remove, run_pod};

    let ctd = Containerd::start_cri();
    let host_ns = fs::read_link("/proc/self/ns/cgroup").unwrap();
    // The container's id, the last component, differs.
    let script = "readlink /proc/self/ns/cgroup; sed -E 's#/[0-9a-f]{64}$#/ID#' /proc/self/cgroup";
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(
            &ctd,
            rt,
            "cgview",
            LinuxSandboxSecurityContext::default(),
            &[],
        );
        let (out, err) = exited(&pod, pod.container("c", &["sh", "-c", script]));
        remove(&ctd, rt, pod);
        assert!(!out.is_empty(), "{rt}: {err}");
        assert!(
            out.starts_with(&format!("{}\n", host_ns.display())),
            "{rt}: not in the node's cgroup namespace: {out}"
        );
        results.push((rt, out));
    }
    // On pve the CT's cgroup is PVE's, not the pod's (see above).
    if ctd.pve().is_none() {
        assert_same("a pod container's view of its cgroups", &results);
    }
}

/// Below cgroups made beforehand, as the kubelet makes `/kubepods/...`
/// (each with its parent's CPUs and memory nodes, passing nothing on):
/// on cgroup v1 LXC fills only the first directory of a path it makes, so
/// lxcri gives the container's cgroup its parent's cpuset, as runc does.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_container_below_cgroups_made_beforehand_runs() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let pod = format!("{}/pod1", ctd.namespace());
    for dir in cgroup_dirs("").iter().map(|root| root.join(&pod)) {
        fs::create_dir_all(&dir).unwrap();
        // The cpuset hierarchy's (v1): copied down, as runc copies them.
        for file in ["cpuset.cpus", "cpuset.mems"] {
            for level in [dir.parent().unwrap(), dir.as_path()] {
                if let Ok(parent) = fs::read_to_string(level.parent().unwrap().join(file)) {
                    fs::write(level.join(file), parent.trim()).unwrap();
                }
            }
        }
    }
    for rt in runtimes() {
        let id = ctd.new_id("cgbelow");
        let path = format!("/{pod}/{id}");
        let out = ctd.run(
            rt,
            &id,
            &["sh", "-c", "cat /proc/self/cgroup"],
            &["--cgroup", &path],
        );
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        if follows_path(&ctd, rt) {
            assert!(out.stdout.contains(&format!(":{path}\n")), "{rt}: {out}");
        }
        let left = cgroup_dirs(path.trim_start_matches('/'));
        assert!(left.is_empty(), "{rt}: left {left:?}");
    }
    for dir in cgroup_dirs(&pod) {
        let _ = fs::remove_dir(dir);
    }
}
