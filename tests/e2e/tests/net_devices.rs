//! `linux.netDevices` (runtime-spec 1.2.1): a host network device moved
//! into the container's network namespace, renamed, with its permanent
//! global addresses, up; as runc 1.4+ does it (`devChangeNetNamespace`).
//! runc 1.4 needs Go 1.24, which this machine cannot install, and the
//! runc 1.1.5 and 1.3.6 run here ignore the field: lxcri is checked alone,
//! against runc 1.4's behaviour, on both backends. containerd before 2.2
//! drops the field when it copies the spec, so the tests play containerd's
//! part towards the shim ([`lxcri_e2e::shim_task`]). The devices are veth
//! pairs made by the test with unique names, removed even when it fails.

use std::process::Command;
use std::time::Duration;

use lxcri_e2e::shim_task::run_spec;
use lxcri_e2e::{cmd, random_u32, spec, CmdOutput, Containerd, Runtime};
use serde_json::json;

/// A veth pair on the host (this kernel has no dummy links): `name` is
/// the device a test moves, `peer` stays on the host, up, so the moved
/// end has a carrier. Deleted on drop (either end takes the other), with
/// the test's network namespace.
struct Device {
    name: String,
    peer: String,
    netns: Option<String>,
}

impl Device {
    fn new(prefix: &str) -> Self {
        let tag = format!("{:06x}", random_u32() & 0xff_ffff);
        let (name, peer) = (format!("{prefix}{tag}"), format!("{prefix}p{tag}"));
        ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
        let device = Self {
            name,
            peer,
            netns: None,
        };
        ip(&["link", "set", &device.peer, "up"]);
        device
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        for link in [&self.name, &self.peer] {
            let _ = Command::new("ip")
                .args(["link", "del", link])
                .stderr(std::process::Stdio::null())
                .status();
        }
        if let Some(ns) = &self.netns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[track_caller]
fn ip(args: &[&str]) -> CmdOutput {
    let out = cmd::run(Command::new("ip").args(args), Duration::from_secs(10));
    assert!(out.success(), "ip {args:?}: {out}");
    out
}

fn host_has(link: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", link])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The moved device's state and IPv4 addresses, as the container sees
/// them (the kernel adds an IPv6 link-local one of its own once it is up).
/// The kernel's link watch updates a veth's operstate a moment after its
/// peer comes up (`lowerlayerdown` until then): read it once settled.
const SHOW: &str = "i=0; while [ \"$(cat /sys/class/net/moved0/operstate)\" = lowerlayerdown ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done; \
     cat /sys/class/net/moved0/operstate; ip -o -4 addr show moved0 | awk '{print $3, $4, $5, $6}'";

/// A device with a permanent global address and a link-scope one, moved
/// in as `moved0`: inside it is up with the global address only; the
/// container's own namespace gone, the kernel destroys it (a virtual
/// device: both ends of the veth), and nothing is left.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_host_device_is_moved_in_renamed_with_its_global_addresses() {
    let ctd = Containerd::start();
    let device = Device::new("lxe");
    let octet = 1 + random_u32() % 250;
    let global = format!("10.231.{octet}.1/24");
    let link_scope = format!("10.232.{octet}.1/24");
    ip(&["addr", "add", &global, "dev", &device.name]);
    ip(&[
        "addr",
        "add",
        &link_scope,
        "dev",
        &device.name,
        "scope",
        "link",
    ]);
    let id = ctd.new_id("netdev");
    let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", SHOW]);
    s["linux"]["netDevices"] = json!({ &device.name: { "name": "moved0" } });
    let (status, out) = run_spec(&ctd, Runtime::Lxcri, &id, &s);
    assert_eq!(status, Ok(0), "{out}");
    // The subnet's broadcast address with it, as runc's netlink library
    // adds it.
    assert_eq!(
        out,
        format!("up\ninet 10.231.{octet}.1/24 brd 10.231.{octet}.255\n")
    );
    // Moved, the device left the host; its namespace gone, the kernel
    // destroyed the pair, the peer on the host with it.
    let gone = cmd::poll(Duration::from_secs(10), || {
        (!host_has(&device.peer) && !host_has("moved0")).then_some(())
    });
    assert!(gone.is_some(), "the veth pair's host end is still there");
    let left = ctd.leftovers(&id);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

/// Into a network namespace the container joins (a pod's, `ctr run
/// --with-ns`): the device is there for the container, and stays in that
/// namespace after it, as with runc.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_device_moved_into_a_joined_namespace_stays_there() {
    let ctd = Containerd::start();
    let mut device = Device::new("lxj");
    let netns = format!("lxcri-e2e-nd-{:06x}", random_u32() & 0xff_ffff);
    ip(&["netns", "add", &netns]);
    device.netns = Some(netns.clone());
    let id = ctd.new_id("netdevjoin");
    let mut s = spec::busybox_spec(
        &ctd,
        &id,
        &["sh", "-c", "ip -o link show moved0 | grep -c moved0"],
    );
    for ns in s["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(format!("/var/run/netns/{netns}"));
        }
    }
    s["linux"]["netDevices"] = json!({ &device.name: { "name": "moved0" } });
    let (status, out) = run_spec(&ctd, Runtime::Lxcri, &id, &s);
    assert_eq!((status, out.as_str()), (Ok(0), "1\n"));
    let inside = ip(&["-n", &netns, "-o", "link", "show", "moved0"]);
    assert!(inside.stdout.contains("moved0"), "{inside}");
    // Its host end stays on the host, the pair whole.
    assert!(host_has(&device.peer));
    let left = ctd.leftovers(&id);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

/// Refusals naming the field, nothing left: a device the host does not
/// have (at create, once the namespace exists), and any device for a
/// container in the host's network namespace (at planning, in runc's
/// words).
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn devices_that_cannot_be_moved_fail_the_create() {
    let ctd = Containerd::start();
    let missing = format!("lxm{:06x}", random_u32() & 0xff_ffff);
    let device = Device::new("lxh");
    for (what, device, host_net, cause) in [
        (
            "missing",
            missing.as_str(),
            false,
            format!(
                "linux.netDevices: {missing}: looking the device up on the host: no link named"
            ),
        ),
        (
            "host netns",
            device.name.as_str(),
            true,
            "linux.netDevices: unable to move network devices without a NET namespace".to_string(),
        ),
    ] {
        let id = ctd.new_id("netdevbad");
        let mut s = spec::busybox_spec(&ctd, &id, &["true"]);
        if host_net {
            s["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|ns| ns["type"] != "network");
        }
        s["linux"]["netDevices"] = json!({ device: {} });
        let (status, out) = run_spec(&ctd, Runtime::Lxcri, &id, &s);
        let error = status.expect_err(what);
        assert!(error.contains(&cause), "{what}: {error}\n{out}");
        let mut left = Vec::new();
        let clean = cmd::poll(Duration::from_secs(15), || {
            left = ctd.leftovers(&id);
            left.is_empty().then_some(())
        });
        assert!(clean.is_some(), "{what}: left behind: {left:#?}");
    }
    // Refused before anything moved.
    assert!(host_has(&device.name));
}
