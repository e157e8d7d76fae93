use super::*;
use crate::plan::pve::pve_resources;
use crate::plan::{cgroup_settings, Limits};
use crate::runtime::error::RuntimeError;
use oci_spec::runtime::LinuxResources;
use serde_json::json;
use std::fs;
use std::path::Path;

/// What PVE's hotplug writes and lxcri's update does not, for an OCI
/// update: the real `PUT` parameters and the real cgroup settings.
fn left(resources: serde_json::Value, version: CgroupVersion) -> Vec<&'static str> {
    let res: LinuxResources = serde_json::from_value(resources).unwrap();
    let limits = Limits::from_oci(&res).unwrap();
    let params = pve_resources(&limits, version)
        .unwrap()
        .to_update_params()
        .unwrap();
    let settings = cgroup_settings(&res, version).unwrap();
    left_to_pve(&params, version, |f| settings.iter().any(|s| s.file == f))
}

#[test]
fn a_kubelet_resize_leaves_pve_memory_high_on_v2_and_memsw_on_v1() {
    // UpdateContainerResources: quota, period, shares, memory; no swap.
    let resize = json!({
        "cpu": {"quota": 20000, "period": 100000, "shares": 256},
        "memory": {"limit": 134217728}
    });
    assert_eq!(left(resize.clone(), CgroupVersion::V2), ["memory.high"]);
    assert_eq!(
        left(resize, CgroupVersion::V1),
        ["memory.memsw.limit_in_bytes"]
    );
}

#[test]
fn what_the_update_sets_itself_is_not_kept() {
    // v2: a unified memory.high is the update's own.
    let unified = json!({"memory": {"limit": 134217728}, "unified": {"memory.high": "max"}});
    assert!(left(unified, CgroupVersion::V2).is_empty());
    // v1: with swap the update writes memsw; with a period, the period.
    let swap = json!({"memory": {"limit": 134217728, "swap": 268435456}});
    assert!(left(swap.clone(), CgroupVersion::V1).is_empty());
    assert_eq!(left(swap, CgroupVersion::V2), ["memory.high"]);
    // A quota without a period: PVE's 100000 would stay on v1 (v2's
    // cpu.max carries the update's own period).
    let quota = json!({"cpu": {"quota": 50000}});
    assert_eq!(
        left(quota.clone(), CgroupVersion::V1),
        ["cpu.cfs_period_us"]
    );
    assert!(left(quota, CgroupVersion::V2).is_empty());
    // Shares and the cpuset: PVE's cpu.shares/cpu.weight are overwritten,
    // `cores` is no cgroup write.
    let shares = json!({"cpu": {"shares": 512, "cpus": "0"}});
    assert!(left(shares.clone(), CgroupVersion::V1).is_empty());
    assert!(left(shares, CgroupVersion::V2).is_empty());
    // Nothing sent to PVE, nothing to keep.
    assert!(left(json!({"pids": {"limit": 10}}), CgroupVersion::V2).is_empty());
}

/// A CT's cgroup as PVE lays it out: the init in `lxc/100/ns`, the limits
/// on `lxc/100`, under a temporary directory standing in for the mount.
fn ct_cgroup(root: &Path) -> ContainerCgroup {
    fs::create_dir_all(root.join("lxc/100/ns")).unwrap();
    ContainerCgroup::from_proc_cgroup(1, "0::/lxc/100/ns\n", root, CgroupVersion::V2)
        .with_inner("ns")
}

#[test]
fn kept_files_are_read_before_and_written_back_after() {
    let dir = tempfile::tempdir().unwrap();
    let cg = ct_cgroup(dir.path());
    let high = dir.path().join("lxc/100/memory.high");
    fs::write(&high, "max\n").unwrap();
    let kept = Kept::read(100, &cg, &["memory.high"]).unwrap();
    assert_eq!(kept.files, [("memory.high", "max".to_string())]);
    // PVE's hotplug: 1016/1024 of 128 MiB.
    fs::write(&high, "133169152\n").unwrap();
    kept.put_back(&cg).unwrap();
    assert_eq!(fs::read_to_string(&high).unwrap(), "max");
}

#[test]
fn a_file_that_cannot_be_read_or_written_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cg = ct_cgroup(dir.path());
    let e = Kept::read(100, &cg, &["memory.high"]).unwrap_err();
    let RuntimeError::Pve(backend) = &e else {
        panic!("{e:?}")
    };
    assert!(
        matches!(
            **backend,
            PveBackendError::Hotplug {
                vmid: 100,
                step: "reading",
                file: "memory.high",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with("CT 100: reading memory.high"),
        "{e}"
    );
    let gone = Kept {
        vmid: 100,
        files: vec![("memory.memsw.limit_in_bytes", "1".into())],
    };
    fs::remove_dir_all(dir.path().join("lxc")).unwrap();
    let e = gone.put_back(&cg).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("CT 100: putting back memory.memsw.limit_in_bytes"),
        "{e}"
    );
}
