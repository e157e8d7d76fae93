//! lxcri's configuration: `/etc/lxcri/config.toml`, `LXCRI_*` environment
//! overrides, and overrides from command line flags.
//!
//! Precedence, highest first: command line flags ([`Config::set`]), `LXCRI_*`
//! environment variables, the config file, the built-in defaults. The file
//! is the explicit path (the CLI's `--config`, containerd's runtime option
//! `ConfigPath`), else `$LXCRI_CONFIG`, else [`DEFAULT_CONFIG_PATH`]. Only a
//! missing file at the default path means "use the defaults": a path someone
//! typed must exist, or a typo would silently run with defaults.
//!
//! Every value goes through the same string parser whether it came from the
//! file, the environment or a flag, so an error names the key, its
//! environment variable and where the bad value came from. Unknown keys in
//! the file are errors (a misspelled key would otherwise be ignored).
//!
//! The defaults work on a fresh Linux machine: `lxc` backend, state under
//! `/run/lxcri`, LXC configs under `/var/lib/lxcri/lxc`, `lxcri-init` found
//! next to the running executable.

mod error;
mod network;
mod pve;
mod pve_client;
mod settings;
mod userns;
mod values;
mod zfs;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use error::{ConfigError, Origin, Result};
pub use network::{NetworkSettings, DEFAULT_OVSDB};
pub use pve::{
    PveSettings, DEFAULT_BRIDGE, DEFAULT_CONFIG_DIR, DEFAULT_LOCK_DIR, DEFAULT_LOCK_WAIT_SECS,
    DEFAULT_PVE_LXCPATH, DEFAULT_RUN_DIR, DEFAULT_STORAGE, DEFAULT_TEMPLATE, DEFAULT_VMID_RANGE,
};
pub use pve_client::ConnectError;
pub use settings::{Setting, SETTINGS};
pub use userns::{UsernsSettings, DEFAULT_POOL as DEFAULT_USERNS_POOL};
pub use values::{BackendKind, LogLevel, LxcLogLevel, RootfsMode};
pub use zfs::{
    ZfsSettings, DEFAULT_IMAGES_CHILD, DEFAULT_IMAGE_TTL_SECS, DEFAULT_SIZE as DEFAULT_ZFS_SIZE,
    MIN_IMAGE_TTL_SECS,
};

/// Where the config file is read from when no path is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/lxcri/config.toml";
/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "LXCRI_CONFIG";
/// Directories searched for `lxcri-init` after the running executable's own.
pub const INIT_BINARY_DIRS: &[&str] = &["/usr/local/bin", "/usr/bin"];
/// Upper bound of `lxc.start_timeout_secs`: a deadline far in the future
/// is a mistake, and `Instant + Duration` panics on overflow.
pub const MAX_START_TIMEOUT_SECS: u64 = 3600;

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub backend: BackendKind,
    /// Per-container runtime directories and state records.
    pub runtime_root: PathBuf,
    /// The shim's log level.
    pub log_level: LogLevel,
    pub lxc: LxcSettings,
    pub rootfs: RootfsSettings,
    /// The optional `[pve]` section (see [`PveSettings::is_configured`]).
    pub pve: PveSettings,
    /// The `[zfs]` section (used by `rootfs.mode = "zfs"`).
    pub zfs: ZfsSettings,
    /// The `[network]` section.
    pub network: NetworkSettings,
    /// The `[userns]` section.
    pub userns: UsernsSettings,
    /// The config file that was read; `None` when none was (defaults and env only).
    pub file: Option<PathBuf>,
    /// The value of every key that was set (file, environment or flag), as
    /// the file spells it: what [`Config::snapshot`] keeps.
    applied: BTreeMap<&'static str, String>,
}

/// The `[lxc]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LxcSettings {
    /// `lxc-start -P`: where the LXC container configs live.
    pub lxcpath: PathBuf,
    /// Configured `lxcri-init`; `None` searches (see [`Config::init_binary`]).
    pub init_binary: Option<PathBuf>,
    pub log_level: LxcLogLevel,
    /// How long create waits for the init to report Ready.
    pub start_timeout_secs: u64,
}

impl LxcSettings {
    pub fn start_timeout(&self) -> Duration {
        Duration::from_secs(self.start_timeout_secs)
    }
}

/// The `[rootfs]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsSettings {
    pub mode: RootfsMode,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: BackendKind::Lxc,
            runtime_root: PathBuf::from("/run/lxcri"),
            log_level: LogLevel::Info,
            lxc: LxcSettings {
                lxcpath: PathBuf::from("/var/lib/lxcri/lxc"),
                init_binary: None,
                log_level: LxcLogLevel::Warn,
                start_timeout_secs: 30,
            },
            rootfs: RootfsSettings {
                mode: RootfsMode::Overlay,
            },
            pve: PveSettings::default(),
            zfs: ZfsSettings::default(),
            network: NetworkSettings::default(),
            userns: UsernsSettings::default(),
            file: None,
            applied: BTreeMap::new(),
        }
    }
}

/// Which field a [`Setting`] sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Backend,
    RuntimeRoot,
    LogLevel,
    LxcPath,
    InitBinary,
    LxcLogLevel,
    StartTimeoutSecs,
    RootfsMode,
    Pve(pve::PveField),
    Zfs(zfs::ZfsField),
    Network(network::NetworkField),
    Userns(userns::UsernsField),
}

fn setting(field: Field) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|s| s.field == field)
        .expect("every field has a setting")
}

/// The file as written. Values stay strings (or the TOML integer) so they
/// are checked by the same code as environment values.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    backend: Option<String>,
    runtime_root: Option<String>,
    log_level: Option<String>,
    #[serde(default)]
    lxc: RawLxc,
    #[serde(default)]
    rootfs: RawRootfs,
    #[serde(default)]
    pve: pve::RawPve,
    #[serde(default)]
    zfs: zfs::RawZfs,
    #[serde(default)]
    network: network::RawNetwork,
    #[serde(default)]
    userns: userns::RawUserns,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLxc {
    lxcpath: Option<String>,
    init_binary: Option<String>,
    log_level: Option<String>,
    start_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRootfs {
    mode: Option<String>,
}

impl RawFile {
    fn values(self) -> Vec<(Field, String)> {
        [
            (Field::Backend, self.backend),
            (Field::RuntimeRoot, self.runtime_root),
            (Field::LogLevel, self.log_level),
            (Field::LxcPath, self.lxc.lxcpath),
            (Field::InitBinary, self.lxc.init_binary),
            (Field::LxcLogLevel, self.lxc.log_level),
            (
                Field::StartTimeoutSecs,
                self.lxc.start_timeout_secs.map(|n| n.to_string()),
            ),
            (Field::RootfsMode, self.rootfs.mode),
        ]
        .into_iter()
        .chain(self.pve.values())
        .chain(self.zfs.values())
        .chain(self.network.values())
        .chain(self.userns.values())
        .filter_map(|(field, v)| v.map(|v| (field, v)))
        .collect()
    }
}

impl Config {
    /// Loads the configuration with the process environment.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        Self::load_with(explicit, &|name| std::env::var(name).ok())
    }

    /// Loads the configuration with `env` as the environment (for tests and
    /// for callers that hold the environment elsewhere).
    pub fn load_with(
        explicit: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config> {
        Self::load_from(explicit, env, Path::new(DEFAULT_CONFIG_PATH))
    }

    fn load_from(
        explicit: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        default_path: &Path,
    ) -> Result<Config> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let (path, given_by) = match (explicit, env(CONFIG_ENV)) {
            (Some(p), _) => (p.to_path_buf(), Some("an explicit path")),
            (None, Some(p)) => (PathBuf::from(p), Some(CONFIG_ENV)),
            (None, None) => (default_path.to_path_buf(), None),
        };
        let text = match fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && given_by.is_none() => None,
            Err(source) => {
                return Err(ConfigError::Read {
                    path,
                    given_by: given_by.unwrap_or("the default path").to_string(),
                    source,
                })
            }
        };

        let mut config = Config::default();
        if let Some(text) = text {
            let raw: RawFile = toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.clone(),
                source,
            })?;
            for (field, value) in raw.values() {
                config.apply(setting(field), &value, Origin::File(path.clone()))?;
            }
            config.file = Some(path);
        }
        for s in SETTINGS {
            if let Some(value) = env(s.env) {
                config.apply(s, &value, Origin::Env(s.env))?;
            }
        }
        config.validate_new()?;
        Ok(config)
    }

    /// Overrides one key (dotted name, as in [`SETTINGS`]) from a command
    /// line flag; it wins over the file and the environment.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let s = SETTINGS
            .iter()
            .find(|s| s.key == key)
            .ok_or_else(|| ConfigError::UnknownKey {
                key: key.to_string(),
            })?;
        self.apply(s, value, Origin::Flag)?;
        // A flag can complete or contradict the [pve] section.
        self.validate_new()
    }

    /// Rules between keys, once every source was applied.
    fn validate(&self) -> Result<()> {
        self.pve.validate()?;
        self.zfs.validate(self.rootfs.mode == RootfsMode::Zfs)?;
        if self.backend == BackendKind::Pve && !self.pve.is_configured() {
            let s = setting(Field::Pve(pve::PveField::Url));
            return Err(ConfigError::Missing {
                key: s.key,
                env: s.env,
                because: "backend = \"pve\" needs the [pve] section (url, node, token_id, token_secret_file)".into(),
            });
        }
        Ok(())
    }

    /// [`Self::validate`], and the rules for configs lxcri takes from now on
    /// (a snapshot keeps working with the rules it was made under, so the
    /// containers it made can still be cleaned up).
    fn validate_new(&self) -> Result<()> {
        self.validate()?;
        self.network.validate()?;
        self.userns.validate(self.backend)
    }

    fn apply(&mut self, s: &'static Setting, value: &str, origin: Origin) -> Result<()> {
        let invalid = |reason: String| ConfigError::Invalid {
            key: s.key,
            env: s.env,
            value: value.to_string(),
            origin: origin.clone(),
            reason,
        };
        match s.field {
            Field::Backend => self.backend = value.parse().map_err(invalid)?,
            Field::RuntimeRoot => self.runtime_root = dir_path(value).map_err(invalid)?,
            Field::LogLevel => self.log_level = value.parse().map_err(invalid)?,
            Field::LxcPath => self.lxc.lxcpath = dir_path(value).map_err(invalid)?,
            // Empty is the documented "search for it" value.
            Field::InitBinary if value.is_empty() => self.lxc.init_binary = None,
            Field::InitBinary => self.lxc.init_binary = Some(abs_path(value).map_err(invalid)?),
            Field::LxcLogLevel => self.lxc.log_level = value.parse().map_err(invalid)?,
            Field::StartTimeoutSecs => {
                self.lxc.start_timeout_secs = timeout_secs(value).map_err(invalid)?
            }
            Field::RootfsMode => self.rootfs.mode = value.parse().map_err(invalid)?,
            Field::Pve(field) => self
                .pve
                .apply(field, value, origin.clone())
                .map_err(invalid)?,
            Field::Zfs(field) => self
                .zfs
                .apply(field, value, origin.clone())
                .map_err(invalid)?,
            Field::Network(field) => self
                .network
                .apply(field, s.key, value, origin.clone())
                .map_err(invalid)?,
            Field::Userns(field) => self
                .userns
                .apply(field, value, origin.clone())
                .map_err(invalid)?,
        }
        self.applied.insert(s.key, value.to_string());
        Ok(())
    }

    /// The effective configuration as text, for [`Config::from_snapshot`]:
    /// a container is cleaned up with the configuration it was created
    /// with, whatever the file or the environment say by then.
    pub fn snapshot(&self) -> String {
        serde_json::to_string_pretty(&self.applied).expect("strings serialize")
    }

    /// The configuration a [`Config::snapshot`] at `path` describes.
    pub fn from_snapshot(path: &Path, text: &str) -> Result<Config> {
        let bad = |message: String| ConfigError::Snapshot {
            path: path.to_path_buf(),
            message,
        };
        let values: BTreeMap<String, String> =
            serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut config = Config::default();
        for (key, value) in &values {
            let s = SETTINGS
                .iter()
                .find(|s| s.key == key)
                .ok_or_else(|| bad(format!("unknown key {key:?}")))?;
            config.apply(s, value, Origin::File(path.to_path_buf()))?;
        }
        config.file = Some(path.to_path_buf());
        config.validate()?;
        Ok(config)
    }

    /// The shim's effective log level: containerd passes `-debug` to shims
    /// when it logs at debug level, and that wins over a quieter setting.
    pub fn shim_log_level(&self, containerd_debug: bool) -> LogLevel {
        if containerd_debug {
            self.log_level.max(LogLevel::Debug)
        } else {
            self.log_level
        }
    }

    /// The `lxcri-init` to bind into containers: `lxc.init_binary` when set,
    /// else the first of: next to the running executable (so a build tree
    /// or an unpacked release works without configuration), then
    /// [`INIT_BINARY_DIRS`].
    pub fn init_binary(&self) -> Result<PathBuf> {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf));
        let dirs: Vec<&Path> = INIT_BINARY_DIRS.iter().map(Path::new).collect();
        find_init_binary(self.lxc.init_binary.as_deref(), exe_dir.as_deref(), &dirs)
    }
}

/// Finds an executable regular file named `lxcri-init`; see [`Config::init_binary`].
fn find_init_binary(
    configured: Option<&Path>,
    exe_dir: Option<&Path>,
    dirs: &[&Path],
) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match configured {
        Some(path) => vec![path.to_path_buf()],
        None => exe_dir
            .into_iter()
            .chain(dirs.iter().copied())
            .map(|dir| dir.join(lxcri_init_spec::INIT_BINARY))
            .collect(),
    };
    let executable = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    match candidates.iter().find(|p| executable(p)) {
        Some(found) => Ok(found.clone()),
        None => Err(ConfigError::InitBinaryNotFound {
            searched: candidates,
        }),
    }
}

/// An absolute path, normalized (no trailing `/`, no `.`). Paths end up in
/// LXC config lines (`lxc.mount.entry` is fstab syntax) and on `lxc-start`'s
/// command line, so whitespace and control characters are refused rather
/// than escaped in several places.
fn abs_path(value: &str) -> std::result::Result<PathBuf, String> {
    if !value.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters (newlines)".into());
    }
    let path = Path::new(value);
    if path.components().any(|c| c == Component::ParentDir) {
        return Err("must not contain `..`".into());
    }
    Ok(path.components().collect())
}

/// A directory lxcri creates and removes entries under: `/` is refused.
fn dir_path(value: &str) -> std::result::Result<PathBuf, String> {
    let path = abs_path(value)?;
    if path == Path::new("/") {
        return Err("must not be the root directory".into());
    }
    Ok(path)
}

pub(super) fn timeout_secs(value: &str) -> std::result::Result<u64, String> {
    let n: u64 = value
        .parse()
        .map_err(|_| "must be a whole number of seconds".to_string())?;
    if n == 0 || n > MAX_START_TIMEOUT_SECS {
        return Err(format!("must be between 1 and {MAX_START_TIMEOUT_SECS}"));
    }
    Ok(n)
}
