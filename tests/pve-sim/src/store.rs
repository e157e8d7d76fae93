//! CT configs in PVE's file format at `DATA_DIR/etc/pve/lxc/VMID.conf`, guarded by the same
//! flock PVE takes (`DATA_DIR/run/lock/lxc/pve-config-VMID.lock`), so lxcri's node-local
//! edits and the API's edits serialise exactly as on a node.

use crate::errno_text::strerror;
use crate::schema::{validate, Schema};
use anyhow::{anyhow, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde_json::Value;
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Raw `lxc.*` keys PVE's parser keeps (pve-container src/PVE/LXC/Config.pm,
/// `$valid_lxc_conf_keys` and `is_valid_lxc_conf_key`); `lxc.cgroup2.*`, `lxc.prlimit.*` and
/// `lxc.net.*` are kept whatever follows. Any other key PVE warns about and drops from the
/// config it runs the CT with, so a setting lxcri wrote there would be lost without an
/// error; the stand-in refuses the file instead, which makes such a line fail a test.
const RAW_EXACT: &[&str] = &[
    "lxc.apparmor.profile",
    "lxc.apparmor.allow_incomplete",
    "lxc.apparmor.allow_nesting",
    "lxc.apparmor.raw",
    "lxc.selinux.context",
    "lxc.include",
    "lxc.arch",
    "lxc.uts.name",
    "lxc.signal.halt",
    "lxc.signal.reboot",
    "lxc.signal.stop",
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
    "lxc.hook.autodev",
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
    "lxc.hook.pre-start",
    "lxc.hook.pre-mount",
    "lxc.hook.mount",
    "lxc.hook.start",
    "lxc.hook.stop",
    "lxc.hook.post-stop",
    "lxc.hook.clone",
    "lxc.hook.destroy",
    "lxc.hook.version",
    "lxc.log.level",
    "lxc.log.file",
    "lxc.start.auto",
    "lxc.start.delay",
    "lxc.start.order",
    "lxc.group",
    "lxc.environment",
    "lxc.environment.runtime",
    "lxc.environment.hooks",
    // Only the IPC ones: these are namespaced by CLONE_NEWIPC.
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
const RAW_PREFIXES: &[&str] = &["lxc.cgroup2.", "lxc.prlimit.", "lxc.net."];
/// Names LXC 3.0 removed; PVE keeps them with a warning naming the new one
/// (Config.pm `$deprecated_lxc_conf_keys`).
const RAW_DEPRECATED: &[(&str, &str)] = &[
    ("lxc.aa_profile", "lxc.apparmor.profile"),
    ("lxc.aa_allow_incomplete", "lxc.apparmor.allow_incomplete"),
    ("lxc.console", "lxc.console.path"),
    ("lxc.devttydir", "lxc.tty.dir"),
    ("lxc.haltsignal", "lxc.signal.halt"),
    ("lxc.rebootsignal", "lxc.signal.reboot"),
    ("lxc.stopsignal", "lxc.signal.stop"),
    ("lxc.id_map", "lxc.idmap"),
    ("lxc.init_cmd", "lxc.init.cmd"),
    ("lxc.loglevel", "lxc.log.level"),
    ("lxc.logfile", "lxc.log.file"),
    ("lxc.mount", "lxc.mount.fstab"),
    ("lxc.network.type", "lxc.net.INDEX.type"),
    ("lxc.network.flags", "lxc.net.INDEX.flags"),
    ("lxc.network.link", "lxc.net.INDEX.link"),
    ("lxc.network.mtu", "lxc.net.INDEX.mtu"),
    ("lxc.network.name", "lxc.net.INDEX.name"),
    ("lxc.network.hwaddr", "lxc.net.INDEX.hwaddr"),
    ("lxc.network.ipv4", "lxc.net.INDEX.ipv4.address"),
    ("lxc.network.ipv4.gateway", "lxc.net.INDEX.ipv4.gateway"),
    ("lxc.network.ipv6", "lxc.net.INDEX.ipv6.address"),
    ("lxc.network.ipv6.gateway", "lxc.net.INDEX.ipv6.gateway"),
    ("lxc.network.script.up", "lxc.net.INDEX.script.up"),
    ("lxc.network.script.down", "lxc.net.INDEX.script.down"),
    ("lxc.pts", "lxc.pty.max"),
    ("lxc.se_context", "lxc.selinux.context"),
    ("lxc.seccomp", "lxc.seccomp.profile"),
    ("lxc.tty", "lxc.tty.max"),
    ("lxc.utsname", "lxc.uts.name"),
];
const RAW_REJECTED: &[(&str, &str)] = &[
    (
        "lxc.rootfs.path",
        "lxc.rootfs.path is auto generated from rootfs",
    ),
    (
        "lxc.rootfs.options",
        "lxc.rootfs.options is not supported, please use mount point options in the \"rootfs\" key",
    ),
];

/// A parsed CT config: options, description, raw lines, and any snapshot/pending sections
/// kept verbatim (the stand-in does not implement snapshots).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CtConfig {
    pub description: Option<String>,
    pub options: BTreeMap<String, String>,
    pub lxc: Vec<(String, String)>,
    pub sections: String,
}

/// Config.pm `is_valid_lxc_conf_key`, in its order: `Ok(Some(warning))` for a key PVE keeps
/// with a warning, `Err(Some(why))` for one it names a reason to drop, `Err(None)` for one it
/// does not know (PVE drops both; the stand-in refuses them).
fn raw_key_check(key: &str) -> Result<Option<String>, Option<String>> {
    if key.starts_with("lxc.limit.") {
        return Ok(Some(format!(
            "{key}: lxc.limit.* was renamed to lxc.prlimit.*"
        )));
    }
    if let Some((_, new)) = RAW_DEPRECATED.iter().find(|(k, _)| *k == key) {
        return Ok(Some(format!(
            "{key} is deprecated and was renamed to {new}"
        )));
    }
    if let Some((_, why)) = RAW_REJECTED.iter().find(|(k, _)| *k == key) {
        return Err(Some(format!("{key}: {why}")));
    }
    if RAW_EXACT.contains(&key) {
        return Ok(None);
    }
    if key.starts_with("lxc.cgroup.") {
        return Ok(Some(format!(
            "{key} is deprecated, this will be a hard error in the future!"
        )));
    }
    if RAW_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return Ok(None);
    }
    Err(None)
}

/// `#` lines hold the description, escaped as pve-common src/PVE/ParseUtils.pm
/// `encode_text` escapes it ("all control and hi-bit characters, ':' and '%'", each byte
/// of the UTF-8 as `%XX`), which pve-container src/PVE/LXC/Config.pm `write_pct_config`
/// writes: `container: web` is `#container%3A web` in the file.
fn encode_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for b in line.bytes() {
        match b {
            0x20..=0x24 | 0x26..=0x39 | 0x3b..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl CtConfig {
    /// Parses like `PVE::LXC::Config::parse_pct_config`, stricter: what a node only warns
    /// about (`$handle_error` without `$strict`: a bad raw key, dropped; an option with a
    /// bad value or an unknown one, kept as written) fails the read with that warning, so a
    /// line lxcri wrote wrong surfaces here instead of changing what the node does.
    pub fn parse(
        vmid: u32,
        text: &str,
        schema: &Schema,
    ) -> Result<(CtConfig, Vec<String>), String> {
        let props = schema.config_properties();
        let mut cfg = CtConfig::default();
        let mut warnings = Vec::new();
        let mut descr: Vec<String> = Vec::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line.starts_with('[') {
                let rest: Vec<&str> = std::iter::once(line).chain(lines.by_ref()).collect();
                cfg.sections = rest.join("\n") + "\n";
                break;
            }
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(c) = line.strip_prefix('#') {
                descr.push(crate::schema::percent_decode(c));
                continue;
            }
            let (key, value) = match trimmed.split_once(':') {
                Some((k, v)) if k.starts_with("lxc.") => (k.trim(), v.trim()),
                _ => match trimmed.split_once(['=', ':']) {
                    Some((k, v)) => (k.trim(), v.trim()),
                    None => return Err(format!("vm {vmid} - unable to parse config: {line}")),
                },
            };
            if key.starts_with("lxc.") {
                match raw_key_check(key) {
                    Ok(w) => warnings.extend(w.map(|w| format!("vm {vmid} - {w}"))),
                    // parse_pct_config's own messages.
                    Err(Some(why)) => return Err(format!("vm {vmid} - {why}")),
                    Err(None) => return Err(format!("vm {vmid} - unable to parse config: {line}")),
                }
                cfg.lxc.push((key.to_string(), value.to_string()));
                continue;
            }
            if key == "description" {
                descr.push(value.to_string());
                continue;
            }
            // Config.pm `check_type` dies "unknown setting" for a key its schema lacks.
            let Some(prop) = props.and_then(|p| validate::property(p, key)) else {
                return Err(format!(
                    "vm {vmid} - unable to parse value of '{key}' - unknown setting '{key}'"
                ));
            };
            if let Err(e) = validate::check_value(prop, &Value::String(value.to_string()), key) {
                return Err(format!(
                    "vm {vmid} - unable to parse value of '{key}' - {e}"
                ));
            }
            cfg.options.insert(key.to_string(), value.to_string());
        }
        if !descr.is_empty() {
            cfg.description = Some(descr.join("\n"));
        }
        Ok((cfg, warnings))
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(d) = &self.description {
            for l in d.split('\n') {
                out.push('#');
                out.push_str(&encode_comment(l));
                out.push('\n');
            }
        }
        for (k, v) in &self.options {
            out.push_str(&format!("{k}: {v}\n"));
        }
        for (k, v) in &self.lxc {
            out.push_str(&format!("{k}: {v}\n"));
        }
        if !self.sections.is_empty() {
            out.push('\n');
            out.push_str(&self.sections);
        }
        out
    }
}

/// PVE's `digest`: SHA-1 of the file's bytes.
pub fn digest(text: &str) -> String {
    Sha1::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The config directories and lock files of the simulated node.
pub struct Store {
    root: PathBuf,
}

pub type ConfigLock = Flock<File>;

impl Store {
    pub fn new(data_dir: &Path) -> Result<Store> {
        for d in ["etc/pve/lxc", "etc/pve/qemu-server", "run/lock/lxc"] {
            fs::create_dir_all(data_dir.join(d)).with_context(|| format!("creating {d}"))?;
        }
        Ok(Store {
            root: data_dir.to_path_buf(),
        })
    }

    pub fn conf_path(&self, vmid: u32) -> PathBuf {
        self.root.join(format!("etc/pve/lxc/{vmid}.conf"))
    }

    fn lock_path(&self, vmid: u32) -> PathBuf {
        self.root
            .join(format!("run/lock/lxc/pve-config-{vmid}.lock"))
    }

    /// Takes the config lock, waiting up to 10 s like PVE's `lock_config`.
    pub fn lock(&self, vmid: u32) -> Result<ConfigLock> {
        let path = self.lock_path(vmid);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("can't open lock file '{}'", path.display()))?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(l) => return Ok(l),
                Err((f, _)) if Instant::now() < deadline => {
                    file = f;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(_) => {
                    return Err(anyhow!(
                        "can't lock file '{}' - got timeout",
                        path.display()
                    ))
                }
            }
        }
    }

    /// Is `vmid` used by a CT or a VM (a test may drop a fake `qemu-server/N.conf`)?
    pub fn owner(&self, vmid: u32) -> Option<&'static str> {
        if self.conf_path(vmid).exists() {
            Some("CT")
        } else if self
            .root
            .join(format!("etc/pve/qemu-server/{vmid}.conf"))
            .exists()
        {
            Some("VM")
        } else {
            None
        }
    }

    /// Creates the config only if no file exists: the one atomic step that decides which
    /// of many concurrent creates of the same VMID wins.
    pub fn create_exclusive(&self, vmid: u32, cfg: &CtConfig) -> std::io::Result<()> {
        crate::quorum::check_write(&self.etc_pve())?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.conf_path(vmid))?;
        f.write_all(cfg.render().as_bytes())
    }

    pub fn read_raw(&self, vmid: u32) -> Option<String> {
        fs::read_to_string(self.conf_path(vmid)).ok()
    }

    /// Writes through a temp file and rename, as pmxcfs makes writes appear atomically.
    /// Without quorum pmxcfs refuses the temp file, and PVE says so in pve-common
    /// src/PVE/File.pm `file_set_contents`'s words.
    pub fn write(&self, vmid: u32, cfg: &CtConfig) -> Result<()> {
        let path = self.conf_path(vmid);
        let tmp = path.with_extension(format!("conf.tmp.{}", std::process::id()));
        crate::quorum::check_write(&self.etc_pve())
            .and_then(|()| fs::write(&tmp, cfg.render()))
            .map_err(|e| anyhow!("unable to open file '{}' - {}", tmp.display(), strerror(&e)))?;
        fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))
    }

    /// pve-guest-common src/PVE/AbstractConfig.pm `destroy_config`.
    pub fn remove(&self, vmid: u32) -> Result<()> {
        crate::quorum::check_write(&self.etc_pve())
            .and_then(|()| fs::remove_file(self.conf_path(vmid)))
            .map_err(|e| anyhow!("failed to remove config file: {}", strerror(&e)))
    }

    fn etc_pve(&self) -> PathBuf {
        self.root.join("etc/pve")
    }

    pub fn list(&self) -> Vec<u32> {
        list_ids(&self.root.join("etc/pve/lxc"))
    }

    pub fn all_ids(&self) -> Vec<u32> {
        let mut ids = self.list();
        ids.extend(list_ids(&self.root.join("etc/pve/qemu-server")));
        ids.sort_unstable();
        ids
    }
}

fn list_ids(dir: &Path) -> Vec<u32> {
    let mut ids: Vec<u32> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".conf")?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::test_schema;

    #[test]
    fn round_trip_keeps_description_options_and_raw_lines() {
        let text = "#container abc\n#pod 100%\narch: amd64\nhostname: web\nmemory: 256\nlxc.include: /run/lxcri/100.conf\nlxc.init.cmd: /.lxcri/init\n";
        let (cfg, warnings) = CtConfig::parse(100, text, &test_schema()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.description.as_deref(), Some("container abc\npod 100%"));
        assert_eq!(cfg.lxc.len(), 2);
        let again = CtConfig::parse(100, &cfg.render(), &test_schema())
            .unwrap()
            .0;
        assert_eq!(again, cfg);
    }

    #[test]
    fn the_description_is_escaped_as_pve_writes_it() {
        let cfg = CtConfig {
            description: Some("- container: web 100%\ncafé\tx".into()),
            ..CtConfig::default()
        };
        assert_eq!(cfg.render(), "#- container%3A web 100%25\n#caf%C3%A9%09x\n");
        let again = CtConfig::parse(100, &cfg.render(), &test_schema())
            .unwrap()
            .0;
        assert_eq!(again.description, cfg.description);
    }

    #[test]
    fn raw_keys_follow_pve_rules() {
        let s = test_schema();
        assert_eq!(
            CtConfig::parse(1, "lxc.namespace.share.net: /x\n", &s).unwrap_err(),
            "vm 1 - unable to parse config: lxc.namespace.share.net: /x"
        );
        assert_eq!(
            CtConfig::parse(1, "lxc.rootfs.path: /x\n", &s).unwrap_err(),
            "vm 1 - lxc.rootfs.path: lxc.rootfs.path is auto generated from rootfs"
        );
        // Keys LXC knows that PVE's list does not (dropped on a node).
        for key in [
            "lxc.proc.oom_score_adj",
            "lxc.console.size",
            "lxc.monitor.unshare",
            "lxc.sysctl.net.ipv4.ip_forward",
            "lxc.hook.start-host",
            "lxc.signal.foo",
            "lxc.start.foo",
        ] {
            assert!(
                CtConfig::parse(1, &format!("{key}: 1\n"), &s).is_err(),
                "{key}"
            );
        }
        for key in [
            "lxc.kmsg",
            "lxc.rootfs.mount",
            "lxc.seccomp.notify.proxy",
            "lxc.environment.hooks",
            "lxc.sysctl.kernel.shmmax",
            "lxc.signal.stop",
            "lxc.hook.version",
            "lxc.cgroup2.memory.max",
            "lxc.prlimit.nofile",
            "lxc.net.0.type",
        ] {
            let (c, w) = CtConfig::parse(1, &format!("{key}: 1\n"), &s).unwrap();
            assert!(w.is_empty() && c.lxc.len() == 1, "{key}: {w:?}");
        }
        for key in ["lxc.utsname", "lxc.limit.nofile", "lxc.network.type"] {
            let (c, w) = CtConfig::parse(1, &format!("{key}: 1\n"), &s).unwrap();
            assert!(w.len() == 1 && c.lxc.len() == 1, "{key}: {w:?}");
        }
        let (_, w) = CtConfig::parse(1, "lxc.cgroup.memory.limit_in_bytes: 1\n", &s).unwrap();
        assert_eq!(w.len(), 1);
    }

    /// A node keeps an option with a bad value, or an unknown one, with a warning; the
    /// stand-in fails the read with that warning.
    #[test]
    fn bad_or_unknown_options_fail_the_read() {
        let s = test_schema();
        let bad = CtConfig::parse(1, "memory: lots\n", &s).unwrap_err();
        assert!(
            bad.starts_with("vm 1 - unable to parse value of 'memory' - "),
            "{bad}"
        );
        assert_eq!(
            CtConfig::parse(1, "foo: 1\n", &s).unwrap_err(),
            "vm 1 - unable to parse value of 'foo' - unknown setting 'foo'"
        );
        let (c, w) = CtConfig::parse(1, "memory: 512\n", &s).unwrap();
        assert!(w.is_empty() && c.options["memory"] == "512", "{w:?}");
    }
}
