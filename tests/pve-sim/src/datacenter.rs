//! `DATA/etc/pve/datacenter.cfg`: the two options that decide who may set which guest
//! tags, read as pve-cluster src/PVE/DataCenterConfig.pm `parse_datacenter_config` reads
//! them (`key: value` lines, `#` comments, pve-common src/PVE/JSONSchema.pm
//! `parse_config`). A bad value is warned about and ignored, as PVE does; other options
//! are not read.

use regex::Regex;
use std::path::Path;
use std::sync::LazyLock;

/// pve-common src/PVE/JSONSchema.pm, `$PVE_TAG_RE` (case-insensitive).
const TAG: &str = r"[a-zA-Z0-9_][a-zA-Z0-9_\-+.]*";
static TAG_LIST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{TAG}(?:;{TAG})*$")).unwrap());

/// `user-allow` of `user-tag-access`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAllow {
    None,
    List,
    Existing,
    Free,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagAccess {
    /// Default `free`.
    pub user_allow: UserAllow,
    pub user_allow_list: Vec<String>,
    /// `registered-tags`: only for users with `Sys.Modify` on `/`.
    pub registered: Vec<String>,
}

impl Default for TagAccess {
    fn default() -> Self {
        TagAccess {
            user_allow: UserAllow::Free,
            user_allow_list: Vec::new(),
            registered: Vec::new(),
        }
    }
}

impl TagAccess {
    /// Reads `path`; a missing file is the defaults.
    pub fn load(path: &Path) -> TagAccess {
        let raw = std::fs::read_to_string(path).unwrap_or_default();
        let (cfg, warnings) = TagAccess::parse(&raw);
        for w in warnings {
            eprintln!("pve-sim: {w}");
        }
        cfg
    }

    pub fn parse(raw: &str) -> (TagAccess, Vec<String>) {
        let mut cfg = TagAccess::default();
        let mut warnings = Vec::new();
        let (mut access, mut registered) = (None, None);
        for line in raw.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((key, value)) if !key.is_empty() && !key.contains(char::is_whitespace) => {
                    let value = value.trim_start().to_string();
                    match key {
                        "user-tag-access" => access = Some(value),
                        "registered-tags" => registered = Some(value),
                        _ => {}
                    }
                }
                _ => warnings.push(format!("ignore config line: {line}")),
            }
        }
        let bad = |key: &str, e: String| format!("parse error in 'datacenter.cfg' - '{key}': {e}");
        if let Some(v) = registered {
            if TAG_LIST.is_match(&v) {
                cfg.registered = v.split(';').map(String::from).collect();
            } else {
                warnings.push(bad(
                    "registered-tags",
                    "value does not match the regex pattern".into(),
                ));
            }
        }
        if let Some(v) = access {
            match parse_user_tag_access(&v) {
                Ok((allow, list)) => {
                    cfg.user_allow = allow;
                    cfg.user_allow_list = list;
                }
                Err(e) => warnings.push(bad("user-tag-access", e)),
            }
        }
        (cfg, warnings)
    }
}

/// The property string `user-allow=...,user-allow-list=a;b` (pve-cluster
/// DataCenterConfig.pm `$user_tag_privs_format`).
fn parse_user_tag_access(v: &str) -> Result<(UserAllow, Vec<String>), String> {
    let (mut allow, mut list) = (None, None);
    for part in v.split(',').filter(|p| !p.trim().is_empty()) {
        let Some((k, val)) = part
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        else {
            return Err("value without key, but schema does not define a default key".into());
        };
        let slot = match k {
            "user-allow" => &mut allow,
            "user-allow-list" => &mut list,
            _ => return Err(format!("invalid key in comma-separated list property: {k}")),
        };
        if slot.replace(val.to_string()).is_some() {
            return Err(format!(
                "duplicate key in comma-separated list property: {k}"
            ));
        }
    }
    let allow = match allow.as_deref() {
        None | Some("free") => UserAllow::Free,
        Some("none") => UserAllow::None,
        Some("list") => UserAllow::List,
        Some("existing") => UserAllow::Existing,
        Some(other) => return Err(format!("user-allow: value '{other}' does not have a value in the enumeration 'none, list, existing, free'")),
    };
    let list = match list {
        None => Vec::new(),
        Some(l) if TAG_LIST.is_match(&l) => l.split(';').map(String::from).collect(),
        Some(_) => return Err("user-allow-list: value does not match the regex pattern".into()),
    };
    Ok((allow, list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tag_options_like_pve() {
        let (cfg, w) = TagAccess::parse("");
        assert_eq!(cfg, TagAccess::default());
        assert!(w.is_empty());
        let (cfg, w) = TagAccess::parse(
            "# notes\nkeyboard: en-us\nuser-tag-access: user-allow=list,user-allow-list=a;b-c\n\
             registered-tags: prod;Team.x\n",
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(cfg.user_allow, UserAllow::List);
        assert_eq!(cfg.user_allow_list, ["a", "b-c"]);
        assert_eq!(cfg.registered, ["prod", "Team.x"]);
        let (cfg, _) = TagAccess::parse("user-tag-access: user-allow=existing\n");
        assert_eq!(cfg.user_allow, UserAllow::Existing);
        let (cfg, _) = TagAccess::parse("user-tag-access:user-allow=none");
        assert_eq!(cfg.user_allow, UserAllow::None);
    }

    #[test]
    fn bad_values_are_warned_about_and_ignored() {
        let (cfg, w) = TagAccess::parse(
            "user-tag-access: user-allow=some\nregistered-tags: a;;b\njunk line\n",
        );
        assert_eq!(cfg, TagAccess::default());
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w.iter().any(|w| w.contains("'user-tag-access'")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("'registered-tags'")), "{w:?}");
        assert!(
            w.iter().any(|w| w == "ignore config line: junk line"),
            "{w:?}"
        );
        let (cfg, w) = TagAccess::parse("user-tag-access: color=red\n");
        assert_eq!(cfg.user_allow, UserAllow::Free);
        assert!(w[0].contains("invalid key"), "{w:?}");
    }
}
