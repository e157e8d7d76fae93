//! LXC's reading of a config, modelled from lxc 5.0.2, and the inverse of
//! lxcri's renderer built on it: text -> `key = value` pairs as LXC sees
//! them -> [`LxcConfig`]. If a rendered config reads back to the config it
//! came from, no value could have smuggled in a key, a mount field or an
//! option LXC would see and lxcri did not mean.

use std::path::PathBuf;

use lxcri::cgroup::{CgroupPath, CgroupSetting, CgroupVersion};
use lxcri::lxc::{
    CgroupAuto, CgroupDirs, DeviceKind, DeviceRule, IdKind, IdMap, LxcAppArmor, LxcConfig,
    MountEntry, Namespace, Network, Prlimit, TimeOffset,
};

/// lxc 5.0.2 src/lxc/confile.c `parse_line`: blank lines and `#` comments
/// skipped, lines not starting `lxc.` ignored, split at the first `=`, both
/// sides trimmed of blanks (`lxc_char_left_gc`/`right_gc`: space and tab),
/// one pair of matching enclosing quotes stripped from the value.
pub fn lxc_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') || !line.starts_with("lxc.") {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("Invalid configuration line: {line}"))?;
        let key = key.trim_end_matches([' ', '\t']);
        let mut value = value.trim_matches([' ', '\t']);
        let b = value.as_bytes();
        if b.len() > 1 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0] {
            value = &value[1..value.len() - 1];
        }
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

/// glibc misc/mntent_r.c `getmntent_r`: fields split at blanks, `\040`,
/// `\011`, `\012`, `\134` (and `\\`) decoded; the two numbers at the end.
pub fn mntent_fields(line: &str) -> Result<[String; 4], String> {
    let fields: Vec<&str> = line.split([' ', '\t']).filter(|f| !f.is_empty()).collect();
    if fields.len() != 6 {
        return Err(format!("{} fields in mount entry {line:?}", fields.len()));
    }
    if fields[4] != "0" || fields[5] != "0" {
        return Err(format!("dump/pass not 0 0 in {line:?}"));
    }
    let decode = |f: &str| {
        let mut out = String::new();
        let mut rest = f;
        while let Some(c) = rest.chars().next() {
            let (decoded, len) = match rest.get(..4) {
                Some("\\040") => (' ', 4),
                Some("\\011") => ('\t', 4),
                Some("\\012") => ('\n', 4),
                Some("\\134") => ('\\', 4),
                _ if rest.starts_with("\\\\") => ('\\', 2),
                _ => (c, c.len_utf8()),
            };
            out.push(decoded);
            rest = &rest[len..];
        }
        out
    };
    Ok([
        decode(fields[0]),
        decode(fields[1]),
        decode(fields[2]),
        decode(fields[3]),
    ])
}

fn namespace(name: &str) -> Result<Namespace, String> {
    Ok(match name {
        "mnt" => Namespace::Mnt,
        "pid" => Namespace::Pid,
        "net" => Namespace::Net,
        "ipc" => Namespace::Ipc,
        "uts" => Namespace::Uts,
        "user" => Namespace::User,
        "cgroup" => Namespace::Cgroup,
        "time" => Namespace::Time,
        _ => return Err(format!("unknown namespace {name:?}")),
    })
}

fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{key}: not a number: {v:?}"))
}

fn time_offset(key: &str, v: &str) -> Result<TimeOffset, String> {
    if let Some(ns) = v.strip_suffix("ns") {
        Ok(TimeOffset::Nanoseconds(number(key, ns)?))
    } else if let Some(s) = v.strip_suffix('s') {
        Ok(TimeOffset::Seconds(number(key, s)?))
    } else {
        Err(format!("{key}: no unit: {v:?}"))
    }
}

fn limit(key: &str, v: &str) -> Result<u64, String> {
    if v == "unlimited" {
        Ok(u64::MAX)
    } else {
        number(key, v)
    }
}

/// Splits `<options>` the way lxc 5.0.2 conf.c `parse_mntopt` does (at
/// commas) but keeps a `KEY="A,B"` value whole, as the renderer writes it.
fn mount_options(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut open = false;
    for part in text.split(',') {
        if open {
            let last = out.last_mut().expect("an open quote has a part");
            last.push(',');
            last.push_str(part);
            open = !part.contains('"');
        } else {
            out.push(part.to_string());
            open = part.matches('"').count() == 1;
        }
    }
    if out == ["defaults"] {
        Vec::new()
    } else {
        out
    }
}

fn device_rule(allow: bool, v: &str) -> Result<DeviceRule, String> {
    let bad = || format!("device rule {v:?}");
    let mut words = v.split(' ');
    let kind = match words.next() {
        Some("a") => DeviceKind::All,
        Some("c") => DeviceKind::Char,
        Some("b") => DeviceKind::Block,
        _ => return Err(bad()),
    };
    let Some(numbers) = words.next() else {
        return if kind == DeviceKind::All {
            Ok(DeviceRule {
                allow,
                kind,
                major: None,
                minor: None,
                access: "rwm".into(),
            })
        } else {
            Err(bad())
        };
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let num = |n: &str| -> Result<Option<u64>, String> {
        if n == "*" {
            Ok(None)
        } else {
            n.parse().map(Some).map_err(|_| bad())
        }
    };
    let access = words.next().ok_or_else(bad)?.to_string();
    if words.next().is_some() {
        return Err(bad());
    }
    Ok(DeviceRule {
        allow,
        kind,
        major: num(major)?,
        minor: num(minor)?,
        access,
    })
}

/// The [`LxcConfig`] a standalone config (`LxcConfig::render`) describes.
pub fn read_config(text: &str, version: CgroupVersion) -> Result<LxcConfig, String> {
    let mut c = LxcConfig::new(PathBuf::new(), String::new(), version);
    let cgroup_prefix = match version {
        CgroupVersion::V1 => "lxc.cgroup.",
        CgroupVersion::V2 => "lxc.cgroup2.",
    };
    let mut net_type = None;
    let (mut cgroup_container, mut cgroup_monitor) = (None, None);
    for (key, v) in lxc_pairs(text)? {
        let k = key.as_str();
        match k {
            // LXC refuses an absolute or upward path (confile.c
            // `set_config_cgroup_container_dir`), as the parse does.
            "lxc.cgroup.dir.container" => {
                cgroup_container = Some(CgroupPath::parse(&v).map_err(|e| e.to_string())?)
            }
            "lxc.cgroup.dir.monitor" => {
                cgroup_monitor = Some(CgroupPath::parse(&v).map_err(|e| e.to_string())?)
            }
            "lxc.uts.name" => c.uts_name = Some(v),
            "lxc.rootfs.path" => {
                c.rootfs = v
                    .strip_prefix("dir:")
                    .ok_or_else(|| format!("rootfs {v:?}"))?
                    .into()
            }
            "lxc.rootfs.managed" if v == "0" => {}
            // LXC's own session keyring off (the init joins runc's).
            "lxc.keyring.session" if v == "1" => {}
            "lxc.init.cmd" => c.init_cmd = v,
            "lxc.init.uid" => c.init_uid = number(k, &v)?,
            "lxc.init.gid" => c.init_gid = number(k, &v)?,
            "lxc.init.cwd" => c.init_cwd = v,
            "lxc.console.path" => c.console_path = (v != "none").then(|| v.into()),
            "lxc.tty.max" => c.tty_max = number(k, &v)?,
            "lxc.pty.max" => c.pty_max = number(k, &v)?,
            "lxc.autodev" => c.autodev = v == "1",
            "lxc.apparmor.profile" => {
                c.apparmor = match v.as_str() {
                    "unconfined" => LxcAppArmor::Unconfined,
                    "generated" => LxcAppArmor::Generated,
                    _ => return Err(format!("apparmor {v:?}")),
                }
            }
            "lxc.namespace.clone" => {
                c.namespaces.clone = v.split(' ').map(namespace).collect::<Result<_, _>>()?
            }
            "lxc.net.0.type" => net_type = Some(v),
            "lxc.net.0.flags" if v == "up" => {}
            "lxc.idmap" => {
                let f: Vec<&str> = v.split(' ').collect();
                let [kind, container, host, size] = f[..] else {
                    return Err(format!("idmap {v:?}"));
                };
                c.idmaps.push(IdMap {
                    kind: match kind {
                        "u" => IdKind::User,
                        "g" => IdKind::Group,
                        _ => return Err(format!("idmap {v:?}")),
                    },
                    container_id: number(k, container)?,
                    host_id: number(k, host)?,
                    size: number(k, size)?,
                });
            }
            "lxc.mount.auto" => {
                c.mount_auto_cgroup = match v.as_str() {
                    "" => None,
                    "cgroup:ro:force" => Some(CgroupAuto::ReadOnly),
                    "cgroup:rw:force" => Some(CgroupAuto::ReadWrite),
                    _ => return Err(format!("mount.auto {v:?}")),
                }
            }
            "lxc.mount.entry" => {
                let [source, destination, fstype, options] = mntent_fields(&v)?;
                c.mounts.push(MountEntry {
                    source,
                    destination,
                    fstype,
                    options: mount_options(&options),
                });
            }
            "lxc.proc.oom_score_adj" => c.oom_score_adj = Some(number(k, &v)?),
            "lxc.time.offset.boot" => c.time_offset_boot = Some(time_offset(k, &v)?),
            "lxc.time.offset.monotonic" => c.time_offset_monotonic = Some(time_offset(k, &v)?),
            _ if k.starts_with("lxc.namespace.share.") => {
                let ns = namespace(&k["lxc.namespace.share.".len()..])?;
                c.namespaces.share.push((ns, v.into()));
            }
            _ if k.starts_with("lxc.prlimit.") => {
                let (soft, hard) = v.split_once(':').ok_or_else(|| format!("{k} {v:?}"))?;
                c.prlimits.push(Prlimit {
                    name: k["lxc.prlimit.".len()..].to_string(),
                    soft: limit(k, soft)?,
                    hard: limit(k, hard)?,
                });
            }
            _ if k.starts_with("lxc.sysctl.") => {
                c.sysctls.push((k["lxc.sysctl.".len()..].to_string(), v));
            }
            _ if k.starts_with(cgroup_prefix) => {
                let file = &k[cgroup_prefix.len()..];
                match file {
                    "devices.allow" => c.device_rules.push(device_rule(true, &v)?),
                    "devices.deny" => c.device_rules.push(device_rule(false, &v)?),
                    _ => c.cgroup_settings.push(CgroupSetting::new(file, v)),
                }
            }
            _ => return Err(format!("a key the renderer does not write: {k} = {v}")),
        }
    }
    // check_cgroup_dir_config: both or neither.
    c.cgroup_dirs = match (cgroup_container, cgroup_monitor) {
        (Some(container), Some(monitor)) => Some(CgroupDirs { container, monitor }),
        (None, None) => None,
        _ => return Err("lxc.cgroup.dir.container without .monitor, or the reverse".into()),
    };
    c.network = match net_type.as_deref() {
        None => None,
        Some("empty") => Some(Network::Empty),
        Some(t) => return Err(format!("net type {t:?}")),
    };
    Ok(c)
}
