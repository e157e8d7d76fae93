use super::*;

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const DESCRIPTION: &str = "Managed by lxcri; changes here are overwritten.\n\n\
    - container: 3f2a9c0d4b1e\n- containerd namespace: k8s.io\n- pod: default/nginx-7d9c\n- name: nginx\n\
    - image: docker.io/library/nginx:1.27\n";

const NET0: &str = "name=eth0,bridge=vmbr0,firewall=1,gw=10.0.0.1,host-managed=1,\
    hwaddr=BC:24:11:00:30:39,ip=10.0.0.5/24,ip6=auto,mtu=1450,tag=10,trunks=20;30,type=veth";

#[test]
fn golden_create_params_pve_9_1() {
    let got = full_config()
        .to_create_params()
        .and_then(|p| p.with_vmid(12345))
        .unwrap();
    let want = pairs(&[
        ("vmid", "12345"),
        ("ostemplate", "local:vztmpl/lxcri-empty.tar.zst"),
        ("hostname", "nginx-7d9c"),
        ("tags", "lxcri;ns-default;pod-nginx-7d9c"),
        ("description", DESCRIPTION),
        ("arch", "amd64"),
        ("ostype", "unmanaged"),
        ("unprivileged", "1"),
        ("memory", "256"),
        ("swap", "0"),
        ("cores", "2"),
        ("cpulimit", "0.5"),
        ("cpuunits", "25"),
        ("console", "1"),
        ("tty", "0"),
        ("features", "nesting=1"),
        ("rootfs", "local-zfs:0,mountoptions=noatime;nodev"),
        (
            "mp1",
            "local-zfs:subvol-12345-disk-1,mp=/var/cache/nginx,backup=0,size=1G",
        ),
        ("net0", NET0),
        ("entrypoint", "/.lxcri/lxcri-init"),
        (
            "env",
            "PATH=/usr/local/bin:/usr/bin:/bin\0NGINX_VERSION=1.27.0",
        ),
    ]);
    assert_eq!(got, want);
    assert_eq!(api_params(&full_config()).unwrap(), want[1..]);
    assert!(full_config().fragment_lines().unwrap().is_empty());
}

#[test]
fn update_params_carry_only_the_resource_keys() {
    let got = full_config().resources.to_update_params().unwrap();
    assert_eq!(
        got,
        pairs(&[
            ("memory", "256"),
            ("swap", "0"),
            ("cores", "2"),
            ("cpulimit", "0.5"),
            ("cpuunits", "25"),
        ])
    );
    assert!(PveResources::default()
        .to_update_params()
        .unwrap()
        .is_empty());
    let below = PveResources {
        memory_mib: Some(8),
        ..Default::default()
    };
    assert!(below.to_update_params().is_err());
    // Create needs a template.
    let mut c = full_config();
    c.ostemplate = None;
    let err = api_params(&c).unwrap_err();
    assert!(
        matches!(
            err,
            PveConfigError::Missing {
                field: "ostemplate",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn pve_8_gets_init_and_env_as_fragment_lines() {
    let mut c = full_config();
    c.version = PveVersion::new(8, 4);
    c.nets.get_mut(&0).unwrap().host_managed = None;
    let params = api_params(&c).unwrap();
    assert!(params.iter().all(|(k, _)| k != "entrypoint" && k != "env"));
    assert_eq!(
        c.fragment_lines().unwrap(),
        pairs(&[
            ("lxc.init.cmd", "/.lxcri/lxcri-init"),
            ("lxc.environment", "PATH=/usr/local/bin:/usr/bin:/bin"),
            ("lxc.environment", "NGINX_VERSION=1.27.0"),
        ])
    );
    for line in c.fragment_lines().unwrap() {
        check_raw_key(&line.0).unwrap();
    }
    // host-managed does not exist before 9.1.
    let mut c = full_config();
    c.version = PveVersion::new(8, 4);
    let err = api_params(&c).unwrap_err().to_string();
    assert!(
        err.contains("net0.host-managed") && err.contains("9.1"),
        "{err}"
    );
}

#[test]
fn root_only_items_are_refused_by_the_api_render() {
    let mut c = full_config();
    c.rootfs = Some(RootFs {
        volume: Volume::HostPath("/var/lib/lxcri/rootfs/abc".into()),
        options: MountPointOptions::default(),
    });
    let err = api_params(&c).unwrap_err();
    assert!(
        matches!(&err, PveConfigError::RootOnly { field, .. } if field == "rootfs"),
        "{err}"
    );
    let mut c = full_config();
    c.mounts.insert(0, bind_mount("/srv/data", "/data"));
    let err = api_params(&c).unwrap_err();
    assert!(
        matches!(&err, PveConfigError::RootOnly { field, .. } if field == "mp0"),
        "{err}"
    );
    let mut c = full_config();
    c.features.keyctl = Some(true);
    let err = api_params(&c).unwrap_err();
    assert!(
        matches!(&err, PveConfigError::RootOnly { field, .. } if field == "features"),
        "{err}"
    );
    let keys: Vec<_> = api_params(&full_config())
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        keys.contains(&"mp1".to_string()),
        "volume mount points stay in the API"
    );
}

#[test]
fn keys_the_schema_does_not_know_are_rejected() {
    let mut c = full_config();
    let net = c.nets[&0].clone();
    c.nets.insert(32, net);
    let err = api_params(&c).unwrap_err();
    assert!(
        matches!(&err, PveConfigError::UnknownKey { key, .. } if key == "net32"),
        "{err}"
    );
    let mut c = full_config();
    c.mounts.insert(256, bind_mount("/a", "/b"));
    c.mounts.get_mut(&256).unwrap().volume = Volume::Allocate {
        storage: "local-zfs".into(),
        size: Some("1G".parse().unwrap()),
    };
    assert!(matches!(
        api_params(&c).unwrap_err(),
        PveConfigError::UnknownKey { .. }
    ));
}

#[test]
fn out_of_range_values_are_rejected() {
    let mut c = full_config();
    c.resources.memory_mib = Some(8);
    assert!(api_params(&c).unwrap_err().to_string().contains("memory"));
    let mut c = full_config();
    c.resources.cores = Some(0);
    assert!(api_params(&c).unwrap_err().to_string().contains("cores"));
    let mut c = full_config();
    c.tty = Some(7);
    assert!(api_params(&c).unwrap_err().to_string().contains("tty"));
    let mut c = full_config();
    c.nets.get_mut(&0).unwrap().tag = Some(4095);
    assert!(api_params(&c).unwrap_err().to_string().contains("net0.tag"));
    let mut c = full_config();
    c.nets.get_mut(&0).unwrap().mtu = Some(63);
    assert!(api_params(&c).unwrap_err().to_string().contains("net0.mtu"));
    // pve-common's CIDR formats take prefixes of 8 and more (found by
    // tests/fuzz).
    let mut c = full_config();
    c.nets.get_mut(&0).unwrap().ip = Some(IpConfig4::Cidr(Ipv4Addr::new(10, 0, 0, 5), 7));
    assert!(api_params(&c).unwrap_err().to_string().contains("net0.ip"));
    let mut c = full_config();
    c.nets.get_mut(&0).unwrap().ip6 = Some(IpConfig6::Cidr(Ipv6Addr::LOCALHOST, 7));
    assert!(api_params(&c).unwrap_err().to_string().contains("net0.ip6"));
    assert!(full_config()
        .to_create_params()
        .and_then(|p| p.with_vmid(99))
        .is_err());
    assert!(MacAddr::parse("01:00:5e:00:00:01").is_err(), "multicast");
    assert!(MacAddr::parse("bc:24:11:00:30").is_err());
}

/// A name, annotation or env value with a line break, NUL, ':' , '=' or
/// ',' must not add a key or a property.
#[test]
fn injection_through_names_and_values_is_impossible() {
    let evil = "x\nrootfs: local:1\r\0,mp=/etc=1:";
    let mut c = full_config();
    c.hostname = Hostname::sanitize(evil);
    c.tags = Tags::for_container(Some(evil), Some(evil));
    c.description = Some(Description::for_container(&DescriptionInfo {
        container_id: evil.into(),
        containerd_namespace: Some(evil.into()),
        namespace: Some(evil.into()),
        pod: Some(evil.into()),
        container_name: Some(evil.into()),
        image: Some(evil.into()),
    }));
    let params = api_params(&c).unwrap();
    let keys: Vec<_> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys.iter().filter(|k| **k == "rootfs").count(), 1);
    for (k, v) in &params {
        let allowed_ctl: &[char] = match k.as_str() {
            "description" => &['\n'],
            "env" => &['\0'],
            _ => &[],
        };
        assert!(
            v.chars()
                .all(|ch| !ch.is_control() || allowed_ctl.contains(&ch)),
            "{k}={v:?}"
        );
    }
    let tags = &params.iter().find(|(k, _)| k == "tags").unwrap().1;
    assert!(!tags.contains([',', '=', ':', ' ']), "{tags}");

    // Values that cannot be sanitised are refused, naming the field.
    let cases: Vec<(PveConfig, &str)> = vec![
        {
            let mut c = full_config();
            c.env
                .push(("EVIL".into(), "1\nlxc.cap.keep: sys_admin".into()));
            (c, "env.EVIL")
        },
        {
            let mut c = full_config();
            c.env.push(("A=B".into(), "1".into()));
            (c, "env.A=B")
        },
        {
            let mut c = full_config();
            c.nets.get_mut(&0).unwrap().bridge = Some("vmbr0,ip=1.2.3.4/8".into());
            (c, "net0.bridge")
        },
        {
            let mut c = full_config();
            c.nets.get_mut(&0).unwrap().name = "eth0\nmemory: 1".into();
            (c, "net0.name")
        },
        {
            let mut c = full_config();
            c.mounts.get_mut(&1).unwrap().mp = "/data,ro=0".into();
            (c, "mp1.mp")
        },
        {
            let mut c = full_config();
            c.mounts.get_mut(&1).unwrap().mp = "/data/../etc".into();
            (c, "mp1.mp")
        },
        {
            let mut c = full_config();
            c.mounts.get_mut(&1).unwrap().volume = Volume::Existing {
                storage: "local-zfs".into(),
                name: "disk=1".into(),
            };
            (c, "mp1")
        },
        {
            let mut c = full_config();
            c.ostemplate = Some("local:vztmpl/x\0.tar".into());
            (c, "ostemplate")
        },
        {
            let mut c = full_config();
            c.description = Some(Description::parse("ok").unwrap());
            c.features.mount = vec!["nfs;cifs".into()];
            c.features.nesting = None;
            (c, "features.mount")
        },
    ];
    for (c, field) in cases {
        let mut c = c;
        c.mounts.retain(|_, m| !m.volume.is_host_path());
        let err = api_params(&c).unwrap_err().to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
    for bad in [
        vec!["/init\n".to_string()],
        vec![],
        vec!["/init".into(), "a b".into()],
    ] {
        assert!(Entrypoint::new(bad.clone()).is_err(), "{bad:?}");
    }
}

#[test]
fn version_parsing() {
    assert_eq!(PveVersion::parse("9.1.3").unwrap(), PveVersion::new(9, 1));
    assert_eq!(
        PveVersion::parse("pve-manager/8.4.1/2a5fa54a8503f96d").unwrap(),
        PveVersion::new(8, 4)
    );
    assert_eq!(PveVersion::parse("9.1").unwrap().to_string(), "9.1");
    assert!(PveVersion::parse("nine").is_err());
    assert!(PveVersion::new(9, 1).has_entrypoint());
    assert!(PveVersion::new(10, 0).has_entrypoint());
    assert!(!PveVersion::new(9, 0).has_entrypoint());
}

#[test]
fn pool_goes_with_the_create_only() {
    let mut c = full_config();
    c.pool = Some(PoolId::parse("lxcri").unwrap());
    let create = c.to_create_params().and_then(|p| p.with_vmid(100)).unwrap();
    let at = create.iter().position(|(k, _)| k == "ostemplate").unwrap();
    assert_eq!(create[at + 1], ("pool".to_string(), "lxcri".to_string()));
    assert!(!c
        .resources
        .to_update_params()
        .unwrap()
        .iter()
        .any(|(k, _)| k == "pool"));
}
