//! Open vSwitch as pve-common src/PVE/Network.pm drives it (`is_ovs_bridge`,
//! `$ovs_bridge_add_port`, the `del-port` of `tap_plug`/`tap_unplug`), every `ovs-vsctl`
//! pointed at the stand-in's `--ovsdb` with `--db=` (PVE uses the default database).

use super::netaddbr::run_command;
use std::path::Path;
use std::process::{Command, Stdio};

/// `ovs-vsctl` against one OVSDB.
pub struct Ovs<'a> {
    pub db: &'a str,
}

impl Ovs<'_> {
    fn args<'b>(&'b self, bin: &'b str, rest: &[&'b str]) -> Vec<String> {
        let mut v = vec![bin.to_string(), format!("--db={}", self.db)];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    }

    /// `ovs-vsctl del-port IF` with its output and failure ignored: every plug and unplug
    /// starts so, on any node (without OVS installed the command is just missing).
    pub fn del_port_quiet(&self, iface: &str) {
        let argv = self.args("/usr/bin/ovs-vsctl", &["del-port", iface]);
        let _ = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Network.pm `is_ovs_bridge`, once `is_linux_bridge` said no: false without
    /// `/bin/ovs-vsctl`, else `ovs-vsctl br-exists` (0: yes, 2: no, else an error).
    pub fn is_bridge(&self, bridge: &str) -> Result<bool, String> {
        if !Path::new("/bin/ovs-vsctl").exists() {
            return Ok(false);
        }
        let argv = self.args("/bin/ovs-vsctl", &["br-exists", bridge]);
        let code = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .status()
            .map(|s| s.code().unwrap_or(-1))
            .unwrap_or(-1);
        match code {
            0 => Ok(true),
            2 => Ok(false),
            res => Err(format!(
                "failed to query OVS to determine type of '{bridge}': {res}"
            )),
        }
    }

    /// Network.pm `$ovs_bridge_add_port` for a NIC (not an internal port): one
    /// transaction adding the port with its VLAN settings and the bridge's MTU.
    pub fn add_port(
        &self,
        bridge: &str,
        iface: &str,
        tag: Option<&str>,
        trunks: Option<&str>,
        bridge_mtu: u32,
    ) -> Result<(), String> {
        let trunks = trunks.map(|t| t.replace(';', ","));
        let mut rest = vec![
            "--".to_string(),
            "add-port".into(),
            bridge.into(),
            iface.into(),
        ];
        rest.extend(tag.map(|t| format!("tag={t}")));
        rest.extend(trunks.as_ref().map(|t| format!("trunks={t}")));
        if tag.is_some() && trunks.is_some() {
            rest.push("vlan_mode=native-untagged".into());
        }
        rest.extend(["--", "set", "Interface", iface].map(String::from));
        rest.push(format!("mtu_request={bridge_mtu}"));
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        let argv = self.args("/usr/bin/ovs-vsctl", &rest);
        run_command(&argv).map_err(|e| format!("can't add ovs port '{iface}' - {e}"))?;
        Ok(())
    }

    /// Not PVE: the stand-in's accommodation for a userspace switch. On a bridge with
    /// `datapath_type=netdev` OVS reads the veth through a raw socket and never completes
    /// the checksums the kernel left to the device, so TCP fails (ping works) unless tx
    /// checksum offload is off on both ends (openvswitch/ovs-issues#273). A node with the
    /// kernel datapath needs none of this. The CT's end is still under LXC's temporary
    /// name in the CT's network namespace (`LXC_PID`'s); it is found by the host end's
    /// peer index and keeps the setting when LXC renames it.
    pub fn netdev_offloads(&self, bridge: &str, iface: &str) -> Result<(), String> {
        let get = self.args(
            "/usr/bin/ovs-vsctl",
            &["get", "Bridge", bridge, "datapath_type"],
        );
        if run_command(&get)?.trim().trim_matches('"') != "netdev" {
            return Ok(());
        }
        let off = |pre: &[&str], dev: &str| {
            let mut argv: Vec<String> = pre.iter().map(|s| s.to_string()).collect();
            argv.extend(["ethtool", "-K", dev, "tx", "off"].map(String::from));
            run_command(&argv).map(drop)
        };
        off(&[], iface)?;
        let pid = std::env::var("LXC_PID").map_err(|_| "missing LXC_PID env var")?;
        let netns = format!("--net=/proc/{pid}/ns/net");
        let peer: u64 = std::fs::read_to_string(format!("/sys/class/net/{iface}/iflink"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or(format!("cannot read the peer index of {iface}"))?;
        let links =
            run_command(&["nsenter", &netns, "ip", "-j", "link", "show"].map(String::from))?;
        let links: serde_json::Value =
            serde_json::from_str(&links).map_err(|e| format!("ip -j link: {e}"))?;
        let name = links
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["ifindex"].as_u64() == Some(peer))
            .and_then(|l| l["ifname"].as_str())
            .ok_or(format!("no peer of {iface} in the CT's network namespace"))?;
        off(&["nsenter", &netns], name)
    }
}
