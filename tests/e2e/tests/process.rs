//! The OCI process settings (env, cwd, read-only rootfs, rlimits, user,
//! capabilities): lxcri must give what runc gives for the same `ctr run`.

use lxcri_e2e::{assert_same, runtimes, spec, Containerd};
use serde_json::json;

/// The capability lines of `/proc/self/status`.
const CAPS: &str = "grep ^Cap /proc/self/status";

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn env_is_the_same() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("env");
        let out = ctd.run(
            rt,
            &id,
            &["env"],
            &["--env", "FOO=bar", "--env", "SPACED=a b"],
        );
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        let mut env: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
        env.sort();
        assert!(env.contains(&"FOO=bar".into()), "{rt}: {env:?}");
        assert!(env.contains(&"SPACED=a b".into()), "{rt}: {env:?}");
        assert!(env.iter().any(|e| e.starts_with("PATH=")), "{rt}: {env:?}");
        results.push((rt, env));
    }
    // Whatever runc adds on its own (HOME) lxcri must add too.
    assert_same("environment", &results);
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn cwd() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("cwd");
        let out = ctd.run(rt, &id, &["pwd"], &["--cwd", "/tmp"]);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "/tmp\n"),
            "{rt}: {out}"
        );
        // A cwd that does not exist in the image is created, as runc does.
        let id = ctd.new_id("cwd");
        let out = ctd.run(rt, &id, &["pwd"], &["--cwd", "/new/dir"]);
        results.push((rt, (out.code, out.stdout)));
    }
    assert_same("pwd in a missing --cwd", &results);
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn read_only_rootfs() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("ro");
        let out = ctd.run(rt, &id, &["touch", "/x"], &["--read-only"]);
        assert_ne!(out.code, Some(0), "{rt}: {out}");
        assert!(out.stderr.contains("Read-only file system"), "{rt}: {out}");
        // The default mounts (/dev, /run, ...) stay writable.
        let id = ctd.new_id("ro");
        let out = ctd.run(
            rt,
            &id,
            &["sh", "-c", "touch /dev/shm/x /run/x && echo ok"],
            &["--read-only"],
        );
        results.push((rt, (out.code, out.stdout)));
    }
    assert_same("writes to /dev/shm and /run with --read-only", &results);
    if let Some((_, (code, _))) = results.first() {
        assert_eq!(*code, Some(0), "{results:?}");
    }
}

/// ctr 1.6 has no rlimit flag (`ctr run --help`): the limits go into a full
/// spec given with `--config`. Only lowering is tried: root here lacks
/// CAP_SYS_RESOURCE, so raising a hard limit fails on any runtime.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn rlimits() {
    let ctd = Containerd::start();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("rlimit");
        let mut s = spec::busybox_spec(
            &ctd,
            &id,
            &["sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -Su"],
        );
        s["process"]["rlimits"] = json!([
            { "type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000 },
            { "type": "RLIMIT_NPROC", "soft": 300, "hard": 400 },
        ]);
        let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "512\n1000\n300\n"),
            "{rt}: {out}"
        );
        results.push((rt, out.stdout));
    }
    assert_same("rlimits", &results);
}

/// ctr 1.6 has no `--user` for `run`: the user goes into a `--config` spec.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn user_and_groups() {
    let ctd = Containerd::start();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("user");
        let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", "id; grep ^Cap /proc/self/status"]);
        s["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [65534] });
        let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        assert!(
            out.stdout
                .starts_with("uid=1000(user) gid=1000(user) groups="),
            "{rt}: {out}"
        );
        assert!(out.stdout.contains("65534(nogroup)"), "{rt}: {out}");
        results.push((rt, out.stdout));
    }
    // Includes the capability sets of a non-root process (CapEff/CapPrm
    // empty, CapBnd kept).
    assert_same("id and capabilities of uid 1000", &results);
}

fn caps_with(flags: &[&str], what: &str) {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("caps");
        let out = ctd.run(rt, &id, &["sh", "-c", CAPS], flags);
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert!(out.stdout.contains(set), "{rt}: no {set}: {out}");
        }
        results.push((rt, out.stdout));
    }
    assert_same(what, &results);
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn capabilities_default() {
    caps_with(&[], "capabilities with default flags");
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn capabilities_privileged() {
    caps_with(&["--privileged"], "capabilities with --privileged");
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn capabilities_cap_add_and_drop() {
    caps_with(
        &["--cap-add", "CAP_SYS_ADMIN"],
        "capabilities with --cap-add CAP_SYS_ADMIN",
    );
    caps_with(
        &["--cap-drop", "CAP_CHOWN"],
        "capabilities with --cap-drop CAP_CHOWN",
    );
}
