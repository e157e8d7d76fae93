use super::*;
use crate::schema::test_schema;

fn cfg(text: &str) -> CtConfig {
    CtConfig::parse(100, text, &test_schema()).unwrap().0
}

#[test]
fn renders_like_pct_start_with_raw_lines_last() {
    let s = test_schema();
    let c = cfg("hostname: web\nmemory: 256\nswap: 0\ncpulimit: 1.5\nostype: unmanaged\nunprivileged: 0\nrootfs: /srv/rootfs\nentrypoint: /sbin/init2\nnet0: name=eth0,bridge=vmbr0,ip=dhcp\nmp0: /srv/data,mp=/data,ro=1\nlxc.include: /run/lxcri/100.conf\n");
    let host = Host {
        cgroup2: true,
        memsw: false,
        bridges: vec![],
        environment_runtime: false,
    };
    let out = render(100, &c, s.config_properties().unwrap(), &host, &|v| {
        Ok(PathBuf::from(v))
    })
    .unwrap();
    for want in [
        "lxc.cgroup.dir.container = lxc/100\n",
        "lxc.uts.name = web\n",
        "lxc.cgroup2.memory.max = 268435456\n",
        "lxc.cgroup2.memory.swap.max = 0\n",
        "lxc.cgroup2.cpu.max = 150000 100000\n",
        "lxc.rootfs.path = /srv/rootfs\n",
        "lxc.init.cmd = /sbin/init2\n",
        "lxc.net.0.type = empty\n",
        "lxc.mount.entry = /srv/data data none rbind,create=file,ro 0 0\n",
        "lxc.apparmor.profile = unconfined\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(out.ends_with("lxc.include = /run/lxcri/100.conf\n"));
    assert!(!out.contains("lxc.idmap"));
}

#[test]
fn v1_host_and_bridge_and_userns() {
    let s = test_schema();
    let c = cfg("memory: 64\nunprivileged: 1\nrootfs: local:subvol-100-disk-0\nnet0: name=eth0,bridge=br9,hwaddr=BC:24:11:00:00:01,ip=10.0.0.2/24,gw=10.0.0.1,host-managed=1\n");
    let host = Host {
        cgroup2: false,
        memsw: true,
        bridges: vec!["br9".into()],
        environment_runtime: true,
    };
    let out = render(100, &c, s.config_properties().unwrap(), &host, &|v| {
        Ok(PathBuf::from("/vol").join(v))
    })
    .unwrap();
    assert!(out.contains("lxc.cgroup.memory.limit_in_bytes = 67108864\n"));
    assert!(out.contains("lxc.cgroup.memory.memsw.limit_in_bytes = 603979776\n"));
    assert!(out.contains("lxc.idmap = u 0 100000 65536\n"));
    assert!(out.contains("lxc.net.0.veth.pair = veth100i0\nlxc.net.0.link = br9\n"));
    assert!(out.contains("lxc.net.0.ipv4.address = 10.0.0.2/24\n"));
    assert!(out.contains("lxc.rootfs.path = /vol/local:subvol-100-disk-0\n"));
}

#[test]
fn command_socket_is_lxcs_abstract_name() {
    assert_eq!(
        command_socket(Path::new("/var/lib/lxc"), "100"),
        "/var/lib/lxc/100/command"
    );
    // Too long for sun_path: LXC hashes LXCPATH/NAME with FNV-1a 64.
    let long = format!("/{}", "x".repeat(120));
    assert_eq!(
        command_socket(Path::new(&long), "100"),
        format!(
            "lxc/{:016x}/command",
            fnv1a64(format!("{long}/100").as_bytes())
        )
    );
    // Published FNV-1a 64 test vectors.
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
}
