//! A pod's own NICs (`io.lxcri.netN` pod annotations, passed by containerd's
//! `pod_annotations = ["io.lxcri.*"]`): plugged by lxcri into the pod's
//! network namespace beside CNI's interface, on both backends. The pod IP
//! the CRI reports stays CNI's; the pods' containers reach each other over
//! the VLAN; the ports go with the pod. And cri-tools' hostPort case.

use std::fs;
use std::process::Command;
use std::time::Duration;

use lxcri_e2e::cri::api;
use lxcri_e2e::cri::api::ContainerState;
use lxcri_e2e::cri::pod::{base_pod_config, host_fetch, Pod};
use lxcri_e2e::ovs::OvsSwitch;
use lxcri_e2e::{assert_same, cmd, random_u32, require, runtimes, Containerd, Runtime};

const LONG: Duration = Duration::from_secs(60);

/// Host links whose alias names a sandbox of this pod's owner prefix.
fn lxcri_host_ends() -> Vec<String> {
    let out = cmd::run(
        Command::new("ip").args(["-o", "link", "show"]),
        Duration::from_secs(10),
    );
    out.stdout
        .lines()
        .filter(|l| l.contains(" alias lxcri:k8s.io/"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .collect()
}

#[test]
#[ignore = "needs root, containerd (CRI), LXC and Open vSwitch: run by scripts/test"]
fn pod_nics_join_a_vlan_beside_cnis_interface_and_go_with_the_pod() {
    if !require(Runtime::Lxcri, "pod nics") {
        return;
    }
    let sw = OvsSwitch::start();
    let br = format!("lxpod{:06x}", random_u32() & 0xff_ffff);
    sw.add_bridge(&br);
    let ctd = Containerd::start_cri();
    fs::write(
        ctd.lxcri_config_path(),
        format!("[network]\novsdb = \"{}\"\n", sw.db()),
    )
    .unwrap();
    let before = lxcri_host_ends();

    let mut pods = Vec::new();
    for (name, tag, ip) in [
        ("vlan-a", 30, "10.79.0.1"),
        ("vlan-b", 30, "10.79.0.2"),
        ("other", 31, "10.79.0.3"),
    ] {
        let mut config = base_pod_config(&ctd, name, false);
        config.annotations.insert(
            "io.lxcri.net0".into(),
            format!("name=net1,bridge={br},tag={tag},ip={ip}/24"),
        );
        let pod = Pod::run(&ctd, Runtime::Lxcri, config)
            .unwrap_or_else(|e| panic!("RunPodSandbox {name}: {e}\n{}", ctd.log_tail(40)));
        let cni_ip = pod.ip();
        assert!(
            ctd.pod_network().contains(&cni_ip),
            "{name}: the CRI must report CNI's IP, got {cni_ip:?}"
        );
        let id = pod.start(pod.container("app", &["sleep", "1000"]));
        pod.wait_state(&id, ContainerState::ContainerRunning, LONG);
        pods.push((pod, id));
    }
    let sh = |id: &str, script: &str| {
        let r = ctd
            .cri()
            .exec_sync(id, &["sh", "-c", script], 30)
            .unwrap_or_else(|e| panic!("ExecSync {script}: {e}"));
        (r.exit_code, String::from_utf8_lossy(&r.stdout).into_owned())
    };
    let (a, b, other) = (&pods[0].1, &pods[1].1, &pods[2].1);
    let (_, addrs) = sh(a, "ip -o addr show");
    assert!(
        addrs.contains("net1") && addrs.contains("10.79.0.1/24"),
        "{addrs}"
    );
    assert!(addrs.contains("eth0"), "CNI's interface stays: {addrs}");
    assert_eq!(
        sh(a, "ping -c 1 -W 2 10.79.0.2").0,
        0,
        "pod a -> pod b on VLAN 30"
    );
    assert_ne!(
        sh(a, "ping -c 1 -W 2 10.79.0.3").0,
        0,
        "VLAN 31 must not be reached"
    );
    assert_ne!(
        sh(other, "ping -c 1 -W 2 10.79.0.2").0,
        0,
        "nor reach VLAN 30"
    );
    assert_eq!(sh(b, "ping -c 1 -W 2 10.79.0.1").0, 0);
    assert_eq!(
        sw.ports(&br).len(),
        3,
        "one port per pod, not per container: {:?}",
        sw.ports(&br)
    );

    for (pod, _) in pods {
        pod.remove().unwrap();
    }
    assert!(
        sw.ports(&br).is_empty(),
        "OVS ports left: {:?}",
        sw.ports(&br)
    );
    let after: Vec<String> = lxcri_host_ends()
        .into_iter()
        .filter(|h| !before.contains(h))
        .collect();
    assert!(after.is_empty(), "host ends left: {after:?}");
}

/// The host's NAT rules that name `port` (portmap's DNAT of a hostPort).
fn nat_rules_for(port: u16) -> Vec<String> {
    let out = cmd::run(
        Command::new("iptables").args(["-t", "nat", "-S"]),
        Duration::from_secs(10),
    );
    assert!(out.success(), "iptables -t nat -S: {out}");
    out.stdout
        .lines()
        .filter(|l| {
            l.contains(&format!("--dport {port} ")) || l.ends_with(&format!("--dport {port}"))
        })
        .map(String::from)
        .collect()
}

/// portmap's node-wide NAT chains and the jumps to them, which it makes at
/// the first hostPort and never removes (as on any node with hostPorts):
/// removed on drop when they were not there before the test.
struct PortmapChains {
    made_here: bool,
}

impl PortmapChains {
    /// The rules that jump to them, as `iptables -t nat -D` takes them.
    const JUMPS: [&'static [&'static str]; 3] = [
        &[
            "PREROUTING",
            "-m",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "-j",
            "CNI-HOSTPORT-DNAT",
        ],
        &[
            "OUTPUT",
            "-m",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "-j",
            "CNI-HOSTPORT-DNAT",
        ],
        &[
            "POSTROUTING",
            "-m",
            "comment",
            "--comment",
            "CNI portfwd requiring masquerade",
            "-j",
            "CNI-HOSTPORT-MASQ",
        ],
    ];
    const CHAINS: [&'static str; 3] = [
        "CNI-HOSTPORT-DNAT",
        "CNI-HOSTPORT-MASQ",
        "CNI-HOSTPORT-SETMARK",
    ];

    fn iptables(args: &[&str]) -> cmd::CmdOutput {
        cmd::run(
            Command::new("iptables").arg("-t").arg("nat").args(args),
            Duration::from_secs(10),
        )
    }

    fn watch() -> Self {
        Self {
            made_here: !Self::iptables(&["-S", Self::CHAINS[0]]).success(),
        }
    }
}

impl Drop for PortmapChains {
    fn drop(&mut self) {
        if !self.made_here {
            return;
        }
        for jump in Self::JUMPS {
            Self::iptables(&[&["-D"], jump].concat());
        }
        for chain in Self::CHAINS {
            Self::iptables(&["-F", chain]);
            Self::iptables(&["-X", chain]);
        }
    }
}

/// "runtime should support port mapping with host port and container port
/// [Conformance]" (networking.go): a pod mapping a host port to its web
/// server's port, the page fetched over the host's 127.0.0.1 and that
/// port; the mapping (its DNAT rules) goes with the pod. The mapping is
/// CNI's (portmap) in the pod's network namespace, which lxcri's pod
/// containers join as runc's do.
#[test]
#[ignore = "needs root, containerd (CRI), CNI and LXC: run by scripts/test"]
fn host_port_and_container_port() {
    let _chains = PortmapChains::watch();
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let host_port = 20000 + (random_u32() % 10000) as u16;
        let mut config = base_pod_config(&ctd, &lxcri_e2e::unique_name("hostport"), false);
        config.port_mappings = vec![api::PortMapping {
            protocol: api::Protocol::Tcp as i32,
            container_port: 8080,
            host_port: host_port as i32,
            host_ip: String::new(),
        }];
        let pod = Pod::run(&ctd, rt, config)
            .unwrap_or_else(|e| panic!("{rt}: RunPodSandbox: {e}\n{}", ctd.log_tail(40)));
        let id = pod.start(pod.container(
            "web",
            &[
                "sh",
                "-c",
                "mkdir -p /www && echo hello-over-hostport > /www/index.html && \
                 exec httpd -f -p 8080 -h /www",
            ],
        ));
        pod.wait_state(&id, ContainerState::ContainerRunning, LONG);
        let fetched = host_fetch(&format!("http://127.0.0.1:{host_port}/"));
        let rules = nat_rules_for(host_port);
        pod.remove()
            .unwrap_or_else(|e| panic!("{rt}: removing the pod: {e}"));
        assert_eq!(fetched.stdout, "hello-over-hostport\n", "{rt}: {fetched}");
        assert!(!rules.is_empty(), "{rt}: no DNAT rule for {host_port}");
        let left = nat_rules_for(host_port);
        assert!(left.is_empty(), "{rt}: rules left: {left:?}");
        results.push((rt, fetched.stdout));
    }
    assert_same("a page over a hostPort", &results);
}
