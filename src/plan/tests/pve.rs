//! OCI spec -> the CT of a container on PVE.

use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder, Spec};

use crate::cgroup::CgroupVersion;
use crate::plan::pve::{ct_config, pve_resources, shares_to_cpuunits, CtInputs};
use crate::plan::{Limits, PlanError};
use crate::pve::config::{CpuLimit, PveConfigFile, PveResources, PveVersion};
use crate::spec::CriAnnotations;

fn spec(json: &str) -> Spec {
    serde_json::from_str(json).unwrap()
}

fn limits(spec: &Spec) -> Limits {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .map(|r| Limits::from_oci(r).unwrap())
        .unwrap_or_default()
}

fn inputs<'a>(
    spec: &'a Spec,
    cri: &'a CriAnnotations,
    limits: &'a Limits,
    version: PveVersion,
) -> CtInputs<'a> {
    CtInputs {
        version,
        namespace: "k8s.io",
        id: "c0ffee",
        spec,
        cri,
        limits,
        cgroup: CgroupVersion::V2,
        init_cmd: "/.lxcri/lxcri-init",
        template: "local:vztmpl/lxcri-empty.tar.gz",
        storage: "local-zfs",
        pool: None,
        rootfs_size: None,
        network: None,
        user_namespace: spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|nss| {
                nss.iter()
                    .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
            }),
    }
}

const POD_SPEC: &str = r#"{
  "ociVersion": "1.0.2",
  "hostname": "web-0",
  "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["sh"], "env": ["PATH=/bin", "A.B=x", "MULTI=a\nb", "OK=1"]},
  "root": {"path": "rootfs"},
  "annotations": {
    "io.kubernetes.cri.sandbox-name": "web-0",
    "io.kubernetes.cri.sandbox-namespace": "shop",
    "io.kubernetes.cri.container-name": "nginx",
    "io.kubernetes.cri.image-name": "docker.io/library/nginx:1.27"
  },
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}],
    "resources": {"memory": {"limit": 268435456}, "cpu": {"quota": 50000, "period": 100000}}
  }
}"#;

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn ct_keys_tags_description_and_resources_come_from_the_spec() {
    let s = spec(POD_SPEC);
    let cri = CriAnnotations::from_spec(&s).unwrap();
    let ct = ct_config(&inputs(&s, &cri, &limits(&s), PveVersion::new(9, 1))).unwrap();
    let p = ct.to_create_params().unwrap().with_vmid(10001).unwrap();
    assert_eq!(param(&p, "vmid"), Some("10001"));
    assert_eq!(param(&p, "hostname"), Some("web-0"));
    assert_eq!(param(&p, "tags"), Some("lxcri;ns-shop;pod-web-0"));
    assert_eq!(
        param(&p, "ostemplate"),
        Some("local:vztmpl/lxcri-empty.tar.gz")
    );
    assert_eq!(param(&p, "rootfs"), Some("local-zfs:0"));
    assert_eq!(param(&p, "unprivileged"), Some("1"));
    assert_eq!(param(&p, "ostype"), Some("unmanaged"));
    assert_eq!(param(&p, "memory"), Some("256"));
    assert_eq!(param(&p, "cpulimit"), Some("0.5"));
    assert_eq!(param(&p, "console"), Some("0"));
    assert_eq!(param(&p, "tty"), Some("0"));
    assert_eq!(param(&p, "entrypoint"), Some("/.lxcri/lxcri-init"));
    // Only what PVE can store; the process still gets all of it from the init.
    assert_eq!(param(&p, "env"), Some("PATH=/bin\0OK=1"));
    let d = param(&p, "description").unwrap();
    for line in [
        "- container: c0ffee",
        "- containerd namespace: k8s.io",
        "- pod: shop/web-0",
        "- name: nginx",
        "- image: docker.io/library/nginx:1.27",
    ] {
        assert!(d.contains(line), "{line:?} missing in {d}");
    }
    // Before 9.1 the init command and env are lxcri's fragment's.
    let ct = ct_config(&inputs(&s, &cri, &limits(&s), PveVersion::new(8, 4))).unwrap();
    let p = ct.to_create_params().unwrap().with_vmid(10001).unwrap();
    assert_eq!(param(&p, "entrypoint"), None);
    assert_eq!(param(&p, "env"), None);
    let lines = ct.fragment_lines().unwrap();
    assert_eq!(
        lines[0],
        ("lxc.init.cmd".into(), "/.lxcri/lxcri-init".into())
    );
    assert!(lines.contains(&("lxc.environment".into(), "OK=1".into())));
}

#[test]
fn a_plain_container_is_privileged_and_named_by_its_id() {
    let s = spec(
        r#"{"ociVersion": "1.0.2", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["true"]}, "root": {"path": "rootfs"}}"#,
    );
    let cri = CriAnnotations::default();
    let ct = ct_config(&inputs(&s, &cri, &limits(&s), PveVersion::new(9, 1))).unwrap();
    let p = ct.to_create_params().unwrap().with_vmid(100).unwrap();
    assert_eq!(param(&p, "unprivileged"), Some("0"));
    assert_eq!(param(&p, "hostname"), Some("c0ffee"));
    assert_eq!(param(&p, "tags"), Some("lxcri"));
    assert_eq!(param(&p, "memory"), None, "no OCI limit: PVE's default");
}

#[test]
fn pod_names_with_newlines_or_colons_cannot_inject_keys() {
    for evil in [
        "web\nrootfs: /",
        "a:b",
        "x\r\nlxc.apparmor.profile: unconfined",
        "pod;tag",
    ] {
        let json = POD_SPEC.replace("\"hostname\": \"web-0\",", "").replace(
            "\"io.kubernetes.cri.sandbox-name\": \"web-0\"",
            &format!(
                "\"io.kubernetes.cri.sandbox-name\": {}",
                serde_json::to_string(evil).unwrap()
            ),
        );
        let s = spec(&json);
        // Control characters in CRI annotations are refused up front.
        let Ok(cri) = CriAnnotations::from_spec(&s) else {
            assert!(evil.chars().any(char::is_control), "{evil:?}");
            continue;
        };
        let ct = ct_config(&inputs(&s, &cri, &limits(&s), PveVersion::new(9, 1))).unwrap();
        let p = ct.to_create_params().unwrap().with_vmid(10001).unwrap();
        let mut file = PveConfigFile::parse("arch: amd64\n").unwrap();
        for (k, v) in &p {
            match k.as_str() {
                "description" => file.set_description(v),
                "vmid" | "ostemplate" | "env" | "entrypoint" => {}
                _ => {
                    file.set_key(k, v).unwrap();
                }
            }
        }
        let text = file.render();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(':').map(|(k, _)| k))
            .collect();
        for k in &keys {
            assert!(
                [
                    "arch",
                    "hostname",
                    "tags",
                    "ostype",
                    "unprivileged",
                    "memory",
                    "cpulimit",
                    "console",
                    "tty",
                    "rootfs"
                ]
                .contains(k),
                "{evil:?} made key {k:?}:\n{text}"
            );
        }
        assert!(param(&p, "hostname")
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
}

const MIB: i64 = 1024 * 1024;

fn mem(limit: Option<i64>, swap: Option<i64>) -> Result<PveResources, PlanError> {
    let mut m = LinuxMemoryBuilder::default();
    if let Some(l) = limit {
        m = m.limit(l);
    }
    if let Some(s) = swap {
        m = m.swap(s);
    }
    let res = LinuxResourcesBuilder::default()
        .memory(m.build().unwrap())
        .build()
        .unwrap();
    pve_resources(&Limits::from_oci(&res)?, CgroupVersion::V2)
}

fn cpu(
    quota: Option<i64>,
    period: Option<u64>,
    shares: Option<u64>,
    cpus: Option<&str>,
) -> Result<PveResources, PlanError> {
    let mut c = LinuxCpuBuilder::default();
    if let Some(q) = quota {
        c = c.quota(q);
    }
    if let Some(p) = period {
        c = c.period(p);
    }
    if let Some(s) = shares {
        c = c.shares(s);
    }
    if let Some(s) = cpus {
        c = c.cpus(s);
    }
    let res = LinuxResourcesBuilder::default()
        .cpu(c.build().unwrap())
        .build()
        .unwrap();
    pve_resources(&Limits::from_oci(&res)?, CgroupVersion::V2)
}

#[test]
fn memory_is_mib_rounded_up_with_pves_minimum() {
    assert_eq!(mem(Some(1024 * MIB), None).unwrap().memory_mib, Some(1024));
    assert_eq!(
        mem(Some(100 * MIB + 1), None).unwrap().memory_mib,
        Some(101)
    );
    assert_eq!(mem(Some(1), None).unwrap().memory_mib, Some(16));
    assert_eq!(mem(Some(-1), None).unwrap(), PveResources::default());
    assert_eq!(mem(Some(0), None).unwrap(), PveResources::default());
    assert!(mem(Some(-5), None).is_err());
}

#[test]
fn swap_is_the_part_above_the_memory_limit() {
    let r = mem(Some(256 * MIB), Some(512 * MIB)).unwrap();
    assert_eq!((r.memory_mib, r.swap_mib), (Some(256), Some(256)));
    // k8s "no swap": swap == limit.
    assert_eq!(
        mem(Some(256 * MIB), Some(256 * MIB)).unwrap().swap_mib,
        Some(0)
    );
    assert_eq!(
        mem(Some(256 * MIB), Some(256 * MIB + 1)).unwrap().swap_mib,
        Some(1)
    );
    assert_eq!(mem(Some(256 * MIB), Some(-1)).unwrap().swap_mib, None);
    let err = mem(None, Some(512 * MIB)).unwrap_err().to_string();
    assert!(err.contains("linux.resources.memory.swap"), "{err}");
    assert!(mem(Some(512 * MIB), Some(256 * MIB)).is_err());
}

#[test]
fn cpulimit_is_quota_over_period() {
    let limit = |q, p| {
        cpu(Some(q), p, None, None)
            .unwrap()
            .cpulimit
            .map(CpuLimit::render)
    };
    assert_eq!(limit(50_000, Some(100_000)).as_deref(), Some("0.5"));
    assert_eq!(limit(50_000, None).as_deref(), Some("0.5"));
    assert_eq!(limit(150_000, Some(100_000)).as_deref(), Some("1.5"));
    assert_eq!(limit(20_000, Some(10_000)).as_deref(), Some("2"));
    assert_eq!(limit(33_333, Some(100_000)).as_deref(), Some("0.33333"));
    // Rounded up to PVE's resolution, never to 0 (= unlimited).
    assert_eq!(limit(1, Some(1_000_000)).as_deref(), Some("0.00001"));
    assert_eq!(limit(1 << 40, Some(1_000)).as_deref(), Some("8192"));
    assert_eq!(cpu(Some(-1), None, None, None).unwrap().cpulimit, None);
    assert!(cpu(Some(-2), None, None, None).is_err());
}

#[test]
fn shares_map_linearly_with_1024_at_pves_default_100() {
    for (shares, units) in [
        (1024, 100),
        (2, 1),
        (102, 10),
        (256, 25),
        (2048, 200),
        (102_400, 10_000),
        (262_144, 10_000),
    ] {
        assert_eq!(shares_to_cpuunits(shares), units, "{shares}");
    }
    assert_eq!(cpu(None, None, Some(512), None).unwrap().cpuunits, Some(50));
    assert_eq!(cpu(None, None, Some(0), None).unwrap().cpuunits, None);
}

#[test]
fn no_cores_on_a_v1_cpuset_controller_where_pve_would_override_the_set() {
    let res = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().cpus("0-1").build().unwrap())
        .build()
        .unwrap();
    let limits = Limits::from_oci(&res).unwrap();
    assert_eq!(
        pve_resources(&limits, CgroupVersion::V1).unwrap().cores,
        None
    );
    assert_eq!(
        pve_resources(&limits, CgroupVersion::V2).unwrap().cores,
        Some(2)
    );
}

#[test]
fn cores_count_the_cpuset() {
    let cores = |s| cpu(None, None, None, Some(s)).map(|r| r.cores);
    assert_eq!(cores("0-3,6").unwrap(), Some(5));
    assert_eq!(cores("0,0-1").unwrap(), Some(2));
    assert_eq!(cores("7").unwrap(), Some(1));
    assert_eq!(cores("").unwrap(), None);
    for bad in ["x", "3-1", "1,,2", "0-"] {
        let err = cores(bad).unwrap_err().to_string();
        assert!(err.contains("linux.resources.cpu.cpus"), "{bad}: {err}");
    }
}

mod nics {
    use super::*;
    use crate::network::nic::{NicIndex, NicSpec};
    use crate::plan::{NetnsTarget, NetworkPlan};

    fn plan(netns: NetnsTarget, nics: &[&str]) -> NetworkPlan {
        NetworkPlan {
            nics: nics
                .iter()
                .enumerate()
                .map(|(n, t)| {
                    NicSpec::parse(
                        NicIndex::new(n as u8).unwrap(),
                        t,
                        &format!("io.lxcri.net{n}"),
                    )
                    .unwrap()
                })
                .collect(),
            netns,
        }
    }

    fn nets(network: &NetworkPlan, version: PveVersion) -> Result<Vec<(String, String)>, String> {
        let spec: Spec = serde_json::from_str(POD_SPEC).unwrap();
        let cri = CriAnnotations::default();
        let limits = Limits::default();
        let mut i = inputs(&spec, &cri, &limits, version);
        i.network = Some(network);
        let ct = ct_config(&i).map_err(|e| e.to_string())?;
        let params = ct
            .to_create_params()
            .and_then(|p| p.with_vmid(100))
            .map_err(|e| e.to_string())?;
        Ok(params
            .into_iter()
            .filter(|(k, _)| k.starts_with("net"))
            .collect())
    }

    #[test]
    fn a_containers_own_nics_are_pves_to_plug_with_host_managed_addresses() {
        let p = plan(
            NetnsTarget::Own,
            &["name=eth1,bridge=vmbr1,tag=30,trunks=40;50,ip=10.30.0.5/24,gw=10.30.0.1,hwaddr=02:00:00:00:00:05,mtu=1400,firewall=1,rate=12.5", "name=eth2,bridge=vmbr2,ip=manual"],
        );
        assert_eq!(
            nets(&p, PveVersion::new(9, 1)).unwrap(),
            [
                ("net0".to_string(), "name=eth1,bridge=vmbr1,firewall=1,gw=10.30.0.1,host-managed=1,hwaddr=02:00:00:00:00:05,ip=10.30.0.5/24,mtu=1400,rate=12.5,tag=30,trunks=40;50,type=veth".to_string()),
                ("net1".to_string(), "name=eth2,bridge=vmbr2,ip=manual,type=veth".to_string()),
            ]
        );
    }

    #[test]
    fn host_managed_needs_pve_9_1_and_no_slaac() {
        let p = plan(
            NetnsTarget::Own,
            &["name=eth1,bridge=vmbr1,ip=10.30.0.5/24"],
        );
        let e = nets(&p, PveVersion::new(8, 4)).unwrap_err();
        assert!(
            e.starts_with("io.lxcri.net0: ") && e.contains("PVE 9.1") && e.contains("8.4"),
            "{e}"
        );
        let p = plan(
            NetnsTarget::Own,
            &["name=eth1,bridge=vmbr1,ip=10.30.0.5/24,ip6=auto"],
        );
        let e = nets(&p, PveVersion::new(9, 1)).unwrap_err();
        assert!(e.contains("ip6=auto"), "{e}");
        // Without static addresses, nothing needs host-managed.
        let p = plan(NetnsTarget::Own, &["name=eth1,bridge=vmbr1,ip6=auto"]);
        assert_eq!(
            nets(&p, PveVersion::new(8, 4)).unwrap()[0].1,
            "name=eth1,bridge=vmbr1,ip6=auto,type=veth"
        );
        // A pod's NIC asking for host-managed: PVE refuses SLAAC with it at
        // create too (Config.pm `update_pct_config`), unless the link is down;
        // and only PVE 9.1 has the key.
        let pod = NetnsTarget::Pod("/run/netns/cni-1".into());
        let p = plan(
            pod.clone(),
            &["name=net1,bridge=vmbr1,host-managed=1,ip6=auto"],
        );
        let e = nets(&p, PveVersion::new(9, 1)).unwrap_err();
        assert!(
            e.starts_with("io.lxcri.net0: ") && e.contains("ip6=auto"),
            "{e}"
        );
        let p = plan(
            pod.clone(),
            &["name=net1,bridge=vmbr1,host-managed=1,ip6=auto,link_down=1"],
        );
        assert!(nets(&p, PveVersion::new(9, 1)).is_ok());
        let p = plan(
            pod,
            &["name=net1,bridge=vmbr1,host-managed=1,ip=10.0.0.2/24"],
        );
        let e = nets(&p, PveVersion::new(8, 4)).unwrap_err();
        assert!(
            e.contains("host-managed=1 is a PVE 9.1 NIC option") && e.contains("8.4"),
            "{e}"
        );
    }

    #[test]
    fn a_pods_nics_are_shown_as_written_for_lxcri_to_plug() {
        let p = plan(
            NetnsTarget::Pod("/run/netns/cni-1".into()),
            &["name=net1,bridge=ovs0,tag=30,ip=10.79.0.1/24"],
        );
        assert_eq!(
            nets(&p, PveVersion::new(8, 4)).unwrap(),
            [(
                "net0".to_string(),
                "name=net1,bridge=ovs0,ip=10.79.0.1/24,tag=30,type=veth".to_string()
            )]
        );
    }
}
