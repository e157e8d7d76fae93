use super::*;
use crate::schema::test_schema;

fn cfg(text: &str) -> CtConfig {
    CtConfig::parse(100, text, &test_schema()).unwrap().0
}

/// A PVE 9 node: cgroup v2 only, 2 CPUs in `lxc`, LXC 6 with `lxc.environment.runtime`.
fn v2_host() -> Host {
    Host {
        cgroup_v1: vec![],
        cgroup_v2: Some(
            [
                "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc",
            ]
            .map(String::from)
            .to_vec(),
        ),
        unified: true,
        memsw: false,
        bridges: vec![],
        mtus: Default::default(),
        environment_runtime: true,
        lxc_config_files: ["common.conf", "userns.conf", "common.seccomp"]
            .map(String::from)
            .to_vec(),
        common_seccomp: "2\ndenylist\n[all]\nkexec_load errno 1\n".into(),
        cpuset: Some(Cpuset {
            version: 2,
            lxc_cpus: "0-1".into(),
        }),
    }
}

/// This machine: v1 controllers plus an almost empty unified hierarchy, LXC 5.
fn hybrid_host() -> Host {
    Host {
        cgroup_v1: [
            "name=systemd",
            "pids",
            "blkio",
            "freezer",
            "devices",
            "memory",
            "cpuset",
            "cpuacct",
            "cpu",
        ]
        .map(String::from)
        .to_vec(),
        cgroup_v2: Some(vec!["hugetlb".into()]),
        unified: false,
        memsw: true,
        environment_runtime: false,
        cpuset: Some(Cpuset {
            version: 1,
            lxc_cpus: "0-1".into(),
        }),
        ..v2_host()
    }
}

fn render_with(
    vmid: u32,
    text: &str,
    host: &Host,
    pick: &mut dyn FnMut(usize) -> usize,
) -> Rendered {
    let s = test_schema();
    let paths = Paths {
        lxcpath: Path::new("/var/lib/lxc"),
        pve_include: Path::new("/sim/usr/share/lxc/config/common.conf.d/01-pve.conf"),
        script_up: "/usr/share/lxc/lxcnetaddbr",
    };
    render(
        vmid,
        &CtConfig::parse(vmid, text, &s).unwrap().0,
        s.config_properties().unwrap(),
        host,
        &paths,
        pick,
    )
    .unwrap()
}

const SIM_INCLUDE: &str = "lxc.include = /sim/usr/share/lxc/config/common.conf.d/01-pve.conf\n";

/// pve-real.md's first example: PVE's own update_lxc_config output for lxcri's
/// privileged CT, plus the stand-in's hook include right after common.conf.
#[test]
fn privileged_ct_on_a_v2_node_is_pves_example() {
    let text = "arch: amd64\ncores: 2\nhostname: demo\nmemory: 512\nostype: unmanaged\n\
                rootfs: /var/lib/lxcri/run/default/c1/rootfs\nswap: 0\ntags: lxcri;ns-default\n\
                unprivileged: 0\nunused0: local:100/vm-100-disk-0.raw\n\
                lxc.include: /run/lxcri/default/c1/pve.conf\n";
    let want = "lxc.cgroup.relative = 0
lxc.cgroup.dir.monitor = lxc.monitor/100
lxc.cgroup.dir.container = lxc/100
lxc.cgroup.dir.container.inner = ns
lxc.arch = amd64
lxc.include = /usr/share/lxc/config/common.conf
SIM_INCLUDElxc.apparmor.profile = generated
lxc.apparmor.raw = allow mqueue,
lxc.apparmor.raw = deny mount -> /proc/,
lxc.apparmor.raw = deny mount -> /sys/,
lxc.monitor.unshare = 1
lxc.tty.max = 2
lxc.environment = TERM=linux
lxc.uts.name = demo
lxc.cgroup2.memory.max = 536870912
lxc.cgroup2.memory.high = 532676608
lxc.cgroup2.memory.swap.max = 0
lxc.rootfs.path = /var/lib/lxc/100/rootfs
lxc.include = /run/lxcri/default/c1/pve.conf
lxc.cgroup2.cpuset.cpus = 0-1
"
    .replace("SIM_INCLUDE", SIM_INCLUDE);
    let out = render_with(100, text, &v2_host(), &mut |_| 0);
    assert_eq!(out.config, want);
    assert_eq!(out.seccomp_rules, None, "privileged: common.conf's profile");
}

/// pve-real.md's second example: unprivileged, with a raw cgroup2 cpuset, which PVE keeps
/// instead of appending its own; the rules file is common.seccomp plus PVE's rules.
#[test]
fn unprivileged_ct_on_a_v2_node_is_pves_example() {
    let text = "arch: amd64\ncores: 2\nhostname: demo\nmemory: 512\nostype: unmanaged\n\
                rootfs: /var/lib/lxcri/run/default/c1/rootfs\nswap: 0\nunprivileged: 1\n\
                lxc.include: /run/lxcri/default/c1/pve.conf\nlxc.cgroup2.cpuset.cpus: 0-1\n";
    let want = "lxc.cgroup.relative = 0
lxc.cgroup.dir.monitor = lxc.monitor/101
lxc.cgroup.dir.container = lxc/101
lxc.cgroup.dir.container.inner = ns
lxc.arch = amd64
lxc.include = /usr/share/lxc/config/common.conf
SIM_INCLUDElxc.include = /usr/share/lxc/config/userns.conf
lxc.seccomp.profile = /var/lib/lxc/101/rules.seccomp
lxc.apparmor.profile = generated
lxc.apparmor.raw = allow mqueue,
lxc.apparmor.raw = deny mount -> /proc/,
lxc.apparmor.raw = deny mount -> /sys/,
lxc.mount.auto = sys:mixed
lxc.monitor.unshare = 1
lxc.idmap = u 0 100000 65536
lxc.idmap = g 0 100000 65536
lxc.tty.max = 2
lxc.environment = TERM=linux
lxc.uts.name = demo
lxc.cgroup2.memory.max = 536870912
lxc.cgroup2.memory.high = 532676608
lxc.cgroup2.memory.swap.max = 0
lxc.rootfs.path = /var/lib/lxc/101/rootfs
lxc.include = /run/lxcri/default/c1/pve.conf
lxc.cgroup2.cpuset.cpus = 0-1
"
    .replace("SIM_INCLUDE", SIM_INCLUDE);
    let out = render_with(101, text, &v2_host(), &mut |_| 0);
    assert_eq!(out.config, want);
    let (file, rules) = out.seccomp_rules.unwrap();
    assert_eq!(file, Path::new("/var/lib/lxc/101/rules.seccomp"));
    assert_eq!(
        rules,
        "2\ndenylist\n[all]\nkexec_load errno 1\n\
         ioctl errno 1 [1,0x9400,SCMP_CMP_MASKED_EQ,0xff00]\n\
         keyctl errno 38\n\
         socket errno 97 [0,38,SCMP_CMP_EQ]\n"
    );
}

/// The lines pve-real.md lists for the config lxcri itself writes (`console: 0`,
/// `tty: 0`, `cpuunits`, `entrypoint`, env, include): shm, console off, cgroup2 device
/// deny, cpu.weight, and the env as `lxc.environment.runtime` before the raw lines.
#[test]
fn lxcris_own_config_on_a_v2_node() {
    let text = "arch: amd64\nconsole: 0\ncpuunits: 100\nentrypoint: /.lxcri/init\n\
                hostname: c1\nmemory: 256\nostype: unmanaged\nrootfs: /srv/c1/rootfs\n\
                tty: 0\nunprivileged: 0\nlxc.environment.runtime: A=1\n\
                lxc.include: /run/lxcri/ns/c1/pve-lxc.conf\nlxc.environment.runtime: B=two\n";
    let out = render_with(100, text, &v2_host(), &mut |_| 0).config;
    for want in [
        "lxc.mount.entry = shm dev/shm tmpfs rw,nosuid,nodev,create=dir 0 0\n",
        "lxc.console.path = none\nlxc.cgroup2.devices.deny = c 5:1 rwm\nlxc.tty.max = 0\n",
        "lxc.cgroup2.memory.max = 268435456\nlxc.cgroup2.memory.high = 266338304\n\
         lxc.cgroup2.memory.swap.max = 0\nlxc.cgroup2.cpu.weight = 100\n",
        "lxc.init.cmd = /.lxcri/init\n\
         lxc.environment.runtime = A=1\nlxc.environment.runtime = B=two\n\
         lxc.include = /run/lxcri/ns/c1/pve-lxc.conf\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains("cpuset"), "no cores, no cpuset:\n{out}");
}

/// This hybrid machine: PVE 8's v1 lines (pve-container before 722a077) for memory, CPU
/// and the console device, the v1 cpuset key (CGroup.pm cpuset_controller_path finds
/// cpuset in v1), and LXC 5's `lxc.environment`.
#[test]
fn hybrid_host_gets_pve8_v1_lines() {
    let text = "arch: amd64\nconsole: 0\ncores: 1\ncpulimit: 1.5\nentrypoint: /sbin/init\n\
                memory: 64\nostype: unmanaged\nrootfs: /srv/r\nswap: 32\nunprivileged: 0\n\
                lxc.environment.runtime: A=1\nlxc.cgroup.cpuset.cpus: 0-1\n";
    let out = render_with(100, text, &hybrid_host(), &mut |_| 1).config;
    for want in [
        "lxc.console.path = none\nlxc.cgroup.devices.deny = c 5:1 rwm\n",
        "lxc.cgroup.memory.limit_in_bytes = 67108864\n\
         lxc.cgroup.memory.memsw.limit_in_bytes = 100663296\n\
         lxc.cgroup.cpu.cfs_period_us = 100000\nlxc.cgroup.cpu.cfs_quota_us = 150000\n\
         lxc.cgroup.cpu.shares = 1024\n",
        "lxc.environment = A=1\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(
        !out.contains("dev/shm"),
        "/sbin/init mounts /dev/shm itself"
    );
    // had_cpuset looks only for the cgroup2 key: the raw v1 line does not stop PVE's.
    assert!(
        out.ends_with("lxc.cgroup.cpuset.cpus = 0-1\nlxc.cgroup.cpuset.cpus = 0\n"),
        "{out}"
    );
    let no_memsw = Host {
        memsw: false,
        ..hybrid_host()
    };
    let out = render_with(100, text, &no_memsw, &mut |_| 0).config;
    assert!(!out.contains("memsw"), "{out}");
}

/// update_lxc_config's cpuset: random members dropped until `cores` are left; a missing
/// `lxc` cgroup reads as an empty set (CpuSet.pm new_from_path does not fail), so PVE
/// writes an empty value.
#[test]
fn cpuset_picks_cores_at_random_from_lxc() {
    let mut picks = vec![2, 0].into_iter();
    assert_eq!(
        pick_cpus("0-3,8", 3, &mut |n| {
            let p = picks.next().unwrap();
            assert!(p < n);
            p
        }),
        Ok("1,3,8".into())
    );
    assert_eq!(pick_cpus("0-1", 4, &mut |_| 0), Ok("0-1".into()));
    assert_eq!(pick_cpus("", 2, &mut |_| 0), Ok("".into()));
    assert!(pick_cpus("3-1", 1, &mut |_| 0).is_err());
    let host = Host {
        cpuset: Some(Cpuset {
            version: 2,
            lxc_cpus: String::new(),
        }),
        ..v2_host()
    };
    let text = "arch: amd64\ncores: 1\nostype: unmanaged\nrootfs: /r\n";
    let out = render_with(100, text, &host, &mut |_| 0).config;
    assert!(out.ends_with("lxc.cgroup2.cpuset.cpus = \n"), "{out}");
    let host = Host {
        cpuset: None,
        ..v2_host()
    };
    let out = render_with(100, text, &host, &mut |_| 0).config;
    assert!(!out.contains("cpuset"), "no cpuset controller: {out}");
}

/// Config.pm calculate_memory_constraints and the `swap // 0` of update_lxc_config.
#[test]
fn memory_high_follows_calculate_memory_constraints() {
    assert_eq!(calculate_memory_constraints(512.0), (536870912, 532676608));
    assert_eq!(
        calculate_memory_constraints(16384.0),
        (17179869184, (16384 - 128) << 20)
    );
    let out = render_with(
        100,
        "arch: amd64\nostype: debian\nrootfs: /r\n",
        &v2_host(),
        &mut |_| 0,
    );
    assert!(out.config.contains("lxc.cgroup2.memory.max = 536870912\n"));
    assert!(out.config.contains("lxc.cgroup2.memory.swap.max = 0\n"));
    // No debian.common.conf here: update_lxc_config falls back to common.conf.
    assert!(out
        .config
        .contains("lxc.include = /usr/share/lxc/config/common.conf\n"));
    let host = Host {
        lxc_config_files: vec!["debian.common.conf".into()],
        ..v2_host()
    };
    let out = render_with(
        100,
        "arch: amd64\nostype: debian\nrootfs: /r\n",
        &host,
        &mut |_| 0,
    );
    assert!(out
        .config
        .contains("lxc.include = /usr/share/lxc/config/debian.common.conf\n"));
}

/// make_apparmor_config / make_seccomp_config with features and raw overrides.
#[test]
fn features_and_raw_overrides() {
    let base = "arch: amd64\nostype: unmanaged\nrootfs: /r\nunprivileged: 1\n";
    let text = format!("{base}features: nesting=1,keyctl=1,fuse=1,mount=nfs;cifs,force_rw_sys=1\n");
    let out = render_with(100, &text, &v2_host(), &mut |_| 0);
    let want = "lxc.apparmor.allow_nesting = 1\nlxc.apparmor.raw = allow userns,\n\
                lxc.apparmor.raw = mount fstype=nfs,\nlxc.apparmor.raw = mount fstype=cifs,\n\
                lxc.apparmor.raw = mount fstype=fuse,\n\
                lxc.mount.entry = /dev/fuse dev/fuse none bind,create=file 0 0\n";
    assert!(
        out.config.contains(want),
        "missing {want:?} in\n{}",
        out.config
    );
    assert!(!out.config.contains("sys:mixed"), "force_rw_sys");
    assert!(!out.seccomp_rules.unwrap().1.contains("keyctl"));
    let text = format!("{base}lxc.apparmor.profile: unconfined\nlxc.seccomp.profile: /x\n");
    let out = render_with(100, &text, &v2_host(), &mut |_| 0);
    assert!(!out.config.contains("generated"));
    assert!(out
        .config
        .ends_with("lxc.apparmor.profile = unconfined\nlxc.seccomp.profile = /x\n"));
    assert_eq!(out.seccomp_rules, None);
    // A custom idmap: unprivileged (userns.conf), but no default idmap.
    let text = "arch: amd64\nostype: unmanaged\nrootfs: /r\nlxc.idmap: u 0 200000 65536\n";
    let out = render_with(100, text, &v2_host(), &mut |_| 0).config;
    assert!(out.contains("userns.conf\n"));
    assert_eq!(out.matches("lxc.idmap").count(), 1);
}

#[test]
fn required_keys_fail_like_pve() {
    let s = test_schema();
    let paths = Paths {
        lxcpath: Path::new("/var/lib/lxc"),
        pve_include: Path::new("/i"),
        script_up: "/usr/share/lxc/lxcnetaddbr",
    };
    let props = s.config_properties().unwrap();
    for (text, err) in [
        (
            "ostype: unmanaged\nrootfs: /r\n",
            "missing 'arch' - internal error",
        ),
        (
            "arch: amd64\nrootfs: /r\n",
            "missing 'ostype' - internal error",
        ),
        (
            "arch: amd64\nostype: unmanaged\n",
            "missing 'rootfs' configuration",
        ),
    ] {
        let r = render(100, &cfg(text), props, &v2_host(), &paths, &mut |_| 0);
        assert_eq!(r, Err(err.to_string()));
    }
}

#[test]
fn nets_devices_and_numbered_order() {
    let text = "arch: amd64\nostype: unmanaged\nrootfs: /r\n\
                net0: name=eth0,bridge=br9,hwaddr=BC:24:11:00:00:01,ip=10.0.0.2/24,gw=10.0.0.1,host-managed=1\n\
                dev0: /dev/null,deny-write=1\n\
                mp10: /a,mp=/a\nmp2: /b,mp=/b\n";
    let host = Host {
        mtus: [("br9".to_string(), 1500)].into(),
        ..v2_host()
    };
    let out = render_with(100, text, &host, &mut |_| 0).config;
    for want in [
        // After the rootfs, as update_lxc_config writes them.
        "lxc.rootfs.path = /var/lib/lxc/100/rootfs\nlxc.net.0.type = veth\n",
        "lxc.net.0.script.up = /usr/share/lxc/lxcnetaddbr\n",
        "lxc.net.0.ipv4.address = 10.0.0.2/24\nlxc.net.0.ipv4.gateway = 10.0.0.1\n",
        "lxc.cgroup2.devices.allow = c 1:3 r\nlxc.cgroup2.devices.deny = c 1:3 w\n\
         lxc.mount.entry = /dev/null dev/null none bind,optional,create=file 0 0\n\
         lxc.monitor.unshare = 1\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // Mount points are the pre-start hook's, not mount entries.
    assert!(!out.contains(" a none"), "{out}");
    let c = cfg(text);
    let keys: Vec<&str> = numbered(&c, "mp").iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["mp2", "mp10"]);
}
