//! OCI config.json -> plan -> rendered LXC config: whatever the spec holds,
//! the translation refuses it with an error or renders a config that LXC
//! reads back (`lxc_reader`) to exactly the planned one.

use std::fs;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{json, Value};

use lxcri::cgroup::CgroupVersion;
use lxcri::lxc::LxcAppArmor;
use lxcri::plan::{plan_container, PlanContext};
use lxcri::security::lsm::HostLsm;

use crate::lxc_reader::read_config;
use crate::{fuzz, hostile, mostly_plain, Case};

fn mount() -> impl Strategy<Value = Value> {
    let destination = mostly_plain("/[a-z]{1,6}(/[a-z0-9 ._-]{1,6}){0,2}", 12);
    let kind = prop_oneof![
        5 => Just("tmpfs".to_string()),
        5 => Just("bind".to_string()),
        2 => Just("mqueue".to_string()),
        2 => Just("proc".to_string()),
        1 => hostile(6),
    ];
    // Bind sources under HOST (made by the case); others name their type.
    let bind_source = mostly_plain("HOST/[a-z]{1,5}( [a-z]{1,3})?", 10);
    let options = vec(
        prop_oneof![
            Just("ro".to_string()),
            Just("nosuid".to_string()),
            Just("mode=755".to_string()),
            Just("size=65536k".to_string()),
            mostly_plain("[a-z]{1,6}(=[a-z0-9]{1,6})?", 8),
        ],
        0..4,
    );
    (destination, kind, bind_source, options).prop_map(|(destination, kind, bind, mut options)| {
        let source = if kind == "bind" {
            options.insert(0, "bind".into());
            bind
        } else {
            kind.clone()
        };
        json!({"destination": destination, "type": kind, "source": source, "options": options})
    })
}

fn rlimit_type() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("RLIMIT_NOFILE".to_string()),
        3 => Just("RLIMIT_NPROC".to_string()),
        3 => Just("RLIMIT_CORE".to_string()),
        1 => mostly_plain("RLIMIT_[A-Z]{1,8}", 8),
    ]
}

fn idmap() -> impl Strategy<Value = Value> {
    (0u32..70_000, 0u32..300_000, 1u32..70_000)
        .prop_map(|(c, h, s)| json!({"containerID": c, "hostID": h, "size": s}))
}

/// A mapping list: mostly ranges one after the other from the container's
/// root (which a user namespace must map), now and then any ranges (most
/// of which the plan refuses: overlaps, no root).
fn idmaps() -> impl Strategy<Value = Vec<Value>> {
    let contiguous = vec(1u32..70_000, 1..3).prop_map(|sizes| {
        let mut start = 0u32;
        sizes
            .into_iter()
            .map(|size| {
                let map = json!({"containerID": start, "hostID": 100_000 + start, "size": size});
                start += size;
                map
            })
            .collect()
    });
    prop_oneof![3 => contiguous, 1 => vec(idmap(), 1..3)]
}

fn spec() -> impl Strategy<Value = Value> {
    let process = (
        vec(mostly_plain("[a-z/]{1,8}", 8), 1..3),
        vec(mostly_plain("[A-Z]{1,4}=[a-z0-9 ]{0,6}", 10), 0..3),
        mostly_plain("/([a-z]{1,5}/?){0,2}", 10),
        any::<u32>(),
        any::<u32>(),
        btree_map(rlimit_type(), (any::<u64>(), any::<u64>()), 0..3),
        proptest::option::of(-1000i32..=1000),
    );
    let linux = (
        // Plain sysctls are the namespaced ones: the rest is refused
        // before anything is rendered, and is hostile enough.
        btree_map(
            mostly_plain(
                "net\\.[a-z_]{1,8}(\\.[a-z]{1,4})?|kernel\\.(msgmax|sem|shmmax|shm_rmid_forced|[a-z_]{1,8})",
                12,
            ),
            mostly_plain("[0-9]{1,6}( [0-9]{1,3})?", 8),
            0..3,
        ),
        btree_map(
            mostly_plain("(memory|cpu|pids|io)\\.[a-z]{1,8}(\\.[a-z]{1,4})?", 12),
            mostly_plain("[0-9a-z]{1,5}( [0-9a-z]{1,3})?", 8),
            0..3,
        ),
        proptest::option::of((idmaps(), idmaps())),
        vec(
            (
                any::<bool>(),
                prop_oneof![Just("a"), Just("c"), Just("b")],
                0i64..300,
            ),
            0..3,
        ),
        // containerd's forms (a path, systemd's slice:prefix:name) and
        // paths that walk or hide a key.
        proptest::option::of(mostly_plain(
            "/([a-z.:]{1,6}/?){1,3}|/[a-z]{1,3}/\\.\\./[a-z]{1,3}|[a-z]{1,6}\\.slice:[a-z]{1,3}:[a-z]{1,4}",
            12,
        )),
        // A time namespace with offsets (seconds or nanoseconds of each
        // clock, some out of range).
        proptest::option::of((
            proptest::option::of(-5_000_000_000i64..5_000_000_000),
            proptest::option::of(0u32..1_100_000_000),
        )),
    );
    (
        proptest::option::of(mostly_plain("[a-z]([a-z0-9-]{0,9}[a-z0-9])?", 12)),
        process,
        vec(mount(), 0..5),
        linux,
    )
        .prop_map(|(hostname, p, mounts, l)| {
            let (args, env, cwd, uid, gid, rlimits, oom) = p;
            let rlimits: Vec<Value> = rlimits
                .into_iter()
                .map(|(t, (a, b))| json!({"type": t, "soft": a.min(b), "hard": a.max(b)}))
                .collect();
            let (sysctl, unified, maps, devices, cgroups_path, time) = l;
            let mut namespaces = vec![
                json!({"type": "pid"}),
                json!({"type": "ipc"}),
                json!({"type": "uts"}),
                json!({"type": "mount"}),
                json!({"type": "network"}),
            ];
            let mut linux = json!({
                "namespaces": [],
                "sysctl": sysctl,
                "resources": {
                    "unified": unified,
                    "devices": devices.iter().map(|(allow, t, major)| json!({
                        "allow": allow, "type": t, "major": major, "access": "rwm"
                    })).collect::<Vec<_>>(),
                },
            });
            if let Some((uids, gids)) = maps {
                namespaces.push(json!({"type": "user"}));
                linux["uidMappings"] = json!(uids);
                linux["gidMappings"] = json!(gids);
            }
            linux["namespaces"] = json!(namespaces);
            if let Some(p) = cgroups_path {
                linux["cgroupsPath"] = json!(p);
            }
            if let Some((secs, nanos)) = time {
                namespaces.push(json!({"type": "time"}));
                linux["namespaces"] = json!(namespaces);
                linux["timeOffsets"] = json!({
                    "boottime": {"secs": secs, "nanosecs": nanos},
                    "monotonic": {"secs": secs.map(|s| -s)},
                });
            }
            let mut spec = json!({
                "ociVersion": "1.0.2",
                "process": {
                    "user": {"uid": uid, "gid": gid},
                    "args": args,
                    "env": env,
                    "cwd": cwd,
                    "rlimits": rlimits,
                },
                "root": {"path": "rootfs"},
                "mounts": mounts,
                "linux": linux,
            });
            if let Some(h) = hostname {
                spec["hostname"] = json!(h);
            }
            if let Some(adj) = oom {
                spec["process"]["oomScoreAdj"] = json!(adj);
            }
            spec
        })
}

/// About half of the specs made here pass validation (134 to 149 of 256
/// seen; the rest carry a hostile field or one of the few plain values
/// lxcri refuses): 1 in 4 is well below that, so only a generator that
/// stopped making valid specs fails here, not an unlucky seed.
const PASS_ONE_IN: u32 = 4;

#[test]
fn spec_to_lxc_config_reads_back_as_planned() {
    fuzz(
        "tests/fuzz/regressions/spec_to_lxc.txt",
        // cgroup v1 or v2, and on v1 whether `linux.resources.unified`
        // (which needs v2) stays: now and then, to see it refused.
        (spec(), any::<bool>(), proptest::bool::weighted(0.1)),
        PASS_ONE_IN,
        |(mut spec, v1, unified_on_v1)| {
            if v1 && !unified_on_v1 {
                spec["linux"]["resources"]["unified"] = json!({});
            }
            let tmp = tempfile::tempdir().unwrap();
            let rootfs = tmp.path().join("rootfs");
            let host = tmp.path().join("host");
            for d in ["proc", "sys", "dev", "tmp", "etc"] {
                fs::create_dir_all(rootfs.join(d)).unwrap();
            }
            // Bind sources the spec names under HOST exist (as directories).
            let mut text = serde_json::to_string(&spec).unwrap();
            text = text.replace("\"HOST/", &format!("\"{}/", host.display()));
            let spec_value: Value = serde_json::from_str(&text).unwrap();
            for m in spec_value["mounts"].as_array().unwrap() {
                if let Some(src) = m["source"].as_str() {
                    if let Some(rel) = src.strip_prefix(&format!("{}/", host.display())) {
                        if !rel.contains(['\n', '\r', '\0']) && !rel.contains("..") {
                            let _ = fs::create_dir_all(host.join(rel));
                        }
                    }
                }
            }
            let path = tmp.path().join("config.json");
            let Ok(spec) = lxcri::spec::parse_spec(&path, text.as_bytes()) else {
                return Ok(Case::Refused);
            };
            let version = if v1 {
                CgroupVersion::V1
            } else {
                CgroupVersion::V2
            };
            let ctx = PlanContext {
                id: "c".into(),
                bundle: tmp.path().to_path_buf(),
                rootfs,
                rootfs_mounted: true,
                run_dir: "/run/lxcri/fuzz/c/run".into(),
                init_binary: "/run/lxcri/fuzz/c/lxcri-init".into(),
                cgroup: version,
                cri: None,
                default_nics: Vec::new(),
                lsm: HostLsm::at(&tmp.path().join("no-lsm")),
                apparmor: LxcAppArmor::Unconfined,
                userns: None,
                nested_userns: false,
                lxc_monitor_cgroup: Some(lxcri::lxc::monitor_cgroup("fuzz_c").unwrap()),
                own_cgroup: lxcri::cgroup::OwnCgroup::Uniform("fuzz".into()),
                cgroup_v1_hierarchies: if v1 {
                    vec![
                        "/sys/fs/cgroup/memory".into(),
                        "/sys/fs/cgroup/cpu,cpuacct".into(),
                    ]
                } else {
                    Vec::new()
                },
            };
            let Ok(plan) = plan_container(&spec, &ctx) else {
                return Ok(Case::Refused);
            };
            let Ok(rendered) = plan.lxc.render() else {
                return Ok(Case::Refused);
            };
            let read = read_config(&rendered, version)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{rendered}")))?;
            prop_assert_eq!(read, plan.lxc, "{}", rendered);
            Ok(Case::Checked)
        },
    );
}
