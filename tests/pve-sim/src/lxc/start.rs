//! The start itself: pve-container src/PVE/LXC.pm `vm_start` with the
//! `pve-container@VMID` unit it starts (src/pve-container@.service,
//! src/pve-container-debug@.service).

use super::monitor::{Watch, ABORTING, RUNNING, STARTING, STOPPED, STOPPING};
use super::render::{self, Formats, Host, Paths};
use super::{hooks, lxc7, Lxc, Monitor};
use crate::store::CtConfig;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// LXC.pm `monitor_start`: `run_with_timeout(10, ...)` until LXC reports STARTING.
const STARTING_TIMEOUT: Duration = Duration::from_secs(10);
/// PVE waits for RUNNING or a failure without limit once STARTING came; the stand-in
/// gives up after this.
const START_LIMIT: Duration = Duration::from_secs(300);

/// What the state messages said (LXC.pm `monitor_state_change`).
enum Outcome {
    Running,
    /// ABORTING, STOPPING or STOPPED after STARTING.
    Failed,
    /// No STARTING within 10 s (`lxc-start` failed before it, e.g. on its config).
    NoStart,
}

/// A random index below `n` (update_lxc_config's `int(rand(n))`).
fn random_below(n: usize) -> usize {
    let mut b = [0u8; 8];
    let _ = fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    (u64::from_ne_bytes(b) % n.max(1) as u64) as usize
}

/// LXC.pm `print_ct_stderr_log`: each line of the stderr file, without LXC's
/// `lxc-start: VMID: FILE: ` prefix, trailing blanks trimmed.
pub fn stderr_log_lines(text: &str, vmid: u32) -> Vec<String> {
    let prefix = regex::Regex::new(&format!(r"^[ \t]*(?:lxc-start:?\s+{vmid}:?\s*\S+\s*)?"))
        .expect("static regex");
    text.lines()
        .map(|l| {
            prefix
                .replace(l, "")
                .trim_end_matches([' ', '\t'])
                .to_string()
        })
        .collect()
}

impl Lxc {
    /// `DATA/run/pve/ct-VMID.stderr` (`StandardError=file:/run/pve/ct-%i.stderr`).
    pub fn stderr_file(&self, vmid: u32) -> PathBuf {
        self.opts.data_dir.join(format!("run/pve/ct-{vmid}.stderr"))
    }

    /// The stand-in's `common.conf.d/01-pve.conf`.
    /// The hooks' include and the NICs' `script.up` command, for [`Paths`].
    fn render_inputs(&self) -> (PathBuf, String) {
        let script_up = format!("{} --lxcnetaddbr", self.hook_command());
        (self.pve_include(), script_up)
    }

    fn paths<'a>(&'a self, include: &'a Path, script_up: &'a str) -> Paths<'a> {
        Paths {
            lxcpath: &self.lxcpath,
            pve_include: include,
            script_up,
        }
    }

    fn pve_include(&self) -> PathBuf {
        self.opts
            .data_dir
            .join("usr/share/lxc/config/common.conf.d/01-pve.conf")
    }

    /// The command line of PVE's hook scripts (`pve-sim hook ...`).
    fn hook_command(&self) -> String {
        let o = &self.opts;
        let (exe, zfs) = (&o.exe, &o.zfs_storage);
        hooks::command(
            exe,
            &o.data_dir,
            o.schema.as_deref(),
            &o.lxcpath,
            zfs,
            &o.ovsdb,
        )
    }

    fn write_include(&self) -> Result<(), String> {
        let hook = self.hook_command();
        let path = self.pve_include();
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let text = hooks::include_file(&hook);
        if fs::read_to_string(&path).is_ok_and(|t| t == text) {
            return Ok(());
        }
        // Through a temp file and rename: a concurrent lxc-start reading a half-written
        // include would start its CT without PVE's hooks.
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("conf.tmp.{}.{n}", std::process::id()));
        fs::write(&tmp, text).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        fs::rename(&tmp, &path).map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// LXC.pm `update_lxc_config`: `LXCPATH/VMID/config` (and the seccomp rules) made
    /// from the CT's config, at each start and after each config update
    /// (src/PVE/API2/LXC/Config.pm `update_vm`). It fails for what LXC could not be given
    /// (a NIC's bridge that does not exist, an MTU above the bridge's, ...).
    pub fn update_config(
        &self,
        vmid: u32,
        cfg: &CtConfig,
        props: Formats<'_>,
        host: &Host,
    ) -> Result<(), String> {
        let (include, script_up) = self.render_inputs();
        let paths = self.paths(&include, &script_up);
        let rendered = render::render(vmid, cfg, props, host, &paths, &mut random_below)?;
        let dir = self.lxcpath.join(vmid.to_string());
        // update_lxc_config: mkpath "$dir/rootfs", then the config.
        fs::create_dir_all(dir.join("rootfs"))
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        fs::write(dir.join("config"), &rendered.config)
            .map_err(|e| format!("writing LXC config: {e}"))?;
        if let Some((file, rules)) = &rendered.seccomp_rules {
            fs::write(file, rules).map_err(|e| format!("writing {}: {e}", file.display()))?;
        }
        Ok(())
    }

    /// LXC.pm `vm_start` from `update_lxc_config` on; `log` gets the task log lines.
    pub fn start(
        &self,
        vmid: u32,
        cfg: &CtConfig,
        props: Formats<'_>,
        host: &Host,
        debug: bool,
        log: &dyn Fn(String),
    ) -> Result<(), String> {
        // The previous run's lxc-start may still be finishing.
        self.wait_exited(vmid)?;
        self.update_config(vmid, cfg, props, host)?;
        super::nets::check_modelled(cfg, props)?;
        self.write_include()?;
        // vm_start: `unlink "/run/pve/ct-$vmid.stderr"; # systemd does not truncate`.
        let stderr_path = self.stderr_file(vmid);
        if let Some(d) = stderr_path.parent() {
            fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        let _ = fs::remove_file(&stderr_path);
        let mut stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(|e| format!("opening {}: {e}", stderr_path.display()))?;
        let (include, script_up) = self.render_inputs();
        let paths = self.paths(&include, &script_up);
        let refused = self.lxc7_refusal(vmid, cfg, props, host, &paths)?;
        let watch = self.states.watch(&vmid.to_string())?;
        let (outcome, monitor) = match &refused {
            Some(lines) => {
                // What LXC 7's lxc-start prints before it exits (it never runs here).
                let _ = stderr.write_all((lines.join("\n") + "\n").as_bytes());
                (wait_states(&watch, None), None)
            }
            None => {
                let monitor = self.spawn(vmid, stderr, debug)?;
                (wait_states(&watch, Some(&monitor)), Some(monitor))
            }
        };
        drop(watch);
        let print_stderr = || {
            let text = fs::read_to_string(&stderr_path).unwrap_or_default();
            for l in stderr_log_lines(&text, vmid) {
                log(l);
            }
        };
        match outcome {
            Outcome::Running => {
                // vm_start: "if debug is requested, print the log it also when the start
                // succeeded".
                if debug {
                    print_stderr();
                }
                Ok(())
            }
            Outcome::Failed => {
                // PVE reads the file as soon as the state arrives; the stand-in lets
                // lxc-start finish writing first, so the lines are always complete.
                if let Some(m) = monitor {
                    m.wait(Instant::now() + STARTING_TIMEOUT);
                }
                print_stderr();
                Err(format!("startup for container '{vmid}' failed"))
            }
            Outcome::NoStart => {
                // monitor_start: the 10 s timeout only warns; then vm_start goes on to
                // `open_lxc_pid`, whose `lxc-info` fails for a CT that never started.
                log("problem with monitor socket, but continuing anyway: got timeout".into());
                log(String::new());
                if debug {
                    print_stderr();
                }
                self.find_lxc_pid(vmid, refused.is_some(), log).map(|_| ())
            }
        }
    }

    /// With `--lxc-version 7`: the lines LXC 7 would print for this config, judged on
    /// what PVE 9 renders for a cgroup-v2 node (the v1 limit lines this hybrid machine
    /// gets are the stand-in's, not PVE 9's).
    fn lxc7_refusal(
        &self,
        vmid: u32,
        cfg: &CtConfig,
        props: Formats<'_>,
        host: &Host,
        paths: &Paths<'_>,
    ) -> Result<Option<Vec<String>>, String> {
        if self.opts.lxc_version.0 < 7 {
            return Ok(None);
        }
        let v2 = render::render(vmid, cfg, props, &host.as_v2(), paths, &mut random_below)?;
        let files = lxc7::Files {
            read: &lxc7::read_file,
            list: &lxc7::list_dir,
            skip_dir: Path::new(render::LXC_CONFIG_DIR),
        };
        let config = self.lxcpath.join(format!("{vmid}/config"));
        Ok(lxc7::check(&config, &v2.config, vmid, &files))
    }

    /// `ExecStart=/usr/bin/lxc-start -F -n %i` with `StandardOutput=null` and stderr to
    /// the stderr file; the debug unit adds `-o /dev/stderr -l DEBUG`. Without debug the
    /// stand-in keeps LXC's log at `DATA/var/log/lxc/VMID.log` (level DEBUG, where LXC
    /// puts what the hooks print).
    fn spawn(&self, vmid: u32, stderr: fs::File, debug: bool) -> Result<Arc<Monitor>, String> {
        fs::create_dir_all(&self.logdir).map_err(|e| e.to_string())?;
        let log = if debug {
            PathBuf::from("/dev/stderr")
        } else {
            self.logdir.join(format!("{vmid}.log"))
        };
        let mut cmd = self.tool("lxc-start", vmid);
        // -C: close fds lxc-start would inherit from the stand-in.
        cmd.arg("-F")
            .arg("-C")
            .arg("-o")
            .arg(&log)
            .arg("-l")
            .arg("DEBUG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
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
        Ok(monitor)
    }

    /// LXC.pm `find_lxc_pid` (`lxc-info -n VMID -p` through run_command, which puts the
    /// tool's stderr into the task log). `refused`: LXC 7 cannot load the config, so
    /// its lxc-info fails as it does for any unloadable config.
    fn find_lxc_pid(&self, vmid: u32, refused: bool, log: &dyn Fn(String)) -> Result<u32, String> {
        let cmd = format!("lxc-info -n {vmid} -p");
        if refused {
            for l in lxc7::lxc_info_failure(&self.lxcpath, vmid) {
                log(l);
            }
            return Err(format!("command '{cmd}' failed: exit code 1"));
        }
        let out = self
            .tool("lxc-info", vmid)
            .arg("-p")
            .output()
            .map_err(|e| format!("command '{cmd}' failed: {e}"))?;
        for l in String::from_utf8_lossy(&out.stderr).lines() {
            log(l.to_string());
        }
        if !out.status.success() {
            return Err(format!(
                "command '{cmd}' failed: exit code {}",
                out.status.code().unwrap_or(-1)
            ));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("PID:")?.trim().parse().ok())
            .ok_or(format!("unable to get PID for CT {vmid} (not running?)"))
    }
}

/// LXC.pm `monitor_start`/`monitor_state_change`: up to 10 s for STARTING, then until
/// RUNNING (started) or ABORTING/STOPPING/STOPPED (failed).
fn wait_states(watch: &Watch<'_>, monitor: Option<&Arc<Monitor>>) -> Outcome {
    let t0 = Instant::now();
    let mut starting = false;
    let mut exited_at: Option<Instant> = None;
    loop {
        for s in watch.poll() {
            match s {
                STARTING => starting = true,
                RUNNING => return Outcome::Running,
                ABORTING | STOPPING | STOPPED => return Outcome::Failed,
                _ => {}
            }
        }
        if !starting && t0.elapsed() >= STARTING_TIMEOUT {
            return Outcome::NoStart;
        }
        // An lxc-start that died after STARTING without a last state (killed): PVE would
        // wait on; the stand-in calls it failed.
        if starting && monitor.is_some_and(|m| m.is_exited()) {
            let at = *exited_at.get_or_insert_with(Instant::now);
            if at.elapsed() > Duration::from_secs(1) {
                return Outcome::Failed;
            }
        }
        if t0.elapsed() > START_LIMIT {
            return Outcome::Failed;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
