//! Checks on what CRI and the runtimes leave on the host: the processes of
//! a pod's sandbox, and that nothing of a removed pod or failed request is
//! left behind.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::pod::shim_processes;
use crate::cmd;
use crate::containerd::Containerd;
use crate::Runtime;

/// The host pid of the pod's sandbox process, from its verbose status.
pub fn sandbox_pid(ctd: &Containerd, pod_id: &str) -> u32 {
    let st = ctd.cri().pod_sandbox_status(pod_id).unwrap();
    let info: serde_json::Value =
        serde_json::from_str(st.info.get("info").map(String::as_str).unwrap_or("{}")).unwrap();
    info["pid"].as_u64().unwrap_or(0) as u32
}

/// `pid: cmdline` of the processes in `pid`'s pid namespace.
pub fn in_pid_ns_of(pid: u32) -> Vec<String> {
    let Ok(ns) = fs::read_link(format!("/proc/{pid}/ns/pid")) else {
        return vec![format!("no process {pid}")];
    };
    crate::cleanup::processes()
        .into_iter()
        .filter(|(p, _)| fs::read_link(format!("/proc/{p}/ns/pid")).is_ok_and(|n| n == ns))
        .map(|(p, c)| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            let wchan = fs::read_to_string(format!("/proc/{p}/wchan")).unwrap_or_default();
            let syscall = fs::read_to_string(format!("/proc/{p}/syscall")).unwrap_or_default();
            let stack = fs::read_to_string(format!("/proc/{p}/stack")).unwrap_or_default();
            format!(
                "{p} {} {wchan} syscall [{}] stack [{}]: {c}",
                state.unwrap_or("?"),
                syscall.trim(),
                stack.lines().take(6).collect::<Vec<_>>().join(" | ")
            )
        })
        .collect()
}

/// After RemovePodSandbox: no container of the pod known to CRI or
/// containerd, nothing of any of them on the host, no veth on the bridge,
/// no netns, no shim.
#[track_caller]
pub fn assert_pod_gone(
    ctd: &Containerd,
    rt: Runtime,
    pod_id: &str,
    ids: &[String],
    netns: Option<PathBuf>,
) {
    let cri = ctd.cri();
    assert!(
        !cri.list_pod_sandbox()
            .unwrap()
            .iter()
            .any(|p| p.id == pod_id),
        "{rt}: pod still listed"
    );
    let mut all: Vec<String> = ids.to_vec();
    all.push(pod_id.to_string());
    let mut left = Vec::new();
    let clean = cmd::poll(Duration::from_secs(20), || {
        left = all.iter().flat_map(|id| ctd.leftovers(id)).collect();
        left.extend(
            ctd.pod_network()
                .ports()
                .into_iter()
                .map(|p| format!("veth {p}")),
        );
        if let Some(ns) = netns.as_ref().filter(|p| p.exists()) {
            left.push(format!("netns {}", ns.display()));
        }
        left.extend(
            shim_processes(ctd, rt)
                .into_iter()
                .map(|p| format!("shim process {p}")),
        );
        left.is_empty().then_some(())
    });
    assert!(clean.is_some(), "{rt}: left behind: {left:#?}");
}

/// Nothing of any container this containerd ever had, and no pod veth.
#[track_caller]
pub fn assert_nothing_left(ctd: &Containerd) {
    let mut left = Vec::new();
    let clean = cmd::poll(Duration::from_secs(20), || {
        left = ctd
            .known_ids(true)
            .iter()
            .flat_map(|id| ctd.leftovers(id))
            .collect();
        let tasks = ctd.ctr(&["task", "ls", "-q"]).ok().stdout;
        left.extend(tasks.lines().map(|t| format!("task {t}")));
        left.extend(
            ctd.pod_network()
                .ports()
                .into_iter()
                .map(|p| format!("veth {p}")),
        );
        left.extend(
            shim_processes(ctd, Runtime::Lxcri)
                .into_iter()
                .map(|p| format!("shim process {p}")),
        );
        left.is_empty().then_some(())
    });
    assert!(clean.is_some(), "left behind: {left:#?}");
}
