//! Seccomp profiles through containerd's CRI plugin, side by side with
//! runc: the seccomp scenarios of cri-tools' validation suite
//! (`pkg/validate`, `security_context_linux.go`), with the same pod and
//! container settings and the same expectations, and what each runtime
//! showed compared. The test names the cri-tools `It`s it mirrors.

use std::fs;

use lxcri_e2e::cri::api;
use lxcri_e2e::cri::pod::volume_dir;
use lxcri_e2e::cri::validate::{
    capabilities, exec, profile, remove, run_pod, running, security, Exec, PAUSE,
};
use lxcri_e2e::{assert_same, runtimes, Containerd, Runtime};

const BLOCK_HOSTNAME: &str = r#"{
     "defaultAction": "SCMP_ACT_ALLOW",
     "syscalls": [
         {
             "names": ["sethostname"],
             "action": "SCMP_ACT_ERRNO"
         }
     ]
}"#;

const BLOCK_CHMOD: &str = r#"{
     "defaultAction": "SCMP_ACT_ALLOW",
     "syscalls": [
         {
             "names": ["chmod", "fchmodat"],
             "action": "SCMP_ACT_ERRNO"
         }
     ]
}"#;

#[derive(Debug, PartialEq)]
struct Seccomp {
    unconfined: (String, i32),
    localhost_chmod: Exec,
    runtime_default: (String, i32),
    nil_profile: (String, i32),
    unconfined_sys_admin_hostname: Exec,
    blocked_hostname: Exec,
    privileged_ignores_profile: Exec,
}

/// `seccompTestContainer`: a pod and a container both with `profile`;
/// returns what `probe` gave in the container.
fn seccomp_pod(
    ctd: &Containerd,
    rt: Runtime,
    profile: Option<api::SecurityProfile>,
    probe: &[&str],
) -> Exec {
    let sandbox = api::LinuxSandboxSecurityContext {
        seccomp: profile.clone(),
        ..Default::default()
    };
    let pod = run_pod(ctd, rt, "seccomp", sandbox, &[]);
    let mut c = pod.container("c", PAUSE);
    security(&mut c).seccomp = profile;
    let id = running(&pod, c);
    let out = exec(ctd, rt, &id, probe);
    remove(ctd, rt, pod);
    out
}

/// "should support seccomp unconfined on the container", "... localhost
/// profile on the container", "... default on the container", "should
/// support nil profile, which is unconfined", "runtime should not block
/// setting host name with unconfined seccomp and SYS_ADMIN", "runtime should
/// support an seccomp profile that blocks setting hostname with SYS_ADMIN",
/// "runtime should ignore a seccomp profile that blocks setting hostname
/// when privileged"; besides, the runtime default refuses `unshare`
/// without CAP_SYS_ADMIN where unconfined takes it.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn seccomp_profiles() {
    use api::security_profile::ProfileType;
    let ctd = Containerd::start_cri();
    let dir = volume_dir(&ctd, "seccomp");
    let block_hostname = dir.join("block-host-name.json");
    let block_chmod = dir.join("block-chmod.json");
    fs::write(&block_hostname, BLOCK_HOSTNAME).unwrap();
    fs::write(&block_chmod, BLOCK_CHMOD).unwrap();
    let (block_hostname, block_chmod) = (
        block_hostname.display().to_string(),
        block_chmod.display().to_string(),
    );
    // The Seccomp: line, then the exit code of `unshare -U` (allowed by no
    // capability, refused by containerd's default profile without
    // CAP_SYS_ADMIN).
    let status_and_unshare = [
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; unshare -U true 2>/dev/null; echo $?",
    ];
    let split = |(code, out, err): Exec| -> (String, i32) {
        assert_eq!((code, err.as_str()), (0, ""), "{out}");
        let mut lines = out.lines();
        let status = lines.next().unwrap_or("").to_string();
        (
            status,
            lines.next().and_then(|l| l.parse().ok()).unwrap_or(-1),
        )
    };
    let mut results = Vec::new();
    for rt in runtimes() {
        let unconfined = split(seccomp_pod(
            &ctd,
            rt,
            profile(ProfileType::Unconfined, ""),
            &status_and_unshare,
        ));
        let localhost_chmod = seccomp_pod(
            &ctd,
            rt,
            profile(ProfileType::Localhost, &block_chmod),
            &["chmod", "400", "/"],
        );
        let runtime_default = split(seccomp_pod(
            &ctd,
            rt,
            profile(ProfileType::RuntimeDefault, ""),
            &status_and_unshare,
        ));
        let nil_profile = split(seccomp_pod(&ctd, rt, None, &status_and_unshare));

        let pod = run_pod(&ctd, rt, "hostname", Default::default(), &[]);
        let hostname = |name: &str, kind: ProfileType, path: &str| {
            let mut c = pod.container(name, &["sleep", "60"]);
            let sc = security(&mut c);
            sc.capabilities = capabilities(&["SYS_ADMIN"], &[]);
            sc.seccomp = profile(kind, path);
            let id = running(&pod, c);
            exec(&ctd, rt, &id, &["hostname", "ANewHostName"])
        };
        let unconfined_sys_admin_hostname = hostname("unconfined", ProfileType::Unconfined, "");
        let blocked_hostname = hostname("blocked", ProfileType::Localhost, &block_hostname);
        remove(&ctd, rt, pod);

        let sandbox = api::LinuxSandboxSecurityContext {
            privileged: true,
            ..Default::default()
        };
        let pod = run_pod(&ctd, rt, "privileged-seccomp", sandbox, &[]);
        let mut c = pod.container("c", &["sleep", "60"]);
        let sc = security(&mut c);
        sc.privileged = true;
        sc.seccomp = profile(ProfileType::Localhost, &block_hostname);
        let id = running(&pod, c);
        let privileged_ignores_profile = exec(&ctd, rt, &id, &["hostname", "ANewHostName"]);
        remove(&ctd, rt, pod);

        let o = Seccomp {
            unconfined,
            localhost_chmod,
            runtime_default,
            nil_profile,
            unconfined_sys_admin_hostname,
            blocked_hostname,
            privileged_ignores_profile,
        };
        assert_eq!(o.unconfined, ("Seccomp:\t0".into(), 0), "{rt}");
        assert_ne!(o.localhost_chmod.0, 0, "{rt}: {o:#?}");
        assert!(
            o.localhost_chmod.2.contains("Operation not permitted"),
            "{rt}: {o:#?}"
        );
        assert_eq!(o.runtime_default.0, "Seccomp:\t2", "{rt}");
        assert_ne!(
            o.runtime_default.1, 0,
            "{rt}: unshare under runtime/default"
        );
        assert_eq!(o.nil_profile, ("Seccomp:\t0".into(), 0), "{rt}");
        assert_eq!(o.unconfined_sys_admin_hostname.0, 0, "{rt}: {o:#?}");
        assert_ne!(o.blocked_hostname.0, 0, "{rt}: {o:#?}");
        assert_eq!(o.privileged_ignores_profile.0, 0, "{rt}: {o:#?}");
        results.push((rt, o));
    }
    assert_same("seccomp profiles", &results);
}
