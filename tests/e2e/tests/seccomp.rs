//! Seccomp profiles (`ctr run --seccomp --seccomp-profile FILE`): a denied
//! syscall fails with the profile's errno, a killing rule kills the
//! process; lxcri gives what runc gives.

use lxcri_e2e::{assert_same, runtimes, Containerd};
use serde_json::json;

/// Allows everything but `mkdir`/`mkdirat`, which get `action`.
fn profile(ctd: &Containerd, name: &str, action: serde_json::Value) -> String {
    let mut rule = json!({ "names": ["mkdir", "mkdirat"] });
    rule.as_object_mut()
        .unwrap()
        .extend(action.as_object().unwrap().clone());
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [rule],
    });
    let path = ctd.dir().join(format!("seccomp-{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&profile).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn errno_rule_denies_with_eperm() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let file = profile(
        &ctd,
        "eperm",
        json!({ "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }),
    );
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("eperm");
        let script = "mkdir /tmp/d; echo mkdir=$?; touch /tmp/f && echo other-syscalls-ok";
        let out = ctd.run(
            rt,
            &id,
            &["sh", "-c", script],
            &["--seccomp", "--seccomp-profile", &file],
        );
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        assert_eq!(out.stdout, "mkdir=1\nother-syscalls-ok\n", "{rt}: {out}");
        assert!(
            out.stderr.contains("Operation not permitted"),
            "{rt}: {out}"
        );
        results.push((rt, out.stdout));
    }
    assert_same("errno rule", &results);
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn errno_ret_is_honoured() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    // 122 = EDQUOT: anything but runc's default EPERM shows errnoRet is used.
    let file = profile(
        &ctd,
        "edquot",
        json!({ "action": "SCMP_ACT_ERRNO", "errnoRet": 122 }),
    );
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("edquot");
        let out = ctd.run(
            rt,
            &id,
            &["mkdir", "/tmp/d"],
            &["--seccomp", "--seccomp-profile", &file],
        );
        assert_eq!(out.code, Some(1), "{rt}: {out}");
        assert!(out.stderr.contains("quota exceeded"), "{rt}: {out}");
        results.push((rt, out.stderr));
    }
    assert_same("errnoRet", &results);
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn kill_rule_kills_the_process() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let file = profile(&ctd, "kill", json!({ "action": "SCMP_ACT_KILL_PROCESS" }));
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("kill");
        // mkdir itself is the container's process: the kill ends the task.
        let out = ctd.run(
            rt,
            &id,
            &["mkdir", "/tmp/d"],
            &["--seccomp", "--seccomp-profile", &file],
        );
        // A signal death (128 + n), not an error exit.
        assert!(matches!(out.code, Some(c) if c > 128), "{rt}: {out}");
        results.push((rt, out.code));
    }
    // SIGSYS: 128 + 31 = 159 on runc here; lxcri must report the same.
    assert_same("exit code after SCMP_ACT_KILL_PROCESS", &results);
}
