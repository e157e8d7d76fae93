//! `/etc/pve/lxc/VMID.conf`: parse, edit a few keys, render back.
//!
//! The format (pve-container's `parse_pct_config`): `key: value` lines;
//! `#` lines are the description (percent-encoded); raw `lxc.*` lines with
//! `:` or `=`; `[pve:pending]` and `[snapname]` sections follow the main
//! one. lxcri only edits the main section and keeps every line it does not
//! touch byte-for-byte, so PVE (and an admin's diff) sees exactly the
//! change lxcri meant.
//!
//! Parsing is strict where PVE's strict mode is: a line PVE cannot parse
//! or a raw key PVE rejects is an error, because writing back a file PVE
//! cannot load would break the CT for everyone.

use std::path::{Component, Path};

use super::comment_text::{decode_comment, encode_comment};
use super::schema_keys::{is_known, ApiEndpoint};
use super::{check_no_control, PveConfigError, Result};
use crate::cgroup::{CgroupVersion, CpuSet};
use crate::lxc::{IdKind, IdMap};

/// Which part of the file a section is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionKind {
    Main,
    /// `[pve:pending]`: changes PVE applies at the next start.
    Pending,
    /// `[snapname]`.
    Snapshot(String),
}

/// One line, with its original text for byte-exact rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigLine {
    Blank(String),
    /// A `#` description line.
    Comment(String),
    /// `key: value`.
    Key {
        key: String,
        value: String,
        raw: String,
    },
    /// A raw `lxc.*` line.
    Raw {
        key: String,
        value: String,
        raw: String,
    },
}

impl ConfigLine {
    /// The line as written (without its newline).
    pub fn raw(&self) -> &str {
        match self {
            ConfigLine::Blank(r) | ConfigLine::Comment(r) => r,
            ConfigLine::Key { raw, .. } | ConfigLine::Raw { raw, .. } => raw,
        }
    }

    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigLine::Key { key, .. } | ConfigLine::Raw { key, .. } => Some(key),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: SectionKind,
    /// The `[...]` line as written; `None` for the main section.
    pub header: Option<String>,
    pub lines: Vec<ConfigLine>,
}

/// A parsed CT config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveConfigFile {
    sections: Vec<Section>,
    trailing_newline: bool,
}

/// Raw keys pve-container accepts verbatim (`$valid_lxc_conf_keys` plus
/// the `lxc.init.*` keys PVE 9.1 added with `entrypoint`).
const VALID_RAW_KEYS: &[&str] = &[
    "lxc.apparmor.profile",
    "lxc.apparmor.allow_incomplete",
    "lxc.apparmor.allow_nesting",
    "lxc.apparmor.raw",
    "lxc.selinux.context",
    "lxc.include",
    "lxc.arch",
    "lxc.uts.name",
    "lxc.init.cmd",
    "lxc.init.cwd",
    "lxc.init.uid",
    "lxc.init.gid",
    "lxc.init.groups",
    "lxc.pty.max",
    "lxc.console.logfile",
    "lxc.console.path",
    "lxc.tty.max",
    "lxc.devtty.dir",
    "lxc.autodev",
    "lxc.kmsg",
    "lxc.mount.fstab",
    "lxc.mount.entry",
    "lxc.mount.auto",
    "lxc.rootfs.mount",
    "lxc.cap.drop",
    "lxc.cap.keep",
    "lxc.seccomp.profile",
    "lxc.seccomp.notify.proxy",
    "lxc.seccomp.notify.cookie",
    "lxc.idmap",
    "lxc.log.level",
    "lxc.log.file",
    "lxc.start.auto",
    "lxc.start.delay",
    "lxc.start.order",
    "lxc.group",
    "lxc.environment",
    "lxc.environment.runtime",
    "lxc.environment.hooks",
    // IPC sysctls: namespaced by CLONE_NEWIPC.
    "lxc.sysctl.fs.mqueue",
    "lxc.sysctl.kernel.msgmax",
    "lxc.sysctl.kernel.msgmnb",
    "lxc.sysctl.kernel.msgmni",
    "lxc.sysctl.kernel.sem",
    "lxc.sysctl.kernel.shmall",
    "lxc.sysctl.kernel.shmmax",
    "lxc.sysctl.kernel.shmmni",
    "lxc.sysctl.kernel.shm_rmid_forced",
];

/// Families accepted by prefix. The v1 `lxc.cgroup.` keys only with a
/// deprecation warning (pve-container src/PVE/LXC/Config.pm,
/// `is_valid_lxc_conf_key`); lxcri writes one only on a cgroup v1 host
/// ([`PveConfigFile::set_raw_cpuset`]).
const VALID_RAW_PREFIXES: &[&str] = &[
    "lxc.cgroup.",
    "lxc.cgroup2.",
    "lxc.prlimit.",
    "lxc.net.",
    "lxc.hook.",
    "lxc.signal.",
];

/// Whether PVE keeps raw key `key` in `VMID.conf`. Keys it rejects
/// (`lxc.namespace.*`, `lxc.no_new_privs`, `lxc.rootfs.path`, ...) belong
/// in lxcri's include fragment.
pub fn check_raw_key(key: &str) -> Result<()> {
    let reject = |reason: &str| {
        Err(PveConfigError::RawKeyRejected {
            key: key.to_string(),
            reason: reason.to_string(),
        })
    };
    let well_formed = key.starts_with("lxc.")
        && key.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        });
    if !well_formed {
        return reject("PVE only parses lxc.[a-z0-9_.-]+ keys");
    }
    match key {
        "lxc.rootfs.path" => return reject("PVE generates it from `rootfs`"),
        "lxc.rootfs.options" => return reject("PVE takes mount options in `rootfs`"),
        _ => {}
    }
    if VALID_RAW_KEYS.contains(&key) || VALID_RAW_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return Ok(());
    }
    reject("not in pve-container's list of allowed raw keys; PVE fails to load the config")
}

/// `[a-z][a-z_]*\d*`, PVE's config key syntax.
fn is_config_key(k: &str) -> bool {
    let letters = k.trim_end_matches(|c: char| c.is_ascii_digit());
    let mut b = letters.bytes();
    b.next().is_some_and(|c| c.is_ascii_lowercase())
        && b.all(|c| c.is_ascii_lowercase() || c == b'_')
}

fn parse_header(line: &str) -> Option<SectionKind> {
    let inner = line.trim_end().strip_prefix('[')?.strip_suffix(']')?;
    if inner.eq_ignore_ascii_case("pve:pending") {
        return Some(SectionKind::Pending);
    }
    let b = inner.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'));
    ok.then(|| SectionKind::Snapshot(inner.to_string()))
}

fn parse_line(n: usize, line: &str) -> Result<ConfigLine> {
    let err = |message: String| PveConfigError::Parse { line: n, message };
    if line.trim().is_empty() {
        return Ok(ConfigLine::Blank(line.into()));
    }
    if line.starts_with('#') {
        return Ok(ConfigLine::Comment(line.into()));
    }
    if line.starts_with("lxc.") {
        let end = line
            .find(|c: char| c == ':' || c == '=' || c.is_whitespace())
            .unwrap_or(line.len());
        let key = &line[..end];
        let rest = &line[end..];
        // PVE: `key:` or `key =` (white space only before `=`).
        let value = rest
            .strip_prefix(':')
            .or_else(|| rest.trim_start().strip_prefix('='))
            .ok_or_else(|| err(format!("raw line without ':' or '=': {line:?}")))?;
        check_raw_key(key).map_err(|e| err(e.to_string()))?;
        return Ok(ConfigLine::Raw {
            key: key.into(),
            value: value.trim().into(),
            raw: line.into(),
        });
    }
    if let Some((key, value)) = line.split_once(':') {
        let value = value.trim();
        if is_config_key(key) && !value.is_empty() {
            return Ok(ConfigLine::Key {
                key: key.into(),
                value: value.into(),
                raw: line.into(),
            });
        }
    }
    Err(err(format!("unable to parse {line:?}")))
}

impl PveConfigFile {
    pub fn parse(text: &str) -> Result<Self> {
        let trailing_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        let mut sections = vec![Section {
            kind: SectionKind::Main,
            header: None,
            lines: Vec::new(),
        }];
        if !text.is_empty() {
            for (i, line) in body.split('\n').enumerate() {
                if let Some(kind) = parse_header(line) {
                    sections.push(Section {
                        kind,
                        header: Some(line.into()),
                        lines: Vec::new(),
                    });
                    continue;
                }
                let parsed = parse_line(i + 1, line)?;
                sections
                    .last_mut()
                    .expect("main section")
                    .lines
                    .push(parsed);
            }
        }
        Ok(Self {
            sections,
            trailing_newline,
        })
    }

    pub fn render(&self) -> String {
        let mut lines: Vec<&str> = Vec::new();
        for s in &self.sections {
            lines.extend(s.header.as_deref());
            lines.extend(s.lines.iter().map(ConfigLine::raw));
        }
        let mut out = lines.join("\n");
        if self.trailing_newline {
            out.push('\n');
        }
        out
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    fn main(&self) -> &Section {
        &self.sections[0]
    }

    fn main_mut(&mut self) -> &mut Section {
        &mut self.sections[0]
    }

    fn section(&self, kind: &SectionKind) -> Option<&Section> {
        self.sections.iter().find(|s| &s.kind == kind)
    }

    /// Value of `key` in the main section.
    pub fn get(&self, key: &str) -> Option<&str> {
        get_in(self.main(), key)
    }

    /// Value of `key` in `[pve:pending]`.
    pub fn pending(&self, key: &str) -> Option<&str> {
        self.section(&SectionKind::Pending)
            .and_then(|s| get_in(s, key))
    }

    /// Raw `lxc.*` lines of the main section, in order.
    pub fn raw_lines(&self) -> Vec<(&str, &str)> {
        self.main()
            .lines
            .iter()
            .filter_map(|l| match l {
                ConfigLine::Raw { key, value, .. } => Some((key.as_str(), value.as_str())),
                _ => None,
            })
            .collect()
    }

    /// The main section's description, decoded.
    pub fn description(&self) -> String {
        let mut out = String::new();
        for l in &self.main().lines {
            if let ConfigLine::Comment(raw) = l {
                out.push_str(&decode_comment(&raw[1..]));
                out.push('\n');
            }
        }
        out
    }

    /// Replaces the main section's description the way PVE writes it
    /// (pve-container src/PVE/LXC/Config.pm `write_pct_config`: one `#`
    /// line per `split(/\n/, ...)` part, so a `\r` stays, encoded, and
    /// trailing empty lines go).
    pub fn set_description(&mut self, text: &str) {
        let main = self.main_mut();
        main.lines.retain(|l| !matches!(l, ConfigLine::Comment(_)));
        let body = text.trim_end_matches('\n');
        let comments: Vec<ConfigLine> = match body {
            "" => Vec::new(),
            _ => body
                .split('\n')
                .map(|l| ConfigLine::Comment(encode_comment(l)))
                .collect(),
        };
        main.lines.splice(0..0, comments);
    }

    /// Sets `key: value` in the main section (replacing the line in place,
    /// or adding it after the last key line). For what only root may set:
    /// `mpN`, `rootfs`, `features`, `devN`, ... Returns whether the file
    /// changed.
    pub fn set_key(&mut self, key: &str, value: &str) -> Result<bool> {
        if !is_known(ApiEndpoint::Update, key) || matches!(key, "delete" | "digest" | "revert") {
            return Err(PveConfigError::invalid(
                key,
                value,
                "is not a CT config key",
            ));
        }
        check_no_control(key, value)?;
        if value.is_empty() || value.trim() != value {
            return Err(PveConfigError::invalid(
                key,
                value,
                "is empty or has surrounding white space",
            ));
        }
        if self.pending(key).is_some() {
            // PVE would apply the pending value over ours at the next start.
            return Err(PveConfigError::invalid(
                key,
                value,
                "has a pending change in [pve:pending]; apply or revert it first",
            ));
        }
        let line = ConfigLine::Key {
            key: key.into(),
            value: value.into(),
            raw: format!("{key}: {value}"),
        };
        let main = self.main_mut();
        if let Some(i) = main
            .lines
            .iter()
            .position(|l| matches!(l, ConfigLine::Key { key: k, .. } if k == key))
        {
            // Same value: keep the line as written.
            if get_in(main, key) == Some(value) {
                return Ok(false);
            }
            main.lines[i] = line;
            return Ok(true);
        }
        let at = main
            .lines
            .iter()
            .rposition(|l| matches!(l, ConfigLine::Key { .. } | ConfigLine::Comment(_)))
            .map_or(0, |i| i + 1);
        main.lines.insert(at, line);
        Ok(true)
    }

    /// Makes `lxc.include: <fragment>` the only `lxc.include` of a file
    /// under `owned_dir` in the main section. Other raw lines (and includes
    /// of other files) stay. Returns whether the file changed.
    pub fn set_include(&mut self, fragment: &Path, owned_dir: &Path) -> Result<bool> {
        let path = fragment.to_str().ok_or_else(|| {
            PveConfigError::invalid("lxc.include", &fragment.to_string_lossy(), "is not UTF-8")
        })?;
        check_no_control("lxc.include", path)?;
        // `starts_with` is per component, so `..` must be ruled out too.
        let climbs = fragment
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir));
        if !fragment.is_absolute()
            || climbs
            || !fragment.starts_with(owned_dir)
            || path.trim() != path
        {
            return Err(PveConfigError::invalid(
                "lxc.include",
                path,
                format!("must be an absolute path under {}", owned_dir.display()),
            ));
        }
        let ours: Vec<&str> = self
            .raw_lines()
            .into_iter()
            .filter(|(k, v)| *k == "lxc.include" && Path::new(v).starts_with(owned_dir))
            .map(|(_, v)| v)
            .collect();
        if ours == [path] {
            return Ok(false);
        }
        self.remove_include(owned_dir);
        let main = self.main_mut();
        // Before the blank line that separates the next section.
        let at = main
            .lines
            .iter()
            .rposition(|l| !matches!(l, ConfigLine::Blank(_)))
            .map_or(0, |i| i + 1);
        main.lines.insert(
            at,
            ConfigLine::Raw {
                key: "lxc.include".into(),
                value: path.into(),
                raw: format!("lxc.include: {path}"),
            },
        );
        Ok(true)
    }

    /// The CT's user namespace mapping as raw `lxc.idmap` keys, replacing
    /// any there: PVE then writes them instead of its fixed
    /// `0 100000 65536` (pve-container src/PVE/LXC.pm, update_lxc_config:
    /// `$custom_idmap`). Nothing is written for PVE's own mapping, which
    /// `unprivileged: 1` gives. Returns whether the file changed.
    pub fn set_raw_idmaps(&mut self, maps: &[IdMap]) -> Result<bool> {
        const KEY: &str = "lxc.idmap";
        let pve_default = maps.len() == 2
            && [IdKind::User, IdKind::Group].iter().all(|k| {
                maps.iter().any(|m| {
                    m.kind == *k && (m.container_id, m.host_id, m.size) == (0, 100_000, 65_536)
                })
            });
        let wanted: Vec<String> = if pve_default {
            Vec::new()
        } else {
            maps.iter().map(IdMap::lxc_value).collect()
        };
        let main = self.main_mut();
        let current: Vec<String> = main
            .lines
            .iter()
            .filter_map(|l| match l {
                ConfigLine::Raw { key, value, .. } if key == KEY => Some(value.clone()),
                _ => None,
            })
            .collect();
        if current == wanted {
            return Ok(false);
        }
        main.lines
            .retain(|l| !matches!(l, ConfigLine::Raw { key, .. } if key == KEY));
        let at = main
            .lines
            .iter()
            .rposition(|l| !matches!(l, ConfigLine::Blank(_)))
            .map_or(0, |i| i + 1);
        for (n, value) in wanted.into_iter().enumerate() {
            main.lines.insert(
                at + n,
                ConfigLine::Raw {
                    key: KEY.into(),
                    raw: format!("{KEY}: {value}"),
                    value,
                },
            );
        }
        Ok(true)
    }
    /// Makes `cpus` the CT's raw cpuset line, `lxc.cgroup2.cpuset.cpus`
    /// (`lxc.cgroup.cpuset.cpus` where the cpuset controller is v1): in
    /// place, or after the last line of the main section. With it in
    /// `VMID.conf` PVE appends no cpuset of its own after the includes
    /// (pve-container src/PVE/LXC.pm, `update_lxc_config`) and pvestatd
    /// leaves the CT's cpuset alone (pve-manager PVE/Service/pvestatd.pm,
    /// `rebalance_lxc_containers`). Returns whether the file changed.
    pub fn set_raw_cpuset(&mut self, version: CgroupVersion, cpus: &CpuSet) -> Result<bool> {
        let key = match version {
            CgroupVersion::V1 => "lxc.cgroup.cpuset.cpus",
            CgroupVersion::V2 => "lxc.cgroup2.cpuset.cpus",
        };
        let value = cpus.as_str();
        let line = ConfigLine::Raw {
            key: key.into(),
            value: value.into(),
            raw: format!("{key}: {value}"),
        };
        let main = self.main_mut();
        let existing = main
            .lines
            .iter()
            .position(|l| matches!(l, ConfigLine::Raw { key: k, .. } if k == key));
        if let Some(i) = existing {
            if matches!(&main.lines[i], ConfigLine::Raw { value: v, .. } if v == value) {
                return Ok(false);
            }
            main.lines[i] = line;
            return Ok(true);
        }
        let at = main
            .lines
            .iter()
            .rposition(|l| !matches!(l, ConfigLine::Blank(_)))
            .map_or(0, |i| i + 1);
        main.lines.insert(at, line);
        Ok(true)
    }

    /// Removes every `lxc.include` of a file under `owned_dir`; whether
    /// there was one.
    pub fn remove_include(&mut self, owned_dir: &Path) -> bool {
        let main = self.main_mut();
        let before = main.lines.len();
        main.lines.retain(|l| {
            !matches!(l, ConfigLine::Raw { key, value, .. }
                if key == "lxc.include" && Path::new(value).starts_with(owned_dir))
        });
        main.lines.len() != before
    }
}

fn get_in<'a>(s: &'a Section, key: &str) -> Option<&'a str> {
    s.lines.iter().find_map(|l| match l {
        ConfigLine::Key { key: k, value, .. } if k == key => Some(value.as_str()),
        _ => None,
    })
}
