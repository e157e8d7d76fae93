//! LXC: the typed configuration of one container, its single renderer, and
//! the `lxc-*` tools that run it.
//!
//! [`LxcConfig`] is built by pure functions in [`crate::plan`];
//! [`LxcConfig::render`] is the only code in lxcri that writes `lxc.*`
//! lines, and it validates every key and value it writes. [`LxcTools`]
//! starts, stops and removes containers with the `lxc-*` commands.

mod config;
mod placed_cgroups;
mod render;
mod tools;

pub use tools::{monitor_cgroup, LxcTools, LxcToolsError, LOG_FILE};

pub use render::render_lines;

#[cfg(test)]
mod tests;

pub use config::{
    CgroupAuto, CgroupDirs, DeviceKind, DeviceRule, IdKind, IdMap, LxcAppArmor, LxcConfig,
    MountEntry, Namespace, Namespaces, Network, Prlimit, TimeOffset,
};

#[derive(Debug, thiserror::Error)]
pub enum LxcConfigError {
    #[error("LXC config key {key:?} is not valid")]
    InvalidKey { key: String },
    #[error("LXC config {key}: value {value:?} {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
}

impl LxcConfigError {
    fn invalid(key: &str, value: &str, reason: &str) -> Self {
        LxcConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, LxcConfigError>;
