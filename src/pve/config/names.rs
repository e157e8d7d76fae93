//! Names shown in the PVE UI: hostname, tags and notes (description),
//! built from pod and container names that lxcri does not control.
//!
//! Sanitising constructors never fail and never let a character through
//! that could end a config line or a property: the output alphabet of
//! [`Hostname`] and [`Tag`] has no separators at all, and [`Description`]
//! escapes every control character of a value, so each value stays on the
//! line lxcri put it on.

use std::fmt;

use super::{check_no_control, PveConfigError, Result};

/// DNS allows 63 bytes per label.
const MAX_LABEL: usize = 63;
/// DNS allows 253 bytes in a name (the schema's 255 includes a trailing dot
/// and the length byte).
const MAX_NAME: usize = 253;
/// The schema's `maxLength` of `description`.
pub(super) const MAX_DESCRIPTION: usize = 8192;

/// A PVE resource pool (`pve-poolid`: up to three `/`-separated levels of
/// `[A-Za-z0-9.-_]`, pve-access-control src/PVE/AccessControl.pm,
/// `verify_poolname`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolId(String);

impl PoolId {
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = |reason: &str| PveConfigError::invalid("pool", raw, reason);
        let levels: Vec<&str> = raw.split('/').collect();
        if levels.len() > 3 {
            return Err(bad("is nested too deeply (at most 3 levels)"));
        }
        let ok = |l: &&str| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        if !levels.iter().all(ok) {
            return Err(bad(
                "may only contain letters, digits, '.', '-', '_' and up to two '/' between them",
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A CT hostname (`dns-name` format: dot-separated labels of
/// `[A-Za-z0-9-]`, not starting or ending with `-`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hostname(String);

impl Hostname {
    /// Validates a hostname given by the user (config, annotation).
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = |reason: &str| PveConfigError::invalid("hostname", raw, reason);
        if raw.is_empty() {
            return Err(bad("is empty"));
        }
        if raw.len() > MAX_NAME {
            return Err(bad("is longer than 253 characters"));
        }
        for label in raw.split('.') {
            if label.is_empty() || label.len() > MAX_LABEL {
                return Err(bad(
                    "has a label that is empty or longer than 63 characters",
                ));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(bad("may only contain letters, digits, '-' and '.'"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("has a label starting or ending with '-'"));
            }
        }
        Ok(Self(raw.to_string()))
    }

    /// Turns any name (pod, container, container id) into a one-label
    /// hostname: lower case, every other character `-`, no leading or
    /// trailing `-`, at most 63 characters. Never empty: a name with
    /// nothing usable becomes `ct`.
    pub fn sanitize(raw: &str) -> Self {
        Self::sanitize_or(raw, "ct")
    }

    /// Like [`Hostname::sanitize`], with the fallback for a name with
    /// nothing usable (e.g. `ct-<vmid>`); the fallback is sanitised too and
    /// `ct` is the last resort.
    pub fn sanitize_or(raw: &str, fallback: &str) -> Self {
        sanitize_label(raw)
            .or_else(|| sanitize_label(fallback))
            .map_or_else(|| Self("ct".into()), Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn sanitize_label(raw: &str) -> Option<String> {
    let mapped: String = raw
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches('-');
    // All ASCII now, so byte truncation is a char boundary.
    let cut = &trimmed[..trimmed.len().min(MAX_LABEL)];
    let cut = cut.trim_end_matches('-');
    (!cut.is_empty()).then(|| cut.to_string())
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One PVE tag (`pve-tag`: `[a-z0-9_][a-z0-9_\-+.]*`; PVE compares them
/// case-insensitively, lxcri writes lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// Every CT lxcri creates carries this tag; `lxcri gc` looks for it.
    pub const LXCRI: &'static str = "lxcri";

    pub fn parse(raw: &str) -> Result<Self> {
        let ok = raw.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || b == b'_'
                || (i > 0 && matches!(b, b'-' | b'+' | b'.'))
        });
        if raw.is_empty() || !ok {
            return Err(PveConfigError::invalid(
                "tags",
                raw,
                "is not a tag: [a-z0-9_] then [a-z0-9_+.-]",
            ));
        }
        Ok(Self(raw.to_string()))
    }

    /// Lower case, every other character `-`, leading `-+.` dropped;
    /// `None` when nothing is left. k8s names (`[a-z0-9.-]`) map to
    /// themselves.
    pub fn sanitize(raw: &str) -> Option<Self> {
        let mapped: String = raw
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '+' | '.') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let trimmed = mapped.trim_start_matches(['-', '+', '.']);
        (!trimmed.is_empty()).then(|| Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The tag list of a CT, rendered `;`-separated (what PVE writes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(Vec<Tag>);

impl Tags {
    /// `lxcri`, then `ns-<namespace>` and `pod-<pod>` when the CRI
    /// annotations name them. The prefixes keep a namespace and a pod of
    /// the same name apart and make the tags readable in the PVE UI.
    pub fn for_container(namespace: Option<&str>, pod: Option<&str>) -> Self {
        let mut tags = Self(vec![Tag(Tag::LXCRI.into())]);
        if let Some(t) = namespace.and_then(|n| Tag::sanitize(&format!("ns-{n}"))) {
            tags.push(t);
        }
        if let Some(t) = pod.and_then(|p| Tag::sanitize(&format!("pod-{p}"))) {
            tags.push(t);
        }
        tags
    }

    /// Adds a tag unless it is already there.
    pub fn push(&mut self, tag: Tag) {
        if !self.0.contains(&tag) {
            self.0.push(tag);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn render(&self) -> String {
        let parts: Vec<_> = self.0.iter().map(Tag::as_str).collect();
        parts.join(";")
    }
}

/// What lxcri writes into a CT's notes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescriptionInfo {
    pub container_id: String,
    /// The containerd namespace: with the id, it names the container's
    /// state on the node (see [`Description::owner`]).
    pub containerd_namespace: Option<String>,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container_name: Option<String>,
    pub image: Option<String>,
}

/// The CT description: shown (as Markdown) in the PVE UI, stored by PVE as
/// `#` comment lines at the top of the config file.
///
/// Newlines are allowed in the API value (PVE writes each line as its own
/// comment), but lxcri puts each field on one line of its own choosing:
/// control characters in a value are escaped (`\n` -> `\u{a}`), so no
/// value can start a line, let alone a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn for_container(info: &DescriptionInfo) -> Self {
        let mut text = String::from("Managed by lxcri; changes here are overwritten.\n");
        let mut field = |label: &str, value: Option<&str>| {
            if let Some(v) = value {
                text.push_str(&format!("\n- {label}: {}", escape_value(v)));
            }
        };
        field("container", Some(&info.container_id));
        field("containerd namespace", info.containerd_namespace.as_deref());
        let pod = match (&info.namespace, &info.pod) {
            (Some(ns), Some(pod)) => Some(format!("{ns}/{pod}")),
            (None, Some(pod)) => Some(pod.clone()),
            _ => None,
        };
        field("pod", pod.as_deref());
        field("name", info.container_name.as_deref());
        field("image", info.image.as_deref());
        text.push('\n');
        Self(truncate(text, MAX_DESCRIPTION))
    }

    /// A description given verbatim; lines must not contain other control
    /// characters than `\n`.
    pub fn parse(raw: &str) -> Result<Self> {
        if raw.len() > MAX_DESCRIPTION {
            return Err(PveConfigError::invalid(
                "description",
                raw,
                "is longer than 8192 bytes",
            ));
        }
        for line in raw.split('\n') {
            check_no_control("description", line)?;
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The containerd `(namespace, id)` a description written by
    /// [`Description::for_container`] names, if it names both. Values are
    /// taken only when they are valid containerd names, so an edited or
    /// foreign description yields `None`, never a path.
    pub fn owner(text: &str) -> Option<(String, String)> {
        let value = |label: &str| {
            let prefix = format!("- {label}: ");
            let mut found = text
                .lines()
                .filter_map(|l| l.trim_end().strip_prefix(&prefix));
            let v = found.next()?;
            // Exactly one line per label, or it is not ours.
            if found.next().is_some() {
                return None;
            }
            crate::state::validate_name("name", v).ok()?;
            Some(v.to_string())
        };
        if !text.starts_with("Managed by lxcri") {
            return None;
        }
        Some((value("containerd namespace")?, value("container")?))
    }
}

/// Escapes control characters the way Rust's `escape_default` does, and a
/// backslash, so the escaping cannot be faked by a value.
fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if c.is_control() || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
