//! `linux.cgroupsPath`, where the container's cgroup goes, and the cgroup
//! namespace LXC makes unasked.

use serde_json::json;

use super::{env, with};
use crate::cgroup::{CgroupPath, CgroupPlacement, OwnCgroup};
use crate::plan::{plan_container, CgroupVersion};

fn with_path(path: &str) -> serde_json::Value {
    with(|v| v["linux"]["cgroupsPath"] = json!(path))
}

#[test]
fn an_absolute_path_places_the_container_and_its_monitor() {
    let env = env();
    let plan = env
        .plan(&with_path("/kubepods/besteffort/pod1/../pod2/c1"))
        .unwrap();
    let out = plan.lxc.render().unwrap();
    assert!(
        out.contains(
            "lxc.cgroup.dir.container = kubepods/besteffort/pod2/c1\n\
             lxc.cgroup.dir.monitor = lxc.monitor.default_c1\n"
        ),
        "{out}"
    );
    assert_eq!(
        plan.cgroup,
        CgroupPlacement::Path(CgroupPath::parse("kubepods/besteffort/pod2/c1").unwrap())
    );
    // The PVE fragment never names cgroup dirs: PVE writes `lxc/VMID`.
    assert!(!plan
        .lxc
        .render_pve_fragment()
        .unwrap()
        .contains("lxc.cgroup.dir"));
}

#[test]
fn without_a_path_lxc_names_the_cgroups() {
    let env = env();
    let plan = env.plan(&with(|_| {})).unwrap();
    assert_eq!(plan.cgroup, CgroupPlacement::RuntimeDefault);
    assert!(!plan.lxc.render().unwrap().contains("lxc.cgroup.dir"));
}

#[test]
fn systemds_form_and_a_backend_that_names_its_own_keep_the_default() {
    let env = env();
    let plan = env
        .plan(&with_path(
            "kubepods-besteffort-pod1.slice:cri-containerd:c1",
        ))
        .unwrap();
    assert!(matches!(plan.cgroup, CgroupPlacement::SystemdUnit { .. }));
    assert_eq!(plan.lxc.cgroup_dirs, None);

    let spec = serde_json::from_value(with_path("/default/c1")).unwrap();
    let mut ctx = env.ctx(CgroupVersion::V2);
    ctx.lxc_monitor_cgroup = None;
    let plan = plan_container(&spec, &ctx).unwrap();
    assert!(matches!(plan.cgroup, CgroupPlacement::Path(_)));
    assert_eq!(plan.lxc.cgroup_dirs, None);
    // Nor does lxcri's own cgroup matter where the path is not followed.
    let spec = serde_json::from_value(with_path("pods/c1")).unwrap();
    ctx.own_cgroup = OwnCgroup::Mixed("memory=/a, cpu=/".into());
    assert!(matches!(
        plan_container(&spec, &ctx).unwrap().cgroup,
        CgroupPlacement::Relative(_)
    ));
}

#[test]
fn a_path_lxcri_cannot_follow_fails_naming_the_field() {
    let env = env();
    for (path, words) in [
        ("/", "root cgroup"),
        ("/a/..b", "contains '..'"),
        ("/a/b\n", "control character"),
        ("a.slice:p:", "empty name"),
    ] {
        let e = env.err(&with_path(path));
        assert!(e.starts_with("linux.cgroupsPath: "), "{path:?}: {e}");
        assert!(e.contains(words), "{path:?}: {e}");
    }
}

#[test]
fn a_relative_path_is_below_lxcris_own_cgroup_or_refused() {
    let env = env();
    let spec = serde_json::from_value(with_path("pods/c1")).unwrap();
    let mut ctx = env.ctx(CgroupVersion::V2);
    ctx.own_cgroup = OwnCgroup::Uniform("system.slice/containerd.service".into());
    let plan = plan_container(&spec, &ctx).unwrap();
    assert!(plan
        .lxc
        .render()
        .unwrap()
        .contains("lxc.cgroup.dir.container = system.slice/containerd.service/pods/c1\n"));

    ctx.own_cgroup = OwnCgroup::Mixed("memory=/a, cpu=/".into());
    let e = plan_container(&spec, &ctx).unwrap_err().to_string();
    assert!(
        e.starts_with("linux.cgroupsPath: not supported by lxcri: ") && e.contains("memory=/a"),
        "{e}"
    );
}

#[test]
fn a_container_joining_a_namespace_joins_the_runtimes_cgroup_namespace_back() {
    let env = env();
    let pod_on = |version: CgroupVersion, f: &dyn Fn(&mut serde_json::Value)| {
        let spec = serde_json::from_value(with(|v| {
            v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"},
                {"type": "uts"}, {"type": "network", "path": "/proc/1/ns/net"}]);
            f(v);
        }))
        .unwrap();
        plan_container(&spec, &env.ctx(version))
            .unwrap()
            .init
            .join_runtime_cgroupns
    };
    let pod = |f: &dyn Fn(&mut serde_json::Value)| pod_on(CgroupVersion::V1, f);
    // On v2 LXC's cgroup2 mount is rooted at the container's cgroup, in
    // its namespace: that stays as it is.
    assert!(!pod_on(CgroupVersion::V2, &|_| {}));
    assert!(
        pod(&|_| {}),
        "shares a namespace, asks for no cgroup namespace"
    );
    assert!(
        !pod(&|v| v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}))),
        "asks for one"
    );
    assert!(
        !pod(&|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            v["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            v["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        }),
        "no CAP_SYS_ADMIN over the node's namespaces from a user namespace"
    );
    // Nothing joined: LXC makes no cgroup namespace the spec did not list.
    let alone = serde_json::from_value(with(|_| {})).unwrap();
    assert!(
        !plan_container(&alone, &env.ctx(CgroupVersion::V1))
            .unwrap()
            .init
            .join_runtime_cgroupns
    );
}

#[test]
fn on_cgroup_v1_the_cgroup_mount_binds_the_containers_own_as_runc() {
    let env = env();
    let spec = serde_json::from_value(with(|v| {
        v["linux"]["cgroupsPath"] = json!("/k8s.io/c1");
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/sys/fs/cgroup",
            "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]}));
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/tmp",
            "type": "tmpfs", "source": "tmpfs"}));
    }))
    .unwrap();
    let mut ctx = env.ctx(CgroupVersion::V1);
    ctx.cgroup_v1_hierarchies = ["cpu,cpuacct", "memory"]
        .map(|h| std::path::PathBuf::from("/sys/fs/cgroup").join(h))
        .to_vec();
    let plan = plan_container(&spec, &ctx).unwrap();
    let out = plan.lxc.render().unwrap();
    let entries: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("lxc.mount.entry"))
        .collect();
    // In the spec's place: after /proc, before /tmp.
    assert_eq!(
        entries[3..7],
        [
            "lxc.mount.entry = tmpfs sys/fs/cgroup tmpfs nosuid,nodev,noexec,mode=755,create=dir 0 0",
            "lxc.mount.entry = /sys/fs/cgroup/cpu,cpuacct/k8s.io/c1 sys/fs/cgroup/cpu,cpuacct none bind,ro,nosuid,nodev,noexec,create=dir 0 0",
            "lxc.mount.entry = /sys/fs/cgroup/memory/k8s.io/c1 sys/fs/cgroup/memory none bind,ro,nosuid,nodev,noexec,create=dir 0 0",
            "lxc.mount.entry = tmpfs tmp tmpfs mode=1777,create=dir 0 0",
        ],
        "{out}"
    );
    assert!(!out.contains("cgroup:ro"), "{out}");
    assert_eq!(plan.init.symlinks.len(), 2);

    // In a user namespace (binds staged before the cgroup exists), or where
    // the cgroup is LXC's own or PVE's, LXC mounts it (cgroup:ro).
    let mut userns = ctx.clone();
    userns.userns = Some(crate::plan::NodeUserns {
        range: crate::userns::IdRange {
            host_start: 100_000,
            len: 65_536,
        },
        join: None,
    });
    let out = plan_container(&spec, &userns)
        .unwrap()
        .lxc
        .render()
        .unwrap();
    assert!(out.contains("lxc.mount.auto = cgroup:ro:force"), "{out}");
    ctx.lxc_monitor_cgroup = None;
    let out = plan_container(&spec, &ctx).unwrap().lxc.render().unwrap();
    assert!(out.contains("lxc.mount.auto = cgroup:ro:force"), "{out}");
}

#[test]
fn the_cgroup_mounts_keep_their_place_when_binds_inside_binds_move_out() {
    let env = env();
    let vol = env.host.join("dir/vol");
    std::fs::create_dir_all(&vol).unwrap();
    let spec = serde_json::from_value(with(|v| {
        v["linux"]["cgroupsPath"] = json!("/k8s.io/c1");
        let mounts = v["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/data", "type": "bind", "source": vol, "options": ["rbind"]}));
        // Made inside the container by the helper: out of LXC's list.
        mounts.push(json!({"destination": "/data/sub", "type": "bind", "source": vol, "options": ["rbind"]}));
        mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["ro"]}));
    }))
    .unwrap();
    let mut ctx = env.ctx(CgroupVersion::V1);
    ctx.cgroup_v1_hierarchies = vec!["/sys/fs/cgroup/memory".into()];
    let out = plan_container(&spec, &ctx).unwrap().lxc.render().unwrap();
    let destinations: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("lxc.mount.entry = "))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        destinations[3..],
        ["data", "sys/fs/cgroup", "sys/fs/cgroup/memory"],
        "{out}"
    );
}
