//! A private containerd 1.6 per test: its own root, state, sockets, config
//! and a unique namespace, so tests run in parallel with each other and
//! with any system containerd. `ctr` is driven from [`ctr`].

mod ctr;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cleanup::Scope;
use crate::cmd;
use crate::cri::node::{cri_config, CriNode, CRI_NAMESPACE};
use crate::pve::{self, BackendKind, PveSim};
use crate::{cleanup, image, unique_name, Runtime, LXCRI_SHIM};

/// A running private containerd. Dropping it removes every task and
/// container of its namespace, stops it and cleans up after it.
pub struct Containerd {
    pub(crate) dir: PathBuf,
    pub(crate) namespace: String,
    child: Option<Child>,
    bin_dir: PathBuf,
    next_id: AtomicU32,
    pub(crate) ids: Mutex<Vec<String>>,
    /// The PVE stand-in lxcri's shims talk to (`LXCRI_E2E_BACKEND=pve`).
    pve: Option<PveSim>,
    /// With the CRI plugin on ([`Containerd::start_cri`]).
    pub(crate) cri: Option<CriNode>,
    /// Added to containerd's environment ([`Containerd::start_with_env`]).
    env: Vec<(String, String)>,
    /// containerd's own `/v1/metrics` listener
    /// ([`Containerd::start_with_metrics`]).
    metrics_address: Option<String>,
}

/// Where the workspace's binaries are: `LXCRI_E2E_BIN_DIR`, else
/// `$CARGO_TARGET_DIR/debug`, else `<workspace>/target/debug`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LXCRI_E2E_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                image::workspace_root().join(t)
            }
        })
        .unwrap_or_else(|| image::workspace_root().join("target"));
    target.join("debug")
}

/// The (major, minor) version of the `containerd` on `PATH`, the one the
/// tests start: CI has Debian's 1.6; the suite also runs by hand against
/// 1.7 and 2.x builds put first on `PATH` (docs/testing.md), and a few
/// expectations follow what containerd itself changed between them.
pub fn containerd_version() -> (u32, u32) {
    let (major, minor, _) = containerd_release();
    (major, minor)
}

/// The (major, minor, patch) release of the `containerd` on `PATH`, for the
/// few fixes containerd backported into patch releases.
pub fn containerd_release() -> (u32, u32, u32) {
    static VERSION: OnceLock<(u32, u32, u32)> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let out = Command::new("containerd")
            .arg("--version")
            .output()
            .expect("run containerd --version");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        parse_version(&text).unwrap_or_else(|| panic!("containerd --version: {text:?}"))
    })
}

/// Whether the `runc` on `PATH` (the one containerd's runc shim runs) is
/// 1.2 or later: Debian 12's is 1.1.5, which ignores what 1.2 added (a
/// mount's `uidMappings`, `process.scheduler`, `process.ioPriority`,
/// `linux.personality`, user namespaces joined without mappings).
pub fn runc_is_1_2_or_later() -> bool {
    runc_version() >= (1, 2, 0)
}

/// The `runc` on `PATH`'s (major, minor, patch); (0, 0, 0) when it does
/// not say.
pub fn runc_version() -> (u32, u32, u32) {
    let out = Command::new("runc").arg("--version").output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let version = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("runc version "))
        .unwrap_or("");
    let mut parts = version
        .split(['.', '+', '-', '~'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

/// `containerd github.com/containerd/containerd 1.6.20~ds1 ...` -> (1, 6,
/// 20): the third field's first three numbers (a missing patch is 0).
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let version = text.split_whitespace().nth(2)?;
    let version = version.strip_prefix('v').unwrap_or(version);
    let mut numbers = version.split(|c: char| !c.is_ascii_digit());
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next()?.parse().ok()?;
    let patch = numbers.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    Some((major, minor, patch))
}

impl Containerd {
    /// Starts containerd and waits until `ctr version` answers.
    pub fn start() -> Self {
        let pve = (pve::backend() == BackendKind::Pve).then(PveSim::start);
        Self::start_with(pve, false)
    }

    /// Starts containerd with `env` added to its environment (so to every
    /// shim's), e.g. `LXCRI_CONFIG`.
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        Self::start_env_metrics(env, None)
    }

    fn start_env_metrics(env: &[(&str, &str)], metrics_address: Option<String>) -> Self {
        let pve = (pve::backend() == BackendKind::Pve).then(PveSim::start);
        let mut ctd = Self::build(pve, false);
        ctd.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if metrics_address.is_some() {
            ctd.metrics_address = metrics_address;
            fs::write(ctd.config_path(), ctd.config_toml()).expect("write containerd config");
        }
        ctd.spawn();
        ctd
    }

    /// As [`Containerd::start_with_env`], with containerd's own metrics
    /// endpoint on a free loopback port ([`Containerd::scrape_metrics`]).
    pub fn start_with_metrics(env: &[(&str, &str)]) -> Self {
        let address = format!("127.0.0.1:{}", crate::prometheus::free_port());
        Self::start_env_metrics(env, Some(address))
    }

    /// containerd's `/v1/metrics` (its cgroups task monitor asks every
    /// task's shim for `Stats`), or why it did not answer.
    pub fn scrape_metrics(&self) -> Result<String, String> {
        let address = self
            .metrics_address
            .as_ref()
            .ok_or("containerd was started without a metrics address")?;
        let out = cmd::run(
            Command::new("curl").args(["-sf", &format!("http://{address}/v1/metrics")]),
            Duration::from_secs(30),
        );
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(format!("curl: {out}\n{}", self.log_tail(30)))
        }
    }

    /// Starts containerd with lxcri on the pve backend against `sim`,
    /// whatever `LXCRI_E2E_BACKEND` says (for the PVE-side tests).
    pub fn start_pve(sim: PveSim) -> Self {
        Self::start_with(Some(sim), false)
    }

    /// As [`Containerd::start_pve`], with `env` added to containerd's (so
    /// every shim's) environment.
    pub fn start_pve_with_env(sim: PveSim, env: &[(&str, &str)]) -> Self {
        let mut ctd = Self::build(Some(sim), false);
        ctd.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ctd.spawn();
        ctd
    }

    /// As [`Containerd::start_cri`], with lxcri on the pve backend against
    /// `sim` whatever `LXCRI_E2E_BACKEND` says.
    pub fn start_cri_pve(sim: PveSim) -> Self {
        let ctd = Self::start_with(Some(sim), true);
        ctd.import_image(&image::pause().archive);
        ctd.import_busybox();
        ctd
    }

    /// Starts containerd with its CRI plugin (namespace `k8s.io`), runtime
    /// handlers `runc` and `lxcri`, a pod network of its own (bridge CNI,
    /// host-local IPAM) and the test images imported. lxcri's backend
    /// follows `LXCRI_E2E_BACKEND`.
    pub fn start_cri() -> Self {
        let pve = (pve::backend() == BackendKind::Pve).then(PveSim::start);
        let ctd = Self::start_with(pve, true);
        ctd.import_image(&image::pause().archive);
        ctd.import_busybox();
        ctd
    }

    fn start_with(pve: Option<PveSim>, cri: bool) -> Self {
        let mut ctd = Self::build(pve, cri);
        ctd.spawn();
        ctd
    }

    /// Everything but the running containerd.
    fn build(pve: Option<PveSim>, cri: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lxcri-e2e.")
            .tempdir()
            .expect("temp dir for containerd")
            .keep();
        let name = unique_name("e2e");
        let (namespace, cri) = if cri {
            let node = CriNode::new(&dir, name);
            (CRI_NAMESPACE.to_string(), Some(node))
        } else {
            (name, None)
        };
        let bin_dir = bin_dir();
        if Runtime::Lxcri.selected() && !bin_dir.join(LXCRI_SHIM).exists() {
            eprintln!(
                "warning: {} not found in {} (run `cargo build --workspace` or set \
                 LXCRI_E2E_BIN_DIR); lxcri runs will fail",
                LXCRI_SHIM,
                bin_dir.display()
            );
        }
        let ctd = Self {
            dir,
            namespace,
            child: None,
            bin_dir,
            next_id: AtomicU32::new(0),
            ids: Mutex::new(Vec::new()),
            pve,
            cri,
            env: Vec::new(),
            metrics_address: None,
        };
        fs::write(ctd.config_path(), ctd.config_toml()).expect("write containerd config");
        fs::write(
            ctd.lxcri_config_path(),
            "# lxcri config of one e2e test (CRI passes it as ConfigPath);\n\
             # LXCRI_* variables in containerd's environment override it\n",
        )
        .expect("write lxcri config");
        ctd
    }

    /// The containerd process's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("containerd runs").id()
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The PVE stand-in, when lxcri runs on the pve backend.
    pub fn pve(&self) -> Option<&PveSim> {
        self.pve.as_ref()
    }

    /// What container `id` left behind: [`cleanup::leftovers`] and, on the
    /// pve backend, its CT (config, volumes, LXC dir, cgroups).
    pub fn leftovers(&self, id: &str) -> Vec<String> {
        let mut found = cleanup::leftovers(&self.namespace, id, &self.bundle(id), &self.socket());
        if let Some(sim) = &self.pve {
            found.extend(sim.leftovers_of(&self.namespace, id));
        }
        found
    }

    /// The gRPC socket (`ctr --address`).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("c.sock")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The temp dir holding everything of this containerd.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// The environment containerd runs with, which its shims inherit: our
    /// binaries first on `PATH`, pve-sim's, the lxcri config of the CRI
    /// handler without options (cri::node::PLAIN_HANDLER), the test's own.
    pub fn shim_env(&self) -> Vec<(String, String)> {
        let path = format!(
            "{}:{}",
            self.bin_dir.display(),
            std::env::var("PATH").unwrap_or_else(|_| {
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
            })
        );
        let mut env = vec![("PATH".to_string(), path)];
        let pve_env = self.pve.as_ref().map(PveSim::env).unwrap_or_default();
        env.extend(
            pve_env
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        if self.cri.is_some() {
            env.push((
                lxcri::config::CONFIG_ENV.to_string(),
                self.lxcri_config_path().display().to_string(),
            ));
        }
        env.extend(self.env.iter().cloned());
        env
    }

    /// The lxcri config file the CRI runtime handler passes as `ConfigPath`
    /// (a test may write settings into it before it runs pods).
    pub fn lxcri_config_path(&self) -> PathBuf {
        self.dir.join("lxcri.toml")
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// The OCI bundle containerd makes for task `id`.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.state()
            .join("io.containerd.runtime.v2.task")
            .join(&self.namespace)
            .join(id)
    }

    fn config_toml(&self) -> String {
        let d = self.dir.display();
        let level = if std::env::var_os("LXCRI_E2E_DEBUG").is_some() {
            "debug"
        } else {
            "info"
        };
        let plugins = match &self.cri {
            None => "# ctr-only tests: the CRI plugin would want its own dirs and network setup\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
                .to_string(),
            Some(node) => cri_config(&node.network, &self.lxcri_config_path()),
        };
        let metrics = self.metrics_address.as_deref().unwrap_or("");
        format!(
            r#"# private containerd of one lxcri e2e test
version = 2
root = "{d}/root"
state = "{d}/state"
{plugins}
[grpc]
  address = "{d}/c.sock"

[ttrpc]
  address = "{d}/c.sock.ttrpc"

[debug]
  address = ""
  level = "{level}"

[metrics]
  address = "{metrics}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

# containerd 2.x runs NRI, whose socket would be the node's
# /var/run/nri/nri.sock for every test's containerd at once (1.6 has no
# such plugin, 1.7 keeps it off).
[plugins."io.containerd.nri.v1.nri"]
  socket_path = "{d}/nri.sock"
"#
        )
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("containerd log file");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(self.config_path())
            .arg("--root")
            .arg(self.root())
            .arg("--state")
            .arg(self.state())
            .arg("--address")
            .arg(self.socket())
            .envs(self.shim_env())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start containerd (apt-get install containerd; scripts/install-deps)");
        self.child = Some(child);
        let ready = cmd::poll(Duration::from_secs(30), || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "containerd exited with {status} before it was ready\n{}",
                    self.log_tail(40)
                );
            }
            self.ctr_timeout(&["version"], Duration::from_secs(5))
                .success()
                .then_some(())
        });
        if ready.is_none() {
            panic!("containerd not ready after 30s\n{}", self.log_tail(40));
        }
    }

    /// Stops containerd: SIGTERM, then SIGKILL after 15 s. Shims and their
    /// containers keep running, as with a real containerd restart.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let exited = cmd::poll(Duration::from_secs(15), || {
                matches!(child.try_wait(), Ok(Some(_))).then_some(())
            });
            if exited.is_none() {
                let _ = child.kill();
            }
        }
        let _ = child.wait();
    }

    /// Stops containerd and starts it again on the same dirs and sockets.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// A new container id, unique within this containerd's namespace
    /// (which is unique on the machine): `<prefix>-<n>`.
    pub fn new_id(&self, prefix: &str) -> String {
        let id = format!("{prefix}-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// Every container id handed out by [`Containerd::new_id`].
    pub fn ids(&self) -> Vec<String> {
        self.ids.lock().unwrap().clone()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(60));
            if let Some(keep) = std::env::var_os("LXCRI_E2E_KEEP_LOGS") {
                let to = Path::new(&keep).join(format!(
                    "{}-{}.log",
                    self.namespace,
                    self.dir.file_name().unwrap_or_default().to_string_lossy()
                ));
                let _ = fs::create_dir_all(&keep);
                match fs::copy(self.log_path(), &to) {
                    Ok(_) => eprintln!("containerd log kept as {}", to.display()),
                    Err(e) => eprintln!("keeping the containerd log: {e}"),
                }
            }
        }
        let alive = matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)));
        if alive {
            self.remove_pods();
            let short = Duration::from_secs(20);
            let tasks = self.ctr_timeout(&["task", "ls", "-q"], short);
            for id in tasks.stdout.split_whitespace() {
                self.remove(id);
            }
            let containers = self.ctr_timeout(&["containers", "ls", "-q"], short);
            for id in containers.stdout.split_whitespace() {
                self.remove(id);
            }
        }
        self.stop();
        // CRI's ids: every one is in containerd's log or a bundle dir.
        let ids = if self.cri.is_some() {
            self.known_ids(false)
        } else {
            self.ids()
        };
        let scope = Scope {
            namespace: &self.namespace,
            ids: self.cri.is_some().then_some(ids.as_slice()),
            cgroup_mark: self.cri.as_ref().map_or(self.namespace.as_str(), |n| {
                n.cgroup_parent.trim_start_matches('/')
            }),
        };
        cleanup::after_containerd(scope, &self.socket(), &self.dir, &ids);
        self.remove_tracked_netns();
        // The CRI node (bridge) goes after every pod is gone.
        self.cri.take();
    }
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_of_debian_and_upstream_builds() {
        let debian =
            "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n";
        assert_eq!(parse_version(debian), Some((1, 6, 20)));
        let v2 = "containerd github.com/containerd/containerd/v2 2.1.5+unknown \n";
        assert_eq!(parse_version(v2), Some((2, 1, 5)));
        let release = "containerd github.com/containerd/containerd v1.7.21 472731909f\n";
        assert_eq!(parse_version(release), Some((1, 7, 21)));
        let no_patch = "containerd github.com/containerd/containerd 2.0 x\n";
        assert_eq!(parse_version(no_patch), Some((2, 0, 0)));
        assert_eq!(parse_version("containerd\n"), None);
    }
}
