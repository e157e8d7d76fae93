//! `lxcri check` for the `[pve]` section: is the PVE API reachable, is its
//! certificate the one configured, is the token accepted and does it hold
//! the privileges lxcri needs, do the configured storage and bridge exist on
//! this node, and does this look like a PVE node at all.
//!
//! With `backend = "pve"` also: which template creates use, and whether
//! the node's LXC lxcpath and PVE's lock directory are where the config
//! says.
//!
//! The API checks go through the [`Api`] trait so tests can feed them any
//! answer, errors included, without a server. Nothing here prints the token
//! secret: it is only read into the client.

use std::path::Path;
use std::time::Duration;

use lxcri::config::{BackendKind, Config, ConnectError, PveSettings, RootfsMode};
use lxcri::error_chain as chain;
use lxcri::pve::client::{
    ClientOptions, NetworkIface, Permissions, PveClient, PveError, StorageInfo, TlsTrust, Version,
};
use lxcri::pve::storage_cfg::StorageCfg;
use lxcri::pve::storage_check::{check_empty_volume_storage, check_zfs_storage, OurPool};
use lxcri::rootfs::zfs::ZfsRootfs;

use super::{finding, Finding, Status};

mod privileges;

use privileges::{privileged_cts, privileges};

/// The PVE calls the checks make.
pub trait Api {
    fn version(&self) -> Result<Version, PveError>;
    fn permissions(&self, path: &str) -> Result<Permissions, PveError>;
    fn storage_list(&self, node: &str) -> Result<Vec<StorageInfo>, PveError>;
    fn network_list(&self, node: &str) -> Result<Vec<NetworkIface>, PveError>;
}

impl Api for PveClient {
    fn version(&self) -> Result<Version, PveError> {
        PveClient::version(self)
    }
    fn permissions(&self, path: &str) -> Result<Permissions, PveError> {
        PveClient::permissions(self, Some(path))
    }
    fn storage_list(&self, node: &str) -> Result<Vec<StorageInfo>, PveError> {
        PveClient::storage_list(self, node)
    }
    fn network_list(&self, node: &str) -> Result<Vec<NetworkIface>, PveError> {
        PveClient::network_list(self, node)
    }
}

/// Every PVE check, or none when no `[pve]` section is configured (config
/// validation guarantees url, node, token id and secret file when it is).
/// The node-side checks of the `pve` backend only run when it is the
/// backend.
pub fn checks(config: &Config) -> Vec<Finding> {
    let settings = &config.pve;
    if !settings.is_configured() {
        return Vec::new();
    }
    let mut out = match connect(settings) {
        Ok(client) => api_checks(&client, settings),
        Err(f) => vec![f],
    };
    out.push(config_dir(&settings.config_dir));
    if config.backend == BackendKind::Pve {
        out.extend(backend_checks(settings));
        if config.rootfs.mode == RootfsMode::Zfs {
            out.push(zfs_storage(config));
        } else {
            out.push(empty_volume_storage(config));
        }
    }
    out
}

/// In zfs mode `pve.storage` must be `zfs.pool` as the node's storage.cfg
/// describes it: PVE finds and destroys the CT's volume there.
pub fn zfs_storage(config: &Config) -> Finding {
    let Some(zfs) = ZfsRootfs::from_settings(&config.zfs, &config.runtime_root) else {
        return finding(
            "pve-zfs-storage",
            Status::Fail,
            "rootfs.mode = \"zfs\" without zfs.pool",
        );
    };
    let (cfg, path) = match storage_cfg(config) {
        Ok(read) => read,
        Err(e) => return finding("pve-zfs-storage", Status::Fail, e),
    };
    let mountpoint = match zfs.pool_mountpoint() {
        Ok(m) => m,
        Err(e) => return finding("pve-zfs-storage", Status::Fail, chain(&e)),
    };
    let ours = OurPool {
        pool: zfs.pool().as_str(),
        mountpoint: mountpoint.as_deref(),
    };
    let node = config.pve.node.as_deref().unwrap_or("");
    match check_zfs_storage(&cfg, &path, &config.pve.storage, node, ours) {
        Ok(()) => finding(
            "pve-zfs-storage",
            Status::Ok,
            format!(
                "storage {} is zfs.pool {} in {}",
                config.pve.storage,
                ours.pool,
                path.display()
            ),
        ),
        Err(e) => finding("pve-zfs-storage", Status::Fail, e.to_string()),
    }
}

/// Outside zfs mode each CT gets an unused root volume of size 0, which
/// only a storage with a path or a zfspool can allocate.
pub fn empty_volume_storage(config: &Config) -> Finding {
    let (cfg, path) = match storage_cfg(config) {
        Ok(read) => read,
        Err(e) => return finding("pve-storage-volume", Status::Fail, e),
    };
    let node = config.pve.node.as_deref().unwrap_or("");
    match check_empty_volume_storage(&cfg, &path, &config.pve.storage, node) {
        Ok(()) => finding(
            "pve-storage-volume",
            Status::Ok,
            format!(
                "storage {} can hold each CT's empty root volume",
                config.pve.storage
            ),
        ),
        Err(e) => finding("pve-storage-volume", Status::Fail, e.to_string()),
    }
}

/// The node's storage.cfg and its path, or why it cannot be read.
fn storage_cfg(config: &Config) -> Result<(StorageCfg, std::path::PathBuf), String> {
    let path = config.pve.config_dir.join("storage.cfg");
    StorageCfg::read(&path)
        .map(|cfg| (cfg, path))
        .map_err(|e| chain(&e))
}

/// What creates need on the node besides the API.
pub fn backend_checks(settings: &PveSettings) -> Vec<Finding> {
    vec![
        template(&settings.template),
        node_dir(
            "pve-lxcpath",
            &settings.lxcpath,
            "PVE starts CT VMID as the LXC container <lxcpath>/VMID; is pve.lxcpath right and \
             is this a PVE node?",
        ),
        node_dir(
            "pve-lock-dir",
            &settings.lock_dir,
            "lxcri edits VMID.conf under PVE's pve-config-VMID.lock there; a lock elsewhere \
             does not exclude PVE's own edits (is pve.lock_dir right, is this a PVE node?)",
        ),
    ]
}

/// Short timeouts and no retries: a preflight should answer quickly and
/// report the first failure as it is.
fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        max_retries: 0,
        ..ClientOptions::default()
    }
}

/// How the certificate was verified, for the OK line.
pub fn trust_detail(trust: &TlsTrust) -> String {
    match trust {
        TlsTrust::Fingerprint(fp) => format!("certificate matches pve.fingerprint {fp}"),
        TlsTrust::CaFile(ca) => format!("certificate verified against {}", ca.display()),
        TlsTrust::WebPkiRoots => "certificate verified against the public web PKI roots".into(),
    }
}

/// The client, or the finding that says why there is none.
fn connect(settings: &PveSettings) -> Result<PveClient, Finding> {
    settings.connect(options()).map_err(|e| connect_failure(&e))
}

/// Sorts a failure to build the client into the finding that names it.
pub fn connect_failure(e: &ConnectError) -> Finding {
    let name = match e {
        ConnectError::Token(_) => "pve-token",
        ConnectError::Client(PveError::TlsConfig(_)) => "pve-tls",
        ConnectError::NotConfigured(_) | ConnectError::Client(_) => "pve-api",
    };
    finding(name, Status::Fail, chain(e))
}

/// The checks that talk to the API. When `GET /version` fails, the rest
/// would fail the same way, so only that failure is reported.
pub fn api_checks(api: &dyn Api, settings: &PveSettings) -> Vec<Finding> {
    let url = settings.url.as_deref().unwrap_or("");
    let token_id = settings.token_id.as_ref().map(|t| t.as_str()).unwrap_or("");
    let node = settings.node.as_deref().unwrap_or("");
    let version = match api.version() {
        Ok(v) => v,
        Err(e) => return vec![version_failure(&e, url, token_id)],
    };
    let release = version
        .release
        .as_deref()
        .map(|r| format!(" (release {r})"))
        .unwrap_or_default();
    vec![
        finding(
            "pve-api",
            Status::Ok,
            format!("{url} reachable: PVE {}{release}", version.version),
        ),
        finding("pve-tls", Status::Ok, trust_detail(&settings.trust())),
        finding("pve-token", Status::Ok, format!("{token_id} accepted")),
        privileges(api, settings),
        privileged_cts(api),
        storage(&settings.storage, node, api.storage_list(node)),
        bridge(&settings.bridge, node, api.network_list(node)),
    ]
}

/// Sorts a failed `GET /version` into the finding that names its cause.
pub fn version_failure(e: &PveError, url: &str, token_id: &str) -> Finding {
    match e {
        PveError::FingerprintMismatch {
            expected, actual, ..
        } => finding(
            "pve-tls",
            Status::Fail,
            format!(
                "certificate fingerprint mismatch: pve.fingerprint is {expected}, \
                 {url} presents {actual}"
            ),
        ),
        PveError::TlsHandshake { .. } => finding("pve-tls", Status::Fail, chain(e)),
        PveError::Unauthorized { message, .. } => finding(
            "pve-token",
            Status::Fail,
            format!("token rejected ({token_id}): {message}; check token_id and the secret file"),
        ),
        _ => finding(
            "pve-api",
            Status::Fail,
            format!("{url} not usable: {}", chain(e)),
        ),
    }
}

pub fn storage(name: &str, node: &str, list: Result<Vec<StorageInfo>, PveError>) -> Finding {
    let list = match list {
        Ok(l) => l,
        Err(e) => {
            return finding(
                "pve-storage",
                Status::Fail,
                format!("listing storages: {}", chain(&e)),
            )
        }
    };
    let Some(found) = list.iter().find(|s| s.storage.as_deref() == Some(name)) else {
        let have: Vec<&str> = list.iter().filter_map(|s| s.storage.as_deref()).collect();
        return finding(
            "pve-storage",
            Status::Fail,
            format!(
                "storage {name} not found on node {node} (has: {})",
                or_none(&have)
            ),
        );
    };
    let kind = found.plugintype.as_deref().unwrap_or("unknown type");
    if !found.allows_rootdir() {
        return finding(
            "pve-storage",
            Status::Fail,
            format!(
                "storage {name} ({kind}) does not allow content rootdir: CT volumes cannot go there"
            ),
        );
    }
    match found.status.as_deref() {
        Some("available") | None => finding(
            "pve-storage",
            Status::Ok,
            format!("storage {name} ({kind}) on node {node}"),
        ),
        Some(status) => finding(
            "pve-storage",
            Status::Warn,
            format!("storage {name} ({kind}) on node {node} is {status}"),
        ),
    }
}

pub fn bridge(name: &str, node: &str, list: Result<Vec<NetworkIface>, PveError>) -> Finding {
    let list = match list {
        Ok(l) => l,
        Err(e) => {
            return finding(
                "pve-bridge",
                Status::Fail,
                format!("listing network interfaces: {}", chain(&e)),
            )
        }
    };
    match list.iter().find(|i| i.iface == name) {
        Some(i) if i.is_bridge() => finding(
            "pve-bridge",
            Status::Ok,
            format!("bridge {name} on node {node}"),
        ),
        Some(i) => finding(
            "pve-bridge",
            Status::Fail,
            format!(
                "{name} on node {node} is a {}, not a bridge",
                i.kind.as_deref().unwrap_or("interface of unknown type")
            ),
        ),
        None => {
            let bridges: Vec<&str> = list
                .iter()
                .filter(|i| i.is_bridge())
                .map(|i| i.iface.as_str())
                .collect();
            finding(
                "pve-bridge",
                Status::Fail,
                format!(
                    "bridge {name} not found on node {node} (bridges: {})",
                    or_none(&bridges)
                ),
            )
        }
    }
}

fn or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Creates use `ostemplate = template`. It must exist on its storage (a
/// create fails otherwise); this check does not look for it, it only names
/// it, so a failed create can be traced to it.
pub fn template(template: &str) -> Finding {
    finding(
        "pve-template",
        Status::Ok,
        format!("CTs are created from {template} (an empty tarball; see docs/operations.md)"),
    )
}

/// A directory the `pve` backend uses on the node; missing is a failure.
pub fn node_dir(name: &'static str, dir: &Path, why: &str) -> Finding {
    if dir.is_dir() {
        finding(name, Status::Ok, format!("{} exists", dir.display()))
    } else if dir.exists() {
        finding(
            name,
            Status::Fail,
            format!("{} is not a directory: {why}", dir.display()),
        )
    } else {
        finding(
            name,
            Status::Fail,
            format!("{} does not exist: {why}", dir.display()),
        )
    }
}

/// lxcri writes what the API reserves for root@pam into
/// `<config_dir>/lxc/VMID.conf`, so that directory must exist on the node.
pub fn config_dir(dir: &Path) -> Finding {
    let lxc = dir.join("lxc");
    if lxc.is_dir() {
        finding(
            "pve-config-dir",
            Status::Ok,
            format!("{} exists", lxc.display()),
        )
    } else {
        finding(
            "pve-config-dir",
            Status::Warn,
            format!(
                "{} does not exist: not a PVE node? (lxcri edits CT configs there)",
                lxc.display()
            ),
        )
    }
}

#[cfg(test)]
mod tests;
