//! `linux.resources` -> cgroup settings and device rules.

use serde_json::{json, Value};

use crate::cgroup::CgroupVersion;
use crate::plan::{blkio_to_io_weight, cgroup_settings, device_rules, shares_to_weight};

fn resources(v: Value) -> oci_spec::runtime::LinuxResources {
    serde_json::from_value(v).unwrap()
}

fn settings(v: Value, cg: CgroupVersion) -> Vec<(String, String)> {
    cgroup_settings(&resources(v), cg)
        .unwrap()
        .into_iter()
        .map(|s| (s.file, s.value))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn cgroup_v2_conversions() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(blkio_to_io_weight(10), 1);
    assert_eq!(blkio_to_io_weight(500), 4950);
    assert_eq!(blkio_to_io_weight(1000), 10_000);
    let v2 = CgroupVersion::V2;
    assert_eq!(
        settings(
            json!({"memory": {"limit": 100, "swap": -1}, "cpu": {"quota": -1}, "pids": {"limit": 0}}),
            v2
        ),
        pairs(&[
            ("memory.max", "100"),
            ("memory.swap.max", "max"),
            ("cpu.max", "max 100000"),
            ("pids.max", "max")
        ])
    );
    assert_eq!(
        settings(
            json!({"memory": {"limit": 100, "swap": 300}, "cpu": {"quota": 5000, "period": 10000}}),
            v2
        ),
        pairs(&[
            ("memory.max", "100"),
            ("memory.swap.max", "200"),
            ("cpu.max", "5000 10000")
        ])
    );
    let err = cgroup_settings(&resources(json!({"memory": {"swap": 300}})), v2).unwrap_err();
    assert!(
        err.to_string().starts_with("linux.resources.memory.swap:"),
        "{err}"
    );
    let err = cgroup_settings(
        &resources(json!({"memory": {"limit": 300, "swap": 100}})),
        v2,
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("linux.resources.memory.swap:"),
        "{err}"
    );
    let err =
        cgroup_settings(&resources(json!({"unified": {"cgroup.procs": "1"}})), v2).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.resources.unified[\"cgroup.procs\"]:"),
        "{err}"
    );
}

#[test]
fn cgroup_v1_files_and_v1_only_errors() {
    let v1 = CgroupVersion::V1;
    assert_eq!(
        settings(
            json!({"memory": {"limit": 100, "swap": 300}, "cpu": {"shares": 512}, "pids": {"limit": 64}}),
            v1
        ),
        pairs(&[
            ("memory.limit_in_bytes", "100"),
            ("memory.memsw.limit_in_bytes", "300"),
            ("cpu.shares", "512"),
            ("pids.max", "64")
        ])
    );
    let err =
        cgroup_settings(&resources(json!({"unified": {"memory.high": "1"}})), v1).unwrap_err();
    assert!(
        err.to_string().starts_with("linux.resources.unified:")
            && err.to_string().contains("cannot use unified on cgroup v1"),
        "{err}"
    );
    let err = cgroup_settings(&resources(json!({"cpu": {"idle": 1}})), v1).unwrap_err();
    assert!(
        err.to_string().starts_with("linux.resources.cpu.idle:"),
        "{err}"
    );
    let err = cgroup_settings(
        &resources(json!({"memory": {"swappiness": 10}})),
        CgroupVersion::V2,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.resources.memory.swappiness:"),
        "{err}"
    );
}

#[test]
fn device_rule_errors() {
    let err = device_rules(
        Some(&resources(
            json!({"devices": [{"allow": true, "type": "c", "access": "rwx"}]}),
        )),
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.resources.devices[0].access:"),
        "{err}"
    );
    let err = device_rules(
        Some(&resources(
            json!({"devices": [{"allow": true, "type": "p"}]}),
        )),
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.resources.devices[0].type:"),
        "{err}"
    );
    assert!(device_rules(None, &[]).unwrap().is_empty());
}

/// The kubelet's limits: 0 for each page size the node has.
#[test]
fn huge_page_limits_are_runcs_files() {
    let kubelet = json!({"hugepageLimits": [
        {"pageSize": "2MB", "limit": 0},
        {"pageSize": "1GB", "limit": 2147483648u64}
    ]});
    assert_eq!(
        settings(kubelet.clone(), CgroupVersion::V1),
        pairs(&[
            ("hugetlb.2MB.limit_in_bytes", "0"),
            ("hugetlb.1GB.limit_in_bytes", "2147483648")
        ])
    );
    assert_eq!(
        settings(kubelet, CgroupVersion::V2),
        pairs(&[("hugetlb.2MB.max", "0"), ("hugetlb.1GB.max", "2147483648")])
    );
    for bad in [
        "2M",
        "2mb",
        "../2MB",
        "02MB",
        "MB",
        "2MB.rsvd",
        "2 MB",
        "",
        "9999999MB",
    ] {
        let err = cgroup_settings(
            &resources(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}, {"pageSize": bad, "limit": 0}]})),
            CgroupVersion::V2,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("linux.resources.hugepageLimits[1].pageSize:"),
            "{bad:?}: {err}"
        );
    }
}
