mod file;
mod lock;
mod minire;
mod names;
mod render;
mod resources;
mod schema;
mod warm_pool;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use super::*;
use crate::pve::vmid::MIN_VMID;

/// The create parameters without `vmid`.
fn api_params(c: &PveConfig) -> Result<Vec<(String, String)>> {
    let mut p = c.to_create_params()?.with_vmid(MIN_VMID)?;
    p.remove(0);
    Ok(p)
}

/// A CT as lxcri would create it for a pod container on PVE 9.1.
fn full_config() -> PveConfig {
    let mut c = PveConfig::new(PveVersion::new(9, 1), Hostname::sanitize("nginx-7d9c"));
    c.ostemplate = Some("local:vztmpl/lxcri-empty.tar.zst".into());
    c.tags = Tags::for_container(Some("default"), Some("nginx-7d9c"));
    c.description = Some(Description::for_container(&DescriptionInfo {
        container_id: "3f2a9c0d4b1e".into(),
        containerd_namespace: Some("k8s.io".into()),
        namespace: Some("default".into()),
        pod: Some("nginx-7d9c".into()),
        container_name: Some("nginx".into()),
        image: Some("docker.io/library/nginx:1.27".into()),
    }));
    c.arch = Some(Arch::Amd64);
    c.resources = PveResources {
        memory_mib: Some(256),
        swap_mib: Some(0),
        cores: Some(2),
        cpulimit: CpuLimit::from_units(50_000),
        cpuunits: Some(25),
    };
    c.entrypoint = Some(Entrypoint::new(vec!["/.lxcri/lxcri-init".into()]).unwrap());
    c.env = vec![
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("NGINX_VERSION".into(), "1.27.0".into()),
    ];
    c.console = Some(true);
    c.tty = Some(0);
    c.features.nesting = Some(true);
    c.rootfs = Some(RootFs {
        volume: Volume::Allocate {
            storage: "local-zfs".into(),
            size: None,
        },
        options: MountPointOptions {
            mountoptions: vec![MountOption::Noatime, MountOption::Nodev],
            ..Default::default()
        },
    });
    c.mounts.insert(
        1,
        MountPoint {
            volume: Volume::Existing {
                storage: "local-zfs".into(),
                name: "subvol-12345-disk-1".into(),
            },
            mp: "/var/cache/nginx".into(),
            backup: Some(false),
            options: MountPointOptions {
                size: Some("1G".into()),
                ..Default::default()
            },
        },
    );
    c.nets.insert(
        0,
        NetConfig {
            name: "eth0".into(),
            bridge: Some("vmbr0".into()),
            firewall: Some(true),
            gw: Some(Ipv4Addr::new(10, 0, 0, 1)),
            host_managed: Some(true),
            hwaddr: Some(MacAddr::parse("bc:24:11:00:30:39").unwrap()),
            ip: Some(IpConfig4::Cidr(Ipv4Addr::new(10, 0, 0, 5), 24)),
            ip6: Some(IpConfig6::Auto),
            mtu: Some(1450),
            tag: Some(10),
            trunks: vec![20, 30],
            ..Default::default()
        },
    );
    c
}

fn bind_mount(host: &str, ct: &str) -> MountPoint {
    MountPoint {
        volume: Volume::HostPath(PathBuf::from(host)),
        mp: ct.into(),
        backup: Some(false),
        options: MountPointOptions::default(),
    }
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/pve/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
