//! `lxcri check` against the PVE stand-in with a token that lacks
//! VM.Allocate: reads `lxcri check --json`.

mod common;

use std::path::Path;

use serde_json::Value;

use common::{lxcri, secret_file, start_sim, NODE, SECRET, TOKEN_ID};

/// user.cfg for the token `lxcri@pve!check`: a role with every privilege
/// lxcri asks for except VM.Allocate, on `/`. It also holds two that lxcri's
/// check does not ask for but its calls need on a real node:
/// `Datastore.Audit` (`/cluster/resources` lists only storages the token may
/// audit, pve-manager PVE/API2/Cluster.pm `resources`) and `SDN.Use`
/// (`/nodes/{node}/network` lists only bridges the token may use or audit,
/// pve-manager PVE/API2/Network.pm `index`).
const USER_CFG: &str = "user:lxcri@pve:1:0::::::\n\
token:lxcri@pve!check:0:0::\n\
role:LxcriNoAllocate:VM.Config.Options,VM.Config.CPU,VM.Config.Memory,VM.Config.Network,\
VM.Config.Disk,VM.PowerMgmt,VM.Audit,Datastore.AllocateSpace,Datastore.Audit,SDN.Use,Sys.Audit:\n\
acl:1:/:lxcri@pve:LxcriNoAllocate:\n";

/// Writes the config and runs `lxcri --config F check --json`; returns the
/// parsed JSON and the raw stdout + stderr.
fn check(dir: &Path, url: &str, fingerprint: &str) -> (Value, String) {
    let secret_file = secret_file(dir);
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
    let out = lxcri(&config, &["check", "--json"]);
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
    let sim = start_sim(&data, Some(USER_CFG));

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
    common::assert_requests_valid(&data);
}

#[test]
fn wrong_fingerprint_fails_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("sim");
    std::fs::create_dir(&data).unwrap();
    let sim = start_sim(&data, Some(USER_CFG));
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
