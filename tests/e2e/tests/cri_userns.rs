//! Kubernetes pods under `userns.unprivileged`: one user namespace per pod,
//! as containerd 2 gives a `hostUsers: false` pod. The sandbox takes a range
//! of `userns.pool`; its containers join its user namespace; the pod's
//! network namespace, made by CNI as the node's root, is still theirs: its
//! interfaces and IP, its sysfs, its sysctls. Everything but the id mapping
//! is what the same pod shows on runc. On pve such pods are refused.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use lxcri_e2e::cri::api::{self, ContainerState};
use lxcri_e2e::cri::inspect::{assert_pod_gone, sandbox_pid};
use lxcri_e2e::cri::network::netns_path;
use lxcri_e2e::cri::node::PLAIN_HANDLER;
use lxcri_e2e::cri::pod::{base_pod_config, handler, mount, volume_dir, Pod};
use lxcri_e2e::{
    assert_same, containerd_version, require, runc_is_1_2_or_later, runtimes, Containerd, Runtime,
    LXCRI_RUN_ROOT,
};

const LONG: Duration = Duration::from_secs(60);

/// What each container of the pod reports; `uid_map` apart, the same on
/// both runtimes.
const PROBE: &str = "ls /sys/class/net | sort | tr '\\n' ' '; echo; \
                     cat /proc/sys/net/ipv4/ip_unprivileged_port_start; \
                     ip -o -4 addr show eth0 | awk '{print $4}'; \
                     for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done 2>/dev/null \
                       | grep -c '^sleep 2147483647' ; \
                     id -u; touch /written && stat -c '%u' /written";

fn slots_taken() -> Vec<String> {
    let dir = Path::new(LXCRI_RUN_ROOT).join(".userns-slots");
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .filter(|owner| owner.starts_with("k8s.io/"))
        .collect()
}

/// Waits until process `pid` has a child.
fn wait_for_child(pid: u32) {
    let children = format!("/proc/{pid}/task/{pid}/children");
    let forked = lxcri_e2e::cmd::poll(LONG, || {
        let list = fs::read_to_string(&children).unwrap_or_default();
        (!list.trim().is_empty()).then_some(())
    });
    assert!(forked.is_some(), "{pid} forked no child");
}

fn enable_node_userns(ctd: &Containerd) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(ctd.lxcri_config_path())
        .unwrap();
    writeln!(f, "\n[userns]\nunprivileged = true").unwrap();
}

/// Runs the pod on `rt` with two containers; returns each container's probe
/// output and uid_map (first line), the sandbox's uid_map, and the pod.
fn probe_pod<'a>(ctd: &'a Containerd, rt: Runtime) -> (Vec<String>, Vec<String>, String, Pod<'a>) {
    let mut config = base_pod_config(ctd, &lxcri_e2e::unique_name("userns-pod"), false);
    config
        .linux
        .as_mut()
        .unwrap()
        .sysctls
        .insert("net.ipv4.ip_unprivileged_port_start".into(), "1000".into());
    // The containers see the sandbox's processes (its pause among them).
    config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
        .expect("namespace options")
        .pid = api::NamespaceMode::Pod as i32;
    let pod = Pod::run(ctd, rt, config)
        .unwrap_or_else(|e| panic!("{rt}: RunPodSandbox: {e}\n{}", ctd.log_tail(40)));
    let pause = sandbox_pid(ctd, &pod.id);
    // The pause shell forks its `sleep` after its start is reported; the
    // probe counts that sleep, so it must be running first (on either runtime).
    wait_for_child(pause);
    let sandbox_map = fs::read_to_string(format!("/proc/{pause}/uid_map"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut probes = Vec::new();
    let mut maps = Vec::new();
    for name in ["one", "two"] {
        let id = pod.start(pod.container(name, &["sleep", "1000"]));
        pod.wait_state(&id, ContainerState::ContainerRunning, LONG);
        let r = ctd
            .cri()
            .exec_sync(&id, &["sh", "-c", PROBE], 30)
            .unwrap_or_else(|e| panic!("{rt}: ExecSync: {e}"));
        let out = String::from_utf8_lossy(&r.stdout).into_owned();
        assert_eq!(
            r.exit_code,
            0,
            "{rt} {name}: {out}{}",
            String::from_utf8_lossy(&r.stderr)
        );
        let map = ctd
            .cri()
            .exec_sync(&id, &["cat", "/proc/self/uid_map"], 30)
            .unwrap();
        maps.push(
            String::from_utf8_lossy(&map.stdout)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        );
        probes.push(out.replace(&pod.ip(), "POD_IP"));
    }
    eprintln!("{rt}: uid_map {maps:?}, probes {probes:?}");
    (probes, maps, sandbox_map, pod)
}

#[test]
#[ignore = "needs root, containerd (CRI) and LXC: run by scripts/test"]
fn a_pod_is_one_user_namespace_in_its_own_network() {
    if !require(Runtime::Lxcri, "pods under userns.unprivileged") {
        return;
    }
    let ctd = Containerd::start_cri();
    enable_node_userns(&ctd);

    if ctd.pve().is_some() {
        let config = base_pod_config(&ctd, &lxcri_e2e::unique_name("userns-pve"), false);
        let err = Pod::run(&ctd, Runtime::Lxcri, config)
            .err()
            .expect("pods under userns.unprivileged are refused on pve");
        assert!(err.to_string().contains("lxc backend"), "{err}");
        assert!(slots_taken().is_empty(), "{:?}", slots_taken());
        lxcri_e2e::cri::inspect::assert_nothing_left(&ctd);
        return;
    }

    let (probes, maps, sandbox_map, pod) = probe_pod(&ctd, Runtime::Lxcri);
    let owners = slots_taken();
    assert_eq!(
        owners,
        [format!("k8s.io/{}", pod.id)],
        "one range, the sandbox's"
    );
    let fields: Vec<&str> = sandbox_map.split(' ').collect();
    assert_eq!((fields[0], fields[2]), ("0", "65536"), "{sandbox_map}");
    let start: u32 = fields[1].parse().unwrap();
    assert!(start >= 1_000_000, "from the pool: {sandbox_map}");
    assert_eq!(
        maps,
        [sandbox_map.clone(), sandbox_map.clone()],
        "containers join the sandbox's"
    );
    // Each container's writes belong to the pod's range on the host.
    for line in probes.iter().map(|p| p.lines().last().unwrap_or("")) {
        assert_eq!(line, "0", "root inside: {probes:?}");
    }
    let netns = netns_path(&ctd.cri().pod_sandbox_status(&pod.id).unwrap());
    let ids: Vec<String> = ctd
        .cri()
        .list_containers()
        .unwrap()
        .into_iter()
        .filter(|c| c.pod_sandbox_id == pod.id)
        .map(|c| c.id)
        .collect();
    for id in &ids {
        let (pid, _) = ctd.task(id).expect("task");
        let m = fs::metadata(format!("/proc/{pid}/root/written")).unwrap();
        assert_eq!(m.uid(), start, "{id}");
    }

    let runc = require(Runtime::Runc, "pods under userns.unprivileged, runc side")
        .then(|| probe_pod(&ctd, Runtime::Runc));
    if let Some((runc_probes, runc_maps, _, runc_pod)) = runc {
        assert_eq!(
            runc_maps[0], "0 0 4294967295",
            "runc's pod has no user namespace"
        );
        assert_same(
            "a pod's network, sysfs, sysctl, pid namespace and root under the node's user namespace vs runc",
            &[
                (Runtime::Lxcri, probes.join("--\n")),
                (Runtime::Runc, runc_probes.join("--\n")),
            ],
        );
        runc_pod.remove().unwrap();
    }

    let pod_id = pod.id.clone();
    pod.remove().unwrap();
    assert_pod_gone(&ctd, Runtime::Lxcri, &pod_id, &ids, netns);
    assert!(
        slots_taken().is_empty(),
        "range not freed: {:?}",
        slots_taken()
    );
}

/// The host ids of the `hostUsers: false` pod's user namespace (the
/// kubelet hands out multiples of 65536).
const POD_HOST_IDS: u32 = 40 * 65536;

/// What the `hostUsers: false` pod's container prints: its root, owners
/// through its volume and `/etc/hosts`, and a file it makes.
const VOLUME_PROBE: &str = "id -u; stat -c '%n %u:%g' /data/root-file /data/user-file /etc/hosts; \
     touch /data/made && stat -c 'made %u:%g' /data/made";

/// A `hostUsers: false` pod as the kubelet asks containerd 2.x for one:
/// a user namespace for the pod (mode POD, the kubelet's mapping), whose
/// volumes and `/etc/hosts` containerd gives that mapping as id-mapped
/// binds (mount `uidMappings`, the kubelet's for volumes): the volume's files show their owners as
/// on the host, to the container's root; what it writes there is stored
/// as the host's root's. lxcri runs on the handler without options:
/// containerd starts such a pod's containers with runc's task options
/// (`IoUid`), which it cannot merge into another runtime's options.
/// Side by side with runc where runc has id-mapped mounts (1.2+).
#[test]
#[ignore = "needs root, containerd (CRI) and LXC: run by scripts/test"]
fn a_host_users_false_pod_sees_its_volume_through_its_mapping() {
    let (major, minor) = containerd_version();
    if major < 2 {
        eprintln!("skipped: containerd {major}.{minor} gives mounts no id mappings (2.0+)");
        return;
    }
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        if rt == Runtime::Runc && !runc_is_1_2_or_later() {
            eprintln!("runc here has no id-mapped mounts (1.2+): lxcri checked alone");
            continue;
        }
        let vol = volume_dir(&ctd, &format!("userns-{rt}"));
        fs::write(vol.join("root-file"), "").unwrap();
        fs::write(vol.join("user-file"), "").unwrap();
        std::os::unix::fs::chown(vol.join("user-file"), Some(1000), Some(1000)).unwrap();
        let map = api::IdMapping {
            host_id: POD_HOST_IDS,
            container_id: 0,
            length: 65536,
        };
        let config = userns_pod_config(
            &ctd,
            "hostusers",
            api::UserNamespace {
                mode: api::NamespaceMode::Pod as i32,
                uids: vec![map],
                gids: vec![map],
            },
        );
        let on = userns_handler(rt);
        let pod = Pod::run_on(&ctd, on, config)
            .unwrap_or_else(|e| panic!("{rt}: RunPodSandbox: {e}\n{}", ctd.log_tail(40)));
        let mut c = pod.container("c", &["sleep", "1000"]);
        // The kubelet gives each of such a pod's volumes the pod's mapping.
        c.mounts.push(api::Mount {
            uid_mappings: vec![map],
            gid_mappings: vec![map],
            ..mount(&vol, "/data", false)
        });
        let id = pod.start(c);
        pod.wait_state(&id, ContainerState::ContainerRunning, LONG);
        let r = ctd
            .cri()
            .exec_sync(&id, &["sh", "-c", VOLUME_PROBE], 30)
            .unwrap_or_else(|e| panic!("{rt}: ExecSync: {e}"));
        let out = String::from_utf8_lossy(&r.stdout).into_owned();
        assert_eq!(
            out,
            "0\n/data/root-file 0:0\n/data/user-file 1000:1000\n/etc/hosts 0:0\nmade 0:0\n",
            "{rt}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let (pid, _) = ctd.task(&id).expect("task");
        let uid_map = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
        assert_eq!(
            uid_map.split_whitespace().collect::<Vec<_>>(),
            ["0", &POD_HOST_IDS.to_string(), "65536"],
            "{rt}"
        );
        let made = fs::metadata(vol.join("made")).unwrap();
        assert_eq!(
            (made.uid(), made.gid()),
            (0, 0),
            "{rt}: stored as the host's root's"
        );
        results.push((rt, out));
        pod.remove().unwrap();
    }
    assert_same("a hostUsers: false pod's volume", &results);
}

/// The handler a pod with a user namespace of containerd's runs on: lxcri
/// on the one without options (containerd gives such a pod's containers
/// runc's task options, `IoUid`, which it cannot merge into another
/// runtime's options).
fn userns_handler(rt: Runtime) -> &'static str {
    match rt {
        Runtime::Lxcri => PLAIN_HANDLER,
        Runtime::Runc => handler(rt),
    }
}

/// A pod with `userns_options`, as cri-tools' `runUserNamespacePodWithError`
/// and `createNamespacePodSandbox` make one.
fn userns_pod_config(
    ctd: &Containerd,
    prefix: &str,
    userns: api::UserNamespace,
) -> api::PodSandboxConfig {
    let mut config = base_pod_config(ctd, &lxcri_e2e::unique_name(prefix), false);
    config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
        .expect("namespace options")
        .userns_options = Some(userns);
    config
}

/// cri-tools' user namespace cases that need no id-mapped mounts
/// (security_context_linux.go, "UserNamespaces", "Host idmap mount support
/// is not needed"): "runtime should support NamespaceMode_NODE" (a
/// container of a pod in the node's user namespace prints the host's
/// `/proc/self/uid_map`), and RunPodSandbox fails "if more than one mapping
/// provided", "if container ID 0 is not mapped", "with
/// NamespaceMode_CONTAINER" and "with NamespaceMode_TARGET", leaving
/// nothing. cri-tools runs them where CRI's Status says the handler has
/// user namespaces (containerd 2.0 on); a pod in mode POD runs lxcri on the
/// handler without options, as `a_host_users_false_pod_sees_its_volume_through_its_mapping`.
#[test]
#[ignore = "needs root, containerd (CRI) and LXC: run by scripts/test"]
fn cri_tools_user_namespace_modes() {
    let (major, minor) = containerd_version();
    if major < 2 {
        eprintln!("skipped: containerd {major}.{minor} has no user namespaces in CRI (2.0+)");
        return;
    }
    let ctd = Containerd::start_cri();
    let map = |container_id, host_id| api::IdMapping {
        container_id,
        host_id,
        length: 100000,
    };
    let pod_mode = |ids: Vec<api::IdMapping>| api::UserNamespace {
        mode: api::NamespaceMode::Pod as i32,
        uids: ids.clone(),
        gids: ids,
    };
    let only_mode = |mode: api::NamespaceMode| api::UserNamespace {
        mode: mode as i32,
        ..Default::default()
    };
    let host_map = fs::read_to_string("/proc/self/uid_map").unwrap();
    let host_map: Vec<Vec<String>> = host_map
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    let mut results = Vec::new();
    for rt in runtimes() {
        let config = userns_pod_config(&ctd, "userns-node", only_mode(api::NamespaceMode::Node));
        let pod = Pod::run(&ctd, rt, config)
            .unwrap_or_else(|e| panic!("{rt}: RunPodSandbox: {e}\n{}", ctd.log_tail(40)));
        let id = pod.start(pod.container("c", &["cat", "/proc/self/uid_map"]));
        pod.wait_state(&id, ContainerState::ContainerExited, LONG);
        let log = lxcri_e2e::cri::pod::stream_text(&pod.log("c"), "stdout");
        let node_map: Vec<Vec<String>> = log
            .lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect();
        pod.remove().unwrap();
        assert_eq!(node_map, host_map, "{rt}: NamespaceMode_NODE's uid_map");

        let on = userns_handler(rt);
        // Each must fail; the one containerd passes on, the unmapped root,
        // in the runtime's create, in runc's words (1.1's and 1.2's share
        // this much).
        let refused: Vec<(&str, bool)> = [
            (
                "more than one mapping",
                pod_mode(vec![map(0, 1000), map(0, 2000)]),
                "",
            ),
            (
                "container ID 0 not mapped",
                pod_mode(vec![map(1, 1000)]),
                "user namespaces enabled, but no",
            ),
            (
                "mode CONTAINER",
                only_mode(api::NamespaceMode::Container),
                "",
            ),
            ("mode TARGET", only_mode(api::NamespaceMode::Target), ""),
        ]
        .into_iter()
        .map(|(case, userns, words)| {
            let config = userns_pod_config(&ctd, "userns-bad", userns);
            match Pod::run_on(&ctd, on, config) {
                Ok(pod) => {
                    pod.remove().unwrap();
                    (case, false)
                }
                Err(e) => {
                    let said = e.to_string().to_lowercase().contains(words);
                    assert!(said, "{rt}: {case}: the error does not say {words:?}: {e}");
                    (case, true)
                }
            }
        })
        .collect();
        lxcri_e2e::cri::inspect::assert_nothing_left(&ctd);
        assert!(
            refused.iter().all(|(_, failed)| *failed),
            "{rt}: RunPodSandbox should fail: {refused:?}\n{}",
            ctd.log_tail(40)
        );
        results.push((rt, (node_map, refused)));
    }
    assert_same("cri-tools' user namespace modes", &results);
}
