//! `LXCPATH/VMID/config` as `pct start` writes it: pve-container src/PVE/LXC.pm
//! `update_lxc_config` (commit 94f5585), for the host facts in `host`.

#[cfg(test)]
use super::host::Cpuset;
pub use super::host::{Host, LXC_CONFIG_DIR};
use crate::schema::property_string;
use crate::store::CtConfig;
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Sub-schemas of the property-string options (`net[n]`, `mp[n]`, `rootfs`...).
pub type Formats<'a> = &'a Map<String, Value>;

pub fn sub_format<'a>(props: Formats<'a>, key: &str) -> Option<&'a Map<String, Value>> {
    crate::schema::validate::property(props, key)?
        .get("format")?
        .as_object()
}

/// pve-common JSONSchema.pm `parse_boolean`, as property strings hold booleans.
pub fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "on" | "yes" | "true"))
}

/// Where the rendered config points.
pub struct Paths<'a> {
    /// `/var/lib/lxc` on a node.
    pub lxcpath: &'a Path,
    /// The stand-in's copy of pve-container's `common.conf.d/01-pve.conf` (the hooks).
    pub pve_include: &'a Path,
    /// The NICs' `script.up`: the stand-in's `/usr/share/lxc/lxcnetaddbr`.
    pub script_up: &'a str,
}

/// What `update_lxc_config` writes: the config and, for most unprivileged CTs, the
/// seccomp rules file `LXCPATH/VMID/rules.seccomp`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub config: String,
    pub seccomp_rules: Option<(PathBuf, String)>,
}

/// pve-container Config.pm `has_lxc_entry`: a raw key in VMID.conf (not in includes).
fn has_lxc_entry(cfg: &CtConfig, key: &str) -> bool {
    cfg.lxc.iter().any(|(k, _)| k == key)
}

/// Renders `LXCPATH/VMID/config` like pve-container src/PVE/LXC.pm `update_lxc_config`.
/// `pick(n)` returns a random index below `n` (the cpuset choice).
pub fn render(
    vmid: u32,
    cfg: &CtConfig,
    props: Formats<'_>,
    host: &Host,
    paths: &Paths<'_>,
    pick: &mut dyn FnMut(usize) -> usize,
) -> Result<Rendered, String> {
    let opt = |k: &str| cfg.options.get(k).map(String::as_str);
    let num = |k: &str| opt(k).and_then(|v| v.parse::<f64>().ok());
    let dir = paths.lxcpath.join(vmid.to_string());
    let mut c = String::new();
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(c, "{k} = {v}");
    };
    // update_lxc_config, `$lxc_major >= 4`: no relative cgroups, the monitor outside, and
    // the CT's processes in `lxc/VMID/ns` below the limits set on `lxc/VMID`.
    line("lxc.cgroup.relative", "0");
    line("lxc.cgroup.dir.monitor", &format!("lxc.monitor/{vmid}"));
    line("lxc.cgroup.dir.container", &format!("lxc/{vmid}"));
    line("lxc.cgroup.dir.container.inner", "ns");
    line(
        "lxc.arch",
        opt("arch").ok_or("missing 'arch' - internal error")?,
    );
    // update_lxc_config: a custom idmap makes the CT unprivileged too.
    let custom_idmap = has_lxc_entry(cfg, "lxc.idmap");
    let unprivileged = truthy(cfg.options.get("unprivileged")) || custom_idmap;
    let ostype = opt("ostype").ok_or("missing 'ostype' - internal error")?;
    let conf_file = |name: &str, fallback: &str| {
        let f = if host.lxc_config_files.iter().any(|x| *x == name) {
            name
        } else {
            fallback
        };
        format!("{LXC_CONFIG_DIR}/{f}")
    };
    line(
        "lxc.include",
        &conf_file(&format!("{ostype}.common.conf"), "common.conf"),
    );
    // On a node common.conf ends with `lxc.include = .../common.conf.d/`, which pulls in
    // pve-container's src/lxc-pve.conf (installed as common.conf.d/01-pve.conf, see
    // src/Makefile) with PVE's hooks. The stand-in cannot write to /usr/share, so its
    // own 01-pve.conf is included right here, where that file would be read.
    line("lxc.include", &paths.pve_include.display().to_string());
    if unprivileged {
        line(
            "lxc.include",
            &conf_file(&format!("{ostype}.userns.conf"), "userns.conf"),
        );
    }
    let features = match opt("features") {
        Some(f) => property_string::parse(
            sub_format(props, "features").ok_or("schema has no features format")?,
            f,
        )?,
        None => Default::default(),
    };
    let feature = |k: &str| truthy(features.get(k));
    let seccomp = make_seccomp_config(cfg, vmid, &dir, unprivileged, &feature, host);
    if let Some((raw, _)) = &seccomp {
        c.push_str(raw);
    }
    c.push_str(&make_apparmor_config(cfg, &feature, features.get("mount")));
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(c, "{k} = {v}");
    };
    if feature("fuse") {
        line("lxc.apparmor.raw", "mount fstype=fuse,");
        line(
            "lxc.mount.entry",
            "/dev/fuse dev/fuse none bind,create=file 0 0",
        );
    }
    if unprivileged && !feature("force_rw_sys") {
        line("lxc.mount.auto", "sys:mixed");
    }
    // update_lxc_config: /dev/shm when no init system will mount it.
    if opt("entrypoint").is_some_and(|e| e != "/sbin/init") {
        line(
            "lxc.mount.entry",
            "shm dev/shm tmpfs rw,nosuid,nodev,create=dir 0 0",
        );
    }
    render_devices(cfg, props, &mut line)?;
    // update_lxc_config: "DO NOT REMOVE" - hook mounts stay in the monitor's namespace.
    line("lxc.monitor.unshare", "1");
    if unprivileged && !custom_idmap {
        line("lxc.idmap", "u 0 100000 65536");
        line("lxc.idmap", "g 0 100000 65536");
    }
    // Config.pm has_dev_console: `console: 0` turns it off. pve-container before 722a077
    // ("stop generating cgroupv1 lxc.cgroup.* settings") denied the v1 devices
    // controller first; on a v2 host both versions write the cgroup2 line.
    if !truthy_default(opt("console"), true) {
        line("lxc.console.path", "none");
        if host.v1_has("devices") {
            line("lxc.cgroup.devices.deny", "c 5:1 rwm");
        } else if host.cgroup_v2.is_some() {
            line("lxc.cgroup2.devices.deny", "c 5:1 rwm");
        }
    }
    // Config.pm get_tty_count: `tty // 2`.
    line("lxc.tty.max", opt("tty").unwrap_or("2"));
    line("lxc.environment", "TERM=linux");
    let hostname = opt("hostname")
        .map(str::to_string)
        .unwrap_or(format!("CT{vmid}"));
    line("lxc.uts.name", &hostname);
    render_limits(host, &num, &mut line);
    let rootfs = opt("rootfs").ok_or("missing 'rootfs' configuration")?;
    // Config.pm parse_volume('rootfs', ...) dies on a bad value.
    property_string::parse(
        sub_format(props, "rootfs").ok_or("schema has no rootfs format")?,
        rootfs,
    )?;
    // update_lxc_config: the pre-start hook mounts the volume here.
    line("lxc.rootfs.path", &dir.join("rootfs").display().to_string());
    if let Some(cmd) = opt("entrypoint") {
        line("lxc.init.cmd", cmd);
    }
    super::nets::render(vmid, cfg, props, &host.mtus, paths.script_up, &mut line)?;
    // Config.pm parse_pct_config keeps `lxc.environment.runtime` lines as `env`, and
    // update_lxc_config writes them before the other raw lines. LXC 5 (this machine)
    // only knows `lxc.environment`, which sets the same variables for the init.
    let env_key = if host.environment_runtime {
        "lxc.environment.runtime"
    } else {
        "lxc.environment"
    };
    for (_, v) in cfg
        .lxc
        .iter()
        .filter(|(k, _)| k == "lxc.environment.runtime")
    {
        line(env_key, v);
    }
    let mut had_cpuset = false;
    for (k, v) in cfg
        .lxc
        .iter()
        .filter(|(k, _)| k != "lxc.environment.runtime")
    {
        // update_lxc_config: only the cgroup2 key counts (since 722a077).
        had_cpuset |= k == "lxc.cgroup2.cpuset.cpus";
        line(k, v);
    }
    if let (Some(cores), Some(set), false) = (
        opt("cores").and_then(|c| c.parse::<usize>().ok()),
        &host.cpuset,
        had_cpuset,
    ) {
        let cpus = pick_cpus(&set.lxc_cpus, cores, pick)?;
        let ver = if set.version == 1 { "" } else { "2" };
        line(&format!("lxc.cgroup{ver}.cpuset.cpus"), &cpus);
    }
    Ok(Rendered {
        config: c,
        seccomp_rules: seccomp.and_then(|(_, f)| f),
    })
}

/// A schema boolean that may be absent (then `default`).
fn truthy_default(v: Option<&str>, default: bool) -> bool {
    v.map(|v| truthy(Some(&v.to_string()))).unwrap_or(default)
}

/// Memory and CPU limits. On a v2 host exactly update_lxc_config's `$cgv2` lines; where
/// the controllers are v1 (this hybrid machine) the lines pve-container wrote before
/// 722a077 (PVE 8), so the stand-in's CTs still get limits here.
fn render_limits(host: &Host, num: &dyn Fn(&str) -> Option<f64>, line: &mut dyn FnMut(&str, &str)) {
    // update_lxc_config: `memory || 512`, `swap // 0` (the API's create defaults swap to
    // 512, but a config without swap runs without).
    let memory = num("memory").filter(|m| *m != 0.0).unwrap_or(512.0);
    let swap = num("swap").unwrap_or(0.0);
    if host.v1_has("memory") {
        let mem = (memory * 1024.0 * 1024.0) as u64;
        line("lxc.cgroup.memory.limit_in_bytes", &mem.to_string());
        // PVE 8 wrote memsw unconditionally; a host without swap accounting would refuse
        // it, so the stand-in leaves it out there.
        if host.memsw {
            let memsw = ((memory + swap) * 1024.0 * 1024.0) as u64;
            line("lxc.cgroup.memory.memsw.limit_in_bytes", &memsw.to_string());
        }
    } else if host.v2_has("memory") {
        let (max, high) = calculate_memory_constraints(memory);
        line("lxc.cgroup2.memory.max", &max.to_string());
        line("lxc.cgroup2.memory.high", &high.to_string());
        let swap = (swap * 1024.0 * 1024.0) as u64;
        line("lxc.cgroup2.memory.swap.max", &swap.to_string());
    }
    if host.v1_has("cpu") {
        if let Some(l) = num("cpulimit").filter(|l| *l != 0.0) {
            line("lxc.cgroup.cpu.cfs_period_us", "100000");
            line(
                "lxc.cgroup.cpu.cfs_quota_us",
                &((l * 100000.0) as i64).to_string(),
            );
        }
        let shares = clamp_cpu_shares(num("cpuunits"), host.unified);
        line("lxc.cgroup.cpu.shares", &shares.to_string());
    } else if host.v2_has("cpu") {
        if let Some(l) = num("cpulimit").filter(|l| *l != 0.0) {
            line(
                "lxc.cgroup2.cpu.max",
                &format!("{} 100000", (l * 100000.0) as i64),
            );
        }
        if let Some(u) = num("cpuunits") {
            let w = clamp_cpu_shares(Some(u), host.unified);
            line("lxc.cgroup2.cpu.weight", &w.to_string());
        }
    }
}

/// pve-container Config.pm `calculate_memory_constraints`: `memory.high` is 1016/1024 of
/// `max`, or `max` - 128 MiB from 16 GiB up.
pub fn calculate_memory_constraints(memory_mib: f64) -> (u64, u64) {
    let max = (memory_mib * 1024.0 * 1024.0) as u64;
    let high = if memory_mib >= 16.0 * 1024.0 {
        ((memory_mib - 128.0) * 1024.0 * 1024.0) as u64
    } else {
        (memory_mib * 1024.0 * 1016.0) as u64
    };
    (max, high)
}

/// pve-common CGroup.pm `clamp_cpu_shares`: defaults 100 (v2) / 1024 (v1); v2 caps at
/// 10000, v1 has a floor of 2.
pub fn clamp_cpu_shares(shares: Option<f64>, unified: bool) -> u64 {
    match (shares, unified) {
        (None, true) => 100,
        (None, false) => 1024,
        (Some(s), true) => (s as u64).min(10000),
        (Some(s), false) => (s as u64).max(2),
    }
}

/// pve-common CpuSet.pm `parse_cpuset`.
fn parse_cpuset(text: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let p = part.trim();
        let (from, to) = match p.split_once('-') {
            Some((a, b)) => (a.parse::<u32>(), b.parse::<u32>()),
            None => (p.parse::<u32>(), p.parse::<u32>()),
        };
        let (Ok(from), Ok(to)) = (from, to) else {
            return Err(format!("invalid range: {part}"));
        };
        if to < from {
            return Err(format!("invalid range: {part} ({to} < {from})"));
        }
        out.extend(from..=to);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// CpuSet.pm `short_string`: `0-2,5`.
fn short_string(cpus: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// update_lxc_config: drop random members until `cores` are left.
pub fn pick_cpus(
    set: &str,
    cores: usize,
    pick: &mut dyn FnMut(usize) -> usize,
) -> Result<String, String> {
    let mut members = parse_cpuset(set)?;
    while members.len() > cores {
        let i = pick(members.len()).min(members.len() - 1);
        members.remove(i);
    }
    Ok(short_string(&members))
}

/// pve-container LXC.pm `make_seccomp_config`: the raw lines, and the rules file when one
/// is written.
#[allow(clippy::type_complexity)]
fn make_seccomp_config(
    cfg: &CtConfig,
    vmid: u32,
    dir: &Path,
    unprivileged: bool,
    feature: &dyn Fn(&str) -> bool,
    host: &Host,
) -> Option<(String, Option<(PathBuf, String)>)> {
    // A raw lxc.seccomp.profile in VMID.conf wins; privileged CTs keep common.conf's.
    if has_lxc_entry(cfg, "lxc.seccomp.profile") || !unprivileged {
        return None;
    }
    let mut rules: Vec<(&str, Vec<String>)> = vec![
        (
            "ioctl",
            vec!["errno 1 [1,0x9400,SCMP_CMP_MASKED_EQ,0xff00]".into()],
        ),
        ("socket", vec!["errno 97 [0,38,SCMP_CMP_EQ]".into()]),
    ];
    if !feature("keyctl") {
        rules.push(("keyctl", vec!["errno 38".into()]));
    }
    let mut raw = String::new();
    if feature("mknod") {
        // make_seccomp_config prefers the new socket path of pve-lxc-syscalld (PVE 9).
        raw.push_str("lxc.seccomp.notify.proxy = unix:/run/pve-lxc-syscalld/socket\n");
        raw.push_str(&format!("lxc.seccomp.notify.cookie = {vmid}\n"));
        rules.push((
            "mknod",
            vec![
                "notify [1,8192,SCMP_CMP_MASKED_EQ,61440]".into(),
                "notify [1,24576,SCMP_CMP_MASKED_EQ,61440]".into(),
            ],
        ));
        rules.push((
            "mknodat",
            vec![
                "notify [2,8192,SCMP_CMP_MASKED_EQ,61440]".into(),
                "notify [2,24576,SCMP_CMP_MASKED_EQ,61440]".into(),
            ],
        ));
    }
    rules.sort_by(|a, b| a.0.cmp(b.0));
    let extra: String = rules
        .iter()
        .flat_map(|(sys, rs)| rs.iter().map(move |r| format!("{sys} {r}\n")))
        .collect();
    let file = dir.join("rules.seccomp");
    raw.push_str(&format!("lxc.seccomp.profile = {}\n", file.display()));
    Some((raw, Some((file, format!("{}{extra}", host.common_seccomp)))))
}

/// pve-container LXC.pm `make_apparmor_config`. LXC falls back to its no-op security
/// driver when AppArmor is not enabled (lxc src/lxc/lsm/lsm.c `lsm_init_static`,
/// apparmor.c `lsm_apparmor_ops_init`), so these lines are parsed and ignored on a host
/// without AppArmor (this one: "Initialized LSM security driver nop") and do what PVE
/// means on a host with it.
fn make_apparmor_config(
    cfg: &CtConfig,
    feature: &dyn Fn(&str) -> bool,
    mount: Option<&String>,
) -> String {
    if has_lxc_entry(cfg, "lxc.apparmor.profile") {
        return String::new();
    }
    let mut raw = String::from("lxc.apparmor.profile = generated\n");
    raw.push_str("lxc.apparmor.raw = allow mqueue,\n");
    if feature("nesting") {
        raw.push_str("lxc.apparmor.allow_nesting = 1\n");
        raw.push_str("lxc.apparmor.raw = allow userns,\n");
    } else {
        raw.push_str("lxc.apparmor.raw = deny mount -> /proc/,\n");
        raw.push_str("lxc.apparmor.raw = deny mount -> /sys/,\n");
    }
    // pve-common ParseUtils.pm split_list.
    let sep = |c: char| c == ';' || c == ',' || c == '\0' || c.is_whitespace();
    let fstypes = mount.map(|m| m.split(sep).filter(|s| !s.is_empty()));
    for fs in fstypes.into_iter().flatten() {
        raw.push_str(&format!("lxc.apparmor.raw = mount fstype={fs},\n"));
    }
    raw
}

/// `devN` passthrough: update_lxc_config's cgroup2 device rules. PVE creates the nodes in
/// its pre-start hook and binds them in its autodev hook; the stand-in binds the host's
/// node with a mount entry instead.
fn render_devices(
    cfg: &CtConfig,
    props: Formats<'_>,
    line: &mut dyn FnMut(&str, &str),
) -> Result<(), String> {
    let format = sub_format(props, "dev0").ok_or("schema has no dev format")?;
    for (key, value) in numbered(cfg, "dev") {
        let dev = property_string::parse(format, value)?;
        let path = dev
            .get("path")
            .ok_or(format!("Path is not defined for passthrough device {key}"))?;
        // LXC/Tools.pm get_device_mode_and_rdev.
        let meta = fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
        let ty = if meta.file_type().is_block_device() {
            'b'
        } else if meta.file_type().is_char_device() {
            'c'
        } else {
            return Err(format!("{path} is not a device"));
        };
        let (major, minor) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
        let deny_write = truthy(dev.get("deny-write"));
        let perms = if deny_write { "r" } else { "rw" };
        line(
            "lxc.cgroup2.devices.allow",
            &format!("{ty} {major}:{minor} {perms}"),
        );
        if deny_write {
            line(
                "lxc.cgroup2.devices.deny",
                &format!("{ty} {major}:{minor} w"),
            );
        }
        let target = path.trim_start_matches('/');
        line(
            "lxc.mount.entry",
            &format!("{path} {target} none bind,optional,create=file 0 0"),
        );
    }
    Ok(())
}

/// `PREFIXn` options in numeric order (Config.pm `valid_volume_keys` order for `mp`).
pub fn numbered<'a>(cfg: &'a CtConfig, prefix: &str) -> Vec<(&'a String, &'a String)> {
    let mut out: Vec<(u32, (&String, &String))> = cfg
        .options
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.parse().ok()?, (k, v))))
        .collect();
    out.sort_by_key(|(n, _)| *n);
    out.into_iter().map(|(_, kv)| kv).collect()
}

#[cfg(test)]
mod tests;
