//! A CT's NICs at start: pve-container src/PVE/LXC/Config.pm `parse_lxc_network` and the
//! `net(\d+)` loop of src/PVE/LXC.pm `update_lxc_config` (commit 94f5585), which writes
//! the `lxc.net.N.*` lines; LXC makes the veth pair and runs `script.up` (the stand-in's
//! lxcnetaddbr, see `netaddbr`) to plug the host end into the bridge.

use super::render::{sub_format, truthy, Formats};
use crate::schema::property_string;
use crate::store::CtConfig;
use std::collections::BTreeMap;
use std::io::Read;

/// One NIC's keys, booleans as PVE's `parse_boolean` leaves them.
pub type Net = BTreeMap<String, String>;

/// Config.pm `parse_lxc_network`: the property string, `type` always `veth`, and a random
/// `hwaddr` when it has none (pve-common Tools.pm `random_ether_addr` with datacenter.cfg's
/// default `mac_prefix` BC:24:11; the stand-in reads no `mac_prefix`).
pub fn parse_lxc_network(props: Formats<'_>, value: &str) -> Result<Net, String> {
    let format = sub_format(props, "net0").ok_or("schema has no net format")?;
    let mut net = property_string::parse(format, value)?;
    net.insert("type".into(), "veth".into());
    if !net.contains_key("hwaddr") {
        let mut b = [0u8; 3];
        let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
        let mac = format!("BC:24:11:{:02X}:{:02X}:{:02X}", b[0], b[1], b[2]);
        net.insert("hwaddr".into(), mac);
    }
    Ok(net)
}

/// pve-container src/PVE/LXC/Config.pm `update_pct_config` for a `netN` that a create or
/// a config update sets, before anything is written: an `mtu` must fit the bridge's
/// (pve-common src/PVE/Network.pm `read_bridge_mtu` dies for a link that does not exist),
/// and a host-managed NIC takes no SLAAC unless its link is down. `mtus` are the links'.
pub fn check_update(
    props: Formats<'_>,
    key: &str,
    value: &str,
    mtus: &BTreeMap<String, u32>,
) -> Result<(), String> {
    let d = parse_lxc_network(props, value)?;
    // `if (my $mtu = $res->{mtu})`: 0 is no MTU.
    if let Some(mtu) = d
        .get("mtu")
        .and_then(|m| m.parse::<u32>().ok())
        .filter(|m| *m > 0)
    {
        check_mtu(key, mtu, read_bridge_mtu(&d, mtus)?)?;
    }
    if !truthy(d.get("link_down"))
        && truthy(d.get("host-managed"))
        && d.get("ip6").is_some_and(|ip6| ip6 == "auto")
    {
        return Err(format!(
            "{key}: SLAAC is not supported for host-managed network configuration."
        ));
    }
    Ok(())
}

/// pve-common src/PVE/Network.pm `read_bridge_mtu` of the NIC's bridge; for a NIC without
/// bridge it reads /sys/class/net//mtu: no such bridge either.
fn read_bridge_mtu(d: &Net, mtus: &BTreeMap<String, u32>) -> Result<u32, String> {
    let bridge = d.get("bridge").map(String::as_str).unwrap_or("");
    mtus.get(bridge)
        .copied()
        .ok_or(format!("bridge '{bridge}' does not exist"))
}

/// The MTU check PVE makes at create, config update and start alike.
fn check_mtu(key: &str, mtu: u32, bridge_mtu: u32) -> Result<(), String> {
    if mtu > bridge_mtu {
        return Err(format!(
            "{key}: MTU size '{mtu}' is bigger than bridge MTU '{bridge_mtu}'"
        ));
    }
    Ok(())
}

/// The CT's `netN` keys, as update_lxc_config walks them: `sort keys`, a string order
/// (`net0`, `net1`, `net10`, `net2`), which the config's sorted map already has.
pub fn nets(cfg: &CtConfig) -> impl Iterator<Item = (&str, &String)> {
    cfg.options.iter().filter_map(|(k, v)| {
        let n = k.strip_prefix("net")?;
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some((n, v))
    })
}

/// What PVE does for this NIC that the stand-in does not model; it refuses such a NIC at
/// start rather than plug it differently. PVE's `net_tap_plug` returns before both for a
/// NIC with `link_down`, so the stand-in does too.
fn unmodelled(key: &str, net: &Net) -> Option<String> {
    if truthy(net.get("link_down")) {
        return None;
    }
    if truthy(net.get("firewall")) {
        // PVE plugs it through fwbrVMIDiN (pve-common Network.pm
        // `$create_firewall_bridge_linux`/`_ovs`) when pve-firewall's `needs_fwbr`: on OVS
        // always, on a Linux bridge unless the nftables firewall runs. The stand-in
        // refuses both.
        return Some(format!(
            "{key}: pve-sim does not model firewall bridges (firewall=1)"
        ));
    }
    // `tap_rate_limit` sets no limit for a rate of 0.
    if net
        .get("rate")
        .and_then(|r| r.parse::<f64>().ok())
        .is_some_and(|r| r > 0.0)
    {
        // Network.pm `tap_rate_limit`: tc htb and an ingress police filter, which this
        // machine's kernel lacks (no sch_htb, no cls_basic).
        return Some(format!(
            "{key}: pve-sim does not model rate limits (rate={})",
            net["rate"]
        ));
    }
    None
}

/// At start, before LXC plugs anything: a NIC the stand-in would plug differently from
/// PVE fails the start (see `unmodelled`); the config itself renders as on a node.
pub fn check_modelled(cfg: &CtConfig, props: Formats<'_>) -> Result<(), String> {
    for (ind, value) in nets(cfg) {
        let d = parse_lxc_network(props, value)?;
        if let Some(why) = unmodelled(&format!("net{ind}"), &d) {
            return Err(why);
        }
    }
    Ok(())
}

/// update_lxc_config's lines for every `netN`. `mtus` are the links' MTUs
/// (/sys/class/net/LINK/mtu, pve-common Network.pm `read_bridge_mtu`); `script_up` is what
/// stands in for `/usr/share/lxc/lxcnetaddbr` (written for LXC >= 4, as every LXC here).
pub fn render(
    vmid: u32,
    cfg: &CtConfig,
    props: Formats<'_>,
    mtus: &BTreeMap<String, u32>,
    script_up: &str,
    line: &mut dyn FnMut(&str, &str),
) -> Result<(), String> {
    for (ind, value) in nets(cfg) {
        let key = format!("net{ind}");
        let d = parse_lxc_network(props, value)?;
        let mut l = |k: &str, v: &str| line(&format!("lxc.net.{ind}.{k}"), v);
        l("type", "veth");
        l("veth.pair", &format!("veth{vmid}i{ind}"));
        l("hwaddr", &d["hwaddr"]);
        if let Some(name) = d.get("name") {
            l("name", name);
        }
        let bridge_mtu = read_bridge_mtu(&d, mtus)?;
        // `$d->{mtu} || $bridge_mtu`, and "Keep container from starting with invalid mtu".
        let mtu = d
            .get("mtu")
            .and_then(|m| m.parse().ok())
            .unwrap_or(bridge_mtu);
        check_mtu(&key, mtu, bridge_mtu)?;
        l("mtu", &mtu.to_string());
        l("script.up", script_up);
        if !truthy(d.get("link_down")) && truthy(d.get("host-managed")) {
            let configured = |ip: &String| ip != "dhcp" && ip != "manual";
            if let Some(ip) = d.get("ip").filter(|ip| configured(ip)) {
                l("ipv4.address", ip);
            }
            if let Some(gw) = d.get("gw") {
                l("ipv4.gateway", gw);
            }
            if let Some(ip6) = d.get("ip6") {
                if ip6 == "auto" {
                    return Err(format!(
                        "{key}: SLAAC is not supported for host-managed network configuration"
                    ));
                }
                if configured(ip6) {
                    l("ipv6.address", ip6);
                }
            }
            if let Some(gw6) = d.get("gw6") {
                l("ipv6.gateway", gw6);
            }
            l("flags", "up");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
