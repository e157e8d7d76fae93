//! Namespaces and sysctls through containerd's CRI plugin, side by side
//! with runc: the scenarios of cri-tools' validation suite
//! (`pkg/validate`, `security_context_linux.go`, `pod_linux.go`) for PID
//! namespaces, hostIPC and hostNetwork, and pod sysctls, with the same pod
//! and container settings and the same expectations, and what each runtime
//! showed compared. Each test names the cri-tools `It` it mirrors; one is
//! `kubectl debug --target`'s (a PID namespace of another container).
//!
//! Differences from cri-tools, forced by the test image (static busybox,
//! no nginx, no `ipcs`) or by the network rule: nginx is a uniquely named
//! `sleep`; `ipcs -m` is `/proc/sysvipc/shm` (what ipcs reads); the host
//! port of the hostNetwork check listens on loopback.
//! Not covered: user namespaces through CRI (containerd 1.6 has none;
//! `cri_userns.rs` covers lxcri's own).

use std::net::TcpListener;
use std::time::Duration;

use lxcri_e2e::cri::api::{self, NamespaceMode};
use lxcri_e2e::cri::pod::{base_pod_config, Pod};
use lxcri_e2e::cri::validate::{exec, exited, namespaces, remove, run_pod, running, PAUSE};
use lxcri_e2e::{assert_same, cleanup, runtimes, unique_name, Containerd, Runtime};

/// `ps` as the container sees it but for the exec's own shell and `ps`:
/// PID 1 with its pid, the rest by command only (which pids an exec or an
/// LXC helper took is no part of the contract).
const PS: &str = "ps -o pid,ppid,args > /tmp/ps.out; \
                  awk -v me=$$ 'NR > 1 && $1 != me && $2 != me { \
                  a = $3; for (i = 4; i <= NF; i++) a = a \" \" $i; \
                  print ($1 == 1 ? \"1\" : \"-\"), a }' /tmp/ps.out";

/// The test pause image's process (`lxcri_e2e::image::pause`).
const PAUSE_PROCESS: &str = "/bin/sh -c trap 'exit 0' TERM INT; sleep 2147483647 & wait";

#[derive(Debug, PartialEq)]
struct PidNamespaces {
    host_pid_sees_the_other: bool,
    pod_pid1: String,
    pod_ps: String,
    container_pid1: String,
    container_ps: String,
}

/// PID 1's command line in container `id` and its [`PS`] lines, sorted,
/// with `sleeper` written `SLEEPER`; `ps` is taken again (up to 10 s)
/// until `settled` holds for it.
fn pid1_and_ps(
    ctd: &Containerd,
    rt: Runtime,
    id: &str,
    sleeper: &str,
    settled: impl Fn(&[String]) -> bool,
) -> (String, Vec<String>) {
    let (_, pid1, _) = exec(ctd, rt, id, &["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"]);
    let mut ps = Vec::new();
    lxcri_e2e::cmd::poll(Duration::from_secs(10), || {
        let (_, out, _) = exec(ctd, rt, id, &["sh", "-c", PS]);
        ps = out.lines().map(|l| l.replace(sleeper, "SLEEPER")).collect();
        ps.sort();
        settled(&ps).then_some(())
    });
    (pid1.trim().replace(sleeper, "SLEEPER"), ps)
}

/// "runtime should support HostPID", "runtime should support PodPID",
/// "runtime should support ContainerPID".
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn pid_namespaces() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        // HostPID: a second container sees the first one's process, under
        // the pid the host gives it.
        let ns = namespaces(NamespaceMode::Pod, NamespaceMode::Node, NamespaceMode::Pod);
        let sandbox = api::LinuxSandboxSecurityContext {
            namespace_options: Some(ns),
            ..Default::default()
        };
        let pod = run_pod(&ctd, rt, "hostpid", sandbox, &[]);
        let sleeper = format!("sleep {}", 3_000_000 + lxcri_e2e::random_u32() % 1_000_000);
        let script = format!("echo $$ > /tmp/pid; exec {sleeper}");
        let first = running(&pod, pod.container("first", &["sh", "-c", &script]));
        let (code, pid, _) = exec(
            &ctd,
            rt,
            &first,
            &[
                "sh",
                "-c",
                "while [ ! -s /tmp/pid ]; do sleep 1; done; cat /tmp/pid",
            ],
        );
        assert_eq!(code, 0, "{rt}: {pid}");
        let pid = pid.trim().to_string();
        let host: Vec<String> = cleanup::processes()
            .into_iter()
            .filter(|(_, c)| *c == sleeper)
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(
            host,
            std::slice::from_ref(&pid),
            "{rt}: host pids of {sleeper}"
        );
        let second = running(&pod, pod.container("second", &["sh", "-c", "sleep 1000"]));
        let (_, pids, _) = exec(&ctd, rt, &second, &["pidof", "sleep"]);
        let host_pid_sees_the_other = pids.split_whitespace().any(|p| p == pid);
        remove(&ctd, rt, pod);

        // Pod and container PID namespaces: whose process is PID 1.
        let mut seen = Vec::new();
        for mode in [NamespaceMode::Pod, NamespaceMode::Container] {
            let ns = api::NamespaceOption {
                pid: mode as i32,
                ..Default::default()
            };
            let sandbox = api::LinuxSandboxSecurityContext {
                namespace_options: Some(ns),
                ..Default::default()
            };
            let pod = run_pod(&ctd, rt, "pidns", sandbox, &[]);
            let id = running(
                &pod,
                pod.container("c", &["sh", "-c", &format!("exec {sleeper}")]),
            );
            // Polled: the pause's child may still be between its fork (a
            // second pause shell) and its exec of sleep.
            let forked = format!("- {PAUSE_PROCESS}");
            let (pid1, ps) = pid1_and_ps(&ctd, rt, &id, &sleeper, |ps| !ps.contains(&forked));
            remove(&ctd, rt, pod);
            seen.push((pid1, ps.join("\n")));
        }
        let (container, pod_ns) = (seen.pop().unwrap(), seen.pop().unwrap());
        let o = PidNamespaces {
            host_pid_sees_the_other,
            pod_pid1: pod_ns.0,
            pod_ps: pod_ns.1,
            container_pid1: container.0,
            container_ps: container.1,
        };
        assert!(
            o.host_pid_sees_the_other,
            "{rt}: pidof sleep: {pids:?}, not {pid}"
        );
        assert_eq!(o.pod_pid1, PAUSE_PROCESS, "{rt}: the pause is PID 1");
        assert_eq!(o.container_pid1, "SLEEPER", "{rt}: {o:#?}");
        assert_eq!(o.container_ps, "1 SLEEPER", "{rt}: {o:#?}");
        assert_eq!(
            o.pod_ps,
            format!("- SLEEPER\n- sleep 2147483647\n1 {PAUSE_PROCESS}"),
            "{rt}: {o:#?}"
        );
        results.push((rt, o));
    }
    assert_same("PID namespaces", &results);
}

/// `kubectl debug --target=app`: an ephemeral container in the PID
/// namespace of another container of the pod (mode TARGET with that
/// container's id; the pod's PID mode CONTAINER, the kubelet's default)
/// sees the target's process as PID 1 and its own beside it, and stopping
/// it leaves the target running.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn a_debug_container_in_the_pid_namespace_of_another() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let ns = namespaces(
            NamespaceMode::Pod,
            NamespaceMode::Container,
            NamespaceMode::Pod,
        );
        let sandbox = api::LinuxSandboxSecurityContext {
            namespace_options: Some(ns.clone()),
            ..Default::default()
        };
        let pod = run_pod(&ctd, rt, "debug-target", sandbox, &[]);
        let sleeper = format!("sleep {}", 3_000_000 + lxcri_e2e::random_u32() % 1_000_000);
        let app = running(
            &pod,
            pod.container("app", &["sh", "-c", &format!("exec {sleeper}")]),
        );
        let mut debug = pod.container("debugger", PAUSE);
        lxcri_e2e::cri::validate::security(&mut debug).namespace_options =
            Some(api::NamespaceOption {
                pid: NamespaceMode::Target as i32,
                target_id: app.clone(),
                ..ns
            });
        let debugger = running(&pod, debug);
        let (pid1, ps) = pid1_and_ps(&ctd, rt, &debugger, &sleeper, |ps| ps.len() == 2);
        let stopped = ctd
            .cri()
            .stop_container(&debugger, 10)
            .map_err(|e| e.to_string());
        let app_state = ctd.cri().container_status(&app).map(|s| s.state).ok();
        remove(&ctd, rt, pod);
        let seen = (pid1, ps.join("\n"), stopped, app_state);
        assert_eq!(
            seen,
            (
                "SLEEPER".to_string(),
                "- top\n1 SLEEPER".to_string(),
                Ok(()),
                Some(api::ContainerState::ContainerRunning as i32)
            ),
            "{rt}"
        );
        results.push((rt, seen));
    }
    assert_same("a debug container in another's PID namespace", &results);
}

/// A System V shared memory segment on the host, removed on drop (cri-tools
/// makes one with `ipcmk -M 1048576`).
struct HostShm(i32);

impl HostShm {
    fn create() -> Self {
        // SAFETY: plain syscall; the id is owned by this guard.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 1 << 20, libc::IPC_CREAT | 0o600) };
        assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
        HostShm(id)
    }
}

impl Drop for HostShm {
    fn drop(&mut self) {
        // SAFETY: removes the segment this guard made.
        unsafe { libc::shmctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// The node's hostname when the test began; set back on drop if it changed.
struct NodeName(String);

impl NodeName {
    fn now() -> String {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .expect("the node's hostname")
            .trim_end()
            .to_string()
    }

    fn keep() -> Self {
        NodeName(Self::now())
    }
}

impl Drop for NodeName {
    fn drop(&mut self) {
        if Self::now() != self.0 {
            let _ = nix::unistd::sethostname(&self.0);
        }
    }
}

/// "runtime should support HostIpc is true" / "is false", "runtime should
/// support HostNetwork is true" / "is false".
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn host_ipc_and_host_network() {
    let ctd = Containerd::start_cri();
    // A hostNetwork pod is in the node's UTS namespace: its name must stay
    // (and is put back should the test fail).
    let hostname = NodeName::keep();
    let shm = HostShm::create();
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
    // netstat pads its columns: the space ends the port.
    let port = format!("127.0.0.1:{} ", listener.local_addr().unwrap().port());
    let mut results = Vec::new();
    for rt in runtimes() {
        let mut seen = Vec::new();
        for host in [true, false] {
            let mode = if host {
                NamespaceMode::Node
            } else {
                NamespaceMode::Pod
            };
            let ns = namespaces(NamespaceMode::Pod, NamespaceMode::Pod, mode);
            let sandbox = api::LinuxSandboxSecurityContext {
                namespace_options: Some(ns),
                ..Default::default()
            };
            let pod = run_pod(&ctd, rt, "hostipc", sandbox, &[]);
            let id = running(&pod, pod.container("c", PAUSE));
            let (code, segments, _) = exec(&ctd, rt, &id, &["cat", "/proc/sysvipc/shm"]);
            assert_eq!(code, 0, "{rt}: {segments}");
            let sees_segment = segments
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(&shm.0.to_string()));
            remove(&ctd, rt, pod);

            let mode = if host {
                NamespaceMode::Node
            } else {
                NamespaceMode::Pod
            };
            let ns = namespaces(mode, NamespaceMode::Pod, NamespaceMode::Pod);
            let mut config = base_pod_config(&ctd, &unique_name("hostnet"), host);
            let linux = config.linux.as_mut().unwrap();
            linux.security_context = Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(ns),
                ..Default::default()
            });
            let pod = Pod::run(&ctd, rt, config)
                .unwrap_or_else(|e| panic!("{rt}: RunPodSandbox: {e}\n{}", ctd.log_tail(40)));
            let (listening, _) = exited(&pod, pod.container("c", &["sh", "-c", "netstat -ln"]));
            remove(&ctd, rt, pod);
            assert_eq!(NodeName::now(), hostname.0, "{rt}: the node was renamed");
            seen.push((sees_segment, listening.contains(&port)));
        }
        assert_eq!(
            seen,
            [(true, true), (false, false)],
            "{rt}: (ipc, net) with host on, off"
        );
        results.push((rt, seen));
    }
    drop(listener);
    assert_same("hostIPC and hostNetwork", &results);
}

/// "should support safe sysctls", "should support unsafe sysctls".
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn sandbox_sysctls() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let mut seen = Vec::new();
        for (key, value) in [
            ("kernel.shm_rmid_forced", "1"),
            ("fs.mqueue.msg_max", "100"),
        ] {
            let pod = run_pod(&ctd, rt, "sysctl", Default::default(), &[(key, value)]);
            let id = running(&pod, pod.container("c", PAUSE));
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            let (code, got, _) = exec(&ctd, rt, &id, &["cat", &path]);
            remove(&ctd, rt, pod);
            assert_eq!((code, got.trim()), (0, value), "{rt}: {key}");
            seen.push(got);
        }
        results.push((rt, seen));
    }
    assert_same("sysctls", &results);
}
