//! The `[pve]` section: how lxcri reaches the Proxmox VE API of the node it
//! runs on, and where that node keeps CT configs, locks and LXC containers.
//! Required by `backend = "pve"`; with the `lxc` backend it is optional and
//! only used by `lxcri check`.
//!
//! Each key is parsed on its own (by [`PveSettings::apply`], called with the
//! same strings from the file and the environment); rules that involve more
//! than one key (required keys, `fingerprint` xor `ca_file`) are checked by
//! [`PveSettings::validate`] once every source has been applied, so an
//! environment variable can still complete or override the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::error::{ConfigError, Origin};
use super::{abs_path, dir_path, setting, timeout_secs, Field};
use crate::lxc::LxcAppArmor;
use crate::pve::client::{Fingerprint, TlsError, TokenId};
use crate::pve::config::PoolId;
use crate::pve::vmid::VmidRange;

/// Default `pve.vmid_range`: clear of the ids PVE hands out first (100 up)
/// and of what admins usually number by hand, so lxcri's CTs stand apart.
pub const DEFAULT_VMID_RANGE: (u32, u32) = (10000, 19999);
/// Default `pve.storage`: the storage a ZFS install of PVE creates for CT
/// volumes (`rpool/data`); ext4/LVM installs have `local-lvm` instead.
pub const DEFAULT_STORAGE: &str = "local-zfs";
/// Default `pve.bridge`: the bridge the PVE installer creates.
pub const DEFAULT_BRIDGE: &str = "vmbr0";
/// Default `pve.config_dir`: pmxcfs, where `lxc/VMID.conf` lives.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/pve";
/// Default `pve.template`: the empty template CTs are created from (the
/// rootfs is containerd's, so the template only has to exist).
pub const DEFAULT_TEMPLATE: &str = "local:vztmpl/lxcri-empty.tar.gz";
/// Default `pve.lxcpath`: where `pct start` writes each CT's LXC config.
pub const DEFAULT_PVE_LXCPATH: &str = "/var/lib/lxc";
/// Default `pve.lock_dir`: PVE's per-CT config locks.
pub const DEFAULT_LOCK_DIR: &str = "/run/lock/lxc";
/// Default `pve.run_dir`: where `pve-container@VMID.service` sends each
/// CT's `lxc-start` stderr (`ct-VMID.stderr`, pve-container
/// src/pve-container@.service).
pub const DEFAULT_RUN_DIR: &str = "/run/pve";
/// Default `pve.lock_wait_secs`: below kubelet's 2 minute runtime request
/// timeout, so a delete's error reaches it.
pub const DEFAULT_LOCK_WAIT_SECS: u64 = 60;
/// The largest `pve.warm_pool_size`: each member is a stopped CT holding a
/// VMID and a volume; more than this is a node's worth of parallel starts.
pub const MAX_WARM_POOL_SIZE: u32 = 64;

/// Which `[pve]` key a setting sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PveField {
    Url,
    Node,
    TokenId,
    TokenSecretFile,
    Fingerprint,
    CaFile,
    VmidRange,
    Storage,
    Bridge,
    ConfigDir,
    Template,
    LxcPath,
    LockDir,
    RunDir,
    Pool,
    LockWaitSecs,
    AppArmor,
    WarmPoolSize,
}

/// Keys that must be set once the section is used at all.
const REQUIRED: &[PveField] = &[
    PveField::Url,
    PveField::Node,
    PveField::TokenId,
    PveField::TokenSecretFile,
];

/// The `[pve]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveSettings {
    /// `https://HOST:8006`.
    pub url: Option<String>,
    /// This node's name in the cluster (`{node}` in API paths).
    pub node: Option<String>,
    pub token_id: Option<TokenId>,
    /// File holding the token secret; read when connecting, never logged.
    pub token_secret_file: Option<PathBuf>,
    /// SHA-256 pin of the API's leaf certificate.
    pub fingerprint: Option<Fingerprint>,
    /// CA certificate(s) to verify the API with (e.g. `/etc/pve/pve-root-ca.pem`).
    pub ca_file: Option<PathBuf>,
    pub vmid_range: VmidRange,
    /// Storage for CT root filesystems.
    pub storage: String,
    /// Bridge CT NICs are attached to.
    pub bridge: String,
    /// pmxcfs mount; CT configs are `<config_dir>/lxc/VMID.conf`.
    pub config_dir: PathBuf,
    /// `ostemplate` of every create (`STORAGE:vztmpl/NAME`).
    pub template: String,
    /// LXC's lxcpath on the node: the CT `VMID` is the LXC container
    /// `<lxcpath>/VMID`.
    pub lxcpath: PathBuf,
    /// Directory of PVE's `pve-config-VMID.lock` files.
    pub lock_dir: PathBuf,
    /// Where PVE keeps each CT's `ct-VMID.stderr` (its `lxc-start` errors).
    pub run_dir: PathBuf,
    /// The PVE resource pool lxcri's CTs are created in, so backup jobs and
    /// permissions can target or exclude them.
    pub pool: Option<PoolId>,
    /// How long deleting a CT waits while PVE holds it locked (a backup,
    /// snapshot, mount or migration) before it fails.
    pub lock_wait_secs: u64,
    /// The AppArmor profile of CTs whose spec names none: `unconfined` as
    /// runc, or PVE's own `generated`.
    pub apparmor: LxcAppArmor,
    /// How many stopped CTs the node keeps created ahead, so that a create
    /// is a config write and a start (0: none, every create makes its CT).
    pub warm_pool_size: u32,
    /// Where each key that was set came from: decides whether the section
    /// is in use and lets cross-key errors name their sources.
    origins: BTreeMap<&'static str, Origin>,
}

impl Default for PveSettings {
    fn default() -> Self {
        let (start, end) = DEFAULT_VMID_RANGE;
        PveSettings {
            url: None,
            node: None,
            token_id: None,
            token_secret_file: None,
            fingerprint: None,
            ca_file: None,
            vmid_range: VmidRange::new(start, end).expect("the default range is valid"),
            storage: DEFAULT_STORAGE.to_string(),
            bridge: DEFAULT_BRIDGE.to_string(),
            config_dir: PathBuf::from(DEFAULT_CONFIG_DIR),
            template: DEFAULT_TEMPLATE.to_string(),
            lxcpath: PathBuf::from(DEFAULT_PVE_LXCPATH),
            lock_dir: PathBuf::from(DEFAULT_LOCK_DIR),
            run_dir: PathBuf::from(DEFAULT_RUN_DIR),
            pool: None,
            lock_wait_secs: DEFAULT_LOCK_WAIT_SECS,
            apparmor: LxcAppArmor::Unconfined,
            warm_pool_size: 0,
            origins: BTreeMap::new(),
        }
    }
}

impl PveSettings {
    pub fn lock_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lock_wait_secs)
    }

    /// Whether any `[pve]` key was set (file or environment). When it is,
    /// `url`, `node`, `token_id` and `token_secret_file` are all set.
    pub fn is_configured(&self) -> bool {
        !self.origins.is_empty()
    }

    /// Where the value of `key` (dotted, e.g. `pve.url`) came from.
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.origins.get(key)
    }

    pub(super) fn apply(
        &mut self,
        field: PveField,
        value: &str,
        origin: Origin,
    ) -> Result<(), String> {
        match field {
            PveField::Url => self.url = Some(https_url(value)?),
            PveField::Node => self.node = Some(name(value, "node name")?),
            PveField::TokenId => {
                self.token_id = Some(TokenId::parse(value).map_err(|e| e.to_string())?)
            }
            PveField::TokenSecretFile => self.token_secret_file = Some(abs_path(value)?),
            PveField::Fingerprint => {
                let fp: Fingerprint = value.parse().map_err(|e: TlsError| e.to_string())?;
                self.fingerprint = Some(fp)
            }
            PveField::CaFile => self.ca_file = Some(abs_path(value)?),
            PveField::VmidRange => {
                self.vmid_range = VmidRange::parse(value).map_err(|e| e.to_string())?
            }
            PveField::Storage => self.storage = name(value, "storage id")?,
            PveField::Bridge => self.bridge = name(value, "bridge name")?,
            PveField::ConfigDir => self.config_dir = dir_path(value)?,
            PveField::Template => self.template = template(value)?,
            PveField::LxcPath => self.lxcpath = dir_path(value)?,
            PveField::LockDir => self.lock_dir = dir_path(value)?,
            PveField::RunDir => self.run_dir = dir_path(value)?,
            PveField::Pool => self.pool = Some(PoolId::parse(value).map_err(|e| e.to_string())?),
            PveField::LockWaitSecs => self.lock_wait_secs = timeout_secs(value)?,
            PveField::AppArmor => self.apparmor = apparmor(value)?,
            PveField::WarmPoolSize => self.warm_pool_size = warm_pool_size(value)?,
        }
        self.origins.insert(key_of(field), origin);
        Ok(())
    }

    /// The rules between keys, checked after every source was applied.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.is_configured() {
            return Ok(());
        }
        if let (Some(fp), Some(ca)) = (self.origin("pve.fingerprint"), self.origin("pve.ca_file")) {
            return Err(ConfigError::Conflict {
                first: setting(Field::Pve(PveField::Fingerprint)).key,
                first_origin: fp.clone(),
                second: setting(Field::Pve(PveField::CaFile)).key,
                second_origin: ca.clone(),
                reason: "pin the certificate or trust a CA, not both",
            });
        }
        for field in REQUIRED {
            let s = setting(Field::Pve(*field));
            if self.origin(s.key).is_none() {
                let (used, origin) = self.origins.iter().next().expect("configured");
                return Err(ConfigError::Missing {
                    key: s.key,
                    env: s.env,
                    because: format!("{used} is set (from {origin})"),
                });
            }
        }
        Ok(())
    }
}

fn key_of(field: PveField) -> &'static str {
    setting(Field::Pve(field)).key
}

/// The `[pve]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPve {
    url: Option<String>,
    node: Option<String>,
    token_id: Option<String>,
    token_secret_file: Option<String>,
    fingerprint: Option<String>,
    ca_file: Option<String>,
    vmid_range: Option<String>,
    storage: Option<String>,
    bridge: Option<String>,
    config_dir: Option<String>,
    template: Option<String>,
    lxcpath: Option<String>,
    lock_dir: Option<String>,
    run_dir: Option<String>,
    pool: Option<String>,
    lock_wait_secs: Option<u64>,
    apparmor: Option<String>,
    warm_pool_size: Option<u64>,
}

impl RawPve {
    pub(super) fn values(self) -> Vec<(Field, Option<String>)> {
        [
            (PveField::Url, self.url),
            (PveField::Node, self.node),
            (PveField::TokenId, self.token_id),
            (PveField::TokenSecretFile, self.token_secret_file),
            (PveField::Fingerprint, self.fingerprint),
            (PveField::CaFile, self.ca_file),
            (PveField::VmidRange, self.vmid_range),
            (PveField::Storage, self.storage),
            (PveField::Bridge, self.bridge),
            (PveField::ConfigDir, self.config_dir),
            (PveField::Template, self.template),
            (PveField::LxcPath, self.lxcpath),
            (PveField::LockDir, self.lock_dir),
            (PveField::RunDir, self.run_dir),
            (PveField::Pool, self.pool),
            (
                PveField::LockWaitSecs,
                self.lock_wait_secs.map(|n| n.to_string()),
            ),
            (PveField::AppArmor, self.apparmor),
            (
                PveField::WarmPoolSize,
                self.warm_pool_size.map(|n| n.to_string()),
            ),
        ]
        .into_iter()
        .map(|(f, v)| (Field::Pve(f), v))
        .collect()
    }
}

/// `https://HOST[:PORT][/]`. Plain http is refused: the token travels in a
/// header on every request.
fn https_url(value: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(value).map_err(|e| format!("not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err("must be an https:// URL (the API token is sent with every request)".into());
    }
    if url.host_str().map_or(true, str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials (use token_id and token_secret_file)".into());
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// `STORAGE:vztmpl/NAME.tar[.gz|.xz|.zst|.bz2]`, the template volumes a
/// directory storage takes (pve-storage src/PVE/Storage.pm
/// `$VZTMPL_EXT_RE_1`, case-insensitive, read by Plugin.pm `parse_volname`).
fn template(value: &str) -> Result<String, String> {
    let bad = || {
        "not a template volume like local:vztmpl/lxcri-empty.tar.gz (STORAGE:vztmpl/NAME.tar, .tar.gz, .tar.xz, .tar.zst or .tar.bz2)"
            .to_string()
    };
    let (storage, file) = value.split_once(':').ok_or_else(bad)?;
    name(storage, "storage id")?;
    let file = file.strip_prefix("vztmpl/").ok_or_else(bad)?;
    let lower = file.to_ascii_lowercase();
    let ok_ext = [".tar", ".tar.gz", ".tar.xz", ".tar.zst", ".tar.bz2"]
        .iter()
        .any(|e| lower.ends_with(e) && file.len() > e.len());
    let ok_chars = file
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    if !ok_ext || !ok_chars || file.starts_with('.') {
        return Err(bad());
    }
    Ok(value.to_string())
}

/// A PVE node name, storage id or interface name: these go into API paths
/// and property strings, so only the characters PVE itself allows in them.
fn name(value: &str, what: &str) -> Result<String, String> {
    let mut chars = value.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value.len() <= 63;
    if !ok {
        return Err(format!(
            "not a valid {what}: letters, digits, `-`, `_` and `.`, starting with a letter or digit"
        ));
    }
    Ok(value.to_string())
}

/// `unconfined` or `generated`: the two profiles a PVE admin chooses
/// between for CTs whose spec names none.
fn apparmor(value: &str) -> Result<LxcAppArmor, String> {
    [LxcAppArmor::Unconfined, LxcAppArmor::Generated]
        .into_iter()
        .find(|p| p.as_str() == value)
        .ok_or_else(|| "must be `unconfined` (as runc) or `generated` (PVE's own profile)".into())
}

/// `0..=MAX_WARM_POOL_SIZE` stopped CTs.
fn warm_pool_size(value: &str) -> Result<u32, String> {
    let bad = || format!("must be a whole number from 0 (off) to {MAX_WARM_POOL_SIZE}");
    let n: u32 = value.parse().map_err(|_| bad())?;
    if n > MAX_WARM_POOL_SIZE {
        return Err(bad());
    }
    Ok(n)
}
