//! One test per error path (and the cases next to them that must work).

use std::fs;

use lxcri_init_spec::{DeviceNode, DeviceNodeKind};
use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::{base, env, mount, with};
use crate::plan::plan_process;

#[test]
fn base_spec_plans() {
    let env = env();
    let plan = env.plan(&base()).unwrap();
    let out = plan.lxc.render().unwrap();
    assert!(out.contains("lxc.uts.name = box\n"));
    assert!(
        out.contains("lxc.namespace.clone = mnt pid net ipc uts\n"),
        "{out}"
    );
    assert!(out.contains("lxc.net.0.type = empty\n"));
    let entries: Vec<_> = out
        .lines()
        .filter(|l| l.starts_with("lxc.mount.entry"))
        .collect();
    assert_eq!(
        entries,
        [
            "lxc.mount.entry = /run/lxcri/default/golden/run .lxcri none bind,create=dir 0 0",
            "lxc.mount.entry = /run/lxcri/default/golden/lxcri-init .lxcri/lxcri-init none bind,ro 0 0",
            "lxc.mount.entry = proc proc proc create=dir 0 0",
        ]
    );
    assert_eq!(plan.init.process.args, ["sh"]);
    assert!(plan.init.process.seccomp.is_none());
}

#[test]
fn hostname_errors() {
    let env = env();
    let err = env.err(&with(|v| {
        v["hostname"] = json!("box\nlxc.cap.keep = sys_admin")
    }));
    assert!(err.starts_with("hostname:"), "{err}");
    let err = env.err(&with(|v| {
        v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
    }));
    assert!(err.starts_with("hostname:") && err.contains("UTS"), "{err}");
    // A joined UTS namespace keeps the hostname its owner set.
    let plan = env
        .plan(&with(|v| {
            v["linux"]["namespaces"] =
                json!([{"type": "mount"}, {"type": "uts", "path": "/proc/1/ns/uts"}]);
        }))
        .unwrap();
    assert_eq!(plan.lxc.uts_name, None);
}

/// runc sets it with setdomainname(2); LXC writes the same value as the
/// UTS sysctl, and a `kernel.domainname` in `linux.sysctl` wins (runc sets
/// the sysctls after).
#[test]
fn domainname_is_the_uts_sysctl() {
    let env = env();
    let plan = env
        .plan(&with(|v| {
            v["domainname"] = json!("example.org");
            v["linux"]["sysctl"] = json!({"kernel.shmmax": "1000000"});
        }))
        .unwrap();
    let out = plan.lxc.render().unwrap();
    assert!(
        out.contains(
            "lxc.sysctl.kernel.domainname = example.org\nlxc.sysctl.kernel.shmmax = 1000000\n"
        ),
        "{out}"
    );
    let plan = env
        .plan(&with(|v| {
            v["domainname"] = json!("example.org");
            v["linux"]["sysctl"] = json!({"kernel.domainname": "from.sysctl"});
        }))
        .unwrap();
    assert_eq!(
        plan.lxc.sysctls,
        [("kernel.domainname".to_string(), "from.sysctl".to_string())]
    );
    for (name, why) in [
        ("x".repeat(65), "64 bytes"),
        (" padded".to_string(), "whitespace"),
        ("a\nlxc.cap.keep = sys_admin".to_string(), "control"),
    ] {
        let err = env.err(&with(|v| v["domainname"] = json!(name)));
        assert!(err.starts_with("domainname:") && err.contains(why), "{err}");
    }
    let err = env.err(&with(|v| {
        v["domainname"] = json!("example.org");
        v["hostname"] = json!("");
        v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
    }));
    assert!(
        err.starts_with("domainname:") && err.contains("UTS"),
        "{err}"
    );
}

#[test]
fn sysctl_errors() {
    let env = env();
    let err = env.err(&with(|v| {
        v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1\nlxc.x = y"})
    }));
    assert!(
        err.starts_with("linux.sysctl[\"net.ipv4.ip_forward\"]:"),
        "{err}"
    );
    let err = env.err(&with(|v| {
        v["linux"]["sysctl"] = json!({"vm.swappiness": "10"})
    }));
    assert!(
        err.contains("vm.swappiness") && err.contains("not namespaced"),
        "{err}"
    );
    let err = env.err(&with(|v| v["linux"]["sysctl"] = json!({"net.x y": "1"})));
    assert!(err.contains("not a sysctl name"), "{err}");
    let err = env.err(&with(|v| {
        v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
        v["linux"]["sysctl"] = json!({"net.core.somaxconn": "1024"});
    }));
    assert!(err.contains("network namespace"), "{err}");
}

#[test]
fn mount_destination_errors() {
    let env = env();
    // Relative: read from the root, as runc reads it.
    let plan = env
        .plan(&with(|v| {
            mount(
                v,
                json!({"destination": "data", "type": "tmpfs", "source": "tmpfs"}),
            )
        }))
        .unwrap();
    let out = plan.lxc.render().unwrap();
    assert!(out.contains("lxc.mount.entry = tmpfs data tmpfs "), "{out}");
    // At or under /proc as runc allows (src/plan/proc_mount.rs).
    let err = env.err(&with(|v| {
        mount(
            v,
            json!({"destination": "/proc", "type": "bind", "source": "/tmp"}),
        )
    }));
    assert!(
        err.starts_with("mounts[2].destination:") && err.contains("not of type proc"),
        "{err}"
    );
    let err = env.err(&with(|v| {
        mount(v, json!({"destination": "/proc/x/../foo", "type": "tmpfs"}))
    }));
    assert!(
        err.contains(r#""/proc/foo" cannot be mounted because it is inside /proc"#),
        "{err}"
    );
    let err = env.err(&with(|v| {
        mount(v, json!({"destination": "/etc/escape/x", "type": "tmpfs"}))
    }));
    assert!(
        err.starts_with("mounts[2].destination:") && err.contains("escapes"),
        "{err}"
    );
    let err = env.err(&with(|v| {
        mount(v, json!({"destination": "/a/../../x", "type": "tmpfs"}))
    }));
    assert!(err.starts_with("mounts[2].destination:"), "{err}");
    let err = env.err(&with(|v| {
        mount(v, json!({"destination": "/.lxcri/x", "type": "tmpfs"}))
    }));
    assert!(
        err.starts_with("mounts[2].destination:") && err.contains("reserved"),
        "{err}"
    );
}

#[test]
fn mount_source_and_type_errors() {
    let env = env();
    let err = env.err(&with(|v| {
        mount(v, json!({"destination": "/data", "type": "bind", "source": "/nonexistent/lxcri-test", "options": ["rbind"]}))
    }));
    assert!(
        err.starts_with("mounts[2].source:") && err.contains("does not exist"),
        "{err}"
    );
    let err = env.err(&with(|v| {
        mount(
            v,
            json!({"destination": "/data", "type": "bind", "source": "rel"}),
        )
    }));
    assert!(err.starts_with("mounts[2].source:"), "{err}");
    let err = env.err(&with(|v| {
        mount(
            v,
            json!({"destination": "/data", "type": "ext4", "source": "/dev/sda1"}),
        )
    }));
    assert!(
        err.starts_with("mounts[2].type:") && err.contains("\"ext4\""),
        "{err}"
    );
    let err = env.err(&with(|v| {
        mount(
            v,
            json!({"destination": "/tmp", "type": "tmpfs", "options": ["tmpcopyup"]}),
        )
    }));
    assert!(err.starts_with("mounts[2].options[0]:"), "{err}");
    let err = env.err(&with(|v| {
        mount(
            v,
            json!({"destination": "/tmp", "type": "tmpfs", "options": ["create=file"]}),
        )
    }));
    assert!(err.starts_with("mounts[2].options[0]:"), "{err}");
    let err =
        env.err(&with(
            |v| v["mounts"][1] = json!({"destination": "/dev", "type": "bind", "source": "/dev"}),
        ));
    assert!(err.starts_with("mounts[1]:"), "{err}");
    let err = env.err(&with(|v| {
        mount(
            v,
            json!({"destination": "/cg", "type": "cgroup", "source": "cgroup"}),
        )
    }));
    assert!(err.starts_with("mounts[2].destination:"), "{err}");
}

#[test]
fn bind_sources_pick_create_dir_or_file_and_newlines_never_reach_the_config() {
    let env = env();
    let dir = env.host.join("d");
    let file = env.host.join("f");
    fs::create_dir_all(&dir).unwrap();
    fs::write(&file, "").unwrap();
    let plan = env
        .plan(&with(|v| {
            mount(v, json!({"destination": "/d", "type": "bind", "source": dir, "options": ["rbind", "ro"]}));
            mount(v, json!({"destination": "/f", "source": file, "options": ["bind"]}));
        }))
        .unwrap();
    let opts: Vec<_> = plan.lxc.mounts[3..]
        .iter()
        .map(|m| m.options.join(","))
        .collect();
    assert_eq!(opts, ["rbind,ro,create=dir", "bind,create=file"]);

    let evil = env.host.join("x\nlxc.cap.keep = sys_admin");
    fs::write(&evil, "").unwrap();
    let err = env.err(&with(|v| {
        mount(
            v,
            json!({"destination": "/x", "type": "bind", "source": evil}),
        )
    }));
    assert!(err.contains("lxc.mount.entry"), "{err}");
}

#[test]
fn cgroup_mount_becomes_mount_auto() {
    let env = env();
    let plan = env
        .plan(&with(|v| mount(v, json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]}))))
        .unwrap();
    assert_eq!(
        plan.lxc.mount_auto_cgroup,
        Some(crate::lxc::CgroupAuto::ReadOnly)
    );
    assert_eq!(plan.lxc.mounts.len(), 3);
}

#[test]
fn process_errors() {
    let env = env();
    let cases: Vec<(Value, &str)> = vec![
        (
            with(|v| v["process"]["args"] = json!([])),
            "process.args: args must not be empty",
        ),
        (
            with(|v| v["process"]["cwd"] = json!("work")),
            "process.cwd:",
        ),
        (
            with(|v| v["process"]["env"] = json!(["A=1", "NOEQUALS"])),
            "process.env[1]:",
        ),
        (
            with(|v| v["process"]["apparmorProfile"] = json!("p\nx")),
            "process.apparmorProfile:",
        ),
        (
            with(|v| v["process"]["apparmorProfile"] = json!("not-loaded")),
            "process.apparmorProfile: AppArmor profile \"not-loaded\" is not loaded",
        ),
        (
            with(|v| v["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0")),
            "process.selinuxLabel: an SELinux label is set, but SELinux is not enabled",
        ),
        (
            with(|v| v["process"]["selinuxLabel"] = json!("container_t")),
            "process.selinuxLabel: \"container_t\" is not an SELinux context",
        ),
        (
            with(|v| v["process"]["oomScoreAdj"] = json!(1001)),
            "process.oomScoreAdj:",
        ),
        (
            with(|v| {
                v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}])
            }),
            "process.rlimits[0].soft:",
        ),
        (
            with(|v| {
                v["process"]["rlimits"] = json!([
                    {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 5},
                    {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 5}
                ])
            }),
            "process.rlimits[1].type:",
        ),
        (
            with(|v| v["hooks"] = json!({"prestart": [{"path": "bin/true"}]})),
            "hooks.prestart[0].path:",
        ),
    ];
    for (spec, want) in cases {
        let err = env.err(&spec);
        assert!(err.starts_with(want), "want {want}, got {err}");
    }
}

#[test]
fn unsupported_fields_are_named() {
    let env = env();
    let cases: Vec<(Value, &str)> = vec![
        (
            with(|v| v["linux"]["intelRdt"] = json!({"closID": "x"})),
            "linux.intelRdt:",
        ),
        (
            with(|v| v["linux"]["mountLabel"] = json!("system_u:object_r:x:s0")),
            "linux.mountLabel: an SELinux label is set, but SELinux is not enabled",
        ),
        (
            with(|v| {
                v["linux"]["personality"] =
                    json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]})
            }),
            "linux.personality.flags:",
        ),
        (
            with(|v| v["linux"]["rootfsPropagation"] = json!("rshare")),
            "linux.rootfsPropagation:",
        ),
        (
            with(|v| v["linux"]["resources"] = json!({"memory": {"kernel": 1024}})),
            "linux.resources.memory.kernel:",
        ),
        (
            with(|v| v["linux"]["resources"] = json!({"memory": {"kernelTCP": 1024}})),
            "linux.resources.memory.kernelTCP:",
        ),
        (
            with(|v| {
                v["linux"]["resources"] =
                    json!({"hugepageLimits": [{"pageSize": "2 MB", "limit": 1}]})
            }),
            "linux.resources.hugepageLimits[0].pageSize:",
        ),
        (
            with(|v| v["linux"]["resources"] = json!({"network": {"classID": 1}})),
            "linux.resources.network:",
        ),
        (
            with(
                |v| v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            ),
            "linux.seccomp.syscalls[0].action:",
        ),
        (
            with(|v| v["linux"]["namespaces"] = json!([{"type": "pid"}])),
            "linux.namespaces:",
        ),
        (
            with(|v| v["linux"]["namespaces"] = json!([{"type": "user"}, {"type": "mount"}])),
            "linux.uidMappings:",
        ),
        (
            with(|v| {
                v["linux"]["namespaces"] =
                    json!([{"type": "mount"}, {"type": "network", "path": "netns"}])
            }),
            "linux.namespaces[1].path:",
        ),
    ];
    for (spec, want) in cases {
        let err = env.err(&spec);
        assert!(err.starts_with(want), "want {want}, got {err}");
    }
}

#[test]
fn devices_are_made_outside_a_user_namespace_and_bound_inside_one() {
    let env = env();
    // /dev/null is one of the nodes LXC's own /dev provides: allowed, not
    // made or bound over (binding /dev/ptmx that way breaks LXC's devpts setup).
    let dev_null = json!({"path": "/dev/null", "type": "c", "major": 1, "minor": 3});
    let plan = env
        .plan(&with(|v| {
            v["linux"]["devices"] = json!([dev_null]);
            v["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
        }))
        .unwrap();
    assert!(plan.init.devices.is_empty(), "{:?}", plan.init.devices);
    assert!(
        !plan.lxc.mounts.iter().any(|m| m.destination == "dev/null"),
        "{:?}",
        plan.lxc.mounts
    );
    let rules = plan.lxc.render().unwrap();
    assert!(
        rules.contains("lxc.cgroup2.devices.deny = a\nlxc.cgroup2.devices.allow = c 1:3 rwm\n"),
        "{rules}"
    );

    // Without a user namespace the init makes the node as the spec says
    // (runc's mknod); the host need not have it.
    let node = json!({"path": "/dev/lxcri/made", "type": "b", "major": 7, "minor": 200,
        "fileMode": 0o640, "uid": 6, "gid": 7});
    let made = env
        .plan(&with(|v| v["linux"]["devices"] = json!([node])))
        .unwrap();
    assert_eq!(
        made.init.devices,
        [DeviceNode {
            path: "/dev/lxcri/made".into(),
            kind: DeviceNodeKind::Block,
            major: 7,
            minor: 200,
            mode: 0o640,
            uid: 6,
            gid: 7,
        }]
    );
    assert!(!made
        .lxc
        .mounts
        .iter()
        .any(|m| m.destination.contains("lxcri/made")));
    let fifo = json!({"path": "/dev/fifo", "type": "p"});
    let made = env
        .plan(&with(|v| v["linux"]["devices"] = json!([fifo])))
        .unwrap();
    assert_eq!(
        (made.init.devices[0].kind, made.init.devices[0].mode),
        (DeviceNodeKind::Fifo, 0o666),
        "runc's default fileMode"
    );

    // In a user namespace, where mknod is EPERM, the host's node is bound:
    // use one this host has, with its numbers.
    use std::os::unix::fs::MetadataExt;
    let (path, rdev) = ["/dev/fuse", "/dev/kmsg", "/dev/loop-control"]
        .iter()
        .find_map(|p| std::fs::metadata(p).ok().map(|m| (*p, m.rdev())))
        .expect("a host char device");
    let (maj, min) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    let in_userns = |devices: Value| {
        with(move |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            v["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            v["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            v["linux"]["devices"] = devices;
        })
    };
    let bound = env
        .plan(&in_userns(
            json!([{"path": path, "type": "c", "major": maj, "minor": min}]),
        ))
        .unwrap();
    assert!(bound.init.devices.is_empty());
    // lxcri itself nested in a user namespace binds them too.
    let spec: Spec = serde_json::from_value(with(|v| {
        v["linux"]["devices"] = json!([{"path": path, "type": "c", "major": maj, "minor": min}])
    }))
    .unwrap();
    let mut ctx = env.ctx(crate::cgroup::CgroupVersion::V2);
    ctx.nested_userns = true;
    let nested = crate::plan::plan_container(&spec, &ctx).unwrap();
    assert!(nested.init.devices.is_empty());
    assert_eq!(nested.lxc.mounts.last(), bound.lxc.mounts.last());
    let last = bound.lxc.mounts.last().unwrap();
    assert_eq!(
        (
            last.source.as_str(),
            last.destination.as_str(),
            last.options.join(",")
        ),
        (path, &path[1..], "bind,create=file".to_string())
    );
    // ... and must be what the spec says.
    let err = env.err(&in_userns(
        json!([{"path": path, "type": "c", "major": maj, "minor": min + 1}]),
    ));
    assert!(
        err.starts_with("linux.devices[0]:") && err.contains("major:minor"),
        "{err}"
    );
    let err = env.err(&in_userns(
        json!([{"path": "/dev/lxcri-nope", "type": "c", "major": 1, "minor": 3}]),
    ));
    assert!(err.starts_with("linux.devices[0]:"), "{err}");

    // LXC's own nodes cannot be asked for with other numbers or type.
    for other in [
        json!({"path": "/dev/null", "type": "c", "major": 1, "minor": 4}),
        json!({"path": "/dev/null", "type": "b", "major": 1, "minor": 3}),
    ] {
        let err = env.err(&with(move |v| v["linux"]["devices"] = json!([other])));
        assert!(
            err.starts_with("linux.devices[0]:") && err.contains("LXC's own node c 1:3"),
            "{err}"
        );
    }
    let err =
        env.err(&with(
            |v| {
                v["linux"]["devices"] =
                    json!([{"path": "/dev/../x", "type": "c", "major": 1, "minor": 1}])
            },
        ));
    assert!(err.starts_with("linux.devices[0].path:"), "{err}");
}

#[test]
fn exec_process_uses_the_container_seccomp() {
    let spec: Spec = serde_json::from_value(with(|v| {
        v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]});
    }))
    .unwrap();
    let exec: oci_spec::runtime::Process = serde_json::from_value(json!({
        "args": ["ls", "-l"], "cwd": "/tmp", "terminal": true,
        "consoleSize": {"height": 24, "width": 80},
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [4, 27]},
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}]
    }))
    .unwrap();
    let p = plan_process(
        &exec,
        &spec,
        &crate::security::lsm::HostLsm::at(std::path::Path::new("/nonexistent")),
    )
    .unwrap();
    assert_eq!(p.args, ["ls", "-l"]);
    assert_eq!(
        (p.uid, p.gid, p.additional_gids.clone()),
        (1000, 1000, vec![4, 27])
    );
    assert!(p.terminal);
    assert_eq!(
        p.console_size,
        Some(lxcri_init_spec::ConsoleSize { rows: 24, cols: 80 })
    );
    assert_eq!(p.capabilities.bounding, ["CAP_KILL"]);
    assert!(p.capabilities.permitted.is_empty());
    assert_eq!(p.rlimits[0].resource, "RLIMIT_NOFILE");
    assert!(p.seccomp.is_some());
}

#[test]
fn an_exec_gets_what_it_leaves_out_from_the_containers_process() {
    let spec: Spec = serde_json::from_value(with(|v| {
        v["process"]["capabilities"] = json!({"bounding": ["CAP_CHOWN"]});
        v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]);
        v["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 3});
        v["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
        v["process"]["execCPUAffinity"] = json!({"final": "0"});
    }))
    .unwrap();
    let lsm = crate::security::lsm::HostLsm::at(std::path::Path::new("/nonexistent"));
    let bare: oci_spec::runtime::Process = serde_json::from_value(json!({
        "args": ["ls"], "cwd": "/", "user": {"uid": 0, "gid": 0}
    }))
    .unwrap();
    let p = plan_process(&bare, &spec, &lsm).unwrap();
    assert_eq!(p.capabilities.bounding, ["CAP_CHOWN"]);
    assert_eq!((p.rlimits.len(), p.rlimits[0].soft), (1, 10));
    assert_eq!(p.scheduler.map(|s| (s.policy, s.nice)), Some((3, 3)));
    assert_eq!(p.io_priority, Some(3 << 13));
    assert_eq!(p.exec_cpu_affinity.unwrap().last, Some(vec![0]));

    let own: oci_spec::runtime::Process = serde_json::from_value(json!({
        "args": ["ls"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "capabilities": {}, "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 5, "hard": 5}],
        "scheduler": {"policy": "SCHED_OTHER"},
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "execCPUAffinity": {"initial": "0"}
    }))
    .unwrap();
    let p = plan_process(&own, &spec, &lsm).unwrap();
    assert!(
        p.capabilities.bounding.is_empty(),
        "an empty object is stated"
    );
    assert_eq!(p.rlimits[0].soft, 5);
    assert_eq!(p.scheduler.map(|s| s.policy), Some(0));
    assert_eq!(p.io_priority, Some(2 << 13 | 4));
    assert_eq!(p.exec_cpu_affinity.unwrap().last, None);
}
