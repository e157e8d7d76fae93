use std::cell::RefCell;
use std::collections::BTreeMap;

use lxcri::pve::client::TokenId;
use reqwest::Method;
use serde_json::json;

use super::privileges::{NODE_PRIVS, PRIVILEGED_PRIVS, STORAGE_PRIVS, VM_PRIVS};
use super::*;

/// Canned answers; records the permission paths asked for.
struct Fake {
    version: fn() -> Result<Version, PveError>,
    /// Held on every path not in `per_path`.
    privs: Vec<&'static str>,
    per_path: BTreeMap<&'static str, Vec<&'static str>>,
    storages: serde_json::Value,
    ifaces: serde_json::Value,
    asked: RefCell<Vec<String>>,
}

impl Default for Fake {
    fn default() -> Self {
        Fake {
            version: || {
                Ok(serde_json::from_value(json!({"version": "9.1.3", "release": "9.1"})).unwrap())
            },
            privs: VM_PRIVS
                .iter()
                .chain(STORAGE_PRIVS)
                .chain(NODE_PRIVS)
                .chain(PRIVILEGED_PRIVS)
                .copied()
                .collect(),
            per_path: BTreeMap::new(),
            storages: json!([{"id": "storage/pve1/local-zfs", "storage": "local-zfs", "node": "pve1",
                              "plugintype": "zfspool", "content": "images,rootdir", "status": "available"},
                             {"id": "storage/pve1/local", "storage": "local", "node": "pve1",
                              "content": "iso,vztmpl"}]),
            ifaces: json!([{"iface": "vmbr0", "type": "bridge"}, {"iface": "eno1", "type": "eth"}]),
            asked: RefCell::default(),
        }
    }
}

impl Api for Fake {
    fn version(&self) -> Result<Version, PveError> {
        (self.version)()
    }
    fn permissions(&self, path: &str) -> Result<Permissions, PveError> {
        self.asked.borrow_mut().push(path.to_string());
        let privs: BTreeMap<String, serde_json::Value> = self
            .per_path
            .get(path)
            .unwrap_or(&self.privs)
            .iter()
            .map(|p| (p.to_string(), json!(1)))
            .collect();
        Ok(Permissions(BTreeMap::from([(path.to_string(), privs)])))
    }
    fn storage_list(&self, _: &str) -> Result<Vec<StorageInfo>, PveError> {
        Ok(serde_json::from_value(self.storages.clone()).unwrap())
    }
    fn network_list(&self, _: &str) -> Result<Vec<NetworkIface>, PveError> {
        Ok(serde_json::from_value(self.ifaces.clone()).unwrap())
    }
}

fn settings() -> PveSettings {
    let mut s = PveSettings::default();
    s.url = Some("https://pve1:8006".into());
    s.node = Some("pve1".into());
    s.token_id = Some(TokenId::parse("lxcri@pve!check").unwrap());
    s
}

fn by_name<'a>(findings: &'a [Finding], name: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no {name} in {findings:?}"))
}

#[test]
fn all_good() {
    let fake = Fake::default();
    let findings = api_checks(&fake, &settings());
    assert!(
        findings.iter().all(|f| f.status == Status::Ok),
        "{findings:?}"
    );
    assert!(by_name(&findings, "pve-api").detail.contains("PVE 9.1.3"));
    assert_eq!(
        *fake.asked.borrow(),
        [
            "/vms",
            "/storage/local-zfs",
            "/storage/local",
            "/nodes/pve1",
            "/"
        ]
    );
}

#[test]
fn missing_privileges_are_listed() {
    let fake = Fake {
        privs: vec!["VM.Audit", "VM.PowerMgmt", "Sys.Audit"],
        ..Fake::default()
    };
    let f = privileges(&fake, &settings());
    assert_eq!(f.status, Status::Fail);
    for p in [
        "VM.Allocate on /vms",
        "VM.Config.Disk on /vms",
        "Datastore.AllocateSpace on /storage/local-zfs",
        "Datastore.AllocateSpace or Datastore.Audit on /storage/local",
    ] {
        assert!(f.detail.contains(p), "{p} not in {}", f.detail);
    }
    assert!(
        !f.detail.contains("VM.Audit") && !f.detail.contains("Sys.Audit"),
        "{}",
        f.detail
    );
}

#[test]
fn reading_the_template_storage_is_enough_for_the_template() {
    let all: Vec<&str> = VM_PRIVS
        .iter()
        .chain(STORAGE_PRIVS)
        .chain(NODE_PRIVS)
        .copied()
        .collect();
    let fake = Fake {
        privs: all,
        per_path: BTreeMap::from([("/storage/local", vec!["Datastore.Audit"])]),
        ..Fake::default()
    };
    assert_eq!(privileges(&fake, &settings()).status, Status::Ok);
    let none = Fake {
        per_path: BTreeMap::from([("/storage/local", vec![])]),
        ..Fake::default()
    };
    let f = privileges(&none, &settings());
    assert!(f.detail.contains("on /storage/local"), "{}", f.detail);
}

#[test]
fn no_sys_modify_on_root_warns_about_privileged_cts() {
    assert_eq!(privileged_cts(&Fake::default()).status, Status::Ok);
    let fake = Fake {
        per_path: BTreeMap::from([("/", vec!["Sys.Audit"])]),
        ..Fake::default()
    };
    let f = privileged_cts(&fake);
    assert_eq!(f.status, Status::Warn);
    assert!(
        f.detail.contains("Sys.Modify on /") && f.detail.contains("hostUsers: false"),
        "{}",
        f.detail
    );
}

#[test]
fn version_failures_name_their_cause() {
    let fake = Fake {
        version: || {
            Err(PveError::Unauthorized {
                method: Method::GET,
                path: "/version".into(),
                message: "invalid token value!".into(),
            })
        },
        ..Fake::default()
    };
    let findings = api_checks(&fake, &settings());
    assert_eq!(findings.len(), 1, "nothing else is checked: {findings:?}");
    assert_eq!(
        (findings[0].name, findings[0].status),
        ("pve-token", Status::Fail)
    );
    assert!(findings[0]
        .detail
        .contains("token rejected (lxcri@pve!check)"));

    let e = PveError::FingerprintMismatch {
        method: Method::GET,
        path: "/version".into(),
        expected: "AA:BB".into(),
        actual: "CC:DD".into(),
    };
    let f = version_failure(&e, "https://pve1:8006", "x@pve!y");
    assert_eq!((f.name, f.status), ("pve-tls", Status::Fail));
    assert!(
        f.detail.contains("AA:BB") && f.detail.contains("CC:DD"),
        "{}",
        f.detail
    );

    let e = PveError::Server {
        method: Method::GET,
        path: "/version".into(),
        message: "boom".into(),
    };
    let f = version_failure(&e, "https://pve1:8006", "x@pve!y");
    assert_eq!((f.name, f.status), ("pve-api", Status::Fail));
}

#[test]
fn storage_presence_and_content() {
    let fake = Fake::default();
    assert_eq!(
        storage("local-zfs", "pve1", fake.storage_list("pve1")).status,
        Status::Ok
    );
    let f = storage("local", "pve1", fake.storage_list("pve1"));
    assert_eq!(f.status, Status::Fail);
    assert!(f.detail.contains("rootdir"), "{}", f.detail);
    let f = storage("tank", "pve1", fake.storage_list("pve1"));
    assert_eq!(f.status, Status::Fail);
    assert!(
        f.detail.contains("not found") && f.detail.contains("local-zfs, local"),
        "{}",
        f.detail
    );
}

#[test]
fn bridge_presence_and_kind() {
    let fake = Fake::default();
    assert_eq!(
        bridge("vmbr0", "pve1", fake.network_list("pve1")).status,
        Status::Ok
    );
    let f = bridge("eno1", "pve1", fake.network_list("pve1"));
    assert!(
        f.status == Status::Fail && f.detail.contains("not a bridge"),
        "{}",
        f.detail
    );
    let f = bridge("vmbr9", "pve1", fake.network_list("pve1"));
    assert!(
        f.status == Status::Fail && f.detail.contains("bridges: vmbr0"),
        "{}",
        f.detail
    );
    let f = bridge("vmbr0", "pve1", Ok(Vec::new()));
    assert!(f.detail.contains("bridges: none"), "{}", f.detail);
}

#[test]
fn config_dir_warns_off_a_pve_node() {
    let tmp = tempfile::tempdir().unwrap();
    let f = config_dir(tmp.path());
    assert_eq!(f.status, Status::Warn);
    assert!(f.detail.contains("not a PVE node?"), "{}", f.detail);
    std::fs::create_dir(tmp.path().join("lxc")).unwrap();
    assert_eq!(config_dir(tmp.path()).status, Status::Ok);
}

#[test]
fn unconfigured_section_adds_nothing() {
    assert!(checks(&Config::default()).is_empty());
}

#[test]
fn client_failures_name_their_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, "00000000-0000-0000-0000-000000000000\n").unwrap();

    let mut s = settings();
    s.token_secret_file = Some(tmp.path().join("missing"));
    let f = connect(&s).unwrap_err();
    assert_eq!((f.name, f.status), ("pve-token", Status::Fail));
    assert!(
        f.detail.contains("reading PVE token secret file") && f.detail.contains("missing: "),
        "the io error follows: {}",
        f.detail
    );

    s.token_secret_file = Some(secret.clone());
    s.ca_file = Some(tmp.path().join("no-ca.pem"));
    let f = connect(&s).unwrap_err();
    assert_eq!(
        (f.name, f.status),
        ("pve-tls", Status::Fail),
        "{}",
        f.detail
    );
    assert!(f.detail.contains("no-ca.pem"), "{}", f.detail);

    s.ca_file = None;
    s.url = Some("ftp://pve1".into());
    let f = connect(&s).unwrap_err();
    assert_eq!(
        (f.name, f.status),
        ("pve-api", Status::Fail),
        "{}",
        f.detail
    );

    s.url = None;
    let f = connect(&s).unwrap_err();
    assert_eq!((f.name, f.status), ("pve-api", Status::Fail));
    assert!(f.detail.contains("url"), "{}", f.detail);

    // Built without touching the network.
    s.url = Some("https://pve1:8006".into());
    assert!(connect(&s).is_ok());
}

#[test]
fn tls_detail_follows_the_library_trust() {
    let mut s = settings();
    assert!(trust_detail(&s.trust()).contains("web PKI"));
    s.ca_file = Some("/etc/pve/pve-root-ca.pem".into());
    assert!(trust_detail(&s.trust()).contains("/etc/pve/pve-root-ca.pem"));
}

#[test]
fn backend_node_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = settings();
    s.lxcpath = tmp.path().join("var/lib/lxc");
    s.lock_dir = tmp.path().join("run/lock/lxc");
    let findings = backend_checks(&s);
    let t = by_name(&findings, "pve-template");
    assert_eq!(t.status, Status::Ok);
    assert!(
        t.detail.contains("local:vztmpl/lxcri-empty.tar.gz"),
        "{}",
        t.detail
    );
    for name in ["pve-lxcpath", "pve-lock-dir"] {
        let f = by_name(&findings, name);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.detail.contains("does not exist"), "{}", f.detail);
    }
    std::fs::create_dir_all(&s.lxcpath).unwrap();
    std::fs::create_dir_all(tmp.path().join("run/lock")).unwrap();
    std::fs::write(&s.lock_dir, "").unwrap();
    let findings = backend_checks(&s);
    assert_eq!(by_name(&findings, "pve-lxcpath").status, Status::Ok);
    let f = by_name(&findings, "pve-lock-dir");
    assert!(
        f.status == Status::Fail && f.detail.contains("not a directory"),
        "{f:?}"
    );
}

/// Outside zfs mode: a default ext4 install's `local-lvm` fails the check
/// (a CT's unused root volume of size 0 cannot be allocated there), a
/// directory storage passes, a missing storage.cfg fails naming it.
#[test]
fn the_storage_must_hold_an_empty_root_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.pve.config_dir = tmp.path().to_path_buf();
    config.pve.node = Some("pve1".into());
    config.pve.storage = "local-lvm".into();
    let f = empty_volume_storage(&config);
    assert_eq!(f.status, Status::Fail);
    assert!(f.detail.contains("storage.cfg"), "{}", f.detail);
    std::fs::write(
        tmp.path().join("storage.cfg"),
        "lvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n\tcontent rootdir,images\n\n\
         dir: ct\n\tpath /srv/ct\n\tcontent rootdir\n",
    )
    .unwrap();
    let f = empty_volume_storage(&config);
    assert_eq!((f.name, f.status), ("pve-storage-volume", Status::Fail));
    assert!(
        f.detail.contains("lvmthin storage without a path"),
        "{}",
        f.detail
    );
    config.pve.storage = "ct".into();
    assert_eq!(empty_volume_storage(&config).status, Status::Ok);
}
