//! Kubernetes pods through containerd's CRI plugin, driven the way the
//! kubelet drives it (RunPodSandbox, CreateContainer, StartContainer,
//! ContainerStatus, ExecSync, Exec, logs, stats, StopContainer,
//! RemoveContainer, StopPodSandbox, RemovePodSandbox), with runtime
//! handler `lxcri` and, side by side in the same test, `runc`.
//!
//! Every test has its own containerd with the CRI plugin, its own bridge
//! and subnet (bridge CNI, host-local IPAM) and a cgroup parent of its own.

use std::fs;
use std::time::{Duration, Instant};

use lxcri_e2e::cri::api::{self, ContainerState};
use lxcri_e2e::cri::inspect::{assert_pod_gone, in_pid_ns_of, sandbox_pid};
use lxcri_e2e::cri::pod::{
    base_pod_config, host_fetch, mount, shim_processes, stream_text, volume_dir, Pod,
};
use lxcri_e2e::cri::stream;
use lxcri_e2e::{assert_same, cmd, runtimes, Containerd, Runtime};

const LONG: Duration = Duration::from_secs(60);

/// What a pod looks like from outside, compared between runtimes.
#[derive(Debug, PartialEq)]
struct PodObservations {
    fetched_in_pod: String,
    fetched_from_host: String,
    client_exit: (i32, String),
    server_stdout: String,
    server_stderr: String,
    exec_sync: (i32, String, String),
    exec_stream: (i32, String, String),
    exec_stream_tty: (i32, String),
    hostname: String,
    resolv_conf: String,
    hosts_has_pod: bool,
    shares: String,
    volumes: (String, bool, bool),
    partial_lines: (String, Vec<String>),
    tty_log: String,
    grace_kill: (i32, String, bool),
    shims_per_pod: usize,
    sandbox_runs_pause: bool,
}

fn observe_pod(ctd: &Containerd, rt: Runtime) -> PodObservations {
    let name = format!("web-{rt}");
    let mut config = base_pod_config(ctd, &name, false);
    config.dns_config = Some(api::DnsConfig {
        servers: vec!["10.199.250.53".into()],
        searches: vec!["e2e.svc.cluster.local".into()],
        options: vec!["ndots:5".into()],
    });
    let pod = Pod::run(ctd, rt, config)
        .unwrap_or_else(|e| panic!("{rt}: RunPodSandbox: {e}\n{}", ctd.log_tail(40)));
    let ip = pod.ip();
    assert!(
        ctd.pod_network().contains(&ip),
        "{rt}: pod IP {ip:?} not in {}",
        ctd.pod_network().subnet
    );

    // The server: HTTP on 8080 inside the pod, one line on each stream,
    // volumes as kubelet mounts them.
    let ro = volume_dir(ctd, &format!("{name}-ro"));
    let rw = volume_dir(ctd, &format!("{name}-rw"));
    fs::write(ro.join("config"), "from-the-host\n").unwrap();
    let mut server = pod.container(
        "server",
        &[
            "sh",
            "-c",
            "mkdir -p /www && echo hello-from-pod > /www/index.html && \
             cat /data-ro/config > /data-rw/copied && \
             (touch /data-ro/x 2>/dev/null && echo ro-writable || echo ro-readonly) && \
             echo serving && echo server-err >&2 && exec httpd -f -p 8080 -h /www",
        ],
    );
    // The kubelet writes the pod's /etc/hosts itself and mounts it.
    let hosts = volume_dir(ctd, &format!("{name}-etc"));
    fs::write(
        hosts.join("hosts"),
        format!("127.0.0.1\tlocalhost\n{ip}\t{name}\n"),
    )
    .unwrap();
    server.mounts = vec![
        mount(&ro, "/data-ro", true),
        mount(&rw, "/data-rw", false),
        mount(&hosts.join("hosts"), "/etc/hosts", false),
    ];
    let server_id = pod.start(server);
    pod.wait_state(&server_id, ContainerState::ContainerRunning, LONG);
    // stdout and stderr reach the log through separate copiers: the
    // later line on one stream may be logged before the earlier on the other.
    pod.wait_log("server", "stdout", "serving");
    let log = pod.wait_log("server", "stderr", "server-err");
    let server_stdout = stream_text(&log, "stdout");
    let server_stderr = stream_text(&log, "stderr");
    let volumes = (
        fs::read_to_string(rw.join("copied")).unwrap_or_default(),
        server_stdout.contains("ro-readonly"),
        !ro.join("x").exists(),
    );

    // The client fetches over localhost, prints it and exits 7.
    let client = pod.container(
        "client",
        &[
            "sh",
            "-c",
            "for i in $(seq 100); do wget -q -O - http://127.0.0.1:8080/ && exit 7; \
             sleep 0.1; done; echo no-server >&2; exit 1",
        ],
    );
    let client_id = pod.start(client);
    let status = pod.wait_state(&client_id, ContainerState::ContainerExited, LONG);
    let client_exit = (status.exit_code, status.reason.clone());
    let fetched_in_pod = stream_text(&pod.wait_log("client", "stdout", "hello"), "stdout");

    let fetched_from_host = host_fetch(&format!("http://{ip}:8080/")).stdout;

    if rt == Runtime::Lxcri {
        check_pve_cts(ctd, &pod, &name, &server_id);
    }

    // One shim process serves the whole pod (sandbox, server, client).
    let shims_per_pod = shim_processes(ctd, rt).len();
    let sandbox_pid = sandbox_pid(ctd, &pod.id);
    // Polled: on a loaded machine the pause process may still be on its
    // way from the init's fork to its exec.
    let mut sandbox_processes = Vec::new();
    let sandbox_runs_pause = cmd::poll(Duration::from_secs(10), || {
        sandbox_processes = in_pid_ns_of(sandbox_pid);
        sandbox_processes
            .iter()
            .any(|c| c.contains("sleep 2147483647"))
            .then_some(())
    })
    .is_some();
    assert!(
        sandbox_runs_pause,
        "{rt}: the sandbox does not run: {sandbox_processes:?}"
    );

    // ExecSync: both streams, exit code, and what the pod looks like from
    // inside: hostname, resolv.conf, /etc/hosts, shared namespaces.
    let cri = ctd.cri();
    let r = cri
        .exec_sync(
            &server_id,
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
            30,
        )
        .unwrap_or_else(|e| panic!("{rt}: ExecSync: {e}"));
    let exec_sync = (
        r.exit_code,
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    );
    let sh = |cmd: &str| -> String {
        let r = cri
            .exec_sync(&server_id, &["sh", "-c", cmd], 30)
            .unwrap_or_else(|e| panic!("{rt}: ExecSync {cmd}: {e}"));
        assert_eq!(r.exit_code, 0, "{rt}: {cmd}: {r:?}");
        String::from_utf8_lossy(&r.stdout).into_owned()
    };
    let hostname = sh("hostname").trim().to_string();
    let resolv_conf = sh("cat /etc/resolv.conf");
    let hosts_has_pod = sh("cat /etc/hosts").contains(&format!("{ip}\t{name}\n"));
    // The server shares the sandbox's net, ipc and uts namespaces and has
    // its own pid and mount namespace: compare with the sandbox's init.
    let server_ns =
        sh("for n in net ipc uts pid mnt; do echo $n $(readlink /proc/self/ns/$n); done");
    let shares = server_ns
        .lines()
        .map(|l| {
            let (n, link) = l.split_once(' ').unwrap_or((l, ""));
            let sandbox = fs::read_link(format!("/proc/{sandbox_pid}/ns/{n}"))
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            format!("{n}={}", if link == sandbox { "shared" } else { "own" })
        })
        .collect::<Vec<_>>()
        .join(",");

    // Streaming Exec through containerd's streaming server.
    let exec_stream = exec_streamed(
        ctd,
        rt,
        &server_id,
        "echo streamed; echo stream-err >&2; exit 5",
        false,
    );
    // The same with a terminal (`kubectl exec -it`): one stream, the
    // terminal's line ends.
    let (code, out, _) = exec_streamed(
        ctd,
        rt,
        &server_id,
        "tty >/dev/null && echo on-tty; echo tty-err >&2; exit 4",
        true,
    );
    let exec_stream_tty = (code, out);

    // Stats of a running container: CPU and memory.
    let stats = cri
        .container_stats(&server_id)
        .unwrap_or_else(|e| panic!("{rt}: ContainerStats: {e}"));
    let cpu = stats
        .cpu
        .and_then(|c| c.usage_core_nano_seconds)
        .map(|v| v.value);
    let mem = stats
        .memory
        .and_then(|m| m.working_set_bytes)
        .map(|v| v.value);
    assert!(cpu.is_some_and(|v| v > 0), "{rt}: cpu {cpu:?}");
    assert!(mem.is_some_and(|v| v > 0), "{rt}: memory {mem:?}");
    let listed = cri
        .list_container_stats()
        .unwrap_or_else(|e| panic!("{rt}: ListContainerStats: {e}"));
    assert!(
        listed
            .iter()
            .any(|s| s.attributes.as_ref().is_some_and(|a| a.id == server_id)),
        "{rt}: ListContainerStats lacks the server: {listed:?}"
    );

    // A line longer than containerd's 16 KiB log line limit, then a last
    // line without a newline.
    let partial = pod.start(pod.container(
        "partial",
        &[
            "sh",
            "-c",
            "head -c 40000 /dev/zero | tr '\\0' a; echo; printf tail-no-newline",
        ],
    ));
    pod.wait_state(&partial, ContainerState::ContainerExited, LONG);
    let plog = pod.wait_log("partial", "stdout", "tail-no-newline");
    let partial_lines = (
        stream_text(&plog, "stdout"),
        plog.iter()
            .map(|l| format!("{} {} {}", l.stream, l.tag, l.content.len()))
            .collect(),
    );
    assert!(
        partial_lines
            .0
            .starts_with(&format!("{}\ntail-no-newline", "a".repeat(40000))),
        "{rt}: partial lines reassembled: {:?}",
        partial_lines.1
    );

    // A TTY container: both streams arrive on the terminal, as stdout.
    let mut tty = pod.container("tty", &["sh", "-c", "echo tty-out; echo tty-err >&2"]);
    tty.tty = true;
    let tty_id = pod.start(tty);
    pod.wait_state(&tty_id, ContainerState::ContainerExited, LONG);
    let tlog = pod.wait_log("tty", "stdout", "tty-err");
    let tty_log = tlog
        .iter()
        .map(|l| format!("{} {}", l.stream, l.content.trim_end_matches('\r')))
        .collect::<Vec<_>>()
        .join("\n");

    // StopContainer honours the grace period, then kills.
    let stubborn = pod.start(pod.container(
        "stubborn",
        &[
            "sh",
            "-c",
            "trap '' TERM; echo ready; while true; do sleep 1; done",
        ],
    ));
    pod.wait_log("stubborn", "stdout", "ready");
    let started = Instant::now();
    cri.stop_container(&stubborn, 2)
        .unwrap_or_else(|e| panic!("{rt}: StopContainer: {e}"));
    let waited = started.elapsed();
    let st = pod.wait_state(&stubborn, ContainerState::ContainerExited, LONG);
    let grace_kill = (
        st.exit_code,
        st.reason.clone(),
        waited >= Duration::from_secs(2),
    );

    // Tear down as the kubelet does; nothing may be left.
    let ids: Vec<String> = cri
        .list_containers()
        .unwrap()
        .into_iter()
        .filter(|c| c.pod_sandbox_id == pod.id)
        .map(|c| c.id)
        .collect();
    let pod_id = pod.id.clone();
    let netns = pod.netns();
    pod.remove()
        .unwrap_or_else(|e| panic!("{rt}: removing the pod: {e}\n{}", ctd.log_tail(40)));
    assert_pod_gone(ctd, rt, &pod_id, &ids, netns);

    PodObservations {
        fetched_in_pod,
        fetched_from_host,
        client_exit,
        server_stdout,
        server_stderr,
        exec_sync,
        exec_stream,
        exec_stream_tty,
        hostname,
        resolv_conf,
        hosts_has_pod,
        shares,
        volumes,
        partial_lines,
        tty_log,
        grace_kill,
        shims_per_pod,
        sandbox_runs_pause,
    }
}

/// On the pve backend: the sandbox and the server are CTs tagged with the
/// pod's namespace and name, and they join the pod's namespaces through
/// lxcri's `lxc.include` fragment (the sandbox the CNI netns, the server
/// the sandbox's net, ipc and uts).
fn check_pve_cts(ctd: &Containerd, pod: &Pod, name: &str, server_id: &str) {
    let Some(sim) = ctd.pve() else {
        return;
    };
    let sandbox_pid = sandbox_pid(ctd, &pod.id);
    let netns = pod.netns().expect("the pod has a netns");
    for (id, shares) in [
        (
            pod.id.as_str(),
            vec![format!("lxc.namespace.share.net = {}", netns.display())],
        ),
        (
            server_id,
            ["net", "ipc", "uts"]
                .iter()
                .map(|n| format!("lxc.namespace.share.{n} = /proc/{sandbox_pid}/ns/{n}"))
                .collect(),
        ),
    ] {
        let (vmid, text) = sim
            .ct_of(ctd.namespace(), id)
            .unwrap_or_else(|| panic!("no CT for {id}"));
        let tags = format!("tags: lxcri;ns-e2e;pod-{name}");
        assert!(
            text.lines().any(|l| l == tags),
            "CT {vmid}: {tags:?} in\n{text}"
        );
        let fragment_path = format!("/run/lxcri/{}/{id}/pve-lxc.conf", ctd.namespace());
        let include = format!("lxc.include: {fragment_path}");
        assert!(text.lines().any(|l| l == include), "CT {vmid}: {include:?}");
        let fragment = fs::read_to_string(&fragment_path).unwrap_or_default();
        for line in shares {
            assert!(
                fragment.lines().any(|l| l == line),
                "CT {vmid}: {line:?} in {fragment_path}:\n{fragment}"
            );
        }
    }
}

/// Exec (streaming) of `sh -c script` in container `id`: exit code, stdout,
/// stderr. With `tty` it asks for stdin too, as `kubectl exec -it` does:
/// containerd 1.6 ends a TTY session when stdin ends, and its WebSocket
/// streams give an unrequested stdin that is at EOF at once, which would
/// cut the output short.
fn exec_streamed(
    ctd: &Containerd,
    rt: Runtime,
    id: &str,
    script: &str,
    tty: bool,
) -> (i32, String, String) {
    let url = ctd
        .cri()
        .exec(api::ExecRequest {
            container_id: id.to_string(),
            cmd: vec!["sh".into(), "-c".into(), script.into()],
            tty,
            stdin: tty,
            stdout: true,
            stderr: !tty,
        })
        .unwrap_or_else(|e| panic!("{rt}: Exec {script}: {e}"));
    let s = stream::exec_stream(&url, None, LONG)
        .unwrap_or_else(|e| panic!("{rt}: exec stream {script}: {e}"));
    (
        s.exit_code,
        String::from_utf8_lossy(&s.stdout).into_owned(),
        String::from_utf8_lossy(&s.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn pod_with_two_containers_like_the_kubelet() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let o = observe_pod(&ctd, rt);
        assert_eq!(o.fetched_in_pod, "hello-from-pod\n", "{rt}: {o:#?}");
        assert_eq!(o.fetched_from_host, "hello-from-pod\n", "{rt}: {o:#?}");
        assert_eq!(o.client_exit, (7, "Error".to_string()), "{rt}");
        assert!(o.server_stdout.contains("serving\n"), "{rt}: {o:#?}");
        assert_eq!(o.server_stderr, "server-err\n", "{rt}");
        assert_eq!(o.exec_sync, (3, "out\n".into(), "err\n".into()), "{rt}");
        assert_eq!(
            o.exec_stream,
            (5, "streamed\n".into(), "stream-err\n".into()),
            "{rt}"
        );
        assert_eq!(
            o.exec_stream_tty,
            (4, "on-tty\r\ntty-err\r\n".into()),
            "{rt}"
        );
        assert_eq!(o.hostname, format!("web-{rt}"), "{rt}");
        assert!(
            o.resolv_conf.contains("nameserver 10.199.250.53"),
            "{rt}: {o:#?}"
        );
        assert!(
            o.resolv_conf.contains("search e2e.svc.cluster.local"),
            "{rt}: {o:#?}"
        );
        assert!(o.hosts_has_pod, "{rt}: /etc/hosts lacks the pod");
        assert_eq!(
            o.shares, "net=shared,ipc=shared,uts=shared,pid=own,mnt=own",
            "{rt}"
        );
        assert_eq!(
            o.volumes,
            ("from-the-host\n".to_string(), true, true),
            "{rt}: volumes"
        );
        assert!(
            o.partial_lines.1.iter().any(|l| l.starts_with("stdout P ")),
            "{rt}: no partial entry for a 40000-byte line: {:?}",
            o.partial_lines.1
        );
        assert_eq!(o.tty_log, "stdout tty-out\nstdout tty-err", "{rt}");
        assert_eq!(o.grace_kill, (137, "Error".to_string(), true), "{rt}");
        assert_eq!(o.shims_per_pod, 1, "{rt}: one shim per pod");
        assert!(o.sandbox_runs_pause, "{rt}: the sandbox does not run");
        results.push((rt, o));
    }
    // Identical apart from what names the runtime.
    let normalized: Vec<(Runtime, PodObservations)> = results
        .into_iter()
        .map(|(rt, mut o)| {
            o.hostname = o.hostname.replace(rt.short(), "RT");
            (rt, o)
        })
        .collect();
    assert_same("pod observations", &normalized);
}

#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn host_network_pod_uses_the_host_netns() {
    let ctd = Containerd::start_cri();
    let host_net = fs::read_link("/proc/self/ns/net")
        .unwrap()
        .display()
        .to_string();
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = Pod::run(
            &ctd,
            rt,
            base_pod_config(&ctd, &format!("hostnet-{rt}"), true),
        )
        .unwrap_or_else(|e| panic!("{rt}: RunPodSandbox: {e}\n{}", ctd.log_tail(40)));
        assert_eq!(pod.netns(), None, "{rt}");
        let id = pod.start(pod.container("c", &["sleep", "1000"]));
        pod.wait_state(&id, ContainerState::ContainerRunning, LONG);
        let r = ctd
            .cri()
            .exec_sync(&id, &["readlink", "/proc/self/ns/net"], 30)
            .unwrap_or_else(|e| panic!("{rt}: ExecSync: {e}"));
        let netns = String::from_utf8_lossy(&r.stdout).trim().to_string();
        assert_eq!(netns, host_net, "{rt}: container netns");
        let pod_id = pod.id.clone();
        pod.remove().unwrap();
        assert_pod_gone(&ctd, rt, &pod_id, &[id], None);
        results.push((rt, netns));
    }
    assert_same("hostNetwork netns", &results);
}
