//! `lxcri check` against the PVE stand-in: starts `pve-sim` (a workspace
//! binary, built by `cargo build --workspace` before the tests) with a token
//! that lacks VM.Allocate, and reads `lxcri check --json`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;

const TOKEN_ID: &str = "lxcri@pve!check";
const SECRET: &str = "5e3c0d2a-check-secret-never-printed";
const NODE: &str = "pve1";

/// Every privilege lxcri asks for except VM.Allocate.
const PRIVS: &str = "VM.Config.Options,VM.Config.CPU,VM.Config.Memory,VM.Config.Network,\
VM.Config.Disk,VM.PowerMgmt,VM.Audit,Datastore.AllocateSpace,Sys.Audit";

/// `pve-sim` sits next to this package's binaries in the workspace target
/// dir (`target/debug/deps/<test>` -> `target/debug/pve-sim`);
/// `CARGO_BIN_EXE_*` only covers this package's own binaries.
fn pve_sim_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = dir.join("pve-sim");
    assert!(
        bin.is_file(),
        "{} not found: build it first with `cargo build --workspace` (scripts/test does)",
        bin.display()
    );
    bin
}

/// The running stand-in; kills exactly the process it started.
struct Sim {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    fingerprint: String,
    url: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sim(data_dir: &Path) -> Sim {
    let mut child = Command::new(pve_sim_binary())
        .args(["--listen", "127.0.0.1:0", "--node", NODE, "--privs", PRIVS])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--token")
        .arg(format!("{TOKEN_ID}={SECRET}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting pve-sim");
    let stdout = child.stdout.take().expect("piped stdout");
    // Guard first, so a failed read below still kills the child.
    let mut sim = Sim {
        child,
        _stdout: BufReader::new(stdout),
        fingerprint: String::new(),
        url: String::new(),
    };
    let mut line = String::new();
    sim._stdout.read_line(&mut line).expect("fingerprint line");
    sim.fingerprint = line.trim().to_string();
    line.clear();
    sim._stdout.read_line(&mut line).expect("listening line");
    sim.url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected pve-sim line {line:?}"))
        .to_string();
    assert_eq!(sim.fingerprint.len(), 95, "{:?}", sim.fingerprint);
    sim
}

/// Writes the config and runs `lxcri --config F check --json`; returns the
/// parsed JSON and the raw stdout + stderr.
fn check(dir: &Path, url: &str, fingerprint: &str) -> (Value, String) {
    let secret_file = dir.join("token");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let config = dir.join("lxcri.toml");
    let config_dir = dir.join("sim/etc/pve");
    std::fs::write(
        &config,
        format!(
            "[pve]\nurl = {url:?}\nnode = {NODE:?}\ntoken_id = {TOKEN_ID:?}\n\
             token_secret_file = {:?}\nfingerprint = {fingerprint:?}\nconfig_dir = {:?}\n",
            secret_file.display().to_string(),
            config_dir.display().to_string(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lxcri"));
    // Only the file above may configure this run.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LXCRI_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd
        .arg("--config")
        .arg(&config)
        .args(["check", "--json"])
        .output()
        .expect("running lxcri check");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    (json, all)
}

fn find<'a>(report: &'a Value, name: &str) -> Option<(&'a str, &'a str)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| (c["status"].as_str().unwrap(), c["detail"].as_str().unwrap()))
}

fn host_has_bridge(name: &str) -> bool {
    Path::new("/sys/class/net")
        .join(name)
        .join("bridge")
        .is_dir()
}

#[test]
fn check_reports_pve_reachability_privileges_storage_and_bridge() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("sim");
    std::fs::create_dir(&data).unwrap();
    let sim = start_sim(&data);

    let (report, raw) = check(tmp.path(), &sim.url, &sim.fingerprint);
    let get = |name| find(&report, name).unwrap_or_else(|| panic!("no {name} in {raw}"));
    let (status, detail) = get("config");
    assert_eq!(status, "ok", "{detail}");
    let (status, detail) = get("pve-api");
    assert_eq!(status, "ok", "{detail}");
    assert!(detail.contains("PVE 9.1.3"), "{detail}");
    assert_eq!(get("pve-tls").0, "ok");
    assert_eq!(get("pve-token").0, "ok");
    let (status, detail) = get("pve-privileges");
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("VM.Allocate on /vms"), "{detail}");
    assert!(!detail.contains("VM.Audit"), "{detail}");
    let (status, detail) = get("pve-storage");
    assert_eq!(status, "ok", "{detail}");
    assert!(detail.contains("local-zfs"), "{detail}");
    // The stand-in lists the host's bridges; CI hosts rarely have vmbr0.
    let (status, detail) = get("pve-bridge");
    if host_has_bridge("vmbr0") {
        assert_eq!(status, "ok", "{detail}");
    } else {
        assert_eq!(status, "fail", "{detail}");
        assert!(detail.contains("vmbr0 not found"), "{detail}");
    }
    assert!(get("pve-config-dir").0 == "ok" || get("pve-config-dir").0 == "warn");
    assert_eq!(report["ok"], false);
    assert!(!raw.contains(SECRET), "the token secret leaked: {raw}");
    let log = std::fs::read_to_string(data.join("requests.jsonl")).unwrap();
    for line in log.lines() {
        let req: Value = serde_json::from_str(line).unwrap();
        assert_eq!(req["valid"], true, "invalid request: {line}");
    }
}

#[test]
fn wrong_fingerprint_fails_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("sim");
    std::fs::create_dir(&data).unwrap();
    let sim = start_sim(&data);
    let wrong = vec!["00"; 32].join(":");

    let (report, raw) = check(tmp.path(), &sim.url, &wrong);
    let (status, detail) = find(&report, "pve-tls").unwrap_or_else(|| panic!("{raw}"));
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains(&wrong) && detail.contains(&sim.fingerprint),
        "{detail}"
    );
    assert!(find(&report, "pve-privileges").is_none(), "{raw}");
    assert!(!raw.contains(SECRET), "the token secret leaked: {raw}");
}
