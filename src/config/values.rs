//! The enumerated setting types. Each parses from the exact lower-case word
//! used in the file and in `LXCRI_*` variables, and prints back the same word.

use std::fmt;
use std::str::FromStr;

/// Parses `s` against a fixed list of words; the error lists the choices.
fn pick<T: Copy>(s: &str, table: &[(&str, T)]) -> Result<T, String> {
    table
        .iter()
        .find(|(word, _)| *word == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let words: Vec<_> = table.iter().map(|(w, _)| format!("\"{w}\"")).collect();
            format!("expected one of {}", words.join(", "))
        })
}

/// Which backend runs the containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// liblxc / the `lxc-*` tools on any Linux host.
    #[default]
    Lxc,
    /// Proxmox VE CTs made through the PVE API (needs the `[pve]` section).
    Pve,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Lxc => "lxc",
            BackendKind::Pve => "pve",
        }
    }
}

impl FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        pick(s, &[("lxc", BackendKind::Lxc), ("pve", BackendKind::Pve)])
    }
}

/// The shim's own log level (tracing levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        pick(
            s,
            &[
                ("error", LogLevel::Error),
                ("warn", LogLevel::Warn),
                ("info", LogLevel::Info),
                ("debug", LogLevel::Debug),
                ("trace", LogLevel::Trace),
            ],
        )
    }
}

impl From<LogLevel> for tracing::Level {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

/// `lxc-start --logpriority` level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LxcLogLevel {
    Trace,
    Debug,
    Info,
    Notice,
    #[default]
    Warn,
    Error,
}

impl LxcLogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LxcLogLevel::Trace => "trace",
            LxcLogLevel::Debug => "debug",
            LxcLogLevel::Info => "info",
            LxcLogLevel::Notice => "notice",
            LxcLogLevel::Warn => "warn",
            LxcLogLevel::Error => "error",
        }
    }

    /// The spelling `lxc-start -l` and `lxc.log.level` document.
    pub fn lxc_name(self) -> &'static str {
        match self {
            LxcLogLevel::Trace => "TRACE",
            LxcLogLevel::Debug => "DEBUG",
            LxcLogLevel::Info => "INFO",
            LxcLogLevel::Notice => "NOTICE",
            LxcLogLevel::Warn => "WARN",
            LxcLogLevel::Error => "ERROR",
        }
    }
}

impl FromStr for LxcLogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        pick(
            s,
            &[
                ("trace", LxcLogLevel::Trace),
                ("debug", LxcLogLevel::Debug),
                ("info", LxcLogLevel::Info),
                ("notice", LxcLogLevel::Notice),
                ("warn", LxcLogLevel::Warn),
                ("error", LxcLogLevel::Error),
            ],
        )
    }
}

/// How a container's root filesystem is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootfsMode {
    /// containerd's snapshot mounts (normally overlay), mounted as they are.
    #[default]
    Overlay,
    /// A `zfs clone` per container of one dataset per image (`[zfs]`).
    Zfs,
}

impl RootfsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RootfsMode::Overlay => "overlay",
            RootfsMode::Zfs => "zfs",
        }
    }
}

impl FromStr for RootfsMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        pick(
            s,
            &[("overlay", RootfsMode::Overlay), ("zfs", RootfsMode::Zfs)],
        )
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(BackendKind, LogLevel, LxcLogLevel, RootfsMode);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: FromStr<Err = String> + fmt::Display>(words: &[&str]) {
        for word in words {
            let v: T = word.parse().unwrap();
            assert_eq!(v.to_string(), *word);
        }
    }

    #[test]
    fn every_choice_round_trips() {
        round_trip::<BackendKind>(&["lxc", "pve"]);
        round_trip::<LogLevel>(&["error", "warn", "info", "debug", "trace"]);
        round_trip::<LxcLogLevel>(&["trace", "debug", "info", "notice", "warn", "error"]);
        round_trip::<RootfsMode>(&["overlay", "zfs"]);
    }

    #[test]
    fn errors_list_the_choices() {
        let e = "loud".parse::<LogLevel>().unwrap_err();
        assert!(e.contains("\"trace\""), "{e}");
        assert!("INFO".parse::<LogLevel>().is_err(), "case matters");
        let e = "proxmox".parse::<BackendKind>().unwrap_err();
        assert!(e.contains("\"lxc\", \"pve\""), "{e}");
    }
}
