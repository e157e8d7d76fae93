//! OCI hooks, side by side with runc: each phase runs where runc runs it
//! and reads the same state; a failing hook fails create (or ends the
//! process) as on runc, and nothing is left behind.
//!
//! Each hook is `/bin/sh -c SCRIPT` writing what it sees into a host
//! directory the test made (bound into the container for the phases that
//! run inside it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lxcri_e2e::{assert_same, cmd, runtimes, spec, Containerd, Runtime};
use serde_json::{json, Value};

/// What one phase saw: the state fields that do not name this run, and
/// the lines its script printed.
#[derive(Debug, PartialEq)]
struct Seen {
    status: String,
    /// `host` for a host pid, else the pid itself (1: in the container's
    /// pid namespace); absent in poststop.
    pid: Option<String>,
    bundle_is_the_bundle: bool,
    annotations: BTreeMap<String, String>,
    lines: Vec<String>,
}

/// Where each phase runs, as its script sees it: the mount, network and
/// pid namespaces against the runtime's (the test's, in `$HOST_<ns>`), the
/// uid, the signals it starts with ignored and blocked (32 and 33 aside:
/// the harness's chain ignores them, and runc's hooks inherit 32).
const WHERE: &str = "for ns in mnt net pid; do \
      eval \"host=\\$HOST_$ns\"; \
      [ \"$(readlink /proc/self/ns/$ns)\" = \"$host\" ] \
        && echo \"$ns host\" || echo \"$ns other\"; done; \
    echo \"uid $(id -u)\"; \
    ign=$(sed -n 's/^SigIgn:\\t//p' /proc/self/status); \
    blk=$(sed -n 's/^SigBlk:\\t//p' /proc/self/status); \
    printf 'ignored %x blocked %x\\n' $((0x$ign & ~0x180000000)) $((0x$blk))";

/// `HOST_mnt=mnt:[...]`... and a `PATH`, for every hook.
fn hook_env(path: &str) -> Value {
    let mut env = vec![format!("PATH={path}")];
    for ns in ["mnt", "net", "pid"] {
        let link = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        env.push(format!("HOST_{ns}={}", link.display()));
    }
    json!(env)
}

fn hook(out: &Path, phase: &str, script: &str) -> Value {
    let script = format!(
        "cat > {o}/{phase}.state; {{ {script}; }} > {o}/{phase}.out 2>&1",
        o = out.display()
    );
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", script],
        "env": hook_env("/usr/sbin:/usr/bin:/sbin:/bin"),
        "timeout": 30,
    })
}

fn read_seen(out: &Path, phase: &str, bundle: &Path, root: &Path) -> Option<Seen> {
    let state = std::fs::read_to_string(out.join(format!("{phase}.state"))).ok()?;
    let state: Value = serde_json::from_str(&state).expect("the state is JSON");
    let lines = std::fs::read_to_string(out.join(format!("{phase}.out")))
        .unwrap_or_default()
        .replace(&root.display().to_string(), "ROOT")
        .lines()
        .map(String::from)
        .collect();
    Some(Seen {
        status: state["status"].as_str().unwrap_or("").to_string(),
        pid: state["pid"].as_i64().map(|p| {
            if p == 1 {
                "1".to_string()
            } else {
                "host".to_string()
            }
        }),
        bundle_is_the_bundle: state["bundle"].as_str() == bundle.to_str(),
        annotations: serde_json::from_value(state["annotations"].clone()).unwrap_or_default(),
        lines,
    })
}

/// Every phase: where it runs, what it reads, what the process sees of
/// it. runc 1.1-1.3 runs poststart at create (before the process runs),
/// the runtime spec after start: lxcri follows the spec, so poststart is
/// compared apart.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn every_phase_runs_where_runcs_does() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    let mut poststarts = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("hooks");
        let out = ctd.dir().join(format!("hooks-out-{id}"));
        std::fs::create_dir_all(&out).unwrap();
        // Waits for poststart (runc's ran at create) so it sees the process.
        let app = "cat /hook-made; touch /x 2>/dev/null || echo read-only; \
                   cat /hooks-out/startContainer.marker; \
                   grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status > /hooks-out/app.caps; \
                   for i in $(seq 100); do [ -e /hooks-out/poststart.done ] && break; sleep 0.1; done";
        let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", app]);
        let root = PathBuf::from(s["root"]["path"].as_str().unwrap());
        s["root"]["readonly"] = json!(true);
        s["annotations"] = json!({"org.example/hooked": "yes"});
        s["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/hooks-out", "type": "bind",
            "source": out, "options": ["rbind", "rw"]}));
        s["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid"]}));
        let pid_of_state = "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/' \"$0\")";
        let host_probe = format!(
            "{WHERE}; {pid_of_state}; \
             grep -c '/mnt/t ' /proc/$pid/mountinfo; \
             [ \"$(readlink /proc/$pid/ns/net)\" = \"$(readlink /proc/1/ns/net)\" ] \
               && echo 'container net host' || echo 'container net own'"
        );
        let host_hook = |phase: &str| {
            let probe = format!("{host_probe}; touch {}/{phase}.done", out.display());
            let mut h = hook(&out, phase, &probe);
            // $0: the state file, for the pid.
            h["args"]
                .as_array_mut()
                .unwrap()
                .push(json!(out.join(format!("{phase}.state"))));
            h
        };
        // In the container's namespaces, its mount namespace holding the
        // host's tree with the container's own at root.path, the cwd;
        // files made there are the container's, a read-only rootfs is not
        // read-only yet.
        let create_container = format!(
            "{WHERE}; pwd; stat -f -c %T mnt/t; echo made-by-hook > hook-made && echo wrote"
        );
        // With the process's identity, capabilities and seccomp filter.
        let start_container = format!(
            "{WHERE}; pwd; echo seen-by-app > /hooks-out/startContainer.marker; \
             grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status > /hooks-out/startContainer.caps"
        );
        s["hooks"] = json!({
            "prestart": [host_hook("prestart")],
            "createRuntime": [host_hook("createRuntime")],
            "createContainer": [hook(&out, "createContainer", &create_container)],
            "startContainer": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", format!(
                    "cat > /hooks-out/startContainer.state; {{ {start_container}; }} > /hooks-out/startContainer.out 2>&1")],
                "env": hook_env("/bin"),
            }],
            "poststart": [host_hook("poststart")],
            "poststop": [hook(&out, "poststop", "echo stopped")],
        });
        let run = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(run.code, Some(0), "{rt}: {run}");
        assert_eq!(
            run.stdout, "made-by-hook\nread-only\nseen-by-app\n",
            "{rt}: the process sees what createContainer and startContainer made"
        );
        // poststop runs in delete, which `ctr run --rm` waits for.
        let bundle = ctd.bundle(&id);
        let seen = |phase: &str| {
            read_seen(&out, phase, &bundle, &root)
                .unwrap_or_else(|| panic!("{rt}: {phase} did not run"))
        };
        let caps = |who: &str| std::fs::read_to_string(out.join(format!("{who}.caps"))).unwrap();
        assert_eq!(
            caps("startContainer"),
            caps("app"),
            "{rt}: startContainer runs as the process"
        );
        let phases = PHASES.map(|p| (p, seen(p)));
        check_where(rt, &phases);
        poststarts.push((rt, seen("poststart")));
        results.push((rt, phases));
    }
    assert_same("what each hook saw", &results);
    // runc 1.1-1.3 ran it at create, when the state said `created`.
    let statuses: Vec<_> = poststarts
        .iter()
        .map(|(rt, s)| (*rt, s.status.as_str()))
        .collect();
    for (rt, status) in statuses {
        let want = if rt == Runtime::Runc {
            "created"
        } else {
            "running"
        };
        assert_eq!(status, want, "{rt}: poststart's state");
    }
    let lines: Vec<_> = poststarts
        .into_iter()
        .map(|(rt, s)| (rt, s.lines))
        .collect();
    assert_same("what poststart saw", &lines);
}

const PHASES: [&str; 5] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststop",
];

/// What runc does, spelled out, so a harness that saw nothing fails too.
#[track_caller]
fn check_where(rt: Runtime, phases: &[(&str, Seen); 5]) {
    let host = [
        "mnt host",
        "net host",
        "pid host",
        "uid 0",
        "ignored 0 blocked 0",
        "1",
        "container net own",
    ];
    let container = [
        "mnt other",
        "net other",
        "pid other",
        "uid 0",
        "ignored 0 blocked 0",
    ];
    for (phase, seen) in phases {
        let (status, pid, lines): (&str, Option<&str>, Vec<&str>) = match *phase {
            "prestart" | "createRuntime" => ("creating", Some("host"), host.to_vec()),
            "createContainer" => (
                "creating",
                Some("1"),
                [&container[..], &["ROOT", "tmpfs", "wrote"]].concat(),
            ),
            "startContainer" => ("created", Some("1"), [&container[..], &["/"]].concat()),
            _ => ("stopped", None, vec!["stopped"]),
        };
        assert_eq!(
            (
                seen.status.as_str(),
                seen.pid.as_deref(),
                seen.lines.iter().map(String::as_str).collect::<Vec<_>>()
            ),
            (status, pid, lines),
            "{rt}: {phase}"
        );
        assert!(seen.bundle_is_the_bundle, "{rt}: {phase}: {seen:?}");
        assert_eq!(
            seen.annotations
                .get("org.example/hooked")
                .map(String::as_str),
            Some("yes"),
            "{rt}: {phase}"
        );
    }
}

/// A hook that fails in each phase: where runc fails create, so does
/// lxcri, naming the hook, and leaves nothing behind. A failed
/// `startContainer` hook ends the process with 255 before it runs, its
/// cause on the container's stderr, as runc 1.2+ (1.1.5, Debian's, exits 1:
/// lxcri is compared with it in the other phases only); a failed
/// `poststop` is only logged, as the runtime spec says (runc 1.2+ fails the
/// delete, so `ctr run --rm` exits 1: compared with 1.1.5 only). A failed
/// `poststart` fails the start and stops the container: runc's fails create
/// (it runs them there), lxcri's after the process ran, as the runtime spec
/// orders them.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_failing_hook_fails_where_runcs_does() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let failing = |script: &str, timeout: Option<u64>| {
        let mut h = json!({"path": "/bin/sh", "args": ["sh", "-c", script]});
        if let Some(t) = timeout {
            h["timeout"] = json!(t);
        }
        json!([h])
    };
    // phase, hooks, ctr's exit code, what both errors say.
    let cases = [
        (
            "prestart",
            failing("echo nope >&2; exit 3", None),
            1,
            "exit status 3",
        ),
        ("createRuntime", failing("sleep 30", Some(1)), 1, "timeout"),
        (
            "createContainer",
            failing("exit 4", None),
            1,
            "exit status 4",
        ),
        (
            "startContainer",
            failing("exit 5", None),
            255,
            "exit status 5",
        ),
        ("poststart", failing("exit 6", None), 1, "exit status 6"),
        ("poststop", failing("exit 7", None), 0, ""),
    ];
    let runc_1_1 = !lxcri_e2e::runc_is_1_2_or_later();
    for (phase, hooks, code, says) in cases {
        let mut results = Vec::new();
        for rt in runtimes() {
            let code = match (rt, phase) {
                (Runtime::Runc, "startContainer") if runc_1_1 => 1,
                (Runtime::Runc, "poststop") if !runc_1_1 => 1,
                _ => code,
            };
            let id = ctd.new_id("hookfail");
            let mut s = spec::busybox_spec(&ctd, &id, &["echo", "ran"]);
            let stopped = ctd.dir().join(format!("poststop-{id}"));
            let poststop = json!([{"path": "/bin/sh",
                "args": ["sh", "-c", format!("touch {}", stopped.display())]}]);
            s["hooks"] = json!({ phase: hooks });
            if phase != "poststop" {
                s["hooks"]["poststop"] = poststop;
            }
            let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
            assert_eq!(out.code, Some(code), "{rt} {phase}: {out}");
            let all = out.all_output();
            assert!(all.contains(says), "{rt} {phase}: {out}");
            if rt == Runtime::Lxcri && code != 0 {
                assert!(
                    all.contains(&format!("hooks.{phase}[0]")),
                    "{rt} {phase}: {out}"
                );
            }
            ctd.ctr(&["containers", "rm", &id]);
            let mut left = Vec::new();
            let clean = cmd::poll(Duration::from_secs(15), || {
                left = ctd.leftovers(&id);
                left.is_empty().then_some(())
            });
            assert!(clean.is_some(), "{rt} {phase}: left behind: {left:#?}");
            // runc ran its poststart at create, before the process.
            let ran = out.stdout == "ran\n";
            let want_ran =
                matches!(phase, "poststop") || (phase == "poststart" && rt == Runtime::Lxcri);
            assert_eq!(ran, want_ran, "{rt} {phase}: {out}");
            // The container ran, so it is destroyed with its poststop
            // hooks, also when create failed.
            let poststop_ran = phase == "poststop" || stopped.exists();
            assert!(poststop_ran, "{rt} {phase}: no poststop");
            results.push((rt, out.code));
        }
        if (phase == "startContainer" && runc_1_1) || (phase == "poststop" && !runc_1_1) {
            continue;
        }
        assert_same(&format!("a failing {phase} hook"), &results);
    }
}

/// In a user namespace (the spec's mappings, the rootfs owned by the
/// mapped root): `createContainer` runs as the container's root there too,
/// and what it writes belongs to the mapped root on the host.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn create_container_hooks_run_in_the_containers_user_namespace() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("hooksuserns");
        let out = ctd.dir().join(format!("hooks-out-{id}"));
        std::fs::create_dir_all(&out).unwrap();
        let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", "stat -c %u /hook-made"]);
        let root = PathBuf::from(s["root"]["path"].as_str().unwrap());
        // The hook writes its findings as the mapped root too.
        spec::in_user_namespace(&mut s, 200000, &[&root, &out]);
        let script = format!("{WHERE}; echo made > hook-made");
        s["hooks"] = json!({"createContainer": [hook(&out, "createContainer", &script)]});
        let run = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(run.code, Some(0), "{rt}: {run}");
        let seen = read_seen(&out, "createContainer", &ctd.bundle(&id), &root)
            .unwrap_or_else(|| panic!("{rt}: the hook did not run"));
        let owner = std::fs::metadata(root.join("hook-made")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (run.stdout.as_str(), owner.uid()),
            ("0\n", 200_000),
            "{rt}: the container's root made it"
        );
        assert_eq!(
            seen.lines,
            [
                "mnt other",
                "net other",
                "pid other",
                "uid 0",
                "ignored 0 blocked 0"
            ],
            "{rt}"
        );
        results.push((rt, (run.stdout, seen.lines, owner.uid())));
    }
    assert_same("a createContainer hook in a user namespace", &results);
}

/// A `prestart` hook that enters the container's mount namespace (as
/// NVIDIA's legacy hook does, `nsenter -m -t PID`) finds the container
/// under `root.path` and the host's programs around it, and a mount it
/// makes there is the container's; so is one a `createContainer` hook
/// makes in its cwd. Neither reaches the host (looked at by a `poststart`
/// hook while the container exists). Also with a shared root (`rshared`,
/// what containerd sets for a pod with a bidirectional mount), a
/// `root.path` that is a mount point on the host (as a snapshotter's
/// rootfs is), and a user namespace.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn hooks_mount_into_the_container_as_on_runc() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    for variant in ["plain", "rshared", "mounted-root", "userns"] {
        hooks_mount_into_the_container(&ctd, variant);
    }
}

/// Unmounts a bind the test made on the host, also when it fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn hooks_mount_into_the_container(ctd: &Containerd, variant: &str) {
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("hooksmount");
        let out = ctd.dir().join(format!("hooks-out-{id}"));
        std::fs::create_dir_all(&out).unwrap();
        let app = "cat /p/by-prestart /p/c/by-create-container; \
                   grep -c -e ' /p ' -e ' /p/c ' /proc/self/mountinfo";
        let mut s = spec::busybox_spec(ctd, &id, &["sh", "-c", app]);
        let real_root = PathBuf::from(s["root"]["path"].as_str().unwrap());
        std::fs::create_dir(real_root.join("p")).unwrap();
        let mut _unmount = None;
        let root = match variant {
            "rshared" => {
                s["linux"]["rootfsPropagation"] = json!("rshared");
                real_root.clone()
            }
            "mounted-root" => {
                let bind = std::process::Command::new("mount")
                    .arg("--bind")
                    .arg(&real_root)
                    .arg(&real_root)
                    .status()
                    .unwrap();
                assert!(bind.success());
                _unmount = Some(Unmount(real_root.clone()));
                real_root.clone()
            }
            "userns" => {
                spec::in_user_namespace(&mut s, 200000, &[&real_root, &out]);
                real_root.clone()
            }
            _ => real_root.clone(),
        };
        let root = root.display();
        let prestart = format!(
            "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/' \"$0\"); \
             nsenter -t $pid -m sh -c 'mount -t tmpfs -o size=1m by-prestart {root}/p && \
               echo p > {root}/p/by-prestart && mkdir {root}/p/c' && echo mounted"
        );
        let mut pre = hook(&out, "prestart", &prestart);
        pre["args"]
            .as_array_mut()
            .unwrap()
            .push(json!(out.join("prestart.state")));
        let mut create_container = "mount -t tmpfs -o size=1m by-cc p/c && \
                                    echo c > p/c/by-create-container && echo mounted"
            .to_string();
        if variant == "userns" {
            // The host's mounts around are locked, as the kernel locks
            // those a user namespace's mount namespace copied.
            create_container += "; umount -l /sys 2>/dev/null && echo unlocked || echo locked";
        }
        // grep -c exits 1 when it counts none.
        let leak_check = "grep -c -e by-prestart -e ' by-cc ' /proc/self/mountinfo; true";
        s["hooks"] = json!({
            "prestart": [pre],
            "createContainer": [hook(&out, "createContainer", &create_container)],
            "poststart": [hook(&out, "poststart", leak_check)],
        });
        let run = ctd.run_config(rt, &id, &spec::write(ctd, &id, &s));
        let said = |phase: &str| {
            std::fs::read_to_string(out.join(format!("{phase}.out"))).unwrap_or_default()
        };
        assert_eq!(
            run.code,
            Some(0),
            "{rt} ({variant}): {run}; prestart said {:?}, createContainer {:?}",
            said("prestart"),
            said("createContainer")
        );
        results.push((
            rt,
            (
                run.stdout,
                said("prestart"),
                said("createContainer"),
                said("poststart"),
            ),
        ));
    }
    assert_same(&format!("mounts made by hooks ({variant})"), &results);
    let (_, (stdout, pre, cc, host)) = &results[0];
    let said_cc = match variant {
        "userns" => "mounted\nlocked\n",
        _ => "mounted\n",
    };
    assert_eq!(
        (stdout.as_str(), pre.as_str(), cc.as_str(), host.as_str()),
        ("p\nc\n2\n", "mounted\n", said_cc, "0\n"),
        "{variant}: what the process saw, what the hooks said, the host's mounts"
    );
}

/// A `startContainer` hook that takes longer than a start usually waits:
/// `poststart` still follows the process's `execve` (lxcri: the runtime
/// spec's order; runc 1.1-1.3 runs it at create, when its init is there).
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn poststart_follows_slow_start_hooks() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    for rt in runtimes() {
        let id = ctd.new_id("hooksslow");
        let out = ctd.dir().join(format!("hooks-out-{id}"));
        std::fs::create_dir_all(&out).unwrap();
        let mut s = spec::busybox_spec(&ctd, &id, &["sleep", "5"]);
        let seen = out.join("poststart");
        s["hooks"] = json!({
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 3"]}],
            "poststart": [{"path": "/bin/sh", "args": ["sh", "-c", format!(
                "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); tr '\\0' ' ' < /proc/$pid/cmdline > {}",
                seen.display())]}],
        });
        let run = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(run.code, Some(0), "{rt}: {run}");
        let cmdline = std::fs::read_to_string(&seen).unwrap();
        match rt {
            Runtime::Lxcri => assert_eq!(cmdline, "sleep 5 ", "{rt}"),
            Runtime::Runc => assert!(cmdline.starts_with("runc init"), "{rt}: {cmdline}"),
        }
    }
}

/// SIGTERM to the container's init while its `startContainer` hooks run:
/// the process never runs and the container ends, as on runc, instead of
/// running on with the signal dropped (PID 1 ignores a signal it has no
/// handler for). The signal comes from the host, as the shim holds the
/// task for the whole start.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_kill_during_start_hooks_ends_the_container() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    for rt in runtimes() {
        let id = ctd.new_id("hookskill");
        let out = ctd.dir().join(format!("hooks-out-{id}"));
        std::fs::create_dir_all(&out).unwrap();
        let mut s = spec::busybox_spec(&ctd, &id, &["echo", "ran"]);
        s["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/hooks-out", "type": "bind",
            "source": out, "options": ["rbind", "rw"]}));
        // The id in the hook's command line finds it on the host.
        let script = format!(": {id}; touch /hooks-out/started; sleep 10; true");
        s["hooks"] = json!({"startContainer": [{"path": "/bin/sh",
            "args": ["sh", "-c", script]}]});
        let spec_path = spec::write(&ctd, &id, &s);
        let run = cmd::Background::spawn(&mut ctd.ctr_args(&[
            "run",
            "--rm",
            "--runtime",
            rt.containerd_name(),
            "--config",
            spec_path.to_str().unwrap(),
            &id,
        ]));
        let started = cmd::poll(Duration::from_secs(30), || {
            out.join("started").exists().then_some(())
        });
        assert!(started.is_some(), "{rt}: the hook did not start");
        // runc's shim lists no pid while its init runs the hooks: the
        // hook's parent is the init.
        let pid = parent_of_process_naming(&script);
        assert!(pid > 1, "{rt}: the init's pid {pid}");
        // SAFETY: plain kill(2) of the container's init, which we started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let out = run.wait(Duration::from_secs(30));
        assert_eq!(out.stdout, "", "{rt}: the process ran: {out}");
        // runc's Go init, PID 1 and so unable to die of its own signal,
        // exits 2 (Go's runtime's fallback); lxcri's does as runc's
        // (init/src/signals.rs `ends_before_start`).
        assert_eq!(out.code, Some(2), "{rt}: {out}");
    }
}

/// The parent pid of the one process whose command line holds `text`.
/// Looked for until there is one: a shell's child has its command line
/// between its fork and its `execve`.
fn parent_of_process_naming(text: &str) -> i32 {
    let naming = || -> Vec<i32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(text))
            })
            .collect()
    };
    let mut found = Vec::new();
    let one = cmd::poll(Duration::from_secs(5), || {
        found = naming();
        (found.len() == 1).then_some(())
    });
    assert!(one.is_some(), "processes naming {text:?}: {found:?}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", found[0])).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|p| p.trim().parse().ok())
        .expect("PPid")
}
