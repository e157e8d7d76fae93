use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;

/// A fake environment.
fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

/// Loads with a default path inside `dir` (so the host's /etc/lxcri is never read).
fn load(dir: &Path, explicit: Option<&Path>, env: &[(&str, &str)]) -> Result<Config> {
    Config::load_from(explicit, &env_of(env), &dir.join("default.toml"))
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, body).unwrap();
    path
}

#[test]
fn defaults_without_any_file() {
    let tmp = tempfile::tempdir().unwrap();
    let c = load(tmp.path(), None, &[]).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.backend, BackendKind::Lxc);
    assert_eq!(c.runtime_root, Path::new("/run/lxcri"));
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.lxc.lxcpath, Path::new("/var/lib/lxcri/lxc"));
    assert_eq!(c.lxc.init_binary, None);
    assert_eq!(c.lxc.log_level, LxcLogLevel::Warn);
    assert_eq!(c.lxc.start_timeout(), Duration::from_secs(30));
    assert_eq!(c.rootfs.mode, RootfsMode::Overlay);
    assert_eq!(c.file, None);
}

#[test]
fn default_path_file_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "default.toml", "log_level = \"debug\"\n");
    let c = load(tmp.path(), None, &[]).unwrap();
    assert_eq!(c.log_level, LogLevel::Debug);
    assert_eq!(c.file, Some(path));
}

#[test]
fn parses_every_key() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "c.toml",
        r#"
backend = "lxc"
runtime_root = "/run/x/"
log_level = "trace"
[lxc]
lxcpath = "/srv/lxc"
init_binary = "/opt/lxcri/lxcri-init"
log_level = "debug"
start_timeout_secs = 5
[rootfs]
mode = "overlay"
"#,
    );
    let c = load(tmp.path(), Some(&path), &[]).unwrap();
    assert_eq!(c.runtime_root, Path::new("/run/x"), "trailing / normalized");
    assert_eq!(c.log_level, LogLevel::Trace);
    assert_eq!(c.lxc.lxcpath, Path::new("/srv/lxc"));
    assert_eq!(
        c.lxc.init_binary.as_deref(),
        Some(Path::new("/opt/lxcri/lxcri-init"))
    );
    assert_eq!(c.lxc.log_level, LxcLogLevel::Debug);
    assert_eq!(c.lxc.start_timeout_secs, 5);
    assert_eq!(c.file, Some(path));
}

#[test]
fn shipped_example_is_valid_and_equals_the_defaults() {
    let raw: RawFile = toml::from_str(include_str!("../../config/lxcri.toml")).unwrap();
    let mut c = Config::default();
    for (field, value) in raw.values() {
        c.apply(setting(field), &value, Origin::Default).unwrap();
    }
    // Which keys the file spelled out is no setting of its own.
    c.applied.clear();
    assert_eq!(c, Config::default());
}

#[test]
fn unknown_keys_are_errors_naming_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    for (body, key, line) in [
        (
            "backend = \"lxc\"\nruntime_dir = \"/x\"\n",
            "runtime_dir",
            "line 2",
        ),
        ("[lxc]\nlxc_path = \"/x\"\n", "lxc_path", "line 2"),
        (
            "[pve]\nurl = \"https://x\"\nfingerprints = \"x\"\n",
            "fingerprints",
            "line 3",
        ),
    ] {
        let path = write(tmp.path(), "c.toml", body);
        let err = load(tmp.path(), Some(&path), &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(key), "{msg}");
        assert!(msg.contains(line), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }
}

#[test]
fn wrong_type_is_a_parse_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.toml", "[lxc]\nstart_timeout_secs = \"30\"\n");
    let msg = load(tmp.path(), Some(&path), &[]).unwrap_err().to_string();
    assert!(
        msg.contains("start_timeout_secs") && msg.contains("line 2"),
        "{msg}"
    );
}

#[test]
fn env_beats_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "c.toml",
        "runtime_root = \"/from/file\"\nlog_level = \"warn\"\n[lxc]\nstart_timeout_secs = 9\n",
    );
    let env = [
        ("LXCRI_RUNTIME_ROOT", "/from/env"),
        ("LXCRI_LXC_START_TIMEOUT_SECS", "12"),
        ("LXCRI_ROOTFS_MODE", "overlay"),
        ("LXCRI_LXC_INIT_BINARY", "/env/lxcri-init"),
    ];
    let c = load(tmp.path(), Some(&path), &env).unwrap();
    assert_eq!(c.runtime_root, Path::new("/from/env"));
    assert_eq!(c.log_level, LogLevel::Warn, "file value kept");
    assert_eq!(c.lxc.start_timeout_secs, 12);
    assert_eq!(
        c.lxc.init_binary.as_deref(),
        Some(Path::new("/env/lxcri-init"))
    );
}

#[test]
fn empty_env_value_means_unset() {
    let tmp = tempfile::tempdir().unwrap();
    let c = load(
        tmp.path(),
        None,
        &[("LXCRI_LOG_LEVEL", ""), (CONFIG_ENV, "")],
    )
    .unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn flag_beats_env() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = load(tmp.path(), None, &[("LXCRI_RUNTIME_ROOT", "/from/env")]).unwrap();
    c.set("runtime_root", "/from/flag").unwrap();
    assert_eq!(c.runtime_root, Path::new("/from/flag"));
    let err = c.set("runtime_root", "relative").unwrap_err().to_string();
    assert!(err.contains("command line"), "{err}");
    assert!(matches!(
        c.set("nope", "x"),
        Err(ConfigError::UnknownKey { .. })
    ));
}

#[test]
fn explicit_missing_path_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.toml");
    let err = load(tmp.path(), Some(&missing), &[]).unwrap_err();
    match &err {
        ConfigError::Read { path, source, .. } => {
            assert_eq!(path, &missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("missing.toml"));
}

#[test]
fn lxcri_config_env_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "env.toml", "log_level = \"error\"\n");
    let p = path.to_str().unwrap();
    let c = load(tmp.path(), None, &[(CONFIG_ENV, p)]).unwrap();
    assert_eq!(c.log_level, LogLevel::Error);
    assert_eq!(c.file.as_deref(), Some(path.as_path()));

    // An explicit path wins over LXCRI_CONFIG.
    let other = write(tmp.path(), "explicit.toml", "log_level = \"trace\"\n");
    let c = load(tmp.path(), Some(&other), &[(CONFIG_ENV, p)]).unwrap();
    assert_eq!(c.log_level, LogLevel::Trace);

    // A missing file named by LXCRI_CONFIG is an error too.
    let err = load(tmp.path(), None, &[(CONFIG_ENV, "/nonexistent/lxcri.toml")]).unwrap_err();
    assert!(err.to_string().contains(CONFIG_ENV), "{err}");
}

#[test]
fn bad_enum_value_names_key_env_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.toml", "[lxc]\nlog_level = \"loud\"\n");
    let err = load(tmp.path(), Some(&path), &[]).unwrap_err();
    let msg = err.to_string();
    for needle in [
        "lxc.log_level",
        "LXCRI_LXC_LOG_LEVEL",
        "\"loud\"",
        "\"notice\"",
    ] {
        assert!(msg.contains(needle), "{needle} not in {msg}");
    }
    assert!(msg.contains(&path.display().to_string()), "{msg}");

    let err = load(tmp.path(), None, &[("LXCRI_ROOTFS_MODE", "btrfs")]).unwrap_err();
    match err {
        ConfigError::Invalid { key, origin, .. } => {
            assert_eq!(key, "rootfs.mode");
            assert_eq!(origin, Origin::Env("LXCRI_ROOTFS_MODE"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pve_backend_needs_the_pve_section() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.toml", "backend = \"pve\"\n");
    let msg = load(tmp.path(), Some(&path), &[]).unwrap_err().to_string();
    assert!(
        msg.contains("pve.url") && msg.contains("backend = \"pve\" needs the [pve] section"),
        "{msg}"
    );
}

#[test]
fn bad_values_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("LXCRI_RUNTIME_ROOT", "run/lxcri"),
        ("LXCRI_RUNTIME_ROOT", "/"),
        ("LXCRI_RUNTIME_ROOT", "/run/lx\ncri"),
        ("LXCRI_LXC_LXCPATH", "/var/lib/../x"),
        ("LXCRI_LXC_LXCPATH", "/var/lib/my lxc"),
        ("LXCRI_LXC_INIT_BINARY", "lxcri-init"),
        ("LXCRI_LXC_START_TIMEOUT_SECS", "0"),
        ("LXCRI_LXC_START_TIMEOUT_SECS", "30s"),
        ("LXCRI_LXC_START_TIMEOUT_SECS", "99999"),
        ("LXCRI_LOG_LEVEL", "INFO"),
        ("LXCRI_BACKEND", "docker"),
    ] {
        let err = load(tmp.path(), None, &[(var, value)]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(var), "{var}={value:?}: {msg}");
    }
    let path = write(tmp.path(), "c.toml", "[lxc]\nstart_timeout_secs = 0\n");
    let msg = load(tmp.path(), Some(&path), &[]).unwrap_err().to_string();
    assert!(
        msg.contains("lxc.start_timeout_secs") && msg.contains("c.toml"),
        "{msg}"
    );
}

#[test]
fn shim_log_level_debug_flag() {
    let mut c = Config::default();
    assert_eq!(c.shim_log_level(false), LogLevel::Info);
    assert_eq!(c.shim_log_level(true), LogLevel::Debug);
    c.log_level = LogLevel::Trace;
    assert_eq!(c.shim_log_level(true), LogLevel::Trace);
}

fn make_exe(path: &Path, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, b"#!/bin/sh\n").unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn init_binary_search_order() {
    let tmp = tempfile::tempdir().unwrap();
    let exe_dir = tmp.path().join("exe");
    let local = tmp.path().join("local");
    let usr = tmp.path().join("usr");
    fs::create_dir_all(&exe_dir).unwrap();
    let dirs = [local.as_path(), usr.as_path()];

    let err = find_init_binary(None, Some(&exe_dir), &dirs).unwrap_err();
    match &err {
        ConfigError::InitBinaryNotFound { searched } => assert_eq!(searched.len(), 3),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("LXCRI_LXC_INIT_BINARY"), "{err}");

    make_exe(&usr.join("lxcri-init"), 0o755);
    assert_eq!(
        find_init_binary(None, Some(&exe_dir), &dirs).unwrap(),
        usr.join("lxcri-init")
    );
    // Not executable: skipped.
    make_exe(&local.join("lxcri-init"), 0o644);
    assert_eq!(
        find_init_binary(None, Some(&exe_dir), &dirs).unwrap(),
        usr.join("lxcri-init")
    );
    make_exe(&exe_dir.join("lxcri-init"), 0o755);
    assert_eq!(
        find_init_binary(None, Some(&exe_dir), &dirs).unwrap(),
        exe_dir.join("lxcri-init")
    );

    // A configured path is used alone, and must exist.
    let configured = tmp.path().join("opt/lxcri-init");
    assert!(find_init_binary(Some(&configured), Some(&exe_dir), &dirs).is_err());
    make_exe(&configured, 0o700);
    assert_eq!(
        find_init_binary(Some(&configured), Some(&exe_dir), &dirs).unwrap(),
        configured
    );
}

const SECRET_FILE: &str = "/etc/lxcri/pve-token";
const FP: &str = "4B:33:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DC";

fn pve_file(extra: &str) -> String {
    format!(
        "[pve]\nurl = \"https://pve1:8006\"\nnode = \"pve1\"\ntoken_id = \"lxcri@pve!shim\"\n\
         token_secret_file = \"{SECRET_FILE}\"\n{extra}"
    )
}

#[test]
fn pve_section_is_optional_with_documented_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let c = load(tmp.path(), None, &[]).unwrap();
    assert!(!c.pve.is_configured());
    assert_eq!(c.pve.vmid_range.to_string(), "10000-19999");
    assert_eq!(c.pve.storage, DEFAULT_STORAGE);
    assert_eq!(c.pve.bridge, "vmbr0");
    assert_eq!(c.pve.config_dir, Path::new("/etc/pve"));
    assert_eq!(c.pve.apparmor, crate::lxc::LxcAppArmor::Unconfined);
}

#[test]
fn pve_parses_every_key() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = format!(
        "fingerprint = \"{FP}\"\nvmid_range = \"20000-20099\"\nstorage = \"tank\"\n\
         bridge = \"vmbr1\"\nconfig_dir = \"/srv/pve/\"\napparmor = \"generated\"\n"
    );
    let path = write(tmp.path(), "c.toml", &pve_file(&extra));
    let c = load(tmp.path(), Some(&path), &[]).unwrap();
    let p = &c.pve;
    assert!(p.is_configured());
    assert_eq!(p.url.as_deref(), Some("https://pve1:8006"));
    assert_eq!(p.node.as_deref(), Some("pve1"));
    assert_eq!(p.token_id.as_ref().unwrap().as_str(), "lxcri@pve!shim");
    assert_eq!(p.token_secret_file.as_deref(), Some(Path::new(SECRET_FILE)));
    assert_eq!(p.fingerprint.unwrap().to_string(), FP);
    assert_eq!(p.ca_file, None);
    assert_eq!((p.vmid_range.start(), p.vmid_range.end()), (20000, 20099));
    assert_eq!((p.storage.as_str(), p.bridge.as_str()), ("tank", "vmbr1"));
    assert_eq!(p.config_dir, Path::new("/srv/pve"));
    assert_eq!(p.apparmor, crate::lxc::LxcAppArmor::Generated);
    assert_eq!(p.origin("pve.url"), Some(&Origin::File(path)));
    assert_eq!(p.template, DEFAULT_TEMPLATE);
    assert_eq!(p.lxcpath, Path::new(DEFAULT_PVE_LXCPATH));
    assert_eq!(p.lock_dir, Path::new(DEFAULT_LOCK_DIR));
    assert_eq!(p.run_dir, Path::new(DEFAULT_RUN_DIR));
    assert_eq!(p.pool, None);
    assert_eq!(p.lock_wait_secs, DEFAULT_LOCK_WAIT_SECS);
    // With the section, the backend can be switched on.
    let path = write(
        tmp.path(),
        "b.toml",
        &format!("backend = \"pve\"\n{}", pve_file("")),
    );
    let c = load(tmp.path(), Some(&path), &[]).unwrap();
    assert_eq!(c.backend, BackendKind::Pve);
}

#[test]
fn pve_pool_and_run_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "c.toml",
        &pve_file("pool = \"team/lxcri\"\nrun_dir = \"/srv/run/pve\"\nlock_wait_secs = 5\n"),
    );
    let c = load(tmp.path(), Some(&path), &[]).unwrap();
    assert_eq!(c.pve.pool.as_ref().unwrap().as_str(), "team/lxcri");
    assert_eq!(c.pve.run_dir, Path::new("/srv/run/pve"));
    assert_eq!(c.pve.lock_wait(), std::time::Duration::from_secs(5));
    let err = load(
        tmp.path(),
        Some(&path),
        &[("LXCRI_PVE_LOCK_WAIT_SECS", "0")],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("pve.lock_wait_secs"), "{err}");
    assert_eq!(c.pve.warm_pool_size, 0, "off unless asked for");
    let c = load(
        tmp.path(),
        Some(&path),
        &[("LXCRI_PVE_WARM_POOL_SIZE", "4")],
    )
    .unwrap();
    assert_eq!(c.pve.warm_pool_size, 4);
    for bad in ["65", "-1", "two"] {
        let err = load(
            tmp.path(),
            Some(&path),
            &[("LXCRI_PVE_WARM_POOL_SIZE", bad)],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("pve.warm_pool_size") && err.contains("0 (off) to 64"),
            "{err}"
        );
    }
    let err = load(tmp.path(), Some(&path), &[("LXCRI_PVE_POOL", "a b")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pve.pool") && err.contains("LXCRI_PVE_POOL"),
        "{err}"
    );
}

#[test]
fn pve_template_must_be_a_template_volume() {
    let tmp = tempfile::tempdir().unwrap();
    for (bad, ok) in [
        ("local:vztmpl/lxcri-empty.tar.gz", true),
        ("nfs1:vztmpl/base-1.0.tar.zst", true),
        ("local:iso/x.iso", false),
        // PVE's `$VZTMPL_EXT_RE_1`: a plain .tar (PVE 9.1's OCI archives), any case.
        ("local:vztmpl/x.tar", true),
        ("local:vztmpl/X.TAR.XZ", true),
        ("local:vztmpl/x.tgz", false),
        ("local:vztmpl/x.tar.lzo", false),
        ("local:vztmpl/.tar", false),
        ("local:vztmpl/../x.tar.gz", false),
        ("local:vztmpl/a\nb.tar.gz", false),
        ("vztmpl/x.tar.gz", false),
    ] {
        let r = load(tmp.path(), None, &[("LXCRI_PVE_TEMPLATE", bad)]);
        let r = r.map(|_| ()).map_err(|e| e.to_string());
        if ok {
            // Only the template was set: the section misses its required keys.
            assert!(r.unwrap_err().contains("pve.url"), "{bad}");
        } else {
            let msg = r.unwrap_err();
            assert!(
                msg.contains("pve.template") && msg.contains("not a template volume"),
                "{bad}: {msg}"
            );
        }
    }
}

#[test]
fn pve_env_overrides_and_completes_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.toml", &pve_file("bridge = \"vmbr1\"\n"));
    let env = [
        ("LXCRI_PVE_URL", "https://10.0.0.2:8006/"),
        ("LXCRI_PVE_CA_FILE", "/etc/pve/pve-root-ca.pem"),
        ("LXCRI_PVE_VMID_RANGE", "300-399"),
    ];
    let c = load(tmp.path(), Some(&path), &env).unwrap();
    assert_eq!(c.pve.url.as_deref(), Some("https://10.0.0.2:8006"));
    assert_eq!(c.pve.origin("pve.url"), Some(&Origin::Env("LXCRI_PVE_URL")));
    assert_eq!(
        c.pve.ca_file.as_deref(),
        Some(Path::new("/etc/pve/pve-root-ca.pem"))
    );
    assert_eq!(c.pve.vmid_range.start(), 300);
    assert_eq!(c.pve.bridge, "vmbr1", "file value kept");

    // The environment alone can configure the section.
    let env = [
        ("LXCRI_PVE_URL", "https://pve1:8006"),
        ("LXCRI_PVE_NODE", "pve1"),
        ("LXCRI_PVE_TOKEN_ID", "root@pam!lxcri"),
        ("LXCRI_PVE_TOKEN_SECRET_FILE", SECRET_FILE),
        ("LXCRI_PVE_STORAGE", "local"),
    ];
    let c = load(tmp.path(), None, &env).unwrap();
    assert!(c.pve.is_configured());
    assert_eq!(c.pve.storage, "local");
}

#[test]
fn pve_fingerprint_and_ca_file_are_mutually_exclusive() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "c.toml",
        &pve_file(&format!("fingerprint = \"{FP}\"\n")),
    );
    let err = load(
        tmp.path(),
        Some(&path),
        &[("LXCRI_PVE_CA_FILE", "/etc/pve/pve-root-ca.pem")],
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Conflict { .. }), "{err:?}");
    let msg = err.to_string();
    for needle in [
        "pve.fingerprint",
        "pve.ca_file",
        "LXCRI_PVE_CA_FILE",
        "c.toml",
        "mutually exclusive",
    ] {
        assert!(msg.contains(needle), "{needle} not in {msg}");
    }
}

#[test]
fn pve_required_keys_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.toml", "[pve]\nurl = \"https://pve1:8006\"\n");
    let msg = load(tmp.path(), Some(&path), &[]).unwrap_err().to_string();
    assert!(
        msg.contains("pve.node") && msg.contains("LXCRI_PVE_NODE"),
        "{msg}"
    );
    // An empty table is not "configured".
    let path = write(tmp.path(), "c.toml", "[pve]\n");
    assert!(!load(tmp.path(), Some(&path), &[])
        .unwrap()
        .pve
        .is_configured());
}

#[test]
fn pve_bad_values_name_key_env_and_origin() {
    let tmp = tempfile::tempdir().unwrap();
    for (key, var, value, why) in [
        ("url", "LXCRI_PVE_URL", "http://pve1:8006", "https"),
        ("url", "LXCRI_PVE_URL", "pve1:8006", "https"),
        (
            "url",
            "LXCRI_PVE_URL",
            "https://u:p@pve1:8006",
            "credentials",
        ),
        (
            "token_id",
            "LXCRI_PVE_TOKEN_ID",
            "lxcri@pve",
            "USER@REALM!TOKENNAME",
        ),
        (
            "token_id",
            "LXCRI_PVE_TOKEN_ID",
            "lxcri!shim",
            "USER@REALM!TOKENNAME",
        ),
        (
            "token_secret_file",
            "LXCRI_PVE_TOKEN_SECRET_FILE",
            "pve-token",
            "absolute",
        ),
        ("ca_file", "LXCRI_PVE_CA_FILE", "ca.pem", "absolute"),
        ("config_dir", "LXCRI_PVE_CONFIG_DIR", "etc/pve", "absolute"),
        ("fingerprint", "LXCRI_PVE_FINGERPRINT", "AA:BB", "SHA-256"),
        ("vmid_range", "LXCRI_PVE_VMID_RANGE", "50-60", "100"),
        ("node", "LXCRI_PVE_NODE", "pve1/../x", "node name"),
        ("bridge", "LXCRI_PVE_BRIDGE", "vmbr0,tag=5", "bridge name"),
        (
            "apparmor",
            "LXCRI_PVE_APPARMOR",
            "lxc-default",
            "`generated`",
        ),
    ] {
        let err = load(tmp.path(), None, &[(var, value)]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("pve.{key}")), "{msg}");
        assert!(
            msg.contains(var) && msg.contains(why),
            "{var}={value:?}: {msg}"
        );
        let path = write(tmp.path(), "c.toml", &format!("[pve]\n{key} = {value:?}\n"));
        let msg = load(tmp.path(), Some(&path), &[]).unwrap_err().to_string();
        assert!(msg.contains("c.toml") && msg.contains(var), "{msg}");
    }
}

#[test]
fn every_key_and_variable_is_documented() {
    let docs = include_str!("../../docs/configuration.md");
    let shipped = include_str!("../../config/lxcri.toml");
    for s in SETTINGS {
        assert!(
            docs.contains(&format!("`{}`", s.key)),
            "{} not in docs",
            s.key
        );
        assert!(docs.contains(s.env), "{} not in docs", s.env);
        assert!(
            shipped.contains(s.env),
            "{} not in config/lxcri.toml",
            s.env
        );
    }
}

#[test]
fn zfs_mode_needs_a_pool_and_images_in_its_pool() {
    let tmp = tempfile::tempdir().unwrap();
    let err = load(tmp.path(), None, &[("LXCRI_ROOTFS_MODE", "zfs")]).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::Missing {
                key: "zfs.pool",
                ..
            }
        ),
        "{err:?}"
    );
    let c = load(
        tmp.path(),
        None,
        &[
            ("LXCRI_ROOTFS_MODE", "zfs"),
            ("LXCRI_ZFS_POOL", "rpool/data"),
        ],
    )
    .unwrap();
    assert_eq!(c.rootfs.mode, RootfsMode::Zfs);
    assert_eq!(c.zfs.images().unwrap().as_str(), "rpool/data/lxcri-images");
    assert_eq!(c.zfs.size.to_string(), "8G");
    assert_eq!(c.zfs.image_ttl_secs, 86400);

    let path = write(
        tmp.path(),
        "z.toml",
        "[rootfs]\nmode = \"zfs\"\n[zfs]\npool = \"rpool/data\"\nimages = \"tank/imgs\"\n",
    );
    let msg = load(tmp.path(), Some(&path), &[]).unwrap_err().to_string();
    assert!(
        msg.contains("zfs.images") && msg.contains("same pool"),
        "{msg}"
    );
    for (var, value, needle) in [
        ("LXCRI_ZFS_POOL", "rpool/da ta", "zfs.pool"),
        ("LXCRI_ZFS_POOL", "rpool/data\nx = 1", "zfs.pool"),
        ("LXCRI_ZFS_POOL", "rpool/data@snap", "snapshot"),
        ("LXCRI_ZFS_SIZE", "8", "zfs.size"),
        ("LXCRI_ZFS_SIZE", "1.5G", "zfs.size"),
        ("LXCRI_ZFS_IMAGE_TTL_SECS", "5", "at least 60"),
        ("LXCRI_ZFS_COMMAND", "zfs; rm -rf /", "zfs.command"),
    ] {
        let msg = load(tmp.path(), None, &[(var, value)])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(needle) && msg.contains(var),
            "{var}={value:?}: {msg}"
        );
    }
}

#[test]
fn a_snapshot_gives_back_the_effective_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "c.toml",
        &format!(
            "backend = \"pve\"\nruntime_root = \"/run/x\"\n[lxc]\nstart_timeout_secs = 9\n{}",
            pve_file("")
        ),
    );
    let c = load(
        tmp.path(),
        Some(&path),
        &[("LXCRI_ROOTFS_MODE", "overlay"), ("LXCRI_PVE_NODE", "pve2")],
    )
    .unwrap();
    let snap = write(tmp.path(), "snap.json", &c.snapshot());
    let again = Config::from_snapshot(&snap, &c.snapshot()).unwrap();
    assert_eq!(again.backend, BackendKind::Pve);
    assert_eq!(again.runtime_root, Path::new("/run/x"));
    assert_eq!(again.lxc, c.lxc);
    assert_eq!(
        again.pve.node.as_deref(),
        Some("pve2"),
        "the environment's value"
    );
    assert_eq!(again.pve.url, c.pve.url);
    assert_eq!(again.snapshot(), c.snapshot());
    assert_eq!(again.file.as_deref(), Some(snap.as_path()));
    // Not one lxcri wrote: an error naming the snapshot.
    for bad in ["{", r#"{"no.such": "x"}"#, r#"{"backend": "proxmox"}"#] {
        let err = Config::from_snapshot(&snap, bad).unwrap_err().to_string();
        assert!(err.contains("snap.json"), "{bad}: {err}");
    }
}

#[test]
fn default_nics_are_checked_nics_by_index() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "c.toml",
        "[network]\nnet0 = \"name=eth0,bridge=vmbr0,tag=30\"\nnet2 = \"name=eth2,bridge=ovs0\"\novsdb = \"unix:/run/ovs/db.sock\"\n",
    );
    let c = load(tmp.path(), Some(&path), &[]).unwrap();
    let names: Vec<String> = c.network.nics().map(|n| n.name.to_string()).collect();
    assert_eq!(names, ["eth0", "eth2"]);
    assert_eq!(c.network.ovsdb.to_string(), "unix:/run/ovs/db.sock");
    let c = load(
        tmp.path(),
        Some(&path),
        &[("LXCRI_NETWORK_NET0", "name=env0,bridge=vmbr9")],
    )
    .unwrap();
    let names: Vec<String> = c.network.nics().map(|n| n.name.to_string()).collect();
    assert_eq!(
        names,
        ["env0", "eth2"],
        "the environment wins over the file"
    );
}

#[test]
fn a_bad_default_nic_names_the_key_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "c.toml",
        "[network]\nnet3 = \"name=eth3,bridge=br0,tag=9999\"\n",
    );
    let msg = load(tmp.path(), Some(&path), &[]).unwrap_err().to_string();
    assert!(
        msg.contains("network.net3") && msg.contains("tag") && msg.contains("not a VLAN id"),
        "{msg}"
    );
    let msg = load(tmp.path(), None, &[("LXCRI_NETWORK_OVSDB", "db.sock")])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("network.ovsdb") && msg.contains("LXCRI_NETWORK_OVSDB"),
        "{msg}"
    );
}

#[test]
fn default_nics_no_container_could_have_together_are_refused_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "c.toml",
        "[network]\nnet0 = \"name=eth0,bridge=vmbr0,ip=10.0.0.2/24,gw=10.0.0.1\"\nnet2 = \"name=eth2,bridge=vmbr1\"\n",
    );
    assert!(load(tmp.path(), Some(&path), &[]).is_ok());
    let msg = load(
        tmp.path(),
        Some(&path),
        &[(
            "LXCRI_NETWORK_NET2",
            "name=eth2,bridge=vmbr1,ip=10.1.0.2/24,gw=10.1.0.1",
        )],
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.starts_with("network.net2 (from environment variable LXCRI_NETWORK_NET2) cannot be a default NIC beside network.net0 (from config file ")
            && msg.contains("gw=10.1.0.1: network.net0 has gw=10.0.0.1 already"),
        "{msg}"
    );
    let msg = load(
        tmp.path(),
        Some(&path),
        &[("LXCRI_NETWORK_NET2", "name=eth0,bridge=vmbr1")],
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("name=eth0 is also network.net0's"), "{msg}");
    // A container made under such a config can still be cleaned up.
    let snap = tmp.path().join("snap.json");
    let text =
        r#"{"network.net0": "name=eth0,bridge=vmbr0", "network.net1": "name=eth0,bridge=vmbr1"}"#;
    assert!(Config::from_snapshot(&snap, text).is_ok());
}
