//! Errors of the configuration loader, and where a value came from so an
//! error can point at the file, the key or the environment variable to fix.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value was taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// A key in this config file.
    File(PathBuf),
    /// This `LXCRI_*` environment variable.
    Env(&'static str),
    /// A command line flag (`lxcri --runtime-root ...`).
    Flag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the default"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag => f.write_str("the command line"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read. A missing file is only an error when its
    /// path was given explicitly (`--config`, `ConfigPath`, `LXCRI_CONFIG`).
    #[error("reading config file {path} (given by {given_by}): {source}")]
    Read {
        path: PathBuf,
        given_by: String,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, a wrong type or an unknown key; toml's message carries
    /// the line, the column and the offending key.
    #[error("config file {path}: {}", .source.to_string().trim_end())]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    /// A value that parsed but is not acceptable.
    #[error("invalid {key} = {value:?} ({}): {reason}", where_from(origin, env))]
    Invalid {
        key: &'static str,
        env: &'static str,
        value: String,
        origin: Origin,
        reason: String,
    },
    /// Two keys that exclude each other were both set.
    #[error("{first} (from {first_origin}) and {second} (from {second_origin}) are mutually exclusive: {reason}")]
    Conflict {
        first: &'static str,
        first_origin: Origin,
        second: &'static str,
        second_origin: Origin,
        reason: &'static str,
    },
    /// Two default NICs no container could have together.
    #[error("{second} (from {second_origin}) cannot be a default NIC beside {first} (from {first_origin}): {reason}")]
    NicSet {
        first: &'static str,
        first_origin: Origin,
        second: &'static str,
        second_origin: Origin,
        reason: String,
    },
    /// A key another key depends on is not set.
    #[error("missing {key} (env {env}): required because {because}")]
    Missing {
        key: &'static str,
        env: &'static str,
        because: String,
    },
    /// A container's configuration snapshot that is not one lxcri wrote.
    #[error("configuration snapshot {path}: {message}")]
    Snapshot { path: PathBuf, message: String },
    /// `set` was called with a key that does not exist.
    #[error("unknown config key {key:?}")]
    UnknownKey { key: String },
    /// No `lxcri-init` at the configured path or any default location.
    #[error(
        "lxcri-init not found (key lxc.init_binary, env LXCRI_LXC_INIT_BINARY); looked at: {}",
        .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    InitBinaryNotFound { searched: Vec<PathBuf> },
}

/// Where a bad value came from, plus the variable that overrides a file
/// value (someone reading the error may prefer to fix it there).
fn where_from(origin: &Origin, env: &str) -> String {
    match origin {
        Origin::File(_) => format!("from {origin}; environment override {env}"),
        _ => format!("from {origin}"),
    }
}

pub type Result<T> = std::result::Result<T, ConfigError>;
