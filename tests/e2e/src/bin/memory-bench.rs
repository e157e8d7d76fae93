//! Memory per pod, lxcri vs runc, in the same run (benches/memory.sh runs
//! it on release binaries, lxc backend):
//!
//!   memory-bench [PODS]    pods per runtime (default 10)
//!
//! PODS pods of a sandbox and 2 `sleep` containers per runtime, all running
//! at once in one containerd (so pages shared between processes are shared
//! as on a real node). Then the proportional set size (PSS, from
//! `/proc/PID/smaps_rollup`) of everything each runtime keeps running for
//! them, not counting the apps (the pause image's shell, `sleep`): runc's shims and their
//! other children; lxcri's shims, LXC monitors and anything below either.
//! Prints a Markdown table: per pod, per process kind, and the ratio.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use lxcri_e2e::cri::api::ContainerState;
use lxcri_e2e::cri::pod::{base_pod_config, shim_processes, Pod};
use lxcri_e2e::{cleanup, Containerd, Runtime};

/// The apps of the pods: what both runtimes run and is not counted (the
/// test's pause image is a shell that waits on a `sleep`).
const APPS: &[&str] = &["sh", "sleep"];

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map(|a| a.parse().expect("a number"))
        .unwrap_or(default)
}

/// A field of `/proc/PID/smaps_rollup` in KiB.
fn rollup(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `roots` and all their descendants.
fn with_descendants(roots: &[i32]) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, _) in cleanup::processes() {
        if let Some(ppid) = parent(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut seen: HashSet<i32> = HashSet::new();
    let mut todo = roots.to_vec();
    while let Some(p) = todo.pop() {
        if seen.insert(p) {
            todo.extend(children.get(&p).into_iter().flatten());
        }
    }
    seen.into_iter().collect()
}

/// Starts `pods` pods of a sandbox and 2 containers on `rt`; returns them
/// and every container id (sandboxes included).
/// KiB of the files under `dir` (as `du`: allocated blocks, an inode
/// linked more than once counted once).
fn files_kib(dir: &std::path::Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut kib = 0;
    for entry in entries.flatten() {
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if meta.is_dir() {
            kib += files_kib(&entry.path(), seen);
        } else if seen.insert((meta.dev(), meta.ino())) {
            kib += meta.blocks() / 2;
        }
    }
    kib
}

/// What each runtime keeps in files for the namespace's containers: its
/// state root (a tmpfs on a real node, so memory too).
fn state_files_kib(ctd: &Containerd, rt: Runtime) -> u64 {
    let root = match rt {
        Runtime::Lxcri => std::path::Path::new(lxcri_e2e::LXCRI_RUN_ROOT),
        Runtime::Runc => std::path::Path::new("/run/containerd/runc"),
    };
    files_kib(&root.join(ctd.namespace()), &mut HashSet::new())
}

fn start_pods<'a>(ctd: &'a Containerd, rt: Runtime, pods: usize) -> (Vec<Pod<'a>>, Vec<String>) {
    let mut all = Vec::new();
    let mut ids = Vec::new();
    for n in 0..pods {
        let config = base_pod_config(ctd, &format!("mem-{rt}-{n}"), false);
        let pod = Pod::run(ctd, rt, config).unwrap_or_else(|e| panic!("{rt}: RunPodSandbox: {e}"));
        ids.push(pod.id.clone());
        for c in ["a", "b"] {
            let id = pod.start(pod.container(c, &["sleep", "100000"]));
            pod.wait_state(
                &id,
                ContainerState::ContainerRunning,
                Duration::from_secs(60),
            );
            ids.push(id);
        }
        all.push(pod);
    }
    (all, ids)
}

/// PSS in KiB of what `rt` keeps for the containers `ids`, by process kind,
/// and the number of processes of each kind.
fn kept(ctd: &Containerd, rt: Runtime, ids: &[String]) -> BTreeMap<String, (u64, usize)> {
    let mut roots = shim_processes(ctd, rt);
    if rt == Runtime::Lxcri {
        // LXC's monitor daemonizes: it is a child of init, named after the container.
        roots.extend(
            cleanup::processes()
                .into_iter()
                .filter(|(_, c)| c.starts_with("[lxc monitor]"))
                .filter(|(_, c)| ids.iter().any(|id| c.contains(id.as_str())))
                .map(|(pid, _)| pid),
        );
    }
    let mut by_kind: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    for pid in with_descendants(&roots) {
        let kind = comm(pid);
        if APPS.contains(&kind.as_str()) {
            continue;
        }
        let e = by_kind.entry(kind).or_default();
        e.0 += rollup(pid, "Pss:");
        e.1 += 1;
    }
    by_kind
}

fn main() {
    let pods = arg(1, 10);
    let ctd = Containerd::start_cri();
    let runtimes = [Runtime::Runc, Runtime::Lxcri];
    let mut running = Vec::new();
    for rt in runtimes {
        running.push(start_pods(&ctd, rt, pods));
    }
    // Let start-up work (threads that exit, freed heap) settle.
    std::thread::sleep(Duration::from_secs(3));
    let mut per_pod = Vec::new();
    let files: Vec<u64> = runtimes
        .iter()
        .map(|rt| state_files_kib(&ctd, *rt))
        .collect();
    println!("| runtime | process | count | PSS KiB | per pod KiB |");
    println!("|---|---|---|---|---|");
    for (rt, (_, ids)) in runtimes.iter().zip(&running) {
        let kinds = kept(&ctd, *rt, ids);
        let total: u64 = kinds.values().map(|(kib, _)| kib).sum();
        for (kind, (kib, count)) in &kinds {
            println!(
                "| {rt} | {kind} | {count} | {kib} | {:.0} |",
                *kib as f64 / pods as f64
            );
        }
        let pod = total as f64 / pods as f64;
        println!("| {rt} | **all** | | {total} | **{pod:.0}** |");
        per_pod.push(pod);
    }
    println!();
    println!(
        "PSS per pod (sandbox + 2 containers, apps not counted), {pods} pods per runtime: \
         runc {:.0} KiB, lxcri {:.0} KiB, lxcri/runc **{:.2}**",
        per_pod[0],
        per_pod[1],
        per_pod[1] / per_pod[0]
    );
    println!(
        "Files in each runtime's state root per pod (a tmpfs on a real node): \
         runc {:.0} KiB, lxcri {:.0} KiB",
        files[0] as f64 / pods as f64,
        files[1] as f64 / pods as f64
    );
    for (pods, _) in running {
        for pod in pods {
            if let Err(e) = pod.remove() {
                eprintln!("removing a pod: {e}");
            }
        }
    }
}
