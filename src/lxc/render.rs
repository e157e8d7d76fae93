//! The one place that writes `lxc.*` lines.
//!
//! LXC's config format is `key = value`, one per line, so a newline in a
//! value would start a new (attacker-chosen) key. Every key and value is
//! checked here, whatever checks the callers already did.

use std::fmt::Write as _;
use std::path::Path;

use super::config::{CgroupAuto, DeviceKind, DeviceRule, LxcConfig, MountEntry, Network};
use super::{LxcConfigError, Result};
use crate::cgroup::CgroupVersion;

/// Collects validated lines.
struct Lines {
    out: String,
}

impl Lines {
    fn push(&mut self, key: &str, value: &str) -> Result<()> {
        check_key(key)?;
        check_value(key, value)?;
        if value.is_empty() {
            writeln!(self.out, "{key} =").expect("writing to a String");
        } else {
            writeln!(self.out, "{key} = {value}").expect("writing to a String");
        }
        Ok(())
    }

    fn push_path(&mut self, key: &str, prefix: &str, path: &Path) -> Result<()> {
        let value = path_str(key, path)?;
        if !value.starts_with('/') {
            return Err(LxcConfigError::invalid(
                key,
                value,
                "must be an absolute path",
            ));
        }
        self.push(key, &format!("{prefix}{value}"))
    }
}

fn path_str<'a>(key: &str, path: &'a Path) -> Result<&'a str> {
    path.to_str()
        .ok_or_else(|| LxcConfigError::invalid(key, &path.to_string_lossy(), "not valid UTF-8"))
}

/// Keys are built by the renderer, but parts of them (sysctl names, cgroup
/// files, rlimit names) come from the spec.
fn check_key(key: &str) -> Result<()> {
    let ok = key.starts_with("lxc.")
        && !key.ends_with('.')
        && !key.contains("..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(LxcConfigError::InvalidKey {
            key: key.to_string(),
        })
    }
}

fn check_value(key: &str, value: &str) -> Result<()> {
    for (c, name) in [
        ('\n', "a newline"),
        ('\r', "a carriage return"),
        ('\0', "a NUL byte"),
    ] {
        if value.contains(c) {
            return Err(LxcConfigError::invalid(
                key,
                value,
                &format!("contains {name}"),
            ));
        }
    }
    // LXC trims whitespace around values and strips one pair of enclosing
    // quotes; either would silently change what we meant.
    if value.trim() != value {
        return Err(LxcConfigError::invalid(
            key,
            value,
            "has leading or trailing whitespace",
        ));
    }
    let b = value.as_bytes();
    if b.len() > 1 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        return Err(LxcConfigError::invalid(key, value, "is enclosed in quotes"));
    }
    Ok(())
}

/// Escapes one fstab field the way `getmntent(3)` decodes it.
fn fstab_field(key: &str, what: &str, field: &str) -> Result<String> {
    if field.is_empty() {
        return Err(LxcConfigError::invalid(
            key,
            field,
            &format!("mount {what} is empty"),
        ));
    }
    if what == "source" && field.starts_with('#') {
        // getmntent skips such a line as a comment; there is no escape for '#'.
        return Err(LxcConfigError::invalid(
            key,
            field,
            "mount source cannot start with '#'",
        ));
    }
    let mut out = String::with_capacity(field.len());
    for c in field.chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\\' => out.push_str("\\134"),
            '\n' | '\r' | '\0' => {
                return Err(LxcConfigError::invalid(
                    key,
                    field,
                    &format!("mount {what} contains a control character"),
                ))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `KEY="VALUE"` with no quote inside VALUE: an SELinux `context=` whose MCS
/// level has commas. LXC splits options at commas but joins the parts it
/// does not know back into the mount data in order (lxc 5.0.2
/// src/lxc/conf.c `parse_mntopt`), and the kernel honours the quotes.
fn quoted_value(opt: &str) -> bool {
    opt.split_once("=\"")
        .and_then(|(k, v)| v.strip_suffix('"').map(|v| (k, v)))
        .is_some_and(|(k, v)| !k.is_empty() && !k.contains('"') && !v.contains('"'))
}

fn mount_line(key: &str, m: &MountEntry) -> Result<String> {
    if m.destination.starts_with('/') {
        return Err(LxcConfigError::invalid(
            key,
            &m.destination,
            "mount destination must be relative to the rootfs",
        ));
    }
    for opt in &m.options {
        // A lone quote: SELinux's mount option parser pairs quotes across
        // commas (security/selinux/hooks.c `opt_len`), so it would merge
        // this option with the next ones.
        let stray_quote = opt.contains('"') && !quoted_value(opt);
        if opt.is_empty()
            || (opt.contains(',') && !quoted_value(opt))
            || opt.contains(char::is_whitespace)
            || stray_quote
        {
            return Err(LxcConfigError::invalid(
                key,
                opt,
                "mount option is empty or contains ',', whitespace or a stray '\"'",
            ));
        }
    }
    let options = if m.options.is_empty() {
        "defaults".to_string()
    } else {
        m.options.join(",")
    };
    Ok(format!(
        "{} {} {} {} 0 0",
        fstab_field(key, "source", &m.source)?,
        fstab_field(key, "destination", &m.destination)?,
        fstab_field(key, "type", &m.fstype)?,
        fstab_field(key, "options", &options)?,
    ))
}

fn device_rule(rule: &DeviceRule) -> String {
    let kind = match rule.kind {
        DeviceKind::All => "a",
        DeviceKind::Char => "c",
        DeviceKind::Block => "b",
    };
    let num = |n: Option<u64>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
    if rule.kind == DeviceKind::All
        && rule.major.is_none()
        && rule.minor.is_none()
        && rule.access == "rwm"
    {
        return kind.to_string();
    }
    format!(
        "{kind} {}:{} {}",
        num(rule.major),
        num(rule.minor),
        rule.access
    )
}

fn limit(v: u64) -> String {
    // RLIM_INFINITY.
    if v == u64::MAX {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// Which config [`LxcConfig`] is rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The whole config of an LXC container lxcri owns.
    Standalone,
    /// The fragment a PVE CT's config includes last (see
    /// [`LxcConfig::render_pve_fragment`]).
    PveFragment,
}

/// Renders extra `key = value` lines (e.g. what a PVE before 9.1 cannot
/// take through its API) with the same checks as a whole config.
pub fn render_lines(pairs: &[(String, String)]) -> Result<String> {
    let mut l = Lines { out: String::new() };
    for (k, v) in pairs {
        l.push(k, v)?;
    }
    Ok(l.out)
}

impl LxcConfig {
    /// Renders the config as LXC reads it, validating every key and value.
    pub fn render(&self) -> Result<String> {
        self.render_as(Target::Standalone)
    }

    /// Renders lxcri's part of a PVE CT's LXC config: `pct start` writes
    /// PVE's own lines first (rootfs, cgroup dir, `common.conf`, hooks,
    /// limits) and the CT's raw lines last, so this fragment, pulled in by
    /// one `lxc.include`, has the final word. Left to PVE: the rootfs
    /// (from the CT's `rootfs` key), the cgroup directory `lxc/VMID` and
    /// the init command (`entrypoint`, or a line the caller adds before PVE
    /// 9.1). Reset first, as an empty value clears them in LXC: the lists
    /// and profiles `common.conf` and `userns.conf` fill (mount entries,
    /// id maps, dropped capabilities, LXC's own seccomp profile, cgroup
    /// settings incl. device rules, networks), so the container gets
    /// exactly what the OCI spec says, as on the lxc backend. Only keys of
    /// the host's cgroup version are written or reset: LXC 7 refuses the
    /// v1 ones. The cpuset PVE would append after every include unless
    /// `VMID.conf` has its own is the pve backend's to write there.
    pub fn render_pve_fragment(&self) -> Result<String> {
        self.render_as(Target::PveFragment)
    }

    fn render_as(&self, target: Target) -> Result<String> {
        let pve = target == Target::PveFragment;
        let mut l = Lines {
            out: String::from(if pve {
                "# lxcri's part of this PVE CT's LXC config, included last. Generated; do not edit.\n"
            } else {
                "# Generated by lxcri. Do not edit.\n"
            }),
        };
        if pve {
            // `lxc.mount.auto` only clears the groups (proc, sys, cgroup)
            // its value names, so common.conf's `proc:mixed sys:mixed`
            // would survive a `cgroup:ro:force` without the reset.
            for key in [
                "lxc.mount.auto",
                "lxc.mount.entry",
                "lxc.cap.drop",
                "lxc.cap.keep",
                "lxc.seccomp.profile",
                "lxc.cgroup2",
            ] {
                l.push(key, "")?;
            }
            // LXC 7 removed the v1 key `lxc.cgroup` (lxc commit f29c3a3): a
            // config naming it does not load. Only a v1 host (never PVE 9)
            // has v1 settings to clear.
            if self.cgroup_version == CgroupVersion::V1 {
                l.push("lxc.cgroup", "")?;
            }
            if self.network.is_some()
                || self
                    .namespaces
                    .share
                    .iter()
                    .any(|(ns, _)| *ns == super::config::Namespace::Net)
            {
                l.push("lxc.net", "")?;
            }
        }
        if let Some(name) = &self.uts_name {
            l.push("lxc.uts.name", name)?;
        }
        if !pve {
            l.push_path("lxc.rootfs.path", "dir:", &self.rootfs)?;
            // The rootfs belongs to containerd's snapshotter; LXC must not delete it.
            l.push("lxc.rootfs.managed", "0")?;
            l.push("lxc.init.cmd", &self.init_cmd)?;
            // PVE names a CT's cgroups itself (`lxc/VMID`).
            if let Some(dirs) = &self.cgroup_dirs {
                l.push("lxc.cgroup.dir.container", dirs.container.as_str())?;
                l.push("lxc.cgroup.dir.monitor", dirs.monitor.as_str())?;
            }
        }
        l.push("lxc.init.uid", &self.init_uid.to_string())?;
        l.push("lxc.init.gid", &self.init_gid.to_string())?;
        l.push("lxc.init.cwd", &self.init_cwd)?;
        match &self.console_path {
            Some(p) => l.push_path("lxc.console.path", "", p)?,
            None => l.push("lxc.console.path", "none")?,
        }
        l.push("lxc.tty.max", &self.tty_max.to_string())?;
        l.push("lxc.pty.max", &self.pty_max.to_string())?;
        l.push("lxc.autodev", if self.autodev { "1" } else { "0" })?;
        // No session keyring of LXC's (`_ses`, alive while the container
        // runs): the init joins runc's `_ses.<id>` first thing. `1` turns
        // LXC's off: lxc 5.0.2's (and 6's) confile.c stores the value as
        // its "disable" flag, against the manual's `0`; were that fixed, LXC
        // would make one again and the init still leave it.
        l.push("lxc.keyring.session", "1")?;
        l.push("lxc.apparmor.profile", self.apparmor.as_str())?;

        if !self.namespaces.clone.is_empty() {
            let names: Vec<_> = self.namespaces.clone.iter().map(|n| n.as_str()).collect();
            l.push("lxc.namespace.clone", &names.join(" "))?;
        }
        for (ns, path) in &self.namespaces.share {
            l.push_path(&format!("lxc.namespace.share.{}", ns.as_str()), "", path)?;
        }
        if pve && self.uts_name.is_none() {
            // PVE's part names the CT (`lxc.uts.name`: `hostname` or
            // `CT<VMID>`), and LXC sets that name in any UTS namespace it
            // did not join by path (lxc 5.0.2 conf.c `lxc_setup`): in the
            // node's own, a hostNetwork pod would rename the node, and a
            // new one the spec names nothing in keeps the node's name, as
            // runc's does.
            l.push("lxc.uts.name", "")?;
        }
        match self.network {
            Some(Network::Empty) => {
                l.push("lxc.net.0.type", "empty")?;
                // runc brings a new network namespace's loopback up; LXC
                // names an `empty` device `lo` and sets it up only when
                // asked (lxc 5.0.2 confile.c set_config_net_type, network.c
                // lxc_network_setup_in_child_namespaces_common).
                l.push("lxc.net.0.flags", "up")?;
            }
            None => {}
        }
        // On PVE the mapping is the CT's (`unprivileged`, or raw `lxc.idmap`
        // keys in VMID.conf): an include that clears and sets it again
        // leaves LXC 5.0's root mapping pointers stale (fixed upstream in
        // lxc commit cc6819c, after 5.0.2), and the CT fails to start.
        if !pve {
            for m in &self.idmaps {
                l.push("lxc.idmap", &m.lxc_value())?;
            }
        }

        let auto = match self.mount_auto_cgroup {
            None => "",
            Some(CgroupAuto::ReadOnly) => "cgroup:ro:force",
            Some(CgroupAuto::ReadWrite) => "cgroup:rw:force",
        };
        l.push("lxc.mount.auto", auto)?;
        for m in &self.mounts {
            let line = mount_line("lxc.mount.entry", m)?;
            l.push("lxc.mount.entry", &line)?;
        }

        for r in &self.prlimits {
            l.push(
                &format!("lxc.prlimit.{}", r.name),
                &format!("{}:{}", limit(r.soft), limit(r.hard)),
            )?;
        }
        if let Some(adj) = self.oom_score_adj {
            l.push("lxc.proc.oom_score_adj", &adj.to_string())?;
        }
        if let Some(o) = self.time_offset_boot {
            l.push("lxc.time.offset.boot", &o.lxc_value())?;
        }
        if let Some(o) = self.time_offset_monotonic {
            l.push("lxc.time.offset.monotonic", &o.lxc_value())?;
        }
        for (key, value) in &self.sysctls {
            l.push(&format!("lxc.sysctl.{key}"), value)?;
        }

        let prefix = match self.cgroup_version {
            CgroupVersion::V1 => "lxc.cgroup",
            CgroupVersion::V2 => "lxc.cgroup2",
        };
        for s in &self.cgroup_settings {
            if s.file.contains('/') {
                return Err(LxcConfigError::InvalidKey {
                    key: format!("{prefix}.{}", s.file),
                });
            }
            l.push(&format!("{prefix}.{}", s.file), &s.value)?;
        }
        for rule in &self.device_rules {
            let verb = if rule.allow { "allow" } else { "deny" };
            l.push(&format!("{prefix}.devices.{verb}"), &device_rule(rule))?;
        }
        Ok(l.out)
    }
}
