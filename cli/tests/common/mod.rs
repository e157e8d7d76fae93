//! What the tests against the PVE stand-in share: starting `pve-sim` (a
//! workspace binary, built by `cargo build --workspace` before the tests)
//! and running `lxcri` with nothing but a given config file.

#![allow(dead_code)] // each test file uses a part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

pub const TOKEN_ID: &str = "lxcri@pve!check";
pub const SECRET: &str = "5e3c0d2a-check-secret-never-printed";
pub const NODE: &str = "pve1";

/// `pve-sim` sits next to this package's binaries in the workspace target
/// dir (`target/debug/deps/<test>` -> `target/debug/pve-sim`);
/// `CARGO_BIN_EXE_*` only covers this package's own binaries.
pub fn pve_sim_binary() -> PathBuf {
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
pub struct Sim {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    pub fingerprint: String,
    pub url: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the stand-in on `data_dir`. `user_cfg` becomes its
/// `etc/pve/user.cfg` (PVE's users, tokens, roles and ACLs); without one the
/// token may do everything (Administrator on `/`).
pub fn start_sim(data_dir: &Path, user_cfg: Option<&str>) -> Sim {
    if let Some(text) = user_cfg {
        let etc = data_dir.join("etc/pve");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("user.cfg"), text).unwrap();
    }
    let mut cmd = Command::new(pve_sim_binary());
    cmd.args(["--listen", "127.0.0.1:0", "--node", NODE]);
    let mut child = cmd
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

/// The token's secret file under `dir`.
pub fn secret_file(dir: &Path) -> PathBuf {
    let path = dir.join("token");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    path
}

/// `lxcri --config CONFIG ARGS...`, with no `LXCRI_*` variable of the
/// test's environment: only the file configures the run.
pub fn lxcri(config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lxcri"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LXCRI_") {
            cmd.env_remove(name);
        }
    }
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("running lxcri")
}

/// Asserts every request the stand-in got matched PVE's schema.
pub fn assert_requests_valid(data_dir: &Path) {
    let log = std::fs::read_to_string(data_dir.join("requests.jsonl")).unwrap();
    for line in log.lines() {
        let req: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(req["valid"], true, "invalid request: {line}");
    }
}

/// Runs `f` on a thread of its own in a new network namespace with its
/// loopback up; what `f` starts (the stand-in, `lxcri`) runs there too.
/// `lxcri gc` judges every NIC marked as lxcri's in its namespace against
/// the test's runtime root: here it finds none of this machine's, which it
/// would take for orphans. Without the privilege for a namespace (not
/// root) `f` runs where the test does, where gc could not remove a link.
pub fn in_own_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let joined = std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare(2) with CLONE_NEWNET moves only this thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
                lxcri::network::netlink::Netlink::open()
                    .and_then(|mut nl| nl.set_up("lo"))
                    .expect("loopback up in the test's network namespace");
            }
            f()
        })
        .join()
    });
    joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
