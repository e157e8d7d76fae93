//! The `pve` backend under test: a private `pve-sim` (the schema-checked
//! PVE stand-in, `tests/pve-sim`) per test, and the `LXCRI_*` environment
//! that points lxcri's shims at it.
//!
//! `LXCRI_E2E_BACKEND=pve` makes every [`crate::Containerd`] start one, so
//! the whole suite runs on the pve backend. Dropping it stops what CTs are
//! left, stops the stand-in (its own process only) and fails the test if
//! any request lxcri sent was invalid against PVE's schema.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::containerd::bin_dir;
use crate::unique_name;

/// The backend `LXCRI_E2E_BACKEND` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Lxc,
    Pve,
}

/// `LXCRI_E2E_BACKEND`: `lxc` (default) or `pve`.
pub fn backend() -> BackendKind {
    match std::env::var("LXCRI_E2E_BACKEND").as_deref() {
        Ok("pve") => BackendKind::Pve,
        Ok("lxc") | Ok("") | Err(_) => BackendKind::Lxc,
        Ok(other) => panic!("LXCRI_E2E_BACKEND: unknown backend {other:?} (use lxc, pve)"),
    }
}

/// The node name of every stand-in (each is its own one-node cluster).
pub const NODE: &str = "e2e-node";
/// The API token of every stand-in.
pub const TOKEN_ID: &str = "lxcri@pve!e2e";
/// The template lxcri creates CTs from, as configured by default.
pub const TEMPLATE: &str = "lxcri-empty.tar.gz";

/// The description (notes) of a CT config, as lxcri itself reads it.
pub fn description(config: &str) -> String {
    lxcri::pve::config::PveConfigFile::parse(config)
        .map(|f| f.description())
        .unwrap_or_default()
}

/// A running `pve-sim` with its data dir.
pub struct PveSim {
    child: Option<Child>,
    dir: PathBuf,
    pub url: String,
    pub fingerprint: String,
    pub token_id: String,
    secret: String,
    /// VMIDs of this stand-in's CTs: disjoint from every other stand-in of
    /// the test process, as LXC's cgroup `lxc/VMID` is one per host.
    pub vmid_range: (u32, u32),
    /// Settings that replace what [`PveSim::env`] gives (a wrong
    /// fingerprint, a bad token...).
    pub env_overrides: Vec<(String, String)>,
}

/// A VMID range no other stand-in of this process has, and unlikely to
/// meet one of a concurrent test process (a slot per pid).
fn private_vmid_range() -> (u32, u32) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % 64;
    let slot = (std::process::id() % 4000) * 64 + n;
    let start = 1_000_000 + slot * 100;
    (start, start + 99)
}

impl PveSim {
    /// A stand-in whose token holds exactly the role docs/operations.md
    /// documents.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// The documented role, and extra command line options (e.g.
    /// `--lxc-version 7`).
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_with_user_cfg(&crate::pve_acl::documented_user_cfg(TOKEN_ID), extra)
    }

    /// A stand-in whose `etc/pve/user.cfg` is `user_cfg` (the token is
    /// [`TOKEN_ID`]).
    pub fn start_with_user_cfg(user_cfg: &str, extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lxcri-e2e-pve.")
            .tempdir()
            .expect("temp dir for pve-sim")
            .keep();
        let secret = unique_name("secret");
        let token_id = TOKEN_ID.to_string();
        fs::create_dir_all(dir.join("etc/pve")).expect("etc/pve");
        fs::write(dir.join("etc/pve/user.cfg"), user_cfg).expect("user.cfg");
        let template_dir = dir.join("storage/local/template/cache");
        fs::create_dir_all(&template_dir).expect("template dir");
        let status = Command::new("tar")
            .arg("-czf")
            .arg(template_dir.join(TEMPLATE))
            .args(["-T", "/dev/null"])
            .status()
            .expect("tar");
        assert!(status.success(), "making the empty template");
        let bin = bin_dir().join("pve-sim");
        let mut child = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0", "--node", NODE, "--token"])
            .arg(format!("{token_id}={secret}"))
            .arg("--data-dir")
            .arg(&dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(
                fs::File::create(dir.join("pve-sim.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {} ({e}): run `cargo build --workspace` first",
                    bin.display()
                )
            });
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut fingerprint = String::new();
        let mut listening = String::new();
        out.read_line(&mut fingerprint).expect("pve-sim line 1");
        out.read_line(&mut listening).expect("pve-sim line 2");
        let url = listening
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("pve-sim said {listening:?}"))
            .to_string();
        // Keep draining stdout so the stand-in never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while out.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        fs::write(dir.join("token-secret"), &secret).expect("secret file");
        Self {
            child: Some(child),
            dir,
            url,
            fingerprint: fingerprint.trim().to_string(),
            token_id,
            secret,
            vmid_range: private_vmid_range(),
            env_overrides: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The token secret (tests check it never shows up in a log).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn secret_file(&self) -> PathBuf {
        self.dir.join("token-secret")
    }

    pub fn lxcpath(&self) -> PathBuf {
        self.dir.join("var/lib/lxc")
    }

    pub fn config_file(&self, vmid: u32) -> PathBuf {
        self.dir.join(format!("etc/pve/lxc/{vmid}.conf"))
    }

    /// Where lxcri's shims keep the warm pool of this stand-in's node.
    pub fn warm_pool_dir(&self) -> PathBuf {
        lxcri::runtime::pve::pool_dir(
            &lxcri::config::Config::default().runtime_root,
            NODE,
            &self.dir.join("etc/pve"),
        )
    }

    /// The `LXCRI_*` variables that make a shim use this stand-in.
    pub fn env(&self) -> Vec<(String, String)> {
        let d = self.dir.display();
        [
            ("LXCRI_BACKEND", "pve".to_string()),
            ("LXCRI_PVE_URL", self.url.clone()),
            ("LXCRI_PVE_NODE", NODE.to_string()),
            ("LXCRI_PVE_TOKEN_ID", self.token_id.clone()),
            (
                "LXCRI_PVE_TOKEN_SECRET_FILE",
                self.secret_file().display().to_string(),
            ),
            ("LXCRI_PVE_FINGERPRINT", self.fingerprint.clone()),
            ("LXCRI_PVE_CONFIG_DIR", format!("{d}/etc/pve")),
            ("LXCRI_PVE_LXCPATH", format!("{d}/var/lib/lxc")),
            ("LXCRI_PVE_LOCK_DIR", format!("{d}/run/lock/lxc")),
            ("LXCRI_PVE_RUN_DIR", format!("{d}/run/pve")),
            ("LXCRI_PVE_STORAGE", "local-zfs".to_string()),
            (
                "LXCRI_PVE_VMID_RANGE",
                format!("{}-{}", self.vmid_range.0, self.vmid_range.1),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .filter(|(k, _)| !self.env_overrides.iter().any(|(o, _)| o == k))
        .chain(self.env_overrides.iter().cloned())
        .collect()
    }

    /// Overrides one `LXCRI_*` variable of [`PveSim::env`].
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env_overrides.retain(|(k, _)| k != key);
        self.env_overrides
            .push((key.to_string(), value.to_string()));
    }

    /// The stand-in's `etc/pve/user.cfg`.
    pub fn user_cfg(&self) -> String {
        fs::read_to_string(self.dir.join("etc/pve/user.cfg")).unwrap_or_default()
    }

    /// Replaces `etc/pve/user.cfg` (atomically: the stand-in re-reads it).
    pub fn set_user_cfg(&self, text: &str) {
        let tmp = self.dir.join("etc/pve/user.cfg.tmp");
        fs::write(&tmp, text).expect("user.cfg.tmp");
        fs::rename(&tmp, self.dir.join("etc/pve/user.cfg")).expect("user.cfg");
    }

    /// Takes the node's cluster quorum away until the guard is dropped: the
    /// stand-in's `etc/pve/local` gets mode 0555, as pmxcfs shows it
    /// without quorum (see docs/pve-sim.md).
    pub fn lose_quorum(&self) -> QuorumLoss<'_> {
        set_mode(&self.dir.join("etc/pve/local"), 0o555);
        QuorumLoss { sim: self }
    }

    /// Sets (`Some`) or clears PVE's `lock` of CT `vmid`, as vzdump or
    /// `pct snapshot` do: the `lock:` line of its config.
    pub fn set_lock(&self, vmid: u32, lock: Option<&str>) {
        let path = self.config_file(vmid);
        let text = fs::read_to_string(&path).expect("CT config");
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with("lock:"))
            .map(str::to_string)
            .collect();
        if let Some(l) = lock {
            // Keys are sorted in PVE's file; `lock` goes before the next key.
            let at = lines
                .iter()
                .position(|k| !k.starts_with('#') && k.as_str() > "lock:")
                .unwrap_or(lines.len());
            lines.insert(at, format!("lock: {l}"));
        }
        let tmp = path.with_extension("conf.tmp");
        fs::write(&tmp, lines.join("\n") + "\n").expect("CT config tmp");
        fs::rename(&tmp, &path).expect("CT config");
    }

    /// The VMIDs that have a config now.
    pub fn vmids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = fs::read_dir(self.dir.join("etc/pve/lxc"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".conf")?.parse().ok())
            .collect();
        ids.sort();
        ids
    }

    /// The CT config text of the CT whose description names `ns/id`.
    pub fn ct_of(&self, namespace: &str, id: &str) -> Option<(u32, String)> {
        self.vmids().into_iter().find_map(|vmid| {
            let text = fs::read_to_string(self.config_file(vmid)).ok()?;
            let description = description(&text);
            let has = |line: String| description.lines().any(|l| l == line);
            let ours = has(format!("- container: {id}"))
                && has(format!("- containerd namespace: {namespace}"));
            ours.then_some((vmid, text))
        })
    }

    /// Every request the stand-in logged, in order.
    pub fn requests(&self) -> Vec<Value> {
        fs::read_to_string(self.dir.join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Requests that failed the schema check.
    pub fn invalid_requests(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.get("valid") != Some(&Value::Bool(true)))
            .collect()
    }

    /// Arms a fault (see docs/pve-sim.md): `json` is the fault's body.
    pub fn fault(&self, json: &str) {
        // The admin endpoint is outside the PVE API and on loopback; the
        // certificate is the one whose fingerprint lxcri pins.
        let out = Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
            .args(["-H", "Content-Type: application/json", "--data", json])
            .arg(format!("{}/_sim/faults", self.url))
            .output()
            .expect("curl");
        let code = String::from_utf8_lossy(&out.stdout);
        assert!(code.starts_with('2'), "arming fault {json}: HTTP {code}");
    }

    /// Disarms every fault (`DELETE /_sim/faults`).
    pub fn clear_faults(&self) {
        let out = Command::new("curl")
            .args([
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "DELETE",
            ])
            .arg(format!("{}/_sim/faults", self.url))
            .output()
            .expect("curl");
        let code = String::from_utf8_lossy(&out.stdout);
        assert!(code.starts_with('2'), "clearing faults: HTTP {code}");
    }

    /// Every VMID a create was made for on behalf of `namespace/id`
    /// (from the request log: the description names the container).
    pub fn vmids_of(&self, namespace: &str, id: &str) -> Vec<u32> {
        let container = format!("- container: {id}\n");
        let ns = format!("- containerd namespace: {namespace}\n");
        let mut ids: Vec<u32> = self
            .requests()
            .iter()
            .filter(|r| r["method"] == "POST" && r["template"] == "/nodes/{node}/lxc")
            // A refused create made nothing, and its VMID may be another
            // container's: a create that met a VMID taken meanwhile ("CT N
            // already exists") names the CT of the container that took it.
            .filter(|r| r["status"] == 200)
            .filter(|r| {
                let d = r["params"]["description"].as_str().unwrap_or("");
                d.contains(&container) && d.contains(&ns)
            })
            .filter_map(|r| {
                let v = &r["params"]["vmid"];
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .and_then(|n| u32::try_from(n).ok())
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// What is left of CT `vmid`: config, volumes, LXC dir, cgroups.
    pub fn leftovers_of_ct(&self, vmid: u32) -> Vec<String> {
        let mut found = Vec::new();
        if self.config_file(vmid).exists() {
            found.push(format!("CT config {}", self.config_file(vmid).display()));
        }
        found.extend(self.volumes(&format!("-{vmid}-disk-")));
        let lxc_dir = self.lxcpath().join(vmid.to_string());
        if lxc_dir.exists() {
            found.push(format!("LXC container dir {}", lxc_dir.display()));
        }
        for cg in crate::cleanup::ct_cgroups(vmid) {
            found.push(format!("cgroup {}", cg.display()));
        }
        found
    }

    /// What is left of any CT: configs, volumes, LXC dirs, and the cgroups
    /// of every VMID the log names.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found: Vec<String> = self
            .vmids()
            .into_iter()
            .chain(self.started_vmids())
            .flat_map(|vmid| self.leftovers_of_ct(vmid))
            .collect();
        found.extend(self.volumes("-disk-"));
        for e in fs::read_dir(self.lxcpath()).into_iter().flatten().flatten() {
            // PVE's pre-start hook keeps its staging directory for mounts.
            if e.file_name() != ".pve-staged-mounts" {
                found.push(format!("LXC container dir {}", e.path().display()));
            }
        }
        found.sort();
        found.dedup();
        found
    }

    /// CT volumes (on any storage) whose name contains `tag`.
    fn volumes(&self, tag: &str) -> Vec<String> {
        let storages = fs::read_dir(self.dir.join("storage"))
            .into_iter()
            .flatten()
            .flatten();
        storages
            .flat_map(|s| fs::read_dir(s.path()).into_iter().flatten().flatten())
            .filter(|v| v.file_name().to_string_lossy().contains(tag))
            .map(|v| format!("volume {}", v.path().display()))
            .collect()
    }

    /// Every VMID a request of the log was about.
    fn started_vmids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .requests()
            .iter()
            .filter_map(|r| {
                let rest = r["path"].as_str()?.split("/lxc/").nth(1)?;
                rest.split('/').next()?.parse().ok()
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// What is left of every CT created for `namespace/id`.
    pub fn leftovers_of(&self, namespace: &str, id: &str) -> Vec<String> {
        self.vmids_of(namespace, id)
            .into_iter()
            .flat_map(|vmid| self.leftovers_of_ct(vmid))
            .collect()
    }

    /// The stand-in's log tail and the LXC configs it generated (with
    /// lxcri's fragments), for a failed test.
    fn print_diagnostics(&self) {
        let log = fs::read_to_string(self.dir.join("pve-sim.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!("--- pve-sim log (tail) ---");
        for l in tail.iter().rev() {
            eprintln!("{l}");
        }
        eprintln!("--- pve-sim requests (tail) ---");
        let requests = self.requests();
        for r in requests.iter().skip(requests.len().saturating_sub(30)) {
            eprintln!(
                "{} {} {} {} -> {} in {} ms",
                r["ts"],
                r["method"],
                r["path"],
                if r["valid"] == true { "" } else { "INVALID" },
                r["status"],
                r["duration_ms"]
            );
        }
        for e in fs::read_dir(self.lxcpath()).into_iter().flatten().flatten() {
            if e.file_name() == ".pve-staged-mounts" {
                continue;
            }
            let config = fs::read_to_string(e.path().join("config")).unwrap_or_default();
            eprintln!("--- {}/config ---\n{config}", e.path().display());
            for include in config
                .lines()
                .filter_map(|l| l.strip_prefix("lxc.include = "))
            {
                if include.starts_with("/usr/share") {
                    continue;
                }
                let body = fs::read_to_string(include).unwrap_or_else(|e| format!("({e})"));
                eprintln!("--- {include} ---\n{body}");
            }
        }
        for l in fs::read_dir(self.dir.join("var/log/lxc"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let body = fs::read_to_string(l.path()).unwrap_or_default();
            let errors: Vec<&str> = body.lines().filter(|l| l.contains("ERROR")).collect();
            eprintln!(
                "--- {} (errors) ---\n{}",
                l.path().display(),
                errors.join("\n")
            );
        }
    }

    /// Stops every CT left (only this stand-in's lxcpath).
    fn stop_cts(&self) -> Vec<String> {
        let mut stopped = Vec::new();
        for e in fs::read_dir(self.lxcpath()).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let out = Command::new("lxc-stop")
                .arg("-P")
                .arg(self.lxcpath())
                .args(["-n", &name, "-k"])
                .output();
            if out.map(|o| o.status.success()).unwrap_or(false) {
                stopped.push(format!("CT {name}"));
            }
        }
        stopped
    }
}

impl Drop for PveSim {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_diagnostics();
        }
        let stopped = self.stop_cts();
        if !stopped.is_empty() {
            eprintln!("pve-sim cleanup stopped: {}", stopped.join(", "));
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let invalid = self.invalid_requests();
        let log = fs::read_to_string(self.dir.join("pve-sim.log")).unwrap_or_default();
        for m in crate::cleanup::unmount_under(std::slice::from_ref(&self.dir)) {
            eprintln!("pve-sim cleanup: unmounted {}", m.display());
        }
        let _ = fs::remove_dir_all(&self.dir);
        if !invalid.is_empty() && !std::thread::panicking() {
            panic!(
                "lxcri sent requests PVE's schema refuses:\n{}\npve-sim log:\n{log}",
                invalid
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

/// A node without quorum; dropping it gives the quorum back, also when a
/// test fails, so the cleanup can destroy CTs.
pub struct QuorumLoss<'a> {
    sim: &'a PveSim,
}

impl Drop for QuorumLoss<'_> {
    fn drop(&mut self) {
        set_mode(&self.sim.dir.join("etc/pve/local"), 0o755);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}
