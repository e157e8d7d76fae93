//! Which NICs a container gets, and where they go.

use serde_json::{json, Value};

use super::{env, with, Env};
use crate::cgroup::CgroupVersion;
use crate::network::nic::{NicIndex, NicSpec};
use crate::plan::{plan_container, NetnsTarget, NetworkPlan, Result};
use crate::spec::CriContainerType;

fn plan(
    env: &Env,
    spec: &Value,
    cri: Option<CriContainerType>,
    defaults: &[&str],
) -> Result<Option<NetworkPlan>> {
    let spec = serde_json::from_value(spec.clone()).unwrap();
    let mut ctx = env.ctx(CgroupVersion::V2);
    ctx.cri = cri;
    ctx.default_nics = defaults
        .iter()
        .enumerate()
        .map(|(n, d)| NicSpec::parse(NicIndex::new(n as u8).unwrap(), d, "network.net0").unwrap())
        .collect();
    plan_container(&spec, &ctx).map(|p| p.network)
}

fn annotated(nics: &[(&str, &str)]) -> Value {
    with(|v| {
        let ann: serde_json::Map<String, Value> = nics
            .iter()
            .map(|(k, n)| (k.to_string(), json!(n)))
            .collect();
        v["annotations"] = Value::Object(ann);
    })
}

fn joined_net(mut v: Value, path: &str) -> Value {
    let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
    for n in ns.iter_mut() {
        if n["type"] == "network" {
            n["path"] = json!(path);
        }
    }
    v
}

fn host_net(mut v: Value) -> Value {
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    v
}

fn names(p: &NetworkPlan) -> Vec<String> {
    p.nics.iter().map(|n| n.name.to_string()).collect()
}

#[test]
fn a_ctr_container_gets_its_annotations_or_else_the_defaults_in_its_own_netns() {
    let env = env();
    let spec = annotated(&[
        ("io.lxcri.net1", "name=eth1,bridge=br0"),
        ("io.lxcri.net0", "name=eth0,bridge=br0,tag=10"),
    ]);
    let p = plan(&env, &spec, None, &["name=def0,bridge=br9"])
        .unwrap()
        .unwrap();
    assert_eq!(p.netns, NetnsTarget::Own);
    assert_eq!(
        names(&p),
        ["eth0", "eth1"],
        "by index, defaults not mixed in"
    );
    let p = plan(&env, &with(|_| {}), None, &["name=def0,bridge=br9"])
        .unwrap()
        .unwrap();
    assert_eq!(names(&p), ["def0"]);
    assert_eq!(plan(&env, &with(|_| {}), None, &[]).unwrap(), None);
}

#[test]
fn a_pods_nics_go_into_the_sandboxs_namespace_and_not_again_for_its_containers() {
    let env = env();
    let spec = joined_net(
        annotated(&[("io.lxcri.net0", "name=net1,bridge=br0,tag=30")]),
        "/var/run/netns/cni-1",
    );
    let p = plan(&env, &spec, Some(CriContainerType::Sandbox), &["name=def0"])
        .unwrap()
        .unwrap();
    assert_eq!(p.netns, NetnsTarget::Pod("/var/run/netns/cni-1".into()));
    assert_eq!(names(&p), ["net1"]);
    let app = joined_net(
        annotated(&[("io.lxcri.net0", "name=net1,bridge=br0,tag=30")]),
        "/proc/42/ns/net",
    );
    assert_eq!(
        plan(&env, &app, Some(CriContainerType::Container), &[]).unwrap(),
        None
    );
    // A pod without annotations keeps CNI's interface alone: no defaults.
    let bare = joined_net(with(|_| {}), "/var/run/netns/cni-1");
    assert_eq!(
        plan(&env, &bare, Some(CriContainerType::Sandbox), &["name=def0"]).unwrap(),
        None
    );
}

#[test]
fn annotations_on_a_namespace_that_is_not_the_containers_are_refused() {
    let env = env();
    let ann = [("io.lxcri.net0", "name=eth1,bridge=br0")];
    let e = plan(
        &env,
        &host_net(annotated(&ann)),
        Some(CriContainerType::Sandbox),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("io.lxcri.net0: not supported") && e.contains("hostNetwork"),
        "{e}"
    );
    let e = plan(
        &env,
        &joined_net(annotated(&ann), "/run/netns/x"),
        None,
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("joins a network namespace it did not make"),
        "{e}"
    );
    // Defaults simply do not apply there.
    assert_eq!(
        plan(&env, &host_net(with(|_| {})), None, &["name=def0"]).unwrap(),
        None
    );
}

#[test]
fn one_gateway_of_each_family_may_go_on_different_nics() {
    let env = env();
    let spec = annotated(&[
        ("io.lxcri.net0", "name=eth0,ip=10.0.0.2/24,gw=10.0.0.1"),
        (
            "io.lxcri.net1",
            "name=eth1,ip=10.1.0.2/24,ip6=fd01::2/64,gw6=fd01::1",
        ),
    ]);
    let p = plan(&env, &spec, None, &[]).unwrap().unwrap();
    assert_eq!(names(&p), ["eth0", "eth1"]);
    // Defaults are checked alike.
    let e = plan(
        &env,
        &with(|_| {}),
        None,
        &[
            "name=d0,ip=10.0.0.2/24,gw=10.0.0.1",
            "name=d1,ip=10.0.0.3/24,gw=10.0.0.1",
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("gw=10.0.0.1: network.net0 has gw=10.0.0.1 already"),
        "{e}"
    );
}

#[test]
fn bad_annotations_name_themselves() {
    let env = env();
    let cases = [
        (
            vec![("io.lxcri.net0", "name=eth0,tag=5000,bridge=br0")],
            "io.lxcri.net0: tag: \"5000\" is not a VLAN id",
        ),
        (
            vec![("io.lxcri.net10", "name=eth0")],
            "io.lxcri.net10: unknown lxcri annotation",
        ),
        (
            vec![("io.lxcri.nic0", "name=eth0")],
            "io.lxcri.nic0: unknown lxcri annotation",
        ),
        (
            vec![
                ("io.lxcri.net0", "name=eth1"),
                ("io.lxcri.net3", "name=eth1,bridge=br0"),
            ],
            "io.lxcri.net3: name=eth1 is also io.lxcri.net0's",
        ),
        (
            vec![
                ("io.lxcri.net0", "name=eth0,ip=10.0.0.2/24,gw=10.0.0.1"),
                ("io.lxcri.net2", "name=eth2,ip=10.2.0.2/24,gw=10.2.0.1"),
            ],
            "io.lxcri.net2: gw=10.2.0.1: io.lxcri.net0 has gw=10.0.0.1 already; a network namespace has one default route per family",
        ),
        (
            vec![
                ("io.lxcri.net0", "name=eth0,ip6=fd00::2/64,gw6=fd00::1"),
                ("io.lxcri.net1", "name=eth1,ip=10.1.0.2/24"),
                ("io.lxcri.net2", "name=eth2,ip6=fd02::2/64,gw6=fd02::1"),
            ],
            "io.lxcri.net2: gw6=fd02::1: io.lxcri.net0 has gw6=fd00::1 already",
        ),
        (
            vec![("io.lxcri.net0", "name=eth0,bridge=br0\nlxc.net.0.type=phys")],
            "io.lxcri.net0: contains the control character",
        ),
    ];
    for (ann, says) in cases {
        let e = plan(&env, &annotated(&ann), None, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{ann:?}: {e}");
    }
}
