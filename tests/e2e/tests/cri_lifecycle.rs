//! Container and pod lifecycles through containerd's CRI plugin, side by
//! side with runc: scenarios of cri-tools' validation suite
//! (`pkg/validate`, `container.go`, `pod.go`, `idempotence.go` and
//! `networking.go`) with the same settings and expectations, and what each
//! runtime showed compared: stats of three containers of one pod (one
//! lxcri shim answers for all), a log reopened after rotation, a stop that
//! SIGTERM ends, a pod stopped twice and removed twice, a pod without a
//! hostname, and the kubelet's restart of a crashed container. Each test
//! names the cri-tools `It` it mirrors, or the kubelet path.

use std::collections::HashMap;
use std::fs;
use std::time::Duration;

use lxcri_e2e::cri::api::{self, ContainerState, PodSandboxState};
use lxcri_e2e::cri::inspect::assert_pod_gone;
use lxcri_e2e::cri::pod::{base_pod_config, Pod};
use lxcri_e2e::cri::validate::{exec, remove, run_pod, running, PAUSE, STATE_TIMEOUT};
use lxcri_e2e::{assert_same, cmd, runtimes, unique_name, Containerd};

/// What the stats calls gave, as cri-tools checks them.
#[derive(Debug, PartialEq)]
struct Stats {
    /// ListContainerStats without a filter lists all three.
    unfiltered_has_all: bool,
    /// Filtered by id: exactly that one.
    by_id: Vec<String>,
    /// Filtered by label `foo=bar`: the labelled one; by `foo=baz`: none.
    by_label: (Vec<String>, usize),
    /// ContainerStats of each: its id and name, and CPU and memory with
    /// timestamps and values.
    each_complete: Vec<bool>,
}

fn complete(s: &api::ContainerStats, id: &str, name: &str) -> bool {
    let attributes_ok = s
        .attributes
        .as_ref()
        .is_some_and(|a| a.id == id && a.metadata.as_ref().is_some_and(|m| m.name == name));
    let cpu_ok = s
        .cpu
        .as_ref()
        .is_some_and(|c| c.timestamp > 0 && c.usage_core_nano_seconds.is_some());
    let memory_ok = s.memory.as_ref().is_some_and(|m| {
        m.timestamp > 0 && m.working_set_bytes.as_ref().is_some_and(|w| w.value > 0)
    });
    attributes_ok && cpu_ok && memory_ok
}

fn ids(stats: &[api::ContainerStats]) -> Vec<String> {
    let mut ids: Vec<String> = stats
        .iter()
        .filter_map(|s| s.attributes.as_ref().map(|a| a.id.clone()))
        .collect();
    ids.sort();
    ids
}

/// "should support listing stats for started containers", "... for
/// started containers when filter is nil", "... for three started
/// containers" (also filtered by id), "... filtered by labels" and "should
/// support getting container stats" (container.go): three running
/// containers of one pod, one labelled `foo=bar`.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn stats_of_three_containers() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "stats", Default::default(), &[]);
        let mut started = Vec::new();
        for name in ["c0", "c1", "c2"] {
            let mut c = pod.container(name, PAUSE);
            if name == "c1" {
                c.labels = HashMap::from([("foo".to_string(), "bar".to_string())]);
            }
            started.push((running(&pod, c), name));
        }
        let cri = ctd.cri();
        let fail = |call: &str, e: lxcri_e2e::cri::CriError| -> ! {
            panic!("{rt}: {call}: {e}\n{}", ctd.log_tail(40))
        };
        let filtered = |filter: api::ContainerStatsFilter| {
            cri.list_container_stats_filtered(Some(filter))
                .unwrap_or_else(|e| fail("ListContainerStats", e))
        };
        let all = cri
            .list_container_stats()
            .unwrap_or_else(|e| fail("ListContainerStats", e));
        let all_ids = ids(&all);
        let by_id = ids(&filtered(api::ContainerStatsFilter {
            id: started[0].0.clone(),
            ..Default::default()
        }));
        let label = |value: &str| api::ContainerStatsFilter {
            pod_sandbox_id: pod.id.clone(),
            label_selector: HashMap::from([("foo".to_string(), value.to_string())]),
            ..Default::default()
        };
        let by_label = (ids(&filtered(label("bar"))), filtered(label("baz")).len());
        // Memory and CPU are sampled: a container only just started may
        // read none yet.
        let each_complete: Vec<bool> = started
            .iter()
            .map(|(id, name)| {
                cmd::poll(STATE_TIMEOUT, || {
                    let s = cri.container_stats(id).ok()?;
                    complete(&s, id, name).then_some(())
                })
                .is_some()
            })
            .collect();
        let seen = Stats {
            unfiltered_has_all: started.iter().all(|(id, _)| all_ids.contains(id)),
            by_id: by_id
                .iter()
                .map(|id| if *id == started[0].0 { "c0" } else { "other" }.to_string())
                .collect(),
            by_label: (
                by_label
                    .0
                    .iter()
                    .map(|id| if *id == started[1].0 { "c1" } else { "other" }.to_string())
                    .collect(),
                by_label.1,
            ),
            each_complete,
        };
        remove(&ctd, rt, pod);
        assert_eq!(
            seen,
            Stats {
                unfiltered_has_all: true,
                by_id: vec!["c0".into()],
                by_label: (vec!["c1".into()], 0),
                each_complete: vec![true; 3],
            },
            "{rt}: {all:#?}"
        );
        results.push((rt, seen));
    }
    assert_same("stats of three containers", &results);
}

/// "should support reopening container log" (container.go): a container
/// logging a line a second; its log is renamed and ReopenContainerLog
/// makes a new one that fills, while the renamed one stops growing.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn reopening_the_container_log() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "reopen-log", Default::default(), &[]);
        let c = pod.container(
            "logger",
            &["sh", "-c", "while true; do echo hello World; sleep 1; done"],
        );
        let id = running(&pod, c);
        pod.wait_log("logger", "stdout", "hello World");
        let log = pod.log_path("logger");
        let rotated = log.with_extension("log.new");
        fs::rename(&log, &rotated).unwrap();
        let reopened = ctd.cri().reopen_container_log(&id);
        let lines = |p: &std::path::Path| {
            fs::read_to_string(p)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        let new_log_fills = cmd::poll(STATE_TIMEOUT, || (lines(&log) > 0).then_some(())).is_some();
        let before = lines(&rotated);
        std::thread::sleep(Duration::from_secs(5));
        let rotated_still = lines(&rotated) == before;
        let new_line = pod.log("logger").last().map(|l| l.content.clone());
        remove(&ctd, rt, pod);
        let seen = (
            reopened.map_err(|e| e.to_string()),
            new_log_fills,
            rotated_still,
            new_line,
        );
        assert_eq!(
            seen,
            (Ok(()), true, true, Some("hello World".to_string())),
            "{rt}"
        );
        results.push((rt, seen));
    }
    assert_same("a reopened log", &results);
}

/// "should support stopping container" and "should support removing a
/// stopped container" (container.go): `top` in the pod's PID namespace,
/// StopContainer with a 60 s grace: SIGTERM ends it (143, not SIGKILL's
/// 137), and it can be removed and is not listed after.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn stopping_and_removing_a_container() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "stop", Default::default(), &[]);
        let id = running(&pod, pod.container("c", PAUSE));
        let cri = ctd.cri();
        cri.stop_container(&id, 60)
            .unwrap_or_else(|e| panic!("{rt}: StopContainer: {e}\n{}", ctd.log_tail(40)));
        let st = cri.container_status(&id).unwrap();
        cri.remove_container(&id)
            .unwrap_or_else(|e| panic!("{rt}: RemoveContainer: {e}\n{}", ctd.log_tail(40)));
        let listed = cri.list_containers().unwrap().iter().any(|c| c.id == id);
        remove(&ctd, rt, pod);
        let seen = (
            ContainerState::try_from(st.state).ok(),
            st.exit_code,
            st.reason.clone(),
            listed,
        );
        assert_eq!(
            seen,
            (
                Some(ContainerState::ContainerExited),
                143,
                "Error".into(),
                false
            ),
            "{rt}: {st:?}"
        );
        results.push((rt, seen));
    }
    assert_same("a stopped container", &results);
}

/// The kubelet's restart of a container that exited (restartPolicy
/// Always or OnFailure, CrashLoopBackOff's cycle): a new container of the
/// same name with the next attempt, its log at `<name>/<attempt>.log`,
/// beside the exited one until the kubelet collects it; each run has its
/// own exit code and log, and removing the old one leaves the new one.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn a_crashed_container_restarted_as_the_kubelet_does() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "restart", Default::default(), &[]);
        let mut runs = Vec::new();
        let mut ids = Vec::new();
        // `<pod log dir>/crasher/`, as the kubelet lays out its logs.
        let log_dir = pod.log_path("crasher").with_extension("");
        fs::create_dir_all(&log_dir).unwrap();
        for attempt in 0..3u32 {
            let mut c = pod.container("crasher", &["sh", "-c", "echo run; sleep 0.2; exit 2"]);
            c.metadata.as_mut().expect("metadata").attempt = attempt;
            c.log_path = format!("crasher/{attempt}.log");
            let id = pod.start(c);
            let st = pod.wait_state(&id, ContainerState::ContainerExited, STATE_TIMEOUT);
            let log =
                fs::read_to_string(log_dir.join(format!("{attempt}.log"))).unwrap_or_default();
            let logged = lxcri_e2e::cri::pod::parse_log(&log)
                .iter()
                .map(|l| format!("{} {}", l.stream, l.content))
                .collect::<Vec<_>>();
            runs.push((st.exit_code, st.reason.clone(), logged));
            ids.push(id);
        }
        // The kubelet's garbage collection: the oldest goes, the rest stay.
        let cri = ctd.cri();
        let removed = cri.remove_container(&ids[0]).map_err(|e| e.to_string());
        let left: Vec<Option<i32>> = ids
            .iter()
            .map(|id| cri.container_status(id).ok().map(|s| s.exit_code))
            .collect();
        remove(&ctd, rt, pod);
        let seen = (runs, removed, left);
        let run = (2, "Error".to_string(), vec!["stdout run".to_string()]);
        assert_eq!(
            seen,
            (
                vec![run.clone(), run.clone(), run],
                Ok(()),
                vec![None, Some(2), Some(2)]
            ),
            "{rt}"
        );
        results.push((rt, seen));
    }
    assert_same("a container restarted by the kubelet", &results);
}

/// "should support stopping PodSandbox" and "should support removing
/// PodSandbox" (pod.go) with the idempotence cases (idempotence.go):
/// READY after RunPodSandbox, NOTREADY after StopPodSandbox; StopContainer
/// and StopPodSandbox a second time and RemovePodSandbox of a removed pod
/// succeed; nothing of the pod is left.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn a_pod_stopped_and_removed_twice() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "twice", Default::default(), &[]);
        let id = running(&pod, pod.container("c", PAUSE));
        let cri = ctd.cri();
        let state = |pod_id: &str| {
            cri.pod_sandbox_status(pod_id)
                .ok()
                .and_then(|s| s.status)
                .and_then(|s| PodSandboxState::try_from(s.state).ok())
        };
        let netns = pod.netns();
        let pod_id = pod.id.clone();
        let ready = state(&pod_id);
        let calls = [
            cri.stop_container(&id, 10),
            cri.stop_container(&id, 10),
            cri.stop_pod_sandbox(&pod_id),
            cri.stop_pod_sandbox(&pod_id),
        ]
        .map(|r| r.map_err(|e| e.to_string()));
        let not_ready = state(&pod_id);
        let container = cri.container_status(&id).map(|s| s.state).ok();
        let removed = [
            cri.remove_pod_sandbox(&pod_id),
            cri.remove_pod_sandbox(&pod_id),
        ]
        .map(|r| r.map_err(|e| e.to_string()));
        assert_pod_gone(&ctd, rt, &pod_id, std::slice::from_ref(&id), netns);
        let seen = (ready, calls, not_ready, container, removed);
        assert_eq!(
            seen,
            (
                Some(PodSandboxState::SandboxReady),
                [Ok(()), Ok(()), Ok(()), Ok(())],
                Some(PodSandboxState::SandboxNotready),
                Some(ContainerState::ContainerExited as i32),
                [Ok(()), Ok(())],
            ),
            "{rt}"
        );
        results.push((rt, seen));
    }
    assert_same("a pod stopped and removed twice", &results);
}

/// The pod of "runtime should support DnsConfig" (networking.go), which
/// sets no hostname: its DNS config in `/etc/resolv.conf`, and the
/// hostname a pod without one gets (containerd gives the node's).
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn a_pod_without_a_hostname() {
    let ctd = Containerd::start_cri();
    let node = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut results = Vec::new();
    for rt in runtimes() {
        let mut config = base_pod_config(&ctd, &unique_name("dns"), false);
        config.hostname = String::new();
        config.dns_config = Some(api::DnsConfig {
            servers: vec!["10.10.10.10".into()],
            searches: vec!["google.com".into()],
            options: vec!["ndots:8".into()],
        });
        let pod = Pod::run(&ctd, rt, config).unwrap_or_else(|e| panic!("{rt}: RunPodSandbox: {e}"));
        let id = running(&pod, pod.container("c", PAUSE));
        let resolv = exec(&ctd, rt, &id, &["cat", "/etc/resolv.conf"]);
        let hostname = exec(&ctd, rt, &id, &["hostname"]);
        let etc_hostname = exec(&ctd, rt, &id, &["cat", "/etc/hostname"]);
        remove(&ctd, rt, pod);
        for line in [
            "nameserver 10.10.10.10",
            "search google.com",
            "options ndots:8",
        ] {
            assert!(resolv.1.lines().any(|l| l == line), "{rt}: {resolv:?}");
        }
        assert_eq!(hostname, (0, format!("{node}\n"), String::new()), "{rt}");
        results.push((rt, (resolv, hostname, etc_hostname)));
    }
    assert_same("a pod without a hostname", &results);
}
