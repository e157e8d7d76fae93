//! Process semantics through containerd's CRI plugin, side by side with
//! runc, as cri-tools' validation suite exercises them: containers that
//! share the pod's PID namespace (CRI's default) or the host's, and an
//! ExecSync whose timeout expires. Nothing of a stopped container may keep
//! running or hold its output open.

use std::time::{Duration, Instant};

use lxcri_e2e::cri::api;
use lxcri_e2e::cri::pod::{base_pod_config, Pod};
use lxcri_e2e::{assert_same, cleanup, runtimes, Containerd, Runtime};

/// Host pids of processes whose command line is exactly `cmdline`.
fn host_processes(cmdline: &str) -> Vec<i32> {
    cleanup::processes()
        .into_iter()
        .filter(|(_, c)| c == cmdline)
        .map(|(p, _)| p)
        .collect()
}

/// The container's `sleep` processes, by command line.
const LIST_SLEEPS: &str =
    "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done 2>/dev/null | grep '^sleep ' || true";

/// A pod whose sandbox and containers use `pid` as their PID namespace.
fn pod_with_pid_mode<'a>(
    ctd: &'a Containerd,
    rt: Runtime,
    prefix: &str,
    pid: api::NamespaceMode,
) -> Pod<'a> {
    let mut config = base_pod_config(ctd, &lxcri_e2e::unique_name(prefix), false);
    let opts = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
        .expect("namespace options");
    opts.pid = pid as i32;
    Pod::run(ctd, rt, config).unwrap_or_else(|e| panic!("{rt}: RunPodSandbox: {e}"))
}

/// What a container that does not own its PID namespace leaves when it is
/// stopped: its shell is stopped, a background child of it holds the
/// container's output. Returns what PID 1 looked like from inside and
/// whether the child was gone after StopContainer.
fn stop_leaves_no_process(
    ctd: &Containerd,
    rt: Runtime,
    pid: api::NamespaceMode,
) -> (String, bool) {
    let pod = pod_with_pid_mode(ctd, rt, "pidns", pid);
    // Unique, so other tests' processes never match.
    let child = format!("sleep {}", 3_000_000 + lxcri_e2e::random_u32() % 1_000_000);
    let script = format!("{child} & echo started; exec sleep 2000");
    let id = pod.start(pod.container("app", &["sh", "-c", &script]));
    pod.wait_log("app", "stdout", "started");
    let out = ctd
        .cri()
        .exec_sync(&id, &["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"], 30)
        .unwrap_or_else(|e| panic!("{rt}: ExecSync: {e}"));
    assert_eq!(out.exit_code, 0, "{rt}: {out:?}");
    let pid1 = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        host_processes(&child).len(),
        1,
        "{rt}: {child} is not running"
    );
    let started = Instant::now();
    ctd.cri()
        .stop_container(&id, 2)
        .unwrap_or_else(|e| panic!("{rt}: StopContainer: {e}\n{}", ctd.log_tail(40)));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{rt}: StopContainer took {:?}",
        started.elapsed()
    );
    let gone = lxcri_e2e::cmd::poll(Duration::from_secs(10), || {
        host_processes(&child).is_empty().then_some(())
    });
    ctd.cri()
        .remove_container(&id)
        .unwrap_or_else(|e| panic!("{rt}: RemoveContainer: {e}"));
    pod.remove()
        .unwrap_or_else(|e| panic!("{rt}: removing the pod: {e}\n{}", ctd.log_tail(40)));
    (pid1.trim().to_string(), gone.is_some())
}

/// kubelet's `shareProcessNamespace` (and CRI's default PID mode): the
/// containers join the sandbox's PID namespace, so PID 1 is the sandbox's
/// (pause) process and a stopped container's other processes would outlive
/// it.
#[test]
#[ignore = "needs root, containerd, CNI plugins and LXC: run by scripts/test"]
fn a_container_in_the_pods_pid_namespace_leaves_no_process() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let (pid1, gone) = stop_leaves_no_process(&ctd, rt, api::NamespaceMode::Pod);
        assert!(
            !pid1.contains("exec sleep 2000"),
            "{rt}: PID 1 is the container's own: {pid1}"
        );
        assert!(gone, "{rt}: a process of the stopped container lives on");
        results.push((rt, (pid1, gone)));
    }
    assert_same("a shared-PID pod", &results);
}

/// hostPID: the containers are in the host's PID namespace.
#[test]
#[ignore = "needs root, containerd, CNI plugins and LXC: run by scripts/test"]
fn a_host_pid_container_leaves_no_process() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let (_, gone) = stop_leaves_no_process(&ctd, rt, api::NamespaceMode::Node);
        assert!(gone, "{rt}: a process of the stopped container lives on");
        results.push((rt, gone));
    }
    assert_same("a hostPID pod", &results);
}

/// cri-tools' "runtime should support execSync with timeout": the ExecSync
/// fails when its timeout expires, and its process is gone after.
#[test]
#[ignore = "needs root, containerd, CNI plugins and LXC: run by scripts/test"]
fn an_exec_sync_past_its_timeout_leaves_no_process() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = pod_with_pid_mode(&ctd, rt, "execto", api::NamespaceMode::Container);
        let id = pod.start(pod.container("app", &["sh", "-c", "top"]));
        let timed_out = ctd.cri().exec_sync(&id, &["sleep", "4321"], 1);
        assert!(
            timed_out.is_err(),
            "{rt}: ExecSync should time out: {timed_out:?}"
        );
        let out = ctd
            .cri()
            // cri-tools runs `pgrep sleep`; busybox here has no pgrep.
            .exec_sync(&id, &["sh", "-c", LIST_SLEEPS], 30)
            .unwrap_or_else(|e| panic!("{rt}: ExecSync: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(out.exit_code, 0, "{rt}: {out:?}");
        assert_eq!(stdout, "", "{rt}: a sleep is left: {out:?}");
        assert!(out.stderr.is_empty(), "{rt}: {out:?}");
        results.push((rt, stdout));
        pod.remove()
            .unwrap_or_else(|e| panic!("{rt}: removing the pod: {e}"));
    }
    assert_same("processes after a timed-out ExecSync", &results);
}
