use std::os::unix::fs::PermissionsExt;

use super::*;

fn put(root: &Path, rel: &str, body: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, body).unwrap();
}

fn status_file(uid: u32, cap_eff: &str) -> String {
    format!("Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nCapEff:\t{cap_eff}\nSeccomp:\t0\n")
}

#[test]
fn kernel_version() {
    let tmp = tempfile::tempdir().unwrap();
    put(tmp.path(), "sys/kernel/osrelease", "6.1.0-18-amd64\n");
    assert_eq!(kernel(tmp.path()).status, Status::Ok);
    put(tmp.path(), "sys/kernel/osrelease", "5.12.0\n");
    assert_eq!(kernel(tmp.path()).status, Status::Ok);
    put(tmp.path(), "sys/kernel/osrelease", "5.3.0\n");
    let f = kernel(tmp.path());
    assert_eq!(f.status, Status::Warn);
    assert!(f.detail.contains("5.12"), "{}", f.detail);
    put(tmp.path(), "sys/kernel/osrelease", "4.19.0-20-amd64\n");
    let f = kernel(tmp.path());
    assert_eq!(f.status, Status::Fail);
    assert!(f.detail.contains("5.3"), "{}", f.detail);
    put(tmp.path(), "sys/kernel/osrelease", "weird\n");
    assert_eq!(kernel(tmp.path()).status, Status::Warn);
    assert_eq!(kernel(&tmp.path().join("none")).status, Status::Fail);
}

#[test]
fn cgroup_layouts() {
    let v2 = tempfile::tempdir().unwrap();
    put(
        v2.path(),
        "cgroup.controllers",
        "cpuset cpu io memory hugetlb pids rdma\n",
    );
    let f = cgroup(v2.path());
    assert_eq!(f.status, Status::Ok, "{}", f.detail);
    put(v2.path(), "cgroup.controllers", "cpu pids\n");
    let f = cgroup(v2.path());
    assert_eq!(f.status, Status::Warn);
    assert!(f.detail.contains("memory io"), "{}", f.detail);

    let hybrid = tempfile::tempdir().unwrap();
    fs::create_dir_all(hybrid.path().join("memory")).unwrap();
    put(hybrid.path(), "unified/cgroup.controllers", "");
    let f = cgroup(hybrid.path());
    assert_eq!(f.status, Status::Warn);
    assert!(f.detail.contains("hybrid"), "{}", f.detail);

    let v1 = tempfile::tempdir().unwrap();
    fs::create_dir_all(v1.path().join("cpu")).unwrap();
    assert!(cgroup(v1.path()).detail.starts_with("v1 (legacy)"));

    let none = tempfile::tempdir().unwrap();
    assert_eq!(cgroup(none.path()).status, Status::Fail);
}

#[test]
fn namespace_presence() {
    let tmp = tempfile::tempdir().unwrap();
    for ns in ["mnt", "uts", "ipc", "pid", "net"] {
        put(tmp.path(), &format!("self/ns/{ns}"), "");
    }
    let f = namespaces(tmp.path());
    assert_eq!(f.status, Status::Warn);
    assert!(f.detail.contains("cgroup user time"), "{}", f.detail);
    for ns in ["cgroup", "user", "time"] {
        put(tmp.path(), &format!("self/ns/{ns}"), "");
    }
    assert_eq!(namespaces(tmp.path()).status, Status::Ok);
    fs::remove_file(tmp.path().join("self/ns/pid")).unwrap();
    let f = namespaces(tmp.path());
    assert_eq!(
        (f.status, f.detail.as_str()),
        (Status::Fail, "missing: pid")
    );
    // The real host has them all.
    assert_ne!(namespaces(Path::new("/proc")).status, Status::Fail);
}

#[test]
fn path_lookup_and_lxc_version() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    put(&a, "lxc-start", "");
    put(&b, "lxc-start", "");
    fs::set_permissions(b.join("lxc-start"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths([&a, &b]).unwrap();
    // a/lxc-start is not executable, so b's wins.
    assert_eq!(
        find_in_path("lxc-start", Some(&path)),
        Some(b.join("lxc-start"))
    );
    assert_eq!(find_in_path("lxc-stop", Some(&path)), None);
    assert_eq!(find_in_path("lxc-start", None), None);
    let f = lxc_start(Some(tmp.path().as_os_str()));
    assert_eq!(f.status, Status::Fail);
    assert!(f.detail.contains("not found"), "{}", f.detail);

    assert_eq!(lxc_major("5.0.2\n"), Some(5));
    assert_eq!(lxc_major("6.0.6"), Some(6));
    assert_eq!(lxc_major("garbage"), None);
}

#[test]
fn init_binary_must_be_static() {
    let tmp = tempfile::tempdir().unwrap();
    let stat = tmp.path().join("static");
    fs::write(&stat, elf::tests::elf64(&[1, 1])).unwrap();
    assert_eq!(init_binary(Ok(stat)).status, Status::Ok);
    let dynamic = tmp.path().join("dynamic");
    fs::write(&dynamic, elf::tests::elf64(&[6, 3, 1])).unwrap();
    let f = init_binary(Ok(dynamic));
    assert_eq!(f.status, Status::Fail);
    assert!(f.detail.contains("dynamically linked"), "{}", f.detail);
    let script = tmp.path().join("script");
    fs::write(&script, "#!/bin/sh\n").unwrap();
    assert!(init_binary(Ok(script)).detail.contains("not an ELF"));
    let missing = ConfigError::InitBinaryNotFound {
        searched: vec!["/x/lxcri-init".into()],
    };
    assert!(init_binary(Err(missing)).detail.contains("/x/lxcri-init"));
}

#[test]
fn writable_dirs_leave_no_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let existing = tmp.path().join("exists");
    fs::create_dir(&existing).unwrap();
    let f = writable_dir("runtime_root", &existing);
    assert_eq!(f.status, Status::Ok, "{}", f.detail);
    assert_eq!(fs::read_dir(&existing).unwrap().count(), 0, "probe removed");

    let deep = tmp.path().join("new/a/b");
    let f = writable_dir("lxcpath", &deep);
    assert_eq!(f.status, Status::Ok, "{}", f.detail);
    assert!(f.detail.contains("can be created"));
    assert!(!tmp.path().join("new").exists(), "created dirs removed");

    let file = tmp.path().join("file");
    fs::write(&file, "").unwrap();
    assert_eq!(
        writable_dir("lxcpath", &file.join("x")).status,
        Status::Fail
    );
}

#[test]
fn overlay_seccomp_apparmor() {
    let tmp = tempfile::tempdir().unwrap();
    put(
        tmp.path(),
        "filesystems",
        "nodev\tsysfs\nnodev\ttmpfs\n\text4\n",
    );
    assert_eq!(overlay(tmp.path()).status, Status::Fail);
    put(
        tmp.path(),
        "filesystems",
        "nodev\tsysfs\nnodev\toverlay\n\text4\n",
    );
    assert_eq!(overlay(tmp.path()).status, Status::Ok);

    put(tmp.path(), "self/status", "Name:\tx\n");
    assert_eq!(seccomp(tmp.path()).status, Status::Fail);
    put(
        tmp.path(),
        "self/status",
        &status_file(0, "000001ffffffffff"),
    );
    put(
        tmp.path(),
        "sys/kernel/seccomp/actions_avail",
        "kill_process kill_thread trap errno\n",
    );
    let f = seccomp(tmp.path());
    assert_eq!(f.status, Status::Ok);
    assert!(f.detail.contains("errno"), "{}", f.detail);

    assert_eq!(apparmor(tmp.path()).status, Status::Warn);
    put(tmp.path(), "module/apparmor/parameters/enabled", "Y\n");
    assert_eq!(apparmor(tmp.path()).status, Status::Ok);
}

#[test]
fn root_and_capabilities() {
    let tmp = tempfile::tempdir().unwrap();
    put(
        tmp.path(),
        "self/status",
        &status_file(0, "000001ffffffffff"),
    );
    assert_eq!(root(tmp.path()).status, Status::Ok);
    // What this CI machine has: everything but CAP_SYS_RESOURCE.
    put(
        tmp.path(),
        "self/status",
        &status_file(0, "000001fffeffffff"),
    );
    let f = root(tmp.path());
    assert_eq!(f.status, Status::Warn);
    assert!(f.detail.contains("CAP_SYS_RESOURCE"), "{}", f.detail);
    put(
        tmp.path(),
        "self/status",
        &status_file(0, "0000000000000000"),
    );
    assert_eq!(root(tmp.path()).status, Status::Fail);
    put(
        tmp.path(),
        "self/status",
        &status_file(1000, "0000000000000000"),
    );
    let f = root(tmp.path());
    assert_eq!(f.status, Status::Fail);
    assert!(f.detail.contains("uid 1000"), "{}", f.detail);
    put(tmp.path(), "self/status", "garbage");
    assert_eq!(root(tmp.path()).status, Status::Fail);
}

#[test]
fn bad_config_is_a_failed_check_and_defaults_are_used() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host {
        proc: tmp.path().join("proc"),
        sys: tmp.path().join("sys"),
        cgroup: tmp.path().join("cgroup"),
        run: tmp.path().join("run"),
        kubelet_config: tmp.path().join("kubelet.yaml"),
        path_env: None,
    };
    let err = ConfigError::UnknownKey { key: "x".into() };
    let findings = all(&host, Err(err));
    assert_eq!(findings[0].name, "config");
    assert_eq!(findings[0].status, Status::Fail);
    assert!(findings.len() > 10);
    let names: Vec<_> = findings.iter().map(|f| f.name).collect();
    assert!(names.contains(&"lxcri-init") && names.contains(&"apparmor"));
}

#[test]
fn proc_events_are_needed() {
    assert_eq!(proc_events(Ok(false)).status, Status::Ok);
    let pidfs = proc_events(Ok(true));
    assert_eq!(pidfs.status, Status::Ok);
    assert!(pidfs.detail.contains("pidfs"), "{}", pidfs.detail);
    let denied = proc_events(Err(std::io::Error::from(
        std::io::ErrorKind::PermissionDenied,
    )));
    assert_eq!(denied.status, Status::Fail);
    assert!(
        denied.detail.contains("CONFIG_PROC_EVENTS"),
        "{}",
        denied.detail
    );
}

#[test]
fn renders_table_and_json() {
    let findings = [
        finding("config", Status::Ok, "defaults"),
        finding("lxcri-init", Status::Fail, "line one\nline two\n"),
    ];
    let t = table(&findings);
    assert_eq!(
        t,
        "OK    config      defaults\nFAIL  lxcri-init  line one\n                  line two\n"
    );
    let v: serde_json::Value = serde_json::from_str(&json(&findings, true)).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["checks"][1]["status"], "fail");
    assert_eq!(v["checks"][1]["name"], "lxcri-init");
}
