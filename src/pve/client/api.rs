//! Typed endpoint methods: only what lxcri needs, and only endpoints that
//! exist in the PVE 9.1 schema (`tests/data/pve-api/schema.json`).
//!
//! Create and update take parameters as already-validated `(key, value)`
//! pairs: rendering a typed CT config into PVE keys is the job of
//! `pve::config`, which also rejects newlines and unknown keys.

use reqwest::Method;
use serde_json::Value;

use super::error::{PveError, Result};
use super::transport::ApiPath;
use super::types::{NetworkIface, NodeCt, Permissions, StorageInfo, Version};
use super::upid::Upid;
use super::PveClient;

/// Options of `DELETE /nodes/{node}/lxc/{vmid}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Remove the VMID from backup jobs, replication and HA too.
    pub purge: bool,
    /// Destroy even if running (PVE stops it first).
    pub force: bool,
    /// Also destroy disks of this VMID not referenced by the config.
    pub destroy_unreferenced_disks: bool,
}

type Params = Vec<(String, String)>;

fn param(key: &str, value: impl ToString) -> (String, String) {
    (key.to_string(), value.to_string())
}

fn flag(params: &mut Params, key: &str, on: bool) {
    if on {
        params.push(param(key, 1));
    }
}

impl PveClient {
    fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &ApiPath,
        params: &[(String, String)],
    ) -> Result<T> {
        Ok(self.transport.call(Method::GET, path, params)?.data)
    }

    fn upid_call(
        &self,
        method: Method,
        path: &ApiPath,
        params: &[(String, String)],
    ) -> Result<Upid> {
        let raw: String = self.transport.call(method, path, params)?.data;
        Ok(Upid::parse(&raw)?)
    }

    /// `GET /version`: reachability check and feature gate.
    pub fn version(&self) -> Result<Version> {
        self.get(&ApiPath::new("/version", &[]), &[])
    }

    /// `GET /cluster/nextid`. Without `vmid`, the first free id. With one,
    /// `Some(vmid)` if it is free *now* and `None` if taken (PVE answers 400).
    /// Only a hint: the create call is the arbiter.
    pub fn next_id(&self, vmid: Option<u32>) -> Result<Option<u32>> {
        let path = ApiPath::new("/cluster/nextid", &[]);
        let params: Params = vmid.map(|v| param("vmid", v)).into_iter().collect();
        match self.get::<Value>(&path, &params) {
            Ok(value) => {
                let id = match &value {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                };
                id.and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| PveError::Decode {
                        method: Method::GET,
                        path: path.path.clone(),
                        message: format!("expected a VMID, got {value}"),
                    })
            }
            Err(PveError::BadRequest { ref errors, .. })
                if vmid.is_some() && errors.contains_key("vmid") =>
            {
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// `POST /nodes/{node}/lxc`; `params` must include `vmid` and
    /// `ostemplate`. The CT exists (locked `create`) once the task ends OK.
    pub fn create_lxc(&self, node: &str, params: &[(String, String)]) -> Result<Upid> {
        self.upid_call(
            Method::POST,
            &ApiPath::new("/nodes/{node}/lxc", &[node]),
            params,
        )
    }

    /// `PUT /nodes/{node}/lxc/{vmid}/config` (synchronous; returns null).
    /// Pass `digest` in `params` to fail if the config changed meanwhile.
    pub fn update_lxc_config(
        &self,
        node: &str,
        vmid: u32,
        params: &[(String, String)],
    ) -> Result<()> {
        let vmid = vmid.to_string();
        let path = ApiPath::new("/nodes/{node}/lxc/{vmid}/config", &[node, &vmid]);
        self.transport.call::<Value>(Method::PUT, &path, params)?;
        Ok(())
    }

    /// `POST .../status/start`.
    pub fn start(&self, node: &str, vmid: u32) -> Result<Upid> {
        let vmid = vmid.to_string();
        let path = ApiPath::new("/nodes/{node}/lxc/{vmid}/status/start", &[node, &vmid]);
        self.upid_call(Method::POST, &path, &[])
    }

    /// `POST .../status/stop`: `lxc-stop --kill`, immediate.
    pub fn stop(&self, node: &str, vmid: u32) -> Result<Upid> {
        let vmid = vmid.to_string();
        let path = ApiPath::new("/nodes/{node}/lxc/{vmid}/status/stop", &[node, &vmid]);
        self.upid_call(Method::POST, &path, &[])
    }

    /// `DELETE /nodes/{node}/lxc/{vmid}`.
    pub fn delete_lxc(&self, node: &str, vmid: u32, options: &DeleteOptions) -> Result<Upid> {
        let vmid = vmid.to_string();
        let path = ApiPath::new("/nodes/{node}/lxc/{vmid}", &[node, &vmid]);
        let mut params = Params::new();
        flag(&mut params, "purge", options.purge);
        flag(&mut params, "force", options.force);
        flag(
            &mut params,
            "destroy-unreferenced-disks",
            options.destroy_unreferenced_disks,
        );
        self.upid_call(Method::DELETE, &path, &params)
    }

    /// `GET /nodes/{node}/lxc`: the CTs of one node.
    pub fn node_lxc_list(&self, node: &str) -> Result<Vec<NodeCt>> {
        self.get(&ApiPath::new("/nodes/{node}/lxc", &[node]), &[])
    }

    /// Storages usable on `node`, from `GET /cluster/resources?type=storage`
    /// (the schema lxcri targets has no per-node storage index).
    pub fn storage_list(&self, node: &str) -> Result<Vec<StorageInfo>> {
        let all: Vec<StorageInfo> = self.get(
            &ApiPath::new("/cluster/resources", &[]),
            &[param("type", "storage")],
        )?;
        Ok(all
            .into_iter()
            .filter(|s| s.node.as_deref() == Some(node))
            .collect())
    }

    /// `GET /access/permissions[?path=]`: the calling token's effective
    /// privileges, for one ACL path (`/vms`, `/storage/local-zfs`) or, with
    /// `None`, for every path it has any on.
    pub fn permissions(&self, path: Option<&str>) -> Result<Permissions> {
        let params: Params = path.map(|p| param("path", p)).into_iter().collect();
        self.get(&ApiPath::new("/access/permissions", &[]), &params)
    }

    /// `GET /nodes/{node}/network`: the node's interfaces (bridges included).
    pub fn network_list(&self, node: &str) -> Result<Vec<NetworkIface>> {
        self.get(&ApiPath::new("/nodes/{node}/network", &[node]), &[])
    }
}
