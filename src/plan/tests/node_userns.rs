//! Pods under `userns.unprivileged`: the sandbox gets a new user namespace,
//! its containers join it; the pod's network namespace (the node's) is
//! set up from the host and, for a container, entered before LXC starts.

use serde_json::{json, Value};

use super::*;
use crate::lxc::Namespace;
use crate::userns::IdRange;

const RANGE: IdRange = IdRange {
    host_start: 1_065_536,
    len: 65536,
};
const NETNS: &str = "/var/run/netns/cni-1";

/// A pod member: `pid`, `ipc`, `uts` and `network` joined as containerd
/// writes them, `/sys` read-only and a network sysctl.
fn pod_spec(container: bool) -> Value {
    with(|v| {
        let mut ns = vec![
            json!({"type": "mount"}),
            json!({"type": "network", "path": NETNS}),
        ];
        if container {
            for t in ["pid", "ipc", "uts"] {
                ns.push(json!({"type": t, "path": format!("/proc/42/ns/{t}")}));
            }
            v.as_object_mut().unwrap().remove("hostname");
        } else {
            for t in ["pid", "ipc", "uts"] {
                ns.push(json!({"type": t}));
            }
        }
        v["linux"]["namespaces"] = Value::Array(ns);
        v["linux"]["sysctl"] = json!({
            "net.ipv4.ip_unprivileged_port_start": "0",
            "kernel.shmmax": "1000000"
        });
        mount(
            v,
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ["nosuid", "noexec", "nodev", "ro"]}),
        );
    })
}

fn plan_with(env: &Env, spec: &Value, join: Option<&str>) -> ContainerPlan {
    let spec: Spec = serde_json::from_value(spec.clone()).unwrap();
    let mut ctx = env.ctx(CgroupVersion::V2);
    ctx.userns = Some(NodeUserns {
        range: RANGE,
        join: join.map(PathBuf::from),
    });
    plan_container(&spec, &ctx).unwrap()
}

fn expected_setup() -> HostNetnsSetup {
    HostNetnsSetup {
        netns: NETNS.into(),
        sysfs: vec![HostSysfs {
            destination: "sys".into(),
            flags: SysfsFlags {
                read_only: true,
                nosuid: true,
                nodev: true,
                noexec: true,
            },
        }],
        sysctls: vec![("net.ipv4.ip_unprivileged_port_start".into(), "0".into())],
    }
}

#[test]
fn the_sandbox_gets_a_new_user_namespace_and_joins_the_pods_network() {
    let env = env();
    let p = plan_with(&env, &pod_spec(false), None);
    assert!(p.lxc.namespaces.clone.contains(&Namespace::User));
    assert!(p
        .lxc
        .namespaces
        .share
        .contains(&(Namespace::Net, NETNS.into())));
    assert_eq!(p.lxc.namespaces.inherit_net, None);
    assert_eq!(p.host_netns, Some(expected_setup()));
    let rendered = p.lxc.render().unwrap();
    assert!(
        rendered.contains("lxc.idmap = u 0 1065536 65536\n"),
        "{rendered}"
    );
    assert!(
        !rendered.contains("sysfs"),
        "mounted from the host: {rendered}"
    );
    assert!(!rendered.contains("lxc.sysctl.net."), "{rendered}");
    assert!(
        rendered.contains("lxc.sysctl.kernel.shmmax = 1000000"),
        "{rendered}"
    );
}

#[test]
fn a_container_joins_the_sandboxs_user_namespace_inside_the_pods_network() {
    let env = env();
    let p = plan_with(&env, &pod_spec(true), Some("/proc/42/ns/user"));
    let ns = &p.lxc.namespaces;
    assert!(!ns.clone.contains(&Namespace::User));
    assert!(ns
        .share
        .contains(&(Namespace::User, "/proc/42/ns/user".into())));
    assert!(
        !ns.share.iter().any(|(n, _)| *n == Namespace::Net),
        "LXC would join it after the user namespace: {ns:?}"
    );
    assert_eq!(ns.inherit_net, Some(NETNS.into()));
    assert!(ns.has(Namespace::Net));
    assert_eq!(p.host_netns, Some(expected_setup()));
    let rendered = p.lxc.render().unwrap();
    assert!(!rendered.contains("lxc.namespace.share.net"), "{rendered}");
    assert!(
        rendered.contains("lxc.namespace.share.user = /proc/42/ns/user"),
        "{rendered}"
    );
    assert!(
        rendered.contains("lxc.idmap = g 0 1065536 65536\n"),
        "{rendered}"
    );
}

#[test]
fn a_sysfs_option_the_host_mount_cannot_honour_names_the_mount() {
    let env = env();
    let mut spec = pod_spec(false);
    spec["mounts"].as_array_mut().unwrap().last_mut().unwrap()["options"] =
        json!(["ro", "relatime"]);
    let spec: Spec = serde_json::from_value(spec).unwrap();
    let mut ctx = env.ctx(CgroupVersion::V2);
    ctx.userns = Some(NodeUserns {
        range: RANGE,
        join: None,
    });
    let err = plan_container(&spec, &ctx).unwrap_err().to_string();
    assert!(err.contains("mounts (sysfs at /sys)"), "{err}");
    assert!(err.contains("\"relatime\""), "{err}");
}

#[test]
fn without_a_pod_network_nothing_is_set_up_from_the_host() {
    let env = env();
    let p = plan_with(&env, &base(), None);
    assert_eq!(p.host_netns, None);
    assert_eq!(p.lxc.namespaces.inherit_net, None);
}
