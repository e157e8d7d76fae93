//! containerd restarts under running pods (the kubelet's node, CRI): a
//! running container keeps running with its pid and answers ExecSync, an
//! exited one keeps its exit code and log, a container created but not
//! started can still be started, and the pods stop and go as usual;
//! side by side with runc.

use std::time::Duration;

use lxcri_e2e::cri::api::ContainerState;
use lxcri_e2e::cri::pod::{base_pod_config, Pod};
use lxcri_e2e::{require, runtimes, Containerd, Runtime};

/// What a pod had before the restart.
struct Before {
    rt: Runtime,
    pod: String,
    config: lxcri_e2e::cri::api::PodSandboxConfig,
    log_dir: std::path::PathBuf,
    running: String,
    running_started_at: i64,
    exited: String,
    created: String,
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn pods_survive_a_containerd_restart() {
    if !require(Runtime::Lxcri, "pods_survive_a_containerd_restart") {
        return;
    }
    let mut ctd = Containerd::start_cri();
    let mut before = Vec::new();
    for rt in runtimes() {
        let config = base_pod_config(&ctd, &lxcri_e2e::unique_name("restart"), false);
        let pod = Pod::run(&ctd, rt, config).unwrap_or_else(|e| panic!("{rt}: {e}"));
        let running = pod.start(pod.container("runs", &["sh", "-c", "echo up; exec sleep 1000"]));
        pod.wait_log("runs", "stdout", "up");
        let exited = pod.start(pod.container("exits", &["sh", "-c", "echo bye; exit 3"]));
        let status = pod.wait_state(
            &exited,
            ContainerState::ContainerExited,
            Duration::from_secs(30),
        );
        assert_eq!(status.exit_code, 3, "{rt}");
        let created = pod
            .create(pod.container("later", &["sh", "-c", "echo later; exec sleep 1000"]))
            .unwrap_or_else(|e| panic!("{rt}: CreateContainer: {e}"));
        let pid = ctd
            .cri()
            .container_status(&running)
            .map(|s| s.started_at)
            .unwrap_or_default();
        before.push(Before {
            rt,
            pod: pod.id.clone(),
            config: pod.config.clone(),
            log_dir: pod.log_dir.clone(),
            running,
            running_started_at: pid,
            exited,
            created,
        });
    }

    ctd.restart();

    for b in &before {
        let rt = b.rt;
        let pod = Pod {
            ctd: &ctd,
            id: b.pod.clone(),
            config: b.config.clone(),
            log_dir: b.log_dir.clone(),
        };
        let cri = ctd.cri();
        let st = pod.wait_state(
            &b.running,
            ContainerState::ContainerRunning,
            Duration::from_secs(30),
        );
        assert_eq!(
            st.started_at, b.running_started_at,
            "{rt}: the same running container"
        );
        let out = cri
            .exec_sync(&b.running, &["sh", "-c", "echo alive"], 30)
            .unwrap_or_else(|e| panic!("{rt}: ExecSync after restart: {e}\n{}", ctd.log_tail(30)));
        assert_eq!(
            (out.exit_code, out.stdout.as_slice()),
            (0, &b"alive\n"[..]),
            "{rt}"
        );
        let st = cri.container_status(&b.exited).expect("exited status");
        assert_eq!(
            (st.state, st.exit_code),
            (ContainerState::ContainerExited as i32, 3),
            "{rt}"
        );
        assert!(
            lxcri_e2e::cri::pod::stream_text(&pod.log("exits"), "stdout").contains("bye"),
            "{rt}: the exited container's log"
        );
        cri.start_container(&b.created).unwrap_or_else(|e| {
            panic!(
                "{rt}: StartContainer after restart: {e}\n{}",
                ctd.log_tail(30)
            )
        });
        pod.wait_log("later", "stdout", "later");
        pod.remove()
            .unwrap_or_else(|e| panic!("{rt}: removing the pod after restart: {e}"));
    }
}

/// An exit code the kubelet has seen stays when the shim that reported it
/// dies (lxcri: the pod's one shim; runc: the container's): ContainerStatus
/// keeps 3, as on runc, and the pod still goes.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_reported_exit_code_survives_its_shim() {
    if !require(Runtime::Lxcri, "a_reported_exit_code_survives_its_shim") {
        return;
    }
    let ctd = Containerd::start_cri();
    for rt in runtimes() {
        let config = base_pod_config(&ctd, &lxcri_e2e::unique_name("shimdies"), false);
        let pod = Pod::run(&ctd, rt, config).unwrap_or_else(|e| panic!("{rt}: {e}"));
        let exited = pod.start(pod.container("exits", &["sh", "-c", "exit 3"]));
        let st = pod.wait_state(
            &exited,
            ContainerState::ContainerExited,
            Duration::from_secs(30),
        );
        assert_eq!(st.exit_code, 3, "{rt}");
        let before = lxcri_e2e::cri::pod::shim_processes(&ctd, rt);
        for pid in &before {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_secs(2));
        let st = ctd
            .cri()
            .container_status(&exited)
            .expect("status after the shim died");
        assert_eq!(
            (st.state, st.exit_code),
            (ContainerState::ContainerExited as i32, 3),
            "{rt}: the exit code after its shim died"
        );
        pod.remove()
            .unwrap_or_else(|e| panic!("{rt}: removing the pod after its shim died: {e}"));
    }
}
