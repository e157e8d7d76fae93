//! The typed Proxmox VE CT configuration lxcri sets, and the node-local
//! config file it edits as root.
//!
//! Two ways into a CT's config, each with exactly one writer here:
//!
//! - the API ([`PveConfig::to_api_params`]): form parameters for
//!   `POST /nodes/{node}/lxc` and `PUT /nodes/{node}/lxc/{vmid}/config`.
//!   Every key is checked against the keys the 9.1 schema knows for that
//!   endpoint and every value against the schema's type, range and pattern
//!   (and stricter where the schema lets a line break through into the
//!   config file: `entrypoint`, `env`).
//! - the file `/etc/pve/lxc/VMID.conf` ([`PveConfigFile`]), for what the API
//!   reserves for `root@pam`: raw `lxc.*` lines (lxcri keeps them to one
//!   `lxc.include` of a fragment it owns), bind mount points, a directory
//!   rootfs. Edits go through PVE's own config lock ([`ConfigLock`]) and an
//!   atomic rename, and keep every other byte of the file.
//!
//! Names and annotations become a [`Hostname`], [`Tags`] and a
//! [`Description`] through sanitising constructors, so a pod name can never
//! add a key or a property. The OCI spec becomes a [`PveConfig`] in
//! `crate::plan::pve`.

mod comment_text;
mod file;
mod kinds;
mod lock;
mod names;
mod props;
mod render;
mod resources;
mod schema_keys;
mod warm_pool;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;

pub use file::{check_raw_key, ConfigLine, PveConfigFile, Section, SectionKind};
pub use kinds::{Arch, OsType};
pub use lock::{update_node_config, ConfigLock, NodePaths};
pub use names::{Description, DescriptionInfo, Hostname, PoolId, Tag, Tags};
pub use props::{
    Features, IpConfig4, IpConfig6, MacAddr, MountOption, MountPoint, MountPointOptions, NetConfig,
    RootFs, Volume,
};
pub use render::{CreateParams, Entrypoint, PveConfig};
pub use resources::{CpuLimit, PveResources, MAX_CPUS, MIN_MEMORY_MIB};
pub use schema_keys::ApiEndpoint;
pub use warm_pool::{MemberFingerprint, PoolClaim};

#[derive(Debug, thiserror::Error)]
pub enum PveConfigError {
    /// A value the schema (or PVE's config file format) does not accept.
    #[error("PVE config {field}: value {value:?} {reason}")]
    InvalidValue {
        field: String,
        value: String,
        reason: String,
    },
    /// A key the schema does not list for the endpoint.
    #[error("PVE config key {key:?} is not a parameter of {endpoint}")]
    UnknownKey { key: String, endpoint: ApiEndpoint },
    #[error("PVE config {field} is required for {endpoint}")]
    Missing {
        field: &'static str,
        endpoint: ApiEndpoint,
    },
    /// Only a `root@pam` ticket may set this through the API; lxcri writes it
    /// into the node-local file instead.
    #[error("PVE config {field}: {reason}; it belongs in the node-local config file")]
    RootOnly { field: String, reason: String },
    /// A raw `lxc.*` key PVE refuses in `VMID.conf`.
    #[error("raw LXC key {key:?} is not allowed in a PVE config file: {reason}")]
    RawKeyRejected { key: String, reason: String },
    #[error("PVE config file line {line}: {message}")]
    Parse { line: usize, message: String },
    #[error("PVE config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("PVE config file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {waited_ms} ms waiting for PVE config lock {path}")]
    LockTimeout { path: PathBuf, waited_ms: u64 },
    /// pmxcfs refuses every write under `/etc/pve` while the node has no
    /// quorum (root's too, with EACCES).
    #[error(
        "cannot write PVE config file {path}: the PVE cluster has no quorum \
         ({local} is read-only or missing; pmxcfs refuses writes until quorum returns)"
    )]
    NoQuorum { path: PathBuf, local: PathBuf },
}

impl PveConfigError {
    fn invalid(field: &str, value: &str, reason: impl Into<String>) -> Self {
        PveConfigError::InvalidValue {
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PveConfigError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, PveConfigError>;

/// The PVE release lxcri talks to (from `GET /version`): it decides which
/// keys the API takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PveVersion {
    pub major: u32,
    pub minor: u32,
}

impl PveVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Parses `9.1`, `9.1.3` or `pve-manager/9.1.3/abcdef` (the `version`
    /// and `release` fields of `GET /version` both start like this).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || PveConfigError::invalid("version", s, "is not a PVE version like 9.1.3");
        let v = s.strip_prefix("pve-manager/").unwrap_or(s);
        let mut parts = v.split(['.', '/', '-', '~']);
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        Ok(Self { major, minor })
    }

    /// `entrypoint`, `env` and the NIC flag `host-managed` are API keys
    /// since 9.1 (Nov 2025); before, the init command is a raw
    /// `lxc.init.cmd` line that only root can write.
    pub fn has_entrypoint(self) -> bool {
        self >= PveVersion::new(9, 1)
    }
}

impl fmt::Display for PveVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Rejects every control character: one in a value written into the
/// line-based config file would start a new key.
fn check_no_control(field: &str, value: &str) -> Result<()> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(PveConfigError::invalid(
            field,
            value,
            format!("contains the control character {:?}", c),
        ));
    }
    Ok(())
}
