//! The OCI process settings (env, cwd, read-only rootfs, rlimits, user,
//! capabilities, umask, OOM score), sysctls and limits: lxcri must give
//! what runc gives for the same `ctr run`.

use lxcri_e2e::{assert_same, runtimes, spec, Containerd, Runtime};
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

/// What a process learns of its stdio and does with it by path, the way
/// images log (nginx links its logs to `/dev/stdout`).
const STDIO_BY_PATH: &str =
    "id -u; stat -L -c '%u %F' /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2; \
                             echo out > /dev/stdout && echo err > /dev/stderr && echo by-path";

/// A non-root process's stdio is its own, as runc's init makes it
/// (`fixStdioPermissions`): it can open `/dev/stdout` and `/dev/stderr`
/// again, as the container's init and as an exec, and its pty is its own.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_non_root_process_owns_its_stdio() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("stdio-user");
        let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", STDIO_BY_PATH]);
        s["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
        let init = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        let running = ctd.new_id("stdio-exec");
        ctd.run_detached(rt, &running, &["sleep", "1000"], &[]);
        let exec = ctd.exec(
            &running,
            "u",
            &["sh", "-c", STDIO_BY_PATH],
            &["--user", "1000:1000"],
        );
        // With a terminal the pty is the user's.
        let tty = ctd.exec_tty_with(
            &running,
            "t",
            &[
                "sh",
                "-c",
                "stat -c %u $(tty) && echo by-path > /dev/stdout",
            ],
            &["--user", "1000:1000"],
        );
        ctd.remove(&running);
        let tty_lines: Vec<&str> = tty.stdout.lines().map(str::trim).collect();
        assert_eq!(
            (tty.code, tty_lines.as_slice()),
            (Some(0), &["1000", "by-path"][..]),
            "{rt}: {tty}"
        );
        for out in [&init, &exec] {
            assert_eq!(
                (out.code, out.stdout.as_str(), out.stderr.as_str()),
                (
                    Some(0),
                    "1000\n1000 fifo\n1000 fifo\n1000 fifo\nout\nby-path\n",
                    "err\n"
                ),
                "{rt}: {out}"
            );
        }
        results.push((rt, (init.stdout, exec.stdout, tty.stdout)));
    }
    assert_same("a non-root process's stdio", &results);
}

/// A container's stdio that is `/dev/null` (`ctr run --null-io`; a CRI
/// container without stdin) is the container's own `/dev/null`, opened
/// read-write, as runc's init reopens it (`reOpenDevNull`): same device and
/// inode as the container's `/dev/null`, `O_RDWR` in its fdinfo.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn null_stdio_is_the_containers_dev_null() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    const PROBE: &str = "null=$(stat -c %d:%i /dev/null); for n in 0 1 2; do \
        if [ \"$(stat -L -c %d:%i /proc/1/fd/$n)\" = \"$null\" ]; then own=own; else own=other; fi; \
        echo \"$n $own $(grep flags /proc/1/fdinfo/$n)\"; done";
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("null-io");
        ctd.run_detached(rt, &id, &["sleep", "1000"], &["--null-io"]);
        let out = ctd.exec(&id, "probe", &["sh", "-c", PROBE], &[]);
        ctd.remove(&id);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (
                Some(0),
                "0 own flags:\t0100002\n1 own flags:\t0100002\n2 own flags:\t0100002\n"
            ),
            "{rt}: {out}"
        );
        results.push((rt, out.stdout));
    }
    assert_same("null stdio", &results);
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

/// What the app sees of the rest of `process` (umask, OOM score, no new
/// privileges, supplementary groups), of the sysctls and of the limits in
/// its v1 cgroup files, with the spec's cgroup mount: runc's. The device
/// rules are compared as a set: the kernel lists them in the order they
/// were written, and runc writes the difference from what it found. On
/// pve PVE names the CT's cgroup and LXC mounts it (as in view.rs): the
/// cgroup files are left out there.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn process_settings_sysctls_and_limits_are_runcs() {
    let ctd = Containerd::start();
    let settings = r#"
        echo umask $(umask) oom $(cat /proc/self/oom_score_adj)
        grep -E '^(Groups|NoNewPrivs|Cpus_allowed_list|Mems_allowed_list)' /proc/self/status
        echo shm $(cat /proc/sys/kernel/shm_rmid_forced) msgmax $(cat /proc/sys/kernel/msgmax)"#;
    let cgroup_files = r#"
        cd /sys/fs/cgroup || exit 1
        for f in memory/memory.limit_in_bytes memory/memory.soft_limit_in_bytes \
            memory/memory.swappiness cpu/cpu.shares cpu/cpu.cfs_quota_us \
            cpu/cpu.cfs_period_us cpuset/cpuset.cpus cpuset/cpuset.mems pids/pids.max; do
            [ -d "${f%/*}" ] && echo "$f $(cat $f)"
        done
        [ -d devices ] && sort devices/devices.list
        true"#;
    let script = match ctd.pve() {
        None => format!("{settings}{cgroup_files}"),
        Some(_) => settings.to_string(),
    };
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("settings");
        let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", &script]);
        s["process"]["user"] =
            json!({ "uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 63 });
        s["process"]["oomScoreAdj"] = json!(321);
        s["process"]["noNewPrivileges"] = json!(true);
        s["linux"]["sysctl"] = json!({ "kernel.shm_rmid_forced": "1", "kernel.msgmax": "4096" });
        s["linux"]["resources"] = json!({
            "devices": [
                { "allow": false, "access": "rwm" },
                { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" },
            ],
            "memory": { "limit": 67108864, "reservation": 33554432, "swappiness": 10 },
            "cpu": { "shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0" },
            "pids": { "limit": 77 },
        });
        s["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        }));
        let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        assert!(out.stdout.contains("umask 0077 oom 321\n"), "{rt}: {out}");
        results.push((rt, out.stdout));
    }
    assert_same("process settings, sysctls and limits", &results);
}

/// A spec without `oomScoreAdj` (`ctr run`): the process has its shim's
/// score, containerd's plus one (containerd started by the test inherits
/// the test's), as runc's inherits it. On pve the CT is not started by the
/// shim: lxcri gives it the shim's score.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn an_unset_oom_score_adj_is_the_shims() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let expected = format!("{}\n", (own + 1).min(1000));
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("oom-default");
        let out = ctd.run(rt, &id, &["cat", "/proc/self/oom_score_adj"], &[]);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), expected.as_str()),
            "{rt}: {out}"
        );
        results.push((rt, out.stdout));
    }
    assert_same("an unset oom_score_adj", &results);
}

/// OCI `domainname`, which runc sets from 1.2 on (1.1.5, here, ignores
/// it): the UTS namespace's NIS domain name, and a `kernel.domainname`
/// sysctl wins over it, as runc sets the sysctls after.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn the_domainname_is_set_and_a_sysctl_wins() {
    if !Runtime::Lxcri.selected() {
        return;
    }
    let ctd = Containerd::start();
    for (sysctl, expected) in [(None, "example.org"), (Some("from.sysctl"), "from.sysctl")] {
        let id = ctd.new_id("domain");
        let mut s = spec::busybox_spec(&ctd, &id, &["cat", "/proc/sys/kernel/domainname"]);
        s["domainname"] = json!("example.org");
        if let Some(value) = sysctl {
            s["linux"]["sysctl"] = json!({ "kernel.domainname": value });
        }
        let out = ctd.run_config(Runtime::Lxcri, &id, &spec::write(&ctd, &id, &s));
        assert_eq!((out.code, out.stdout.trim()), (Some(0), expected), "{out}");
    }
}

/// `process.scheduler`, `process.ioPriority` and `linux.personality`
/// (runc 1.2+): the process, and an exec in the container, run with them,
/// as seen from the host (`chrt`, `ionice`, `/proc/PID`) and from inside
/// (`uname -m` under `LINUX32`). runc 1.1.5 (Debian's) ignores all three:
/// there lxcri runs alone against the expected values. containerd before
/// 2.0 (runtime-spec before 1.2) drops the two process fields from the
/// spec it writes into the bundle, so there only the personality is set.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn scheduler_io_priority_and_personality_are_runcs() {
    let ctd = Containerd::start();
    let process_fields = lxcri_e2e::containerd_version() >= (2, 0);
    let expected = if process_fields {
        "pid PID's current scheduling policy: SCHED_BATCH|SCHED_RESET_ON_FORK\n\
         pid PID's current scheduling priority: 0\n\
         best-effort: prio 6\n\
         nice 5\n\
         personality 00000008\n\
         exec: i686\n5\n"
    } else {
        "pid PID's current scheduling policy: SCHED_OTHER\n\
         pid PID's current scheduling priority: 0\n\
         none: prio 0\n\
         nice 0\n\
         personality 00000008\n\
         exec: i686\n0\n"
    };
    let observe = |pid: u32| {
        let host = |cmd: &str, args: &[&str]| {
            let out = std::process::Command::new(cmd)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("{cmd}: {e}"));
            String::from_utf8_lossy(&out.stdout).replace(&pid.to_string(), "PID")
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // After the `(comm)` field: state is field 3, nice field 19.
        let nice = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(16))
            .unwrap_or("?")
            .to_string();
        let personality =
            std::fs::read_to_string(format!("/proc/{pid}/personality")).unwrap_or_default();
        format!(
            "{}{}nice {nice}\npersonality {}",
            host("chrt", &["-p", &pid.to_string()]),
            host("ionice", &["-p", &pid.to_string()]),
            personality.trim()
        )
    };
    let mut results = Vec::new();
    for rt in runtimes() {
        if rt == Runtime::Runc && !lxcri_e2e::runc_is_1_2_or_later() {
            continue;
        }
        let id = ctd.new_id("sched");
        let mut s = spec::busybox_spec(&ctd, &id, &["sleep", "1000"]);
        if process_fields {
            s["process"]["scheduler"] = json!({
                "policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"],
            });
            s["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 6 });
        }
        s["linux"]["personality"] = json!({ "domain": "LINUX32" });
        let out = ctd.run_config_detached(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        let (pid, _) = ctd.task(&id).expect("task listed");
        let process = observe(pid);
        let exec = ctd.exec(
            &id,
            "e1",
            &["sh", "-c", "uname -m; cut -d' ' -f19 /proc/self/stat"],
            &[],
        );
        ctd.remove(&id);
        assert_eq!(exec.code, Some(0), "{rt}: {exec}");
        let seen = format!("{process}\nexec: {}", exec.stdout);
        assert_eq!(seen, expected, "{rt}");
        results.push((rt, seen));
    }
    assert_same("scheduler, I/O priority and personality", &results);
}

/// A containerd pinned to one CPU (systemd's `CPUAffinity=` on a node that
/// keeps CPUs for pods): the container's process and an exec run on every
/// CPU their cgroup allows, not on containerd's, as runc 1.2.7+/1.3.1+
/// reset it (1.1.5, Debian's, lets them inherit it: lxcri runs alone
/// there). With containerd 2.1+ (which passes `process.execCPUAffinity`
/// on) an exec's `final` CPUs hold for the exec and not for the process.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn the_cpu_affinity_is_the_cgroups_not_containerds() {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let online = online.trim();
    if online == "0" {
        eprintln!("skipped: one CPU, nothing to pin away from");
        return;
    }
    let ctd = Containerd::start();
    let pin = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", "0", &ctd.pid().to_string()])
        .output()
        .expect("taskset");
    assert!(pin.status.success(), "{pin:?}");
    let exec_affinity = lxcri_e2e::containerd_version() >= (2, 1);
    let v = lxcri_e2e::runc_version();
    let runc_resets = v >= (1, 3, 1) || (v.0, v.1) == (1, 2) && v.2 >= 7;
    let allowed = |status: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or("?")
            .trim()
            .to_string()
    };
    let mut results = Vec::new();
    for rt in runtimes() {
        if rt == Runtime::Runc && !runc_resets {
            continue;
        }
        let id = ctd.new_id("affinity");
        let mut s = spec::busybox_spec(&ctd, &id, &["sleep", "1000"]);
        if exec_affinity {
            s["process"]["execCPUAffinity"] = json!({ "initial": "0", "final": "1" });
        }
        let out = ctd.run_config_detached(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        let (pid, _) = ctd.task(&id).expect("task listed");
        let process =
            allowed(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default());
        let exec = ctd.exec(&id, "e1", &["cat", "/proc/self/status"], &[]);
        ctd.remove(&id);
        assert_eq!(exec.code, Some(0), "{rt}: {exec}");
        let seen = format!("process {process}, exec {}", allowed(&exec.stdout));
        let exec_cpus = if exec_affinity { "1" } else { online };
        assert_eq!(seen, format!("process {online}, exec {exec_cpus}"), "{rt}");
        results.push((rt, seen));
    }
    assert_same("CPU affinity under a pinned containerd", &results);
}

/// `linux.timeOffsets` of a new time namespace: the container's clocks
/// read as runc's (runc 1.2+; containerd 1.7+ passes the field on, 1.6
/// drops it: there the test has nothing to run).
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn time_namespace_offsets_are_runcs() {
    if lxcri_e2e::containerd_version() < (1, 7) {
        eprintln!("skipped: containerd 1.6 drops linux.timeOffsets from the bundle's spec");
        return;
    }
    let ctd = Containerd::start();
    let mut results = Vec::new();
    for rt in runtimes() {
        if rt == Runtime::Runc && !lxcri_e2e::runc_is_1_2_or_later() {
            continue;
        }
        let id = ctd.new_id("timens");
        let script = "cat /proc/self/timens_offsets; \
            [ \"$(cut -d. -f1 /proc/uptime)\" -ge 86400 ] && echo uptime shifted";
        let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", script]);
        s["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({ "type": "time" }));
        s["linux"]["timeOffsets"] = json!({
            "boottime": { "secs": 86400 },
            "monotonic": { "secs": -60 },
        });
        let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (
                Some(0),
                "monotonic         -60         0\nboottime        86400         0\nuptime shifted\n"
            ),
            "{rt}: {out}"
        );
        results.push((rt, out.stdout));
    }
    assert_same("time namespace offsets", &results);
}

/// Prints the calling process's session keyring: its serial, then its
/// description (`type;uid;gid;perm;name`). Built static: the image has no
/// libc.
const KEYRING_PROBE: &str = r#"#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/keyctl.h>
int main(void) {
    long id = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    char desc[256] = {0};
    if (id < 0 || syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, sizeof desc - 1) < 0)
        return 1;
    printf("%ld %s\n", id, desc);
    return 0;
}
"#;

/// The session keyrings, as runc's: the container's process has one of
/// its own, `_ses.<id>`, searchable by its user (runc adds
/// `KEY_USR_SEARCH`, or `KEY_OTH_SEARCH` in a user namespace), which every
/// exec joins while still root, whatever user it runs as; in a user
/// namespace an exec does not find it so (the root's user bits lack search)
/// and makes one of that name. None is the session keyring of the host
/// processes that started them (before, an exec had the node's root's).
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn session_keyrings_are_the_containers_own() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let probe = ctd.dir().join("keyring-probe");
    lxcri_e2e::cmd::compile_static_c(&probe, "keyring", KEYRING_PROBE);
    let bind = format!(
        "type=bind,src={},dst=/probe,options=rbind:ro",
        probe.display()
    );
    let mapping = "0:100000:65536";
    let mut results = Vec::new();
    for rt in runtimes() {
        let mut modes = Vec::new();
        for userns in [false, true] {
            let id = ctd.new_id("keyring");
            let mut flags = vec!["--mount", &bind];
            if userns {
                flags.extend(["--uidmap", mapping, "--gidmap", mapping]);
            }
            ctd.run_detached(
                rt,
                &id,
                &["sh", "-c", "/probe/keyring > /tmp/pid1; exec sleep 1000"],
                &flags,
            );
            let probed = |exec_id: &str, flags: &[&str]| {
                let out = ctd.exec(&id, exec_id, &["/probe/keyring"], flags);
                assert_eq!(out.code, Some(0), "{rt}: {out}");
                out.stdout.trim().to_string()
            };
            let root = probed("root", &[]);
            let user = probed("user", &["--user", "1000"]);
            let pid1 = ctd.exec(&id, "pid1", &["cat", "/tmp/pid1"], &[]);
            ctd.remove(&id);
            let pid1 = pid1.stdout.trim().to_string();
            // Serials differ per run: keep which ones are the same.
            let serial = |line: &str| line.split(' ').next().unwrap_or("").to_string();
            let named = |line: &str| {
                line.split_once(' ')
                    .map_or("", |(_, desc)| desc)
                    .replace(&id, "ID")
            };
            let seen = (
                userns,
                named(&pid1),
                named(&root),
                named(&user),
                serial(&root) == serial(&pid1),
                serial(&user) == serial(&pid1),
            );
            if !userns {
                assert_eq!(
                    seen,
                    (
                        false,
                        "keyring;0;0;3f1b0000;_ses.ID".to_string(),
                        "keyring;0;0;3f1b0000;_ses.ID".to_string(),
                        "keyring;0;0;3f1b0000;_ses.ID".to_string(),
                        true,
                        true,
                    ),
                    "{rt}: pid1 {pid1}, root exec {root}, user exec {user}"
                );
            }
            modes.push(seen);
        }
        results.push((rt, modes));
    }
    assert_same("session keyrings", &results);
}
