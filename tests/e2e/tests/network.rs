//! NICs of `ctr` containers (`io.lxcri.netN` annotations, PVE's `netN`
//! syntax), on both backends: lxcri plugs them on the lxc backend, PVE
//! (pve-sim, as its `tap_plug` does) from the CT's `netN` on the pve
//! backend. VLANs on a private Open vSwitch (this kernel has neither bridge
//! VLAN filtering nor 802.1Q, so VLANs are tested on OVS's userspace
//! datapath), untagged ports on a Linux bridge, and bad input that fails
//! naming the annotation and its field, leaving nothing behind. Traffic
//! only flows between namespaces the tests made.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lxcri_e2e::cmd;
use lxcri_e2e::ovs::OvsSwitch;
use lxcri_e2e::pve::{backend, BackendKind, PveSim};
use lxcri_e2e::{assert_same, random_u32, require, runtimes, Containerd, Runtime};

/// What PVE says (and lxcri quotes) when it cannot plug a CT's NIC:
/// pve-container src/PVE/LXC.pm `update_lxc_config` and pve-common
/// src/PVE/Network.pm `tap_plug`, as pve-sim models them.
const PVE_NO_BRIDGE: &str = "bridge 'lxnobr0' does not exist";
const PVE_MTU_ABOVE_BRIDGE: &str = "net0: MTU size '9000' is bigger than bridge MTU '1500'";

/// A short unique link name (links have at most 15 characters).
fn link_name(prefix: &str) -> String {
    format!("{prefix}{:06x}", random_u32() & 0xff_ffff)
}

fn nic(text: &str) -> String {
    format!("io.lxcri.net0={text}")
}

/// Host links whose alias says lxcri plugged them for `owner`.
fn host_ends_of(owner: &str) -> Vec<String> {
    let out = cmd::run(
        Command::new("ip").args(["-o", "link", "show"]),
        Duration::from_secs(10),
    );
    assert!(out.success(), "{out}");
    let alias = format!("lxcri:{owner}");
    out.stdout
        .lines()
        .filter(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.windows(2).any(|w| w[0] == "alias" && w[1] == alias)
        })
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// containerd with lxcri on the selected backend, pointed at `ovsdb` (and
/// the stand-in too: PVE plugs a CT's OVS ports itself).
fn node(ovsdb: Option<&str>) -> Containerd {
    let ctd = match (backend(), ovsdb) {
        (BackendKind::Pve, Some(db)) => {
            let mut sim = PveSim::start_with(&["--ovsdb", db]);
            sim.set_env("LXCRI_NETWORK_OVSDB", db);
            Containerd::start_pve(sim)
        }
        (BackendKind::Pve, None) => Containerd::start_pve(PveSim::start()),
        (BackendKind::Lxc, Some(db)) => Containerd::start_with_env(&[("LXCRI_NETWORK_OVSDB", db)]),
        (BackendKind::Lxc, None) => Containerd::start(),
    };
    ctd.import_busybox();
    ctd
}

/// The host end of a container's one NIC: lxcri's (alias
/// `lxcri:<ns>/<id>`) or PVE's `veth<VMID>i0`.
fn host_end(ctd: &Containerd, id: &str) -> String {
    match ctd.pve() {
        Some(sim) => {
            let (vmid, _) = sim
                .ct_of(ctd.namespace(), id)
                .unwrap_or_else(|| panic!("no CT for {id}"));
            format!("veth{vmid}i0")
        }
        None => {
            let ends = host_ends_of(&format!("{}/{id}", ctd.namespace()));
            assert_eq!(ends.len(), 1, "{id}: {ends:?}");
            ends[0].clone()
        }
    }
}

/// `sh -c script` in the container; its stdout, after asserting success.
fn sh(ctd: &Containerd, id: &str, script: &str) -> String {
    let exec_id = format!("x{:06x}", random_u32() & 0xff_ffff);
    let out = ctd.exec(id, &exec_id, &["sh", "-c", script], &[]);
    assert!(out.success(), "{id}: {script}: {out}");
    out.stdout
}

fn pings(ctd: &Containerd, id: &str, addr: &str) -> bool {
    let exec_id = format!("p{:06x}", random_u32() & 0xff_ffff);
    ctd.exec(id, &exec_id, &["ping", "-c", "1", "-W", "2", addr], &[])
        .success()
}

/// A Linux bridge the test owns, removed on drop.
struct LinuxBridge(String);

impl LinuxBridge {
    fn create() -> Self {
        let name = link_name("lxbr");
        let ip = |args: &[&str]| {
            let out = cmd::run(Command::new("ip").args(args), Duration::from_secs(10));
            assert!(out.success(), "ip {args:?}: {out}");
        };
        ip(&["link", "add", &name, "type", "bridge"]);
        let bridge = Self(name);
        ip(&["link", "set", &bridge.0, "up"]);
        bridge
    }
}

impl Drop for LinuxBridge {
    fn drop(&mut self) {
        let _ = cmd::run(
            Command::new("ip").args(["link", "del", &self.0]),
            Duration::from_secs(10),
        );
    }
}

#[test]
#[ignore = "needs root, containerd, LXC and Open vSwitch: run by scripts/test"]
fn ovs_vlans_isolate_containers_and_their_ports_go_with_them() {
    if !require(Runtime::Lxcri, "ovs vlans") {
        return;
    }
    let sw = OvsSwitch::start();
    let br = link_name("lxovs");
    sw.add_bridge(&br);
    let ctd = node(Some(&sw.db()));
    // Same subnet everywhere: only the VLANs keep them apart.
    let nics = [
        (
            "a",
            format!("name=eth1,bridge={br},tag=10,ip=10.77.0.1/24,hwaddr=02:77:00:00:00:01"),
        ),
        ("b", format!("name=eth1,bridge={br},tag=10,ip=10.77.0.2/24")),
        ("c", format!("name=eth1,bridge={br},tag=20,ip=10.77.0.3/24")),
        // Native VLAN 10 untagged, VLAN 20 tagged (PVE's tag + trunks).
        (
            "d",
            format!("name=eth1,bridge={br},tag=10,trunks=20,ip=10.77.0.4/24"),
        ),
    ];
    let mut ids = Vec::new();
    for (name, text) in &nics {
        let id = ctd.new_id(&format!("vlan{name}"));
        ctd.run_detached(
            Runtime::Lxcri,
            &id,
            &["sleep", "1000"],
            &["--annotation", &nic(text)],
        );
        ids.push(id);
    }
    let (a, b, c, d) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let eth1 = sh(
        &ctd,
        a,
        "ip -o addr show eth1; cat /sys/class/net/eth1/address",
    );
    assert!(
        eth1.contains("10.77.0.1/24") && eth1.contains("02:77:00:00:00:01"),
        "{eth1}"
    );

    let diagnose = || {
        format!(
            "ovs:\n{}\nports:\n{}\na:\n{}",
            sw.vsctl(&["show"]),
            sw.vsctl(&[
                "--columns=name,tag,trunks,vlan_mode,external_ids",
                "list",
                "port"
            ]),
            sh(&ctd, a, "ip addr; ip route"),
        )
    };
    assert!(
        pings(&ctd, a, "10.77.0.2"),
        "a -> b on VLAN 10\n{}",
        diagnose()
    );
    assert!(pings(&ctd, b, "10.77.0.1"), "b -> a on VLAN 10");
    assert!(pings(&ctd, d, "10.77.0.1"), "d's native VLAN 10 reaches a");
    assert!(
        !pings(&ctd, a, "10.77.0.3"),
        "a must not reach c on VLAN 20"
    );
    assert!(
        !pings(&ctd, c, "10.77.0.2"),
        "c must not reach b on VLAN 10"
    );

    // TCP over the userspace datapath (the reason checksums are software).
    // A listener that comes back after each connection: with a one-shot
    // one, every try was refused for 20 s once in CI under load (its one
    // connection taken by an exchange that delivered nothing, or the
    // listener gone); a failure now shows b's processes and sockets.
    sh(
        &ctd,
        b,
        "(while :; do nc -l -p 7000 >> /tmp/got 2>&1; done) </dev/null >/dev/null 2>&1 &",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let exec_id = format!("n{:06x}", random_u32() & 0xff_ffff);
        let sent = ctd.exec(
            a,
            &exec_id,
            &["sh", "-c", "echo over-tcp | nc -w 2 10.77.0.2 7000"],
            &[],
        );
        let got = sh(&ctd, b, "cat /tmp/got 2>/dev/null || true");
        if got.contains("over-tcp") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "TCP a -> b: {sent}; b got {got:?}; b's processes and sockets:\n{}",
            sh(&ctd, b, "ps; netstat -ltn")
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // The ports in OVSDB: one per container, with PVE's VLAN modes; lxcri's
    // own carry their owner.
    let ports = sw.ports(&br);
    assert_eq!(ports.len(), 4, "{ports:?}");
    let get = |port: &str, col: &str| sw.vsctl(&["get", "port", port, col]);
    let port_d = host_end(&ctd, d);
    assert_eq!(get(&port_d, "vlan_mode"), "native-untagged");
    assert_eq!(get(&port_d, "tag"), "10");
    assert_eq!(get(&port_d, "trunks"), "[20]");
    if ctd.pve().is_none() {
        let owner = format!("lxcri-owner=\"{}/{d}\"", ctd.namespace());
        let ids = get(&port_d, "external_ids");
        assert!(ids.contains(&owner), "{ids}");
        assert_eq!(get(&host_end(&ctd, a), "vlan_mode"), "access");
    }

    let ends: Vec<String> = ids.iter().map(|id| host_end(&ctd, id)).collect();
    for id in &ids {
        ctd.remove(id);
        assert!(
            ctd.leftovers(id).is_empty(),
            "{id}: {:?}",
            ctd.leftovers(id)
        );
    }
    for end in &ends {
        assert!(!link_exists(end), "host end {end} left");
    }
    assert!(
        sw.ports(&br).is_empty(),
        "OVS ports left: {:?}",
        sw.ports(&br)
    );
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_linux_bridge_plugs_untagged_ports_and_refuses_vlans_it_cannot_filter() {
    if !require(Runtime::Lxcri, "linux bridge") {
        return;
    }
    let br = LinuxBridge::create();
    let ctd = node(None);
    let (a, b) = (ctd.new_id("bra"), ctd.new_id("brb"));
    for (id, ip) in [(&a, "10.78.0.1/24"), (&b, "10.78.0.2/24")] {
        let text = format!("name=net1,bridge={},ip={ip},mtu=1400", br.0);
        ctd.run_detached(
            Runtime::Lxcri,
            id,
            &["sleep", "1000"],
            &["--annotation", &nic(&text)],
        );
    }
    assert!(pings(&ctd, &a, "10.78.0.2"), "a -> b over bridge {}", br.0);
    assert_eq!(sh(&ctd, &b, "cat /sys/class/net/net1/mtu").trim(), "1400");
    let ends = [host_end(&ctd, &a), host_end(&ctd, &b)];
    for end in &ends {
        let master = std::fs::read_link(Path::new("/sys/class/net").join(end).join("master"))
            .unwrap_or_default();
        assert!(
            master.ends_with(&br.0),
            "{end} is not a port of {}: {master:?}",
            br.0
        );
    }

    // A tag needs a VLAN-aware bridge; this kernel has none (and no 802.1Q
    // for PVE's <bridge>v<tag> bridges either).
    let id = ctd.new_id("brtag");
    let text = format!("name=net1,bridge={},tag=30", br.0);
    let out = ctd.run(
        Runtime::Lxcri,
        &id,
        &["true"],
        &["--annotation", &nic(&text)],
    );
    assert!(!out.success(), "{out}");
    let says = match ctd.pve() {
        None => format!(
            "io.lxcri.net0: tag=/trunks= on bridge {}, which does not filter VLANs",
            br.0
        ),
        // PVE's lxcnetaddbr dies ("no physical interface on bridge"), but
        // LXC keeps a hook's output to its trace log: lxc-start's stderr,
        // which lxcri quotes, says only that the NIC failed.
        Some(_) => "Failed to create network device".to_string(),
    };
    assert!(out.stderr.contains(&says), "should say {says:?}: {out}");
    ctd.remove(&id);
    assert!(ctd.leftovers(&id).is_empty(), "{:?}", ctd.leftovers(&id));
    for id in [&a, &b] {
        ctd.remove(id);
    }
    for end in &ends {
        assert!(!link_exists(end), "host end {end} left");
    }
}

#[test]
#[ignore = "needs root, containerd, LXC and Open vSwitch: run by scripts/test"]
fn bad_nics_fail_naming_the_annotation_and_field_and_leave_nothing() {
    if !require(Runtime::Lxcri, "bad nics") {
        return;
    }
    let sw = OvsSwitch::start();
    let br = link_name("lxbad");
    sw.add_bridge(&br);
    let ctd = node(Some(&sw.db()));
    let pve = ctd.pve().is_some();
    let good = format!("io.lxcri.net0=name=eth1,bridge={br},tag=10");
    let cases: Vec<(Vec<String>, String)> = vec![
        // On pve, PVE finds these when it starts the CT; lxcri quotes it.
        (
            vec![nic("name=eth1,bridge=lxnobr0")],
            if pve {
                PVE_NO_BRIDGE.into()
            } else {
                "io.lxcri.net0: bridge=lxnobr0: no Linux bridge and no Open vSwitch bridge".into()
            },
        ),
        (
            vec![nic(&format!("name=eth1,bridge={br},mtu=9000"))],
            if pve {
                PVE_MTU_ABOVE_BRIDGE.into()
            } else {
                format!("io.lxcri.net0: mtu=9000 is above bridge {br}'s MTU 1500")
            },
        ),
        (
            vec![nic(&format!("name=eth1,bridge={br},tag=5000"))],
            "io.lxcri.net0: tag: \"5000\" is not a VLAN id (1-4094)".into(),
        ),
        (
            vec![nic(&format!(
                "name=eth1,bridge={br},hwaddr=01:00:5e:00:00:01"
            ))],
            "io.lxcri.net0: hwaddr: \"01:00:5e:00:00:01\" is a multicast address".into(),
        ),
        (
            vec![nic(&format!("name=eth1,bridge={br},ip=10.0.0.300/24"))],
            "io.lxcri.net0: ip: \"10.0.0.300/24\" is not an IPv4 address".into(),
        ),
        (
            vec![nic(&format!("name=eth1,bridge={br},tag=10,vlan=20"))],
            "io.lxcri.net0: unknown key \"vlan\"".into(),
        ),
        (
            vec![nic(&format!("name=eth1,bridge={br}\nlxc.net.1.type=phys"))],
            "io.lxcri.net0: contains the control character".into(),
        ),
        (
            vec![good.clone(), format!("io.lxcri.net1=name=eth1,bridge={br}")],
            "io.lxcri.net1: name=eth1 is also io.lxcri.net0's".into(),
        ),
        // The first NIC is fine: the second must stop the create first.
        (
            vec![
                good.clone(),
                format!("io.lxcri.net1=name=eth2,bridge={br},ip=dhcp"),
            ],
            "io.lxcri.net1: not supported by lxcri: ip=dhcp / ip6=dhcp".into(),
        ),
    ];
    for (annotations, says) in cases {
        let id = ctd.new_id("badnic");
        let mut flags = Vec::new();
        for a in &annotations {
            flags.push("--annotation");
            flags.push(a.as_str());
        }
        let out = ctd.run(Runtime::Lxcri, &id, &["true"], &flags);
        assert!(!out.success(), "{annotations:?}: {out}");
        assert!(
            out.stderr.contains(&says),
            "{annotations:?}: should say {says:?}: {out}"
        );
        let vmids = ctd
            .pve()
            .map(|sim| sim.vmids_of(ctd.namespace(), &id))
            .unwrap_or_default();
        ctd.remove(&id);
        assert!(
            ctd.leftovers(&id).is_empty(),
            "{annotations:?}: {:?}",
            ctd.leftovers(&id)
        );
        assert!(
            host_ends_of(&format!("{}/{id}", ctd.namespace())).is_empty(),
            "{annotations:?}"
        );
        for v in vmids {
            assert!(
                !link_exists(&format!("veth{v}i0")),
                "{annotations:?}: veth{v}i0 left"
            );
        }
        assert!(
            sw.ports(&br).is_empty(),
            "{annotations:?}: {:?}",
            sw.ports(&br)
        );
    }
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn without_nics_a_container_sees_the_interfaces_runc_gives() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut seen = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("nonic");
        let out = ctd.run(rt, &id, &["sh", "-c", "ls /sys/class/net"], &[]);
        assert!(out.success(), "{rt}: {out}");
        let names: Vec<String> = out.stdout.split_whitespace().map(String::from).collect();
        seen.push((rt, names));
    }
    assert_same("interfaces", &seen);
}

/// A container's own network namespace has its loopback up, as runc sets
/// it: a process can reach 127.0.0.1 (and a server bound there) without a
/// NIC. The traffic stays inside the container's namespace.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn the_loopback_of_a_new_network_namespace_is_up_as_on_runc() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let script = "ip -o link show lo | grep -o 'state [A-Z]*'; \
                  ip -o -4 addr show lo | awk '{print $4}'; \
                  ping -c 1 -W 2 127.0.0.1 >/dev/null && echo reachable";
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("lo");
        let out = ctd.run(rt, &id, &["sh", "-c", script], &[]);
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        assert!(out.stdout.contains("reachable"), "{rt}: {out}");
        results.push((rt, out.stdout));
    }
    assert_same("the loopback of a container's own netns", &results);
}
