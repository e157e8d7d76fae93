//! PVE's NIC plumbing on the host: pve-container src/lxcnetaddbr (each NIC's
//! `lxc.net.N.script.up`, run by LXC as `pve-sim hook ... --lxcnetaddbr VMID net up veth
//! IFACE` from the monitor, in the host's network namespace, after it made the veth pair)
//! with src/PVE/LXC.pm `net_tap_plug` and pve-common src/PVE/Network.pm `tap_plug`; and
//! the post-stop hook's `veth_delete`/`tap_unplug`. A failing step's message is PVE's; it
//! goes to LXC's log, and LXC deletes the pair and fails the start.
//!
//! Not modelled: SDN VNets (every bridge is a classic one, as `PVE::Network::SDN::Zones`
//! falls back to for a bridge that is no VNet), `bridge-disable-mac-learning` and
//! port isolation from /etc/network/interfaces (learning stays on, so `add_bridge_fdb`
//! does nothing, as for PVE's default), and the cleanup of stale firewall devices
//! (`$cleanup_firewall_bridge`; the stand-in never makes any, see `nets::unmodelled`).

use super::nets::{self, Net};
use super::ovs::Ovs;
use super::render::truthy;
use crate::schema::Schema;
use crate::store::CtConfig;
use std::path::Path;
use std::process::{Command, Stdio};

/// pve-common Tools.pm `run_command`: the command's stderr to ours (LXC's log), its
/// stdout returned, a failure as `command 'ARGV' failed: exit code N`.
pub fn run_command(argv: &[String]) -> Result<String, String> {
    let line = argv.join(" ");
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("command '{line}' failed: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Some(c) => Err(format!("command '{line}' failed: exit code {c}")),
        None => Err(format!("command '{line}' failed: {}", out.status)),
    }
}

fn run(argv: &[&str]) -> Result<String, String> {
    run_command(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

/// pve-common File.pm `file_read_first_line`, without its newline.
fn first_line(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().next().unwrap_or("").to_string())
}

/// Perl's truth of a string: neither "" nor "0".
fn perl_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.is_empty() && v != "0")
}

/// Network.pm `read_bridge_mtu`.
fn read_bridge_mtu(bridge: &str) -> Result<u32, String> {
    first_line(&format!("/sys/class/net/{bridge}/mtu"))
        .and_then(|m| m.parse().ok())
        .filter(|m| *m != 0)
        .ok_or(format!("bridge '{bridge}' does not exist"))
}

/// Network.pm `disable_ipv6`: no link-local address on a bridge port.
fn disable_ipv6(iface: &str) -> Result<(), String> {
    let file = format!("/proc/sys/net/ipv6/conf/{iface}/disable_ipv6");
    if !Path::new(&file).exists() {
        return Ok(());
    }
    std::fs::write(&file, "1\n")
        .map_err(|_| format!("failed to disable link-local ipv6 for {iface}"))
}

/// src/lxcnetaddbr. `args` are LXC's (hook version 0: `VMID net up veth IFACE`).
pub fn main(
    data_dir: &Path,
    schema: Option<&Path>,
    ovsdb: &str,
    args: &[String],
) -> Result<(), String> {
    let lxc_name = std::env::var("LXC_NAME").ok();
    if lxc_name
        .as_deref()
        .is_some_and(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        return Ok(());
    }
    let [vmid, arg2, arg3, ty, iface] = args else {
        return Err("got unexpected argument count".into());
    };
    for (got, want) in [(arg2, "net"), (arg3, "up"), (ty, "veth")] {
        if got != want {
            return Err(format!("got unexpected argument ({got} != {want})"));
        }
    }
    if Some(vmid) != lxc_name.as_ref() {
        return Err("got unexpected environment".into());
    }
    let path = data_dir.join(format!("etc/pve/lxc/{vmid}.conf"));
    let text = std::fs::read_to_string(&path)
        .map_err(|_| format!("Configuration file '{}' does not exist", path.display()))?;
    let schema = Schema::load(schema).map_err(|e| format!("{e:#}"))?;
    let id = vmid.parse().map_err(|_| "missing vmid parameter")?;
    let cfg = CtConfig::parse(id, &text, &schema)?.0;
    let props = schema.config_properties().ok_or("schema has no config")?;
    let index = regex::Regex::new(r"^veth(\d+)i(\d+)$")
        .expect("static regex")
        .captures(iface)
        .map(|c| (c[1].to_string(), c[2].to_string()));
    let key = match index {
        Some((owner, _)) if owner != *vmid => {
            return Err(format!("got unexpected interface name '{iface}'"))
        }
        Some((_, n)) => format!("net{n}"),
        None => String::new(),
    };
    let netconf = cfg.options.get(&key).ok_or(format!(
        "unable to find network definition for interface '{iface}'"
    ))?;
    let net = nets::parse_lxc_network(props, netconf)?;
    let bridge = net
        .get("bridge")
        .filter(|b| !b.is_empty())
        .ok_or("missing bridge configuration")?;
    if Path::new("/sys/class/net").join(iface).is_dir() {
        let mtu = read_bridge_mtu(bridge)?.to_string();
        run(&["/sbin/ip", "link", "set", "dev", iface, "up", "mtu", &mtu])?;
        run(&["/sbin/ip", "addr", "add", "0.0.0.0/0", "dev", iface])?;
        net_tap_plug(iface, &net, &Ovs { db: ovsdb })?;
    }
    Ok(())
}

/// pve-container LXC.pm `net_tap_plug` (with SDN installed, as on PVE 8.1+: for a bridge
/// that is no VNet `PVE::Network::SDN::Zones::tap_plug` calls Network.pm `tap_plug`). A
/// firewall bridge or rate limit never gets here: the start refused it before LXC ran
/// (`nets::unmodelled`), under the config lock this config was read under.
fn net_tap_plug(iface: &str, net: &Net, ovs: &Ovs<'_>) -> Result<(), String> {
    if truthy(net.get("link_down")) {
        // "Don't add disconnected interfaces to the bridge".
        run(&["/sbin/ip", "link", "set", "dev", iface, "down"])?;
        return Ok(());
    }
    let bridge = net.get("bridge").map(String::as_str).unwrap_or("");
    let tag = net
        .get("tag")
        .map(String::as_str)
        .filter(|t| perl_true(Some(t)));
    let trunks = net
        .get("trunks")
        .map(String::as_str)
        .filter(|t| perl_true(Some(t)));
    ovs.del_port_quiet(iface);
    if is_linux_bridge(bridge)? {
        let vlan_aware = first_line(&format!("/sys/class/net/{bridge}/bridge/vlan_filtering"));
        if perl_true(vlan_aware.as_deref()) {
            bridge_add_interface(bridge, iface, tag, trunks)?;
        } else {
            // PVE dies without a newline here, so Perl adds " at .../PVE/Network.pm line N.".
            if trunks.is_some() {
                return Err("vlan aware feature need to be enabled to use trunks".into());
            }
            let bridge = activate_bridge_vlan(bridge, tag)?;
            bridge_add_interface(&bridge, iface, None, None)?;
        }
    } else if ovs.is_bridge(bridge)? {
        ovs.add_port(bridge, iface, tag, trunks, read_bridge_mtu(bridge)?)?;
        disable_ipv6(iface)?;
        ovs.netdev_offloads(bridge, iface)?;
    } else {
        return Err(format!(
            "bridge '{bridge}' is neither a linux nor an OVS bridge!"
        ));
    }
    run(&["/sbin/ip", "link", "set", "dev", iface, "up"])?;
    Ok(())
}

/// Network.pm `check_iface_name` and `is_linux_bridge`.
fn is_linux_bridge(name: &str) -> Result<bool, String> {
    // iproute2 / kernel: IFNAMSIZ (16) with the NUL.
    if name.len() >= 16 {
        return Err(format!("the interface name {name} is too long"));
    }
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(format!(
            "the interface name {name} is empty or contains invalid characters"
        ));
    }
    let link = Path::new("/sys/class/net").join(name);
    if !link.is_symlink() {
        return Err(format!("interface {name} does not exist"));
    }
    Ok(link.join("bridge").is_dir())
}

/// Network.pm `$bridge_add_interface`: the bridge's MTU, no IPv6 link-local address, the
/// port enslaved, and on a VLAN-aware bridge the port's VLANs (untested here: this
/// machine's kernel has no bridge VLAN filtering).
fn bridge_add_interface(
    bridge: &str,
    iface: &str,
    tag: Option<&str>,
    trunks: Option<&str>,
) -> Result<(), String> {
    let mtu = read_bridge_mtu(bridge)?.to_string();
    let _ = run(&["/sbin/ip", "link", "set", iface, "mtu", &mtu]);
    disable_ipv6(iface)?;
    run(&["/sbin/ip", "link", "set", iface, "master", bridge])
        .map_err(|_| format!("can't enslave '{iface}' to '{bridge}'"))?;
    let vlan_aware = first_line(&format!("/sys/class/net/{bridge}/bridge/vlan_filtering"));
    if !perl_true(vlan_aware.as_deref()) {
        return Ok(());
    }
    let vlan = |op: &str, vid: &str, extra: &[&str]| {
        let mut argv = vec!["/sbin/bridge", "vlan", op, "dev", iface, "vid", vid];
        argv.extend(extra);
        run(&argv)
    };
    vlan("del", "1-4094", &[])
        .map_err(|e| format!("failed to remove default vlan tags of {iface} - {e}"))?;
    match trunks {
        Some(trunks) => {
            for t in trunks.split(';') {
                vlan("add", t, &[])
                    .map_err(|e| format!("unable to add vlan {t} to interface {iface} - {e}"))?;
            }
        }
        None if tag.is_none() => {
            vlan("add", "2-4094", &[]).map_err(|e| {
                format!("unable to add default vlan tags to interface {iface} - {e}")
            })?;
        }
        None => {}
    }
    let tag = tag.unwrap_or("1");
    vlan("add", tag, &["pvid", "untagged"])
        .map_err(|e| format!("unable to add vlan {tag} to interface {iface} - {e}"))?;
    Ok(())
}

/// Network.pm `activate_bridge_vlan` on a bridge without VLAN filtering: no tag plugs into
/// the bridge itself; a tag needs the bridge `BRIDGEvTAG` holding a `PORT.TAG` 802.1Q
/// sub-interface of each physical port (pve-common IPRoute2.pm
/// `get_physical_bridge_ports`). The stand-in checks as far as the ports, then refuses:
/// this machine's kernel has no 802.1Q, and the test bridges have no physical port.
fn activate_bridge_vlan(bridge: &str, tag: Option<&str>) -> Result<String, String> {
    if !Path::new("/sys/class/net").join(bridge).is_dir() {
        return Err(format!("bridge '{bridge}' is not active"));
    }
    let Some(tag) = tag else {
        return Ok(bridge.to_string());
    };
    match tag.parse::<i64>() {
        Ok(t) if (1..=4094).contains(&t) => {}
        _ => return Err(format!("got strange vlan tag '{tag}'")),
    }
    let ports = physical_bridge_ports(bridge)?;
    if ports.is_empty() {
        return Err(format!("no physical interface on bridge '{bridge}'"));
    }
    Err(format!(
        "pve-sim does not model VLAN sub-interfaces: PVE would plug this NIC into \
         {bridge}v{tag} with {} (set vlan_filtering on the bridge, or use Open vSwitch)",
        ports
            .iter()
            .map(|p| format!("{p}.{tag}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// IPRoute2.pm `get_physical_bridge_ports` from `ip -details -json link show`: the ports
/// of `bridge` that are ethernet links without a kind, bonds or VLANs.
fn physical_bridge_ports(bridge: &str) -> Result<Vec<String>, String> {
    let json = run(&["ip", "-details", "-json", "link", "show"])?;
    let links: Vec<serde_json::Value> =
        serde_json::from_str(&json).map_err(|e| format!("ip -details -json link: {e}"))?;
    let kind = |l: &serde_json::Value| l["linkinfo"]["info_kind"].as_str().map(String::from);
    let is_bridge = links
        .iter()
        .any(|l| l["ifname"] == bridge && kind(l).as_deref() == Some("bridge"));
    if !is_bridge {
        eprintln!("passed link that isn't a bridge to get_physical_bridge_ports");
        return Ok(Vec::new());
    }
    Ok(links
        .iter()
        .filter(|l| l["link_type"] == "ether" && l["master"] == bridge)
        .filter(|l| matches!(kind(l).as_deref(), None | Some("bond" | "vlan")))
        .filter_map(|l| l["ifname"].as_str().map(String::from))
        .collect())
}

/// The post-stop hook's `PVE::Network::veth_delete("vethVMIDiN")` for every NIC: delete
/// the link if LXC left it, then `tap_unplug` with its errors ignored (`eval`): out of a
/// Linux bridge, and `ovs-vsctl del-port`, which removes the OVS port row that LXC (which
/// knows no bridge of PVE's NICs) leaves behind when it deletes the veth.
pub fn veth_delete(veth: &str, ovs: &Ovs<'_>) -> Result<(), String> {
    if Path::new("/sys/class/net").join(veth).is_dir() {
        run(&["/sbin/ip", "link", "delete", "dev", veth])
            .map_err(|_| format!("failed to delete interface '{veth}'"))?;
    }
    if Path::new(&format!("/sys/class/net/{veth}/brport/bridge")).is_symlink() {
        let _ = run(&["/sbin/ip", "link", "set", veth, "nomaster"]);
    }
    ovs.del_port_quiet(veth);
    Ok(())
}
