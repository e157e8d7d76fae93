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
    fn version_fields() {
        let v: Version =
            serde_json::from_str(r#"{"version":"9.1.2","release":9.1,"repoid":"abc"}"#).unwrap();
        assert_eq!(v.version, "9.1.2");
        assert_eq!(v.release.as_deref(), Some("9.1"));
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
