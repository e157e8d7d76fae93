//! A pod's own NICs (`io.lxcri.netN` pod annotations, passed by containerd's
//! `pod_annotations = ["io.lxcri.*"]`): plugged by lxcri into the pod's
//! network namespace beside CNI's interface, on both backends. The pod IP
//! the CRI reports stays CNI's; the pods' containers reach each other over
//! the VLAN; the ports go with the pod.

use std::fs;
use std::process::Command;
use std::time::Duration;

use lxcri_e2e::cri::api::ContainerState;
use lxcri_e2e::cri::pod::{base_pod_config, Pod};
use lxcri_e2e::ovs::OvsSwitch;
use lxcri_e2e::{cmd, random_u32, require, Containerd, Runtime};

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
