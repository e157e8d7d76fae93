//! Typed answers of the endpoints lxcri uses. Only the fields lxcri reads
//! are typed; every numeric field is decoded leniently (see `lenient`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::lenient;

/// `GET /version`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Version {
    /// Full version, e.g. `9.1.2`.
    #[serde(deserialize_with = "lenient::string_req")]
    pub version: String,
    /// Major.minor release, e.g. `9.1`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub release: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub repoid: Option<String>,
}

impl Version {
    /// `(major, minor)` of [`Version::version`], e.g. to decide whether the
    /// `entrypoint`/`env` keys (PVE >= 9.1) exist.
    pub fn major_minor(&self) -> Option<(u32, u32)> {
        let mut parts = self.version.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
        Some((major, minor))
    }

    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.major_minor().is_some_and(|v| v >= (major, minor))
    }
}

/// `GET /nodes/{node}/lxc/{vmid}/status/current`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CtStatus {
    /// `running` or `stopped`.
    #[serde(deserialize_with = "lenient::string_req")]
    pub status: String,
    /// Host pid of the CT's init, when running.
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    pub pid: Option<u32>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    /// CPU usage as a fraction of `cpus`.
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub cpu: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub cpus: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub mem: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub maxmem: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub swap: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub maxswap: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub disk: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub maxdisk: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub netin: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub netout: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub diskread: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub diskwrite: Option<u64>,
    /// Seconds since start.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub uptime: Option<u64>,
    /// `;`-separated tags as PVE stores them.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub tags: Option<String>,
    /// The config lock held (e.g. `create`, `destroyed`, `mounted`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub lock: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub template: Option<bool>,
}

impl CtStatus {
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }

    pub fn tag_list(&self) -> Vec<&str> {
        split_tags(self.tags.as_deref())
    }
}

/// One row of `GET /cluster/resources?type=vm` (QEMU VMs included: check
/// [`ClusterVm::kind`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClusterVm {
    /// `lxc/123` or `qemu/123`.
    pub id: String,
    /// `lxc` or `qemu`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "lenient::opt_u32")]
    pub vmid: Option<u32>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub node: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub tags: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub lock: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub template: Option<bool>,
}

impl ClusterVm {
    pub fn is_lxc(&self) -> bool {
        self.kind == "lxc"
    }

    pub fn tag_list(&self) -> Vec<&str> {
        split_tags(self.tags.as_deref())
    }
}

/// One row of `GET /nodes/{node}/lxc`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NodeCt {
    #[serde(deserialize_with = "lenient::u32_req")]
    pub vmid: u32,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub tags: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub lock: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub template: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub uptime: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub mem: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub maxmem: Option<u64>,
}

impl NodeCt {
    pub fn tag_list(&self) -> Vec<&str> {
        split_tags(self.tags.as_deref())
    }
}

/// One row of `GET /cluster/resources?type=storage`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StorageInfo {
    /// `storage/{node}/{storage}`.
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub storage: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub node: Option<String>,
    /// Backend type, e.g. `zfspool`, `dir`, `lvmthin`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub plugintype: Option<String>,
    /// Allowed content, comma-separated (`rootdir,images`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub content: Option<String>,
    /// `available` when usable on that node.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub shared: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub disk: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub maxdisk: Option<u64>,
}

impl StorageInfo {
    /// Whether this storage may hold CT root filesystems.
    pub fn allows_rootdir(&self) -> bool {
        self.content
            .as_deref()
            .is_some_and(|c| c.split(',').any(|x| x.trim() == "rootdir"))
    }
}

/// `GET /access/permissions`: ACL path -> privilege -> propagate flag.
/// Holding a privilege is the key's presence; the value only says whether
/// it propagates to sub-paths.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Permissions(pub BTreeMap<String, BTreeMap<String, serde_json::Value>>);

impl Permissions {
    /// Whether the token holds `privilege` on `path`.
    pub fn has(&self, path: &str, privilege: &str) -> bool {
        self.0.get(path).is_some_and(|p| p.contains_key(privilege))
    }

    /// Those of `wanted` the token lacks on `path`, in `wanted`'s order.
    pub fn missing<'a>(&self, path: &str, wanted: &[&'a str]) -> Vec<&'a str> {
        wanted
            .iter()
            .copied()
            .filter(|p| !self.has(path, p))
            .collect()
    }
}

/// One row of `GET /nodes/{node}/network`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NetworkIface {
    pub iface: String,
    /// `bridge`, `OVSBridge`, `bond`, `eth`, `vlan`, ...
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub active: Option<bool>,
}

impl NetworkIface {
    /// A Linux or Open vSwitch bridge, which a CT NIC can be attached to.
    pub fn is_bridge(&self) -> bool {
        matches!(self.kind.as_deref(), Some("bridge" | "OVSBridge"))
    }
}

/// PVE stores tags `;`-separated but accepts `,` and spaces on input.
fn split_tags(tags: Option<&str>) -> Vec<&str> {
    tags.unwrap_or_default()
        .split([';', ',', ' '])
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_compare() {
        let v: Version =
            serde_json::from_str(r#"{"version":"9.1.2","release":9.1,"repoid":"abc"}"#).unwrap();
        assert_eq!(v.major_minor(), Some((9, 1)));
        assert_eq!(v.release.as_deref(), Some("9.1"));
        assert!(v.at_least(9, 1) && v.at_least(8, 4) && !v.at_least(9, 2));
    }

    #[test]
    fn status_with_string_numbers() {
        let s: CtStatus = serde_json::from_str(
            r#"{"status":"running","pid":"4242","cpu":"0.5","mem":"1048576","maxmem":2097152,
                "netin":"10","netout":20,"diskread":"30","diskwrite":40,"uptime":"7",
                "tags":"lxcri;ns-default","lock":"","vmid":"105"}"#,
        )
        .unwrap();
        assert!(s.is_running());
        assert_eq!(s.pid, Some(4242));
        assert_eq!(s.cpu, Some(0.5));
        assert_eq!((s.mem, s.maxmem), (Some(1 << 20), Some(2 << 20)));
        assert_eq!(
            (s.netin, s.netout, s.diskread, s.diskwrite),
            (Some(10), Some(20), Some(30), Some(40))
        );
        assert_eq!(s.uptime, Some(7));
        assert_eq!(s.tag_list(), vec!["lxcri", "ns-default"]);
    }

    #[test]
    fn storage_content() {
        let s: StorageInfo = serde_json::from_str(
            r#"{"id":"storage/pve1/local-zfs","storage":"local-zfs","node":"pve1","content":"images,rootdir","shared":0}"#,
        )
        .unwrap();
        assert!(s.allows_rootdir());
        assert_eq!(s.shared, Some(false));
    }
}
