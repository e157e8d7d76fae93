//! What `pct start` does on a node, minus PVE's hook scripts: render `LXCPATH/VMID/config`
//! from the CT config, then run `lxc-start -F -n VMID` detached, so the CT is an ordinary
//! LXC container that `lxc-info -n VMID -P LXCPATH` and `lxc-attach` find.

use crate::schema::property_string;
use crate::store::CtConfig;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Facts about the host that change the rendering (cgroup layout, bridges).
#[derive(Debug, Clone)]
pub struct Host {
    /// Memory and cpu controllers live in cgroup v2 (PVE 9); false on this hybrid machine.
    pub cgroup2: bool,
    /// The v1 memory controller has swap accounting (`memsw`).
    pub memsw: bool,
    pub bridges: Vec<String>,
    /// LXC knows `lxc.environment.runtime` (LXC >= 6).
    pub environment_runtime: bool,
}

impl Host {
    pub fn detect() -> Host {
        let v2 = fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
        let bridges = fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("bridge").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        Host {
            cgroup2: v2.split_whitespace().any(|c| c == "memory"),
            memsw: Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
            bridges,
            environment_runtime: lxc_major() >= 6,
        }
    }
}

/// The major version `lxc-start --version` prints (0 when unknown).
fn lxc_major() -> u32 {
    Command::new("lxc-start")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .split('.')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Sub-schemas of the property-string options (`net[n]`, `mp[n]`, `rootfs`...).
pub type Formats<'a> = &'a Map<String, Value>;

fn sub_format<'a>(props: Formats<'a>, key: &str) -> Option<&'a Map<String, Value>> {
    crate::schema::validate::property(props, key)?
        .get("format")?
        .as_object()
}

/// Renders the LXC config the way `PVE::LXC::update_lxc_config` does. `resolve` maps a
/// volume (storage volume id or absolute path) to a host directory.
pub fn render(
    vmid: u32,
    cfg: &CtConfig,
    props: Formats<'_>,
    host: &Host,
    resolve: &dyn Fn(&str) -> Result<PathBuf, String>,
) -> Result<String, String> {
    let opt = |k: &str| cfg.options.get(k).map(String::as_str);
    let num = |k: &str| opt(k).and_then(|v| v.parse::<f64>().ok());
    let mut c = String::new();
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(c, "{k} = {v}");
    };
    line("lxc.cgroup.dir.monitor", &format!("lxc.monitor/{vmid}"));
    line("lxc.cgroup.dir.container", &format!("lxc/{vmid}"));
    line("lxc.arch", opt("arch").unwrap_or("amd64"));
    let ostype = opt("ostype").unwrap_or("unmanaged");
    let unprivileged = opt("unprivileged") == Some("1");
    if ostype == "unmanaged" {
        line("lxc.include", "/usr/share/lxc/config/common.conf");
        if unprivileged {
            line("lxc.include", "/usr/share/lxc/config/userns.conf");
        }
    } else {
        line(
            "lxc.include",
            &format!("/usr/share/lxc/config/{ostype}.common.conf"),
        );
        if unprivileged {
            line(
                "lxc.include",
                &format!("/usr/share/lxc/config/{ostype}.userns.conf"),
            );
        }
    }
    // PVE generates an AppArmor profile; this kernel cannot enforce any.
    line("lxc.apparmor.profile", "unconfined");
    line("lxc.monitor.unshare", "1");
    if unprivileged {
        line("lxc.idmap", "u 0 100000 65536");
        line("lxc.idmap", "g 0 100000 65536");
    }
    line("lxc.tty.max", opt("tty").unwrap_or("2"));
    line("lxc.environment", "TERM=linux");
    let hostname = opt("hostname")
        .map(str::to_string)
        .unwrap_or(format!("CT{vmid}"));
    line("lxc.uts.name", &hostname);
    let memory = num("memory").unwrap_or(512.0) * 1024.0 * 1024.0;
    let swap = num("swap").unwrap_or(512.0) * 1024.0 * 1024.0;
    if host.cgroup2 {
        line("lxc.cgroup2.memory.max", &format!("{}", memory as u64));
        line(
            "lxc.cgroup2.memory.high",
            &format!("{}", (memory * 0.99) as u64),
        );
        line("lxc.cgroup2.memory.swap.max", &format!("{}", swap as u64));
        if let Some(l) = num("cpulimit").filter(|l| *l > 0.0) {
            line(
                "lxc.cgroup2.cpu.max",
                &format!("{} 100000", (l * 100000.0) as u64),
            );
        }
        if let Some(u) = num("cpuunits") {
            line(
                "lxc.cgroup2.cpu.weight",
                &format!("{}", (u as u64).clamp(1, 10000)),
            );
        }
    } else {
        // cgroup v1, as PVE 8 rendered it; kept so the stand-in runs on this hybrid host.
        line(
            "lxc.cgroup.memory.limit_in_bytes",
            &format!("{}", memory as u64),
        );
        if host.memsw {
            line(
                "lxc.cgroup.memory.memsw.limit_in_bytes",
                &format!("{}", (memory + swap) as u64),
            );
        }
        if let Some(l) = num("cpulimit").filter(|l| *l > 0.0) {
            line("lxc.cgroup.cpu.cfs_period_us", "100000");
            line(
                "lxc.cgroup.cpu.cfs_quota_us",
                &format!("{}", (l * 100000.0) as u64),
            );
        }
        if let Some(u) = num("cpuunits") {
            line("lxc.cgroup.cpu.shares", &format!("{}", u as u64));
        }
    }
    let rootfs = opt("rootfs").ok_or("missing 'rootfs' in CT config")?;
    let rootfs = property_string::parse(
        sub_format(props, "rootfs").ok_or("schema has no rootfs format")?,
        rootfs,
    )?;
    let volume = rootfs.get("volume").ok_or("rootfs has no volume")?;
    line("lxc.rootfs.path", &resolve(volume)?.display().to_string());
    if let Some(cmd) = opt("entrypoint") {
        line("lxc.init.cmd", cmd);
    }
    render_nets(vmid, cfg, props, host, &mut line)?;
    render_mounts(cfg, props, resolve, &mut line)?;
    // Raw lines last: this is how lxcri's `lxc.include` fragment reaches LXC.
    for (k, v) in &cfg.lxc {
        // PVE 9.1 runs LXC 6, which has `lxc.environment.runtime` (the init's
        // environment only); LXC 5 here knows just `lxc.environment`.
        if k == "lxc.environment.runtime" && !host.environment_runtime {
            line("lxc.environment", v);
        } else {
            line(k, v);
        }
    }
    Ok(c)
}

fn render_nets(
    vmid: u32,
    cfg: &CtConfig,
    props: Formats<'_>,
    host: &Host,
    line: &mut dyn FnMut(&str, &str),
) -> Result<(), String> {
    let format = sub_format(props, "net0").ok_or("schema has no net format")?;
    for (key, value) in cfg.options.iter().filter(|(k, _)| k.starts_with("net")) {
        let idx = &key[3..];
        let net = property_string::parse(format, value)?;
        let p = format!("lxc.net.{idx}");
        let bridge = net.get("bridge");
        match bridge {
            Some(b) if host.bridges.contains(b) => {
                line(&format!("{p}.type"), "veth");
                line(&format!("{p}.veth.pair"), &format!("veth{vmid}i{idx}"));
                line(&format!("{p}.link"), b);
                line(&format!("{p}.flags"), "up");
            }
            // No bridge on this machine (no vmbr0): an empty netns keeps the CT startable.
            _ => {
                line(&format!("{p}.type"), "empty");
                continue;
            }
        }
        if let Some(n) = net.get("name") {
            line(&format!("{p}.name"), n);
        }
        if let Some(h) = net.get("hwaddr") {
            line(&format!("{p}.hwaddr"), h);
        }
        if let Some(m) = net.get("mtu") {
            line(&format!("{p}.mtu"), m);
        }
        if net.get("host-managed").map(String::as_str) == Some("1") {
            if let Some(ip) = net.get("ip").filter(|ip| ip.contains('/')) {
                line(&format!("{p}.ipv4.address"), ip);
            }
            if let Some(gw) = net.get("gw") {
                line(&format!("{p}.ipv4.gateway"), gw);
            }
            if let Some(ip) = net.get("ip6").filter(|ip| ip.contains('/')) {
                line(&format!("{p}.ipv6.address"), ip);
            }
        }
    }
    Ok(())
}

/// PVE mounts mount points from a pre-start hook; a bind entry does the same here.
fn render_mounts(
    cfg: &CtConfig,
    props: Formats<'_>,
    resolve: &dyn Fn(&str) -> Result<PathBuf, String>,
    line: &mut dyn FnMut(&str, &str),
) -> Result<(), String> {
    let mp_format = sub_format(props, "mp0").ok_or("schema has no mp format")?;
    let dev_format = sub_format(props, "dev0").ok_or("schema has no dev format")?;
    for (key, value) in &cfg.options {
        if key.starts_with("mp") {
            let mp = property_string::parse(mp_format, value)?;
            let (Some(vol), Some(target)) = (mp.get("volume"), mp.get("mp")) else {
                return Err(format!("{key}: needs volume and mp"));
            };
            let ro = if mp.get("ro").map(String::as_str) == Some("1") {
                ",ro"
            } else {
                ""
            };
            let src = resolve(vol)?;
            let kind = if src.is_dir() { "dir" } else { "file" };
            let target = target.trim_start_matches('/');
            line(
                "lxc.mount.entry",
                &format!(
                    "{} {target} none rbind,create={kind}{ro} 0 0",
                    src.display()
                ),
            );
        } else if key.starts_with("dev") {
            let dev = property_string::parse(dev_format, value)?;
            if let Some(path) = dev.get("path") {
                let target = path.trim_start_matches('/');
                line(
                    "lxc.mount.entry",
                    &format!("{path} {target} none bind,optional,create=file 0 0"),
                );
            }
        }
    }
    Ok(())
}

/// How long stop, shutdown and destroy wait for `lxc-start` to exit once the CT is told to
/// stop (PVE's `vm_stop` waits for the monitor's command socket to close).
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// One `lxc-start -F` this stand-in started; its reaper thread marks it exited.
#[derive(Default)]
struct Monitor {
    exited: Mutex<bool>,
    cond: Condvar,
}

impl Monitor {
    fn is_exited(&self) -> bool {
        *self.exited.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the reaper saw `lxc-start` exit; false on timeout.
    fn wait(&self, deadline: Instant) -> bool {
        let mut exited = self.exited.lock().unwrap_or_else(|p| p.into_inner());
        while !*exited {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            exited = self
                .cond
                .wait_timeout(exited, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

/// Runs the `lxc-*` tools for one lxcpath, and keeps the `lxc-start` processes it started.
pub struct Lxc {
    pub lxcpath: PathBuf,
    pub logdir: PathBuf,
    /// `lxc-start` per VMID, from start until it has exited and been reaped.
    monitors: Mutex<HashMap<u32, Arc<Monitor>>>,
}

/// What `lxc-info` says about a CT.
pub struct Info {
    pub running: bool,
    pub pid: Option<u32>,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "command '{cmd:?}' failed: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The abstract unix socket LXC's monitor listens on (`lxc_make_abstract_socket_name`):
/// `LXCPATH/NAME/command`, or `lxc/HASH/command` with the FNV-1a hash of `LXCPATH/NAME`
/// when that does not fit into `sun_path`.
pub fn command_socket(lxcpath: &Path, name: &str) -> String {
    let lxcpath = lxcpath.to_string_lossy();
    let full = format!("{lxcpath}/{name}/command");
    // sun_path is 108 bytes, minus the leading and the trailing NUL.
    if full.len() < 106 {
        return full;
    }
    let hash = fnv1a64(format!("{lxcpath}/{name}").as_bytes());
    format!("lxc/{hash:016x}/command")
}

/// LXC's `fnv_64a_buf` from `FNV1A_64_INIT`.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Lxc {
    pub fn new(lxcpath: PathBuf, logdir: PathBuf) -> Lxc {
        Lxc {
            lxcpath,
            logdir,
            monitors: Mutex::new(HashMap::new()),
        }
    }

    fn tool(&self, name: &str, vmid: u32) -> Command {
        let mut c = Command::new(name);
        c.arg("-n")
            .arg(vmid.to_string())
            .arg("-P")
            .arg(&self.lxcpath);
        c
    }

    pub fn info(&self, vmid: u32) -> Info {
        let out = run(self.tool("lxc-info", vmid).args(["-s", "-p"])).unwrap_or_default();
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        Info {
            running: field("State:").as_deref() == Some("RUNNING"),
            pid: field("PID:").and_then(|p| p.parse().ok()),
        }
    }

    /// PVE's `check_running`: the CT's monitor (`lxc-start`) still listens on its command
    /// socket. LXC closes it only after it has removed the CT's cgroups; `lxc-start` itself
    /// exits about half a second later (see `wait_exited`).
    pub fn running(&self, vmid: u32) -> bool {
        let want = format!(" @{}", command_socket(&self.lxcpath, &vmid.to_string()));
        fs::read_to_string("/proc/net/unix")
            .unwrap_or_default()
            .lines()
            .any(|l| l.ends_with(&want))
    }

    fn monitor(&self, vmid: u32) -> Option<Arc<Monitor>> {
        self.monitors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&vmid)
            .cloned()
    }

    /// Waits until nothing of a stopping CT runs: its command socket is closed (LXC has
    /// removed its cgroups by then) and, when this stand-in started it, its `lxc-start`
    /// has exited and been reaped.
    pub fn wait_exited(&self, vmid: u32) -> Result<(), String> {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while self.running(vmid) {
            if Instant::now() > deadline {
                return Err("container did not stop".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(m) = self.monitor(vmid) {
            if !m.wait(deadline) {
                return Err("container did not stop".into());
            }
            let mut monitors = self.monitors.lock().unwrap_or_else(|p| p.into_inner());
            if monitors.get(&vmid).is_some_and(|n| Arc::ptr_eq(n, &m)) {
                monitors.remove(&vmid);
            }
        }
        Ok(())
    }

    /// Writes the config and starts `lxc-start -F` in its own session with stdout to
    /// /dev/null (as systemd's pve-container@ unit does), then waits for RUNNING.
    pub fn start(&self, vmid: u32, config: &str) -> Result<(), String> {
        // The previous run's lxc-start may still be finishing.
        self.wait_exited(vmid)?;
        let dir = self.lxcpath.join(vmid.to_string());
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        fs::write(dir.join("config"), config).map_err(|e| format!("writing LXC config: {e}"))?;
        fs::create_dir_all(&self.logdir).map_err(|e| e.to_string())?;
        let log = self.logdir.join(format!("{vmid}.log"));
        let mut cmd = self.tool("lxc-start", vmid);
        // -C: close fds lxc-start would inherit from the stand-in.
        cmd.arg("-F")
            .arg("-C")
            .arg("-o")
            .arg(&log)
            .arg("-l")
            .arg("INFO")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: setsid is async-signal-safe; it detaches lxc-start from our session so a
        // signal to the stand-in's process group does not reach the container.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| format!("lxc-start: {e}"))?;
        let monitor = Arc::new(Monitor::default());
        self.monitors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(vmid, monitor.clone());
        // The reaper: lxc-start exits when the CT has stopped and LXC has cleaned up.
        let reaped = monitor.clone();
        std::thread::spawn(move || {
            let _ = child.wait();
            *reaped.exited.lock().unwrap_or_else(|p| p.into_inner()) = true;
            reaped.cond.notify_all();
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.info(vmid).running {
                return Ok(());
            }
            let exited = monitor.is_exited();
            if exited || Instant::now() > deadline {
                if !exited {
                    let _ = run(self.tool("lxc-stop", vmid).arg("-k"));
                }
                self.wait_exited(vmid)?;
                let tail = fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().filter(|l| l.contains("ERROR")).collect();
                return Err(format!(
                    "startup for container '{vmid}' failed{}",
                    tail.last().map(|l| format!(": {l}")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `lxc-stop` (`-k`, or `-t TIMEOUT` for a shutdown), then waits until the CT's
    /// `lxc-start` is gone, as PVE's `vm_stop` waits for the command socket to close.
    pub fn stop(&self, vmid: u32, timeout: Option<u64>) -> Result<(), String> {
        let mut cmd = self.tool("lxc-stop", vmid);
        match timeout {
            Some(t) => cmd.arg("-t").arg(t.to_string()),
            None => cmd.arg("-k"),
        };
        if let Err(e) = run(&mut cmd) {
            // It may have stopped by itself meanwhile; only a CT still running is an error.
            if self.running(vmid) {
                return Err(e);
            }
        }
        self.wait_exited(vmid)
    }

    /// Removes what start wrote (PVE's destroy does the same for /var/lib/lxc/VMID).
    /// Destroy calls it after `wait_exited`, so no `lxc-start` still uses the directory.
    pub fn remove(&self, vmid: u32) {
        let _ = fs::remove_dir_all(self.lxcpath.join(vmid.to_string()));
    }
}

#[cfg(test)]
mod tests;
