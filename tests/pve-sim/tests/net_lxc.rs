//! CTs' NICs plugged as PVE plugs them (update_lxc_config's `lxc.net.N.*`, lxcnetaddbr,
//! `tap_plug`, the post-stop hook), on a Linux bridge and on a private Open vSwitch each
//! test makes; and a pod's CT in a shared network namespace, which LXC gives no NIC.

mod common;

use common::ct::{create_with, ok_task, status, Cleanup, Ct, Extra};
use common::net::{must, run, Bridge, Netns, Ovs};
use common::Sim;
use serde_json::Value;
use std::path::Path;

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A CT as lxcri makes it, with `nets` (`("net0", "name=...")`) in the create call and
/// `include` as its lxc.include fragment. Bind the cleanup after the networks the CT uses,
/// so it stops the CT before they go.
fn ct_with_nets(sim: &Sim, k: u32, nets: &[(&str, &str)], include: Option<&str>) -> (Ct, Cleanup) {
    let form: String = nets
        .iter()
        .map(|(k, v)| format!("&{k}={}", enc(v)))
        .collect();
    let extra = Extra {
        form,
        ..Extra::default()
    };
    create_with(sim, k, "/bin/sleep 999", include, &extra)
}

fn start(sim: &Sim, vmid: u32) -> String {
    let a = sim.call(
        "POST",
        &format!("/nodes/{}/lxc/{vmid}/status/start", sim.node),
        "",
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    sim.wait_task(a.body["data"].as_str().unwrap())
}

fn stop(sim: &Sim, vmid: u32) {
    let path = format!("/nodes/{}/lxc/{vmid}/status/stop", sim.node);
    ok_task(sim, &sim.call("POST", &path, ""));
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// `ip -j addr show` in the CT's network namespace.
fn ct_links(sim: &Sim, vmid: u32) -> Vec<Value> {
    let pid = status(sim, vmid)["pid"].as_u64().unwrap();
    let netns = format!("--net=/proc/{pid}/ns/net");
    serde_json::from_str(&must(&["nsenter", &netns, "ip", "-j", "addr", "show"])).unwrap()
}

fn lxc_log(sim: &Sim, vmid: u32) -> String {
    std::fs::read_to_string(sim.dir.path().join(format!("var/log/lxc/{vmid}.log")))
        .unwrap_or_default()
}

#[test]
#[ignore = "needs root and LXC: run by scripts/test"]
fn a_nic_on_a_linux_bridge_is_plugged_as_pve_plugs_it() {
    let br = Bridge::new(1400);
    let sim = Sim::start(&[]);
    let net0 = format!(
        "name=eth1,bridge={},hwaddr=BC:24:11:0A:0B:0C,ip=10.31.0.5/24,gw=10.31.0.1,host-managed=1",
        br.0
    );
    let (ct, _cleanup) = ct_with_nets(&sim, 0, &[("net0", &net0)], None);
    assert_eq!(start(&sim, ct.vmid), "OK");
    let veth = format!("veth{}i0", ct.vmid);
    assert_eq!(
        br.ports(),
        [veth.as_str()],
        "the host end is the bridge's port"
    );
    let sys = |f: &str| std::fs::read_to_string(format!("/sys/class/net/{veth}/{f}")).unwrap();
    assert_eq!(sys("mtu").trim(), "1400", "the bridge's MTU");
    assert_eq!(sys("operstate").trim(), "up");
    let generated =
        std::fs::read_to_string(ct.lxcpath.join(format!("{}/config", ct.vmid))).unwrap();
    assert!(generated.contains("lxc.net.0.mtu = 1400\n"), "{generated}");
    assert!(generated.contains(" --lxcnetaddbr\n"), "{generated}");
    let links = ct_links(&sim, ct.vmid);
    let eth1 = links
        .iter()
        .find(|l| l["ifname"] == "eth1")
        .expect("eth1 in the CT");
    assert_eq!(eth1["address"], "bc:24:11:0a:0b:0c");
    assert_eq!(eth1["mtu"], 1400);
    assert!(eth1["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    let addrs: Vec<&Value> = eth1["addr_info"].as_array().unwrap().iter().collect();
    assert!(
        addrs
            .iter()
            .any(|a| a["local"] == "10.31.0.5" && a["prefixlen"] == 24),
        "{eth1}"
    );
    stop(&sim, ct.vmid);
    assert!(
        !link_exists(&veth),
        "LXC or the post-stop hook deletes the veth"
    );
    assert!(br.ports().is_empty());
}

#[test]
#[ignore = "needs root and LXC: run by scripts/test"]
fn what_pve_refuses_on_a_linux_bridge_fails_the_start() {
    let br = Bridge::new(1400);
    let sim = Sim::start(&[]);
    // The create refuses an MTU above the bridge's (Config.pm `update_pct_config`)...
    let big = format!("name=eth0,bridge={},mtu=1450", br.0);
    sim.put_template("local", "lxcri-empty.tar.gz");
    let form = format!(
        "vmid={}&ostemplate=local%3Avztmpl%2Flxcri-empty.tar.gz&rootfs=local%3A0&net0={}",
        common::ct::vmid(1),
        enc(&big)
    );
    let a = sim.call("POST", &format!("/nodes/{}/lxc", sim.node), &form);
    assert_eq!(
        (a.status, a.reason.as_str()),
        (
            500,
            "net0: MTU size '1450' is bigger than bridge MTU '1400'"
        )
    );
    // ... and update_lxc_config at start, before lxc-start runs, once the bridge's MTU
    // went down.
    let fits = format!("name=eth0,bridge={},mtu=1400", br.0);
    let (ct, _cleanup) = ct_with_nets(&sim, 1, &[("net0", &fits)], None);
    must(&["ip", "link", "set", &br.0, "mtu", "1300"]);
    assert_eq!(
        start(&sim, ct.vmid),
        "net0: MTU size '1400' is bigger than bridge MTU '1300'"
    );
    // lxcnetaddbr refuses in LXC's network setup; LXC deletes the veth again.
    let n = &sim.node;
    let path = format!("/nodes/{n}/lxc/{}/config", ct.vmid);
    for (net, why) in [
        (
            format!("name=eth0,bridge={},trunks=40;50", br.0),
            "vlan aware feature need to be enabled to use trunks".to_string(),
        ),
        (
            format!("name=eth0,bridge={},tag=30", br.0),
            format!("no physical interface on bridge '{}'", br.0),
        ),
    ] {
        let a = sim.call("PUT", &path, &format!("net0={}", enc(&net)));
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(
            start(&sim, ct.vmid),
            format!("startup for container '{}' failed", ct.vmid)
        );
        assert!(lxc_log(&sim, ct.vmid).contains(&why), "{why}");
        assert!(!link_exists(&format!("veth{}i0", ct.vmid)));
        assert!(br.ports().is_empty());
    }
}

#[test]
#[ignore = "needs root, LXC and Open vSwitch: run by scripts/test"]
fn nics_on_open_vswitch_get_pves_port_settings_and_lose_them_at_stop() {
    let mut ovs = Ovs::start();
    let br = ovs.add_bridge();
    let sim = Sim::start(&["--ovsdb", &ovs.db()]);
    let net0 = format!("name=eth1,bridge={br},tag=30,trunks=40;50,ip=10.30.0.5/24,host-managed=1");
    let net1 = format!("name=eth2,bridge={br},tag=31");
    let (ct, _cleanup) = ct_with_nets(&sim, 2, &[("net0", &net0), ("net1", &net1)], None);
    let peer = Netns::new();
    assert_eq!(start(&sim, ct.vmid), "OK");
    let (p0, p1) = (format!("veth{}i0", ct.vmid), format!("veth{}i1", ct.vmid));
    let mut ports = ovs.vsctl(&["list-ports", &br]);
    ports = ports
        .lines()
        .filter(|p| p.starts_with("veth"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(ports, format!("{p0},{p1}"));
    let get = |table: &str, rec: &str, col: &str| ovs.vsctl(&["get", table, rec, col]);
    // Network.pm $ovs_bridge_add_port: tag, trunks, native-untagged for both.
    assert_eq!(get("Port", &p0, "tag"), "30");
    assert_eq!(get("Port", &p0, "trunks"), "[40, 50]");
    assert_eq!(get("Port", &p0, "vlan_mode"), "native-untagged");
    assert_eq!(get("Port", &p1, "tag"), "31");
    assert_eq!(get("Port", &p1, "trunks"), "[]");
    assert_eq!(get("Port", &p1, "vlan_mode"), "[]");
    assert_eq!(get("Interface", &p0, "mtu_request"), "1500");
    // The stand-in's netdev accommodation: no tx checksum offload on either end.
    let offload = |argv: &[&str]| {
        let k = must(argv);
        k.lines().any(|l| l.trim() == "tx-checksumming: off")
    };
    assert!(offload(&["ethtool", "-k", &p0]));
    let pid = status(&sim, ct.vmid)["pid"].as_u64().unwrap().to_string();
    let netns = format!("--net=/proc/{pid}/ns/net");
    assert!(offload(&["nsenter", &netns, "ethtool", "-k", "eth1"]));
    // Untagged traffic of eth1 is VLAN 30's: an access port of 30 reaches it, over TCP too.
    ovs.add_netns_port(&br, &peer, "10.30.0.9/24", 30);
    let ping = run(&[
        "nsenter",
        &netns,
        "busybox",
        "ping",
        "-c1",
        "-W5",
        "10.30.0.9",
    ]);
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let mut server = std::process::Command::new("ip")
        .args([
            "netns", "exec", &peer.0, "busybox", "nc", "-l", "-p", "7000",
        ])
        .args(["-e", "/bin/busybox", "echo", "hello"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let got = run(&[
        "nsenter",
        &netns,
        "busybox",
        "nc",
        "-w",
        "5",
        "10.30.0.9",
        "7000",
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "hello");
    stop(&sim, ct.vmid);
    // The post-stop hook's veth_delete -> tap_unplug -> `ovs-vsctl del-port`.
    let left = ovs.vsctl(&["list-ports", &br]);
    assert!(!left.contains("veth"), "{left}");
}

#[test]
#[ignore = "needs root and LXC: run by scripts/test"]
fn a_pod_ct_in_a_shared_netns_gets_no_nic() {
    let br = Bridge::new(1500);
    let pod = Netns::new();
    let sim = Sim::start(&[]);
    let net0 = format!("name=eth0,bridge={},ip=10.32.0.5/24,host-managed=1", br.0);
    let include = format!("lxc.namespace.share.net = {}\n", pod.path().display());
    let (ct, _cleanup) = ct_with_nets(&sim, 3, &[("net0", &net0)], Some(&include));
    assert_eq!(start(&sim, ct.vmid), "OK");
    let pid = status(&sim, ct.vmid)["pid"].as_u64().unwrap();
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    assert_eq!(
        ino(Path::new(&format!("/proc/{pid}/ns/net"))),
        ino(&pod.path()),
        "the CT runs in the pod's network namespace"
    );
    assert!(!link_exists(&format!("veth{}i0", ct.vmid)));
    assert!(br.ports().is_empty());
    let links = ct_links(&sim, ct.vmid);
    assert!(links.iter().all(|l| l["ifname"] == "lo"), "{links:?}");
    stop(&sim, ct.vmid);
    assert!(pod.path().exists(), "the pod's namespace stays");
}
