//! `lxcri gc` against the PVE stand-in: CT configs written into its
//! `etc/pve/lxc`, one container's state under the runtime root; a dry run
//! removes nothing, `--force` destroys only the orphan through the API.

mod common;

use std::path::Path;

use lxcri::pve::config::{Description, DescriptionInfo, PveConfigFile};
use lxcri::state::{ContainerRecord, StateStore};
use serde_json::Value;

use common::{lxcri, secret_file, start_sim, NODE, SECRET, TOKEN_ID};

/// A stopped CT's `VMID.conf` with `tags` and `description`.
fn write_ct(config_dir: &Path, vmid: u32, tags: &str, description: &str) {
    let text = format!("arch: amd64\nhostname: ct{vmid}\nostype: unmanaged\ntags: {tags}\n");
    let mut file = PveConfigFile::parse(&text).unwrap();
    file.set_description(description);
    let dir = config_dir.join("lxc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{vmid}.conf")), file.render()).unwrap();
}

fn by_lxcri(namespace: &str, id: &str) -> String {
    let info = DescriptionInfo {
        container_id: id.into(),
        containerd_namespace: Some(namespace.into()),
        ..DescriptionInfo::default()
    };
    Description::for_container(&info).as_str().to_string()
}

/// The state of a live container: containerd still has its bundle.
fn save_state(runtime_root: &Path, namespace: &str, id: &str, vmid: u32) {
    let bundle = runtime_root.join("bundles").join(id);
    std::fs::create_dir_all(&bundle).unwrap();
    let record = ContainerRecord {
        id: id.into(),
        namespace: namespace.into(),
        bundle,
        backend: "pve".into(),
        backend_name: vmid.to_string(),
        pid: None,
        pid_start_time: None,
        sandbox_id: None,
        pod: None,
        pod_namespace: None,
        rootfs_mounted: false,
        rootfs: None,
        created_at_ns: 1,
        vmid: Some(vmid),
        node: Some(NODE.into()),
        nics: Vec::new(),
        userns_slot: None,
        container_name: None,
        image: None,
        poststop_hooks: false,
    };
    StateStore::new(runtime_root).save(&record).unwrap();
}

#[test]
fn gc_dry_run_then_force() {
    common::in_own_netns(dry_run_then_force);
}

fn dry_run_then_force() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("sim");
    let config_dir = data.join("etc/pve");
    let runtime_root = tmp.path().join("run/lxcri");
    write_ct(&config_dir, 10000, "lxcri", &by_lxcri("k8s.io", "gone"));
    write_ct(
        &config_dir,
        10001,
        "lxcri;ns-default",
        &by_lxcri("k8s.io", "live"),
    );
    save_state(&runtime_root, "k8s.io", "live", 10001);
    write_ct(&config_dir, 10002, "lxcri", "Made by hand.\n");
    write_ct(&config_dir, 101, "web", "Not lxcri's at all.\n");
    let sim = start_sim(&data, None);

    let secret_file = secret_file(tmp.path());
    let config = tmp.path().join("lxcri.toml");
    std::fs::write(
        &config,
        format!(
            "runtime_root = {:?}\n[lxc]\nlxcpath = {:?}\n[pve]\nurl = {:?}\nnode = {NODE:?}\n\
             token_id = {TOKEN_ID:?}\ntoken_secret_file = {:?}\nfingerprint = {:?}\n\
             config_dir = {:?}\n[network]\novsdb = {:?}\n",
            runtime_root.display().to_string(),
            // Its own: the node's would hold other tests' containers.
            tmp.path().join("lxc").display().to_string(),
            sim.url,
            secret_file.display().to_string(),
            sim.fingerprint,
            config_dir.display().to_string(),
            no_ovs(tmp.path()),
        ),
    )
    .unwrap();
    let conf = |vmid: u32| config_dir.join(format!("lxc/{vmid}.conf"));

    let out = lxcri(&config, &["gc"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(
        stdout.contains("would remove CT 10000 (k8s.io/gone)"),
        "{all}"
    );
    assert!(!stdout.contains("CT 10001 ("), "{all}");
    assert!(
        !stdout.contains("101 "),
        "untagged CTs are not listed: {all}"
    );
    assert!(conf(10000).exists(), "a dry run removes nothing");

    let out = lxcri(&config, &["gc", "--force", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{all}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    let actions: Vec<(u64, &str, &str)> = report["cts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["vmid"].as_u64().unwrap(),
                c["verdict"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (10000, "orphan", "removed"),
            (10001, "live", "keep"),
            (10002, "foreign", "keep"),
        ],
        "{all}"
    );
    assert!(!conf(10000).exists(), "the orphan was destroyed");
    for vmid in [10001, 10002, 101] {
        assert!(conf(vmid).exists(), "CT {vmid} was kept");
    }
    assert!(!all.contains(SECRET), "the token secret leaked: {all}");
    common::assert_requests_valid(&data);
}

#[test]
fn gc_without_the_pve_section_collects_containers_and_nics_only() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("lxcri.toml");
    std::fs::write(
        &config,
        format!(
            "runtime_root = {:?}\n[lxc]\nlxcpath = {:?}\n[network]\novsdb = {:?}\n",
            tmp.path().join("run").display().to_string(),
            tmp.path().join("lxc").display().to_string(),
            no_ovs(tmp.path()),
        ),
    )
    .unwrap();
    let out = common::in_own_netns(|| lxcri(&config, &["gc"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("no containers with state on this node\n\n"),
        "{stdout}"
    );
    let unchecked = format!(
        "did not check Open vSwitch ports: ovsdb: cannot connect to {}: ",
        no_ovs(tmp.path())
    );
    assert!(stdout.contains(&unchecked), "{stdout}");
}

/// `network.ovsdb` where no ovsdb-server listens: gc leaves this
/// machine's Open vSwitch alone.
fn no_ovs(dir: &Path) -> String {
    format!("unix:{}", dir.join("no-ovs.sock").display())
}
