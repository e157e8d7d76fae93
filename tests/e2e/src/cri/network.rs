//! The pod network of one CRI test: a Linux bridge and a /24 only this
//! test uses, and a CNI config (bridge plugin, host-local IPAM with its
//! state in the test's dir, portmap for hostPorts) for containerd's CRI
//! plugin. The host is the bridge's gateway, so the test can reach pod IPs
//! from the host side; nothing is routed or masqueraded beyond the bridge
//! but a hostPort's traffic from the host's loopback.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{cmd, machine_lock, random_u32};

/// Serialises choosing a subnet between test processes.
const LOCK_FILE: &str = "/run/lock/lxcri-e2e-cni.lock";

pub struct PodNetwork {
    /// The bridge (`lxe2e` + 6 hex digits: unique, at most 15 bytes).
    pub bridge: String,
    /// `10.199.N.0/24`.
    pub subnet: String,
    /// The bridge's (host's) address in the subnet, `10.199.N.1`.
    pub gateway: String,
    /// CNI `conf_dir` for containerd.
    pub conf_dir: PathBuf,
}

fn ip(args: &[&str]) -> cmd::CmdOutput {
    cmd::run(Command::new("ip").args(args), Duration::from_secs(10))
}

/// Third octets of `10.199.N.0/24` networks already on this host.
fn used_octets() -> Vec<u8> {
    let out = ip(&["-4", "-o", "addr", "show"]);
    out.stdout
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("10.199."))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect()
}

impl PodNetwork {
    /// Creates the bridge with a free subnet and writes the CNI config
    /// (`name`: the CNI network name) under `dir`.
    pub fn create(dir: &Path, name: &str) -> Self {
        let lock = machine_lock(LOCK_FILE, "CNI test");
        let used = used_octets();
        let seed = random_u32() as usize;
        let octet = (0..250)
            .map(|i| ((seed + i) % 250 + 1) as u8)
            .find(|o| !used.contains(o))
            .expect("a free 10.199.N.0/24 for the test's pod network");
        let bridge = format!("lxe2e{:06x}", random_u32() & 0xff_ffff);
        let gateway = format!("10.199.{octet}.1");
        let subnet = format!("10.199.{octet}.0/24");
        ip(&["link", "add", "name", &bridge, "type", "bridge"]).ok();
        // The address marks the subnet as taken for other tests at once.
        ip(&["addr", "add", &format!("{gateway}/24"), "dev", &bridge]).ok();
        ip(&["link", "set", &bridge, "up"]).ok();
        drop(lock);

        let conf_dir = dir.join("cni/net.d");
        fs::create_dir_all(&conf_dir).expect("CNI conf dir");
        let conf = serde_json::json!({
            "cniVersion": "0.4.0",
            "name": name,
            "plugins": [{
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": subnet, "gateway": gateway }]],
                    "dataDir": dir.join("cni/ipam"),
                },
            }, {
                // A pod's hostPorts (the kubelet's CNI config has it too):
                // DNAT rules only for pods that ask, removed with them.
                "type": "portmap",
                "capabilities": { "portMappings": true },
                "snat": true,
            }],
        });
        fs::write(
            conf_dir.join("10-lxcri-e2e.conflist"),
            serde_json::to_vec_pretty(&conf).unwrap(),
        )
        .expect("write the CNI config");
        Self {
            bridge,
            subnet,
            gateway,
            conf_dir,
        }
    }

    /// Whether `addr` is in this network's subnet.
    pub fn contains(&self, addr: &str) -> bool {
        let Some((prefix, _)) = self.gateway.rsplit_once('.') else {
            return false;
        };
        addr.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|h| h.parse::<u8>().ok())
            .is_some()
    }

    /// Ports still attached to the bridge (a pod's veth left behind).
    pub fn ports(&self) -> Vec<String> {
        let out = ip(&["-o", "link", "show", "master", &self.bridge]);
        out.stdout
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        for port in self.ports() {
            eprintln!("cleanup: removing leftover pod veth {port}");
            ip(&["link", "del", &port]);
        }
        ip(&["link", "del", &self.bridge]);
    }
}

/// The network namespace path of a pod, from its verbose status (the
/// runtime spec containerd keeps in `info`); `None` for hostNetwork pods.
pub fn netns_path(status: &super::api::PodSandboxStatusResponse) -> Option<PathBuf> {
    let info: serde_json::Value = serde_json::from_str(status.info.get("info")?).ok()?;
    info.pointer("/runtimeSpec/linux/namespaces")?
        .as_array()?
        .iter()
        .find(|ns| ns["type"] == "network")?
        .get("path")?
        .as_str()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_membership() {
        let n = PodNetwork {
            bridge: "x".into(),
            subnet: "10.199.7.0/24".into(),
            gateway: "10.199.7.1".into(),
            conf_dir: PathBuf::new(),
        };
        assert!(n.contains("10.199.7.23"));
        assert!(!n.contains("10.199.70.23"));
        assert!(!n.contains("10.199.7.300"));
        std::mem::forget(n); // no bridge to delete
        let one = PodNetwork {
            bridge: "x".into(),
            subnet: "10.199.1.0/24".into(),
            gateway: "10.199.1.1".into(),
            conf_dir: PathBuf::new(),
        };
        assert!(one.contains("10.199.1.9"));
        assert!(!one.contains("10.199.19"));
        std::mem::forget(one); // no bridge to delete
    }
}
