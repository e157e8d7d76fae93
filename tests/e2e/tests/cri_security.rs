//! Security contexts through containerd's CRI plugin, side by side with
//! runc: the scenarios of cri-tools' validation suite (`pkg/validate`,
//! `security_context_linux.go`) for users and groups, the rootfs and
//! masked and read-only paths, privileged containers, capabilities and
//! no_new_privs, with the same pod and container settings and the same
//! expectations, and what each runtime showed compared. Each test names the
//! cri-tools `It` it mirrors. Seccomp is in `cri_seccomp.rs`, namespaces
//! and sysctls in `cri_namespaces.rs`.
//!
//! Differences from cri-tools, forced by the test image (static busybox
//! whose shell runs applets without exec, applets as symlinks): the masked
//! program is a script on a volume (masking the image's `/bin/ls`, a
//! symlink, would mask busybox itself); the `nonewprivs` image is a static
//! setuid-root program built here; `ping` is `ping -c 1` (one that worked
//! would never end).
//! Not covered: AppArmor and SELinux (this kernel enforces no LSM).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use lxcri_e2e::cri::api;
use lxcri_e2e::cri::pod::{mount, stream_text, volume_dir};
use lxcri_e2e::cri::validate::{
    capabilities, exec, exited, remove, run_pod, running, security, status_line, Exec, PAUSE,
};
use lxcri_e2e::{assert_same, runtimes, unique_name, Containerd};

/// The capability lines of a process's status.
const CAPS: &[&str] = &["grep", "^Cap", "/proc/self/status"];

#[derive(Debug, PartialEq)]
struct Users {
    run_as_user: Exec,
    run_as_user_caps: String,
    run_as_username: Exec,
    run_as_group: String,
    group_without_user_refused: bool,
    supplemental_groups: Exec,
    merged_groups: (String, Exec),
    image_user: Exec,
}

/// "runtime should support RunAsUser", "RunAsUserName", "RunAsGroup",
/// "runtime should return error if RunAsGroup is set without RunAsUser",
/// "runtime should support SupplementalGroups"; the first process and an
/// exec get the same groups, as SupplementalGroupsPolicy=Merge checks (this
/// image's user 1000 is in no other group); a container that sets no user
/// runs as the image's (root).
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn run_as_user_group_and_supplemental_groups() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "users", Default::default(), &[]);

        let mut c = pod.container("run-as-user", PAUSE);
        security(&mut c).run_as_user = Some(api::Int64Value { value: 1001 });
        let id = running(&pod, c);
        let run_as_user = exec(&ctd, rt, &id, &["id", "-u"]);
        // A non-root user keeps no permitted or effective capability.
        let run_as_user_caps = exec(&ctd, rt, &id, CAPS).1;

        let mut c = pod.container("run-as-username", PAUSE);
        security(&mut c).run_as_username = "nobody".into();
        let id = running(&pod, c);
        let run_as_username = exec(&ctd, rt, &id, &["id", "-nu"]);

        // Its log line written through /dev/stdout too, as images that
        // link their logs there do: the stdio is the user's.
        let mut c = pod.container(
            "run-as-group",
            &[
                "sh",
                "-c",
                "echo $(id -u):$(id -g); echo by-path > /dev/stdout",
            ],
        );
        let sc = security(&mut c);
        sc.run_as_user = Some(api::Int64Value { value: 1001 });
        sc.run_as_group = Some(api::Int64Value { value: 1002 });
        let (run_as_group, _) = exited(&pod, c);

        let mut c = pod.container(
            "group-without-user",
            &["sh", "-c", "echo $(id -u):$(id -g)"],
        );
        security(&mut c).run_as_group = Some(api::Int64Value { value: 1002 });
        let group_without_user_refused = pod.create(c).is_err();

        let mut c = pod.container("supplemental", PAUSE);
        security(&mut c).supplemental_groups = vec![1234, 5678];
        let id = running(&pod, c);
        let supplemental_groups = exec(&ctd, rt, &id, &["id", "-G"]);

        let mut c = pod.container("merged", &["sh", "-c", "id -G; exec sleep 1000"]);
        let sc = security(&mut c);
        sc.run_as_user = Some(api::Int64Value { value: 1000 });
        sc.supplemental_groups = vec![1234];
        let id = running(&pod, c);
        let first = stream_text(&pod.wait_log("merged", "stdout", "\n"), "stdout");
        let merged_groups = (first, exec(&ctd, rt, &id, &["id", "-G"]));

        let id = running(&pod, pod.container("image-user", PAUSE));
        let image_user = exec(&ctd, rt, &id, &["id"]);

        remove(&ctd, rt, pod);
        let o = Users {
            run_as_user,
            run_as_user_caps,
            run_as_username,
            run_as_group,
            group_without_user_refused,
            supplemental_groups,
            merged_groups,
            image_user,
        };
        assert_eq!(o.run_as_user, (0, "1001\n".into(), String::new()), "{rt}");
        for field in ["CapPrm:", "CapEff:"] {
            assert_eq!(
                status_line(&o.run_as_user_caps, field),
                format!("{field}\t0000000000000000"),
                "{rt}: {}",
                o.run_as_user_caps
            );
        }
        assert_eq!(
            o.run_as_username,
            (0, "nobody\n".into(), String::new()),
            "{rt}"
        );
        assert_eq!(o.run_as_group, "1001:1002\nby-path\n", "{rt}");
        assert!(
            o.group_without_user_refused,
            "{rt}: RunAsGroup alone was taken"
        );
        let groups: Vec<&str> = o.supplemental_groups.1.split_whitespace().collect();
        assert!(
            groups.contains(&"1234") && groups.contains(&"5678"),
            "{rt}: {:?}",
            o.supplemental_groups
        );
        assert_eq!(
            o.merged_groups,
            (
                "1000 1234\n".into(),
                (0, "1000 1234\n".into(), String::new())
            ),
            "{rt}"
        );
        assert_eq!(
            o.image_user,
            (
                0,
                "uid=0(root) gid=0(root) groups=0(root)\n".into(),
                String::new()
            ),
            "{rt}"
        );
        results.push((rt, o));
    }
    assert_same("users and groups", &results);
}

/// "if the container's primary UID belongs to some groups in the image,
/// runtime should add SupplementalGroups to them" (SupplementalGroupsPolicy
/// Merge, the default) and "even if ..., runtime should not add
/// SupplementalGroups to them" (Strict): user 1000 of an image whose
/// `/etc/group` puts it in group 50000, with SupplementalGroups 1234. The
/// CRI plugin works out the groups (`process.user.additionalGids`), the
/// runtime gives them to the first process and to an exec. containerd 1.x
/// knows no policy (its Status reports no such feature) and merges always;
/// 2.x reports it and the groups in ContainerStatus.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn supplemental_groups_policy() {
    let ctd = Containerd::start_cri();
    let image = lxcri_e2e::image::predefined_group();
    ctd.import_image(&image.archive);
    let status = ctd.cri().status().expect("CRI Status");
    let policy_known = status
        .features
        .as_ref()
        .is_some_and(|f| f.supplemental_groups_policy);
    assert_eq!(
        policy_known,
        lxcri_e2e::containerd_version() >= (2, 0),
        "{status:?}"
    );
    let mut cases = vec![(
        "merge",
        api::SupplementalGroupsPolicy::Merge,
        "1000 1234 50000\n",
    )];
    if policy_known {
        cases.push((
            "strict",
            api::SupplementalGroupsPolicy::Strict,
            "1000 1234\n",
        ));
    }
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "groups-policy", Default::default(), &[]);
        let mut seen = Vec::new();
        for (name, policy, expected) in &cases {
            let mut c = pod.container(name, &["sh", "-c", "id -G; exec sleep 1000"]);
            c.image = Some(api::ImageSpec {
                image: image.reference.into(),
                ..Default::default()
            });
            let sc = security(&mut c);
            sc.run_as_user = Some(api::Int64Value { value: 1000 });
            sc.supplemental_groups = vec![1234];
            sc.supplemental_groups_policy = *policy as i32;
            let id = running(&pod, c);
            let first = stream_text(&pod.wait_log(name, "stdout", "\n"), "stdout");
            let exec_groups = exec(&ctd, rt, &id, &["id", "-G"]);
            let user = ctd
                .cri()
                .container_status(&id)
                .expect("ContainerStatus")
                .user
                .and_then(|u| u.linux)
                .map(|mut l| {
                    l.supplemental_groups.sort_unstable();
                    (l.uid, l.gid, l.supplemental_groups)
                });
            assert_eq!(first, *expected, "{rt} {name}");
            assert_eq!(
                exec_groups,
                (0, expected.to_string(), String::new()),
                "{rt} {name}"
            );
            // containerd 2.x reports them; 1.x has no such field.
            let groups: Vec<i64> = expected
                .split_whitespace()
                .map(|g| g.parse().unwrap())
                .collect();
            let reported = policy_known.then_some((1000, 1000, groups));
            assert_eq!(user, reported, "{rt} {name}");
            seen.push((name.to_string(), first, exec_groups, user));
        }
        remove(&ctd, rt, pod);
        results.push((rt, seen));
    }
    assert_same("supplemental groups by policy", &results);
}

/// The masked and read-only paths the kubelet sends for a container with
/// the default procMount (`pkg/securitycontext/util.go`); containerd 1.6
/// adds none of its own.
const KUBELET_MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
const KUBELET_READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// For each path, `|`-separated: what it is, how much of it reads (one
/// byte at most: /proc/kcore unmasked is the size of the address space),
/// how many entries it lists (`-`: not a directory), and the first
/// per-mount option of a mount on it (`-`: not a mount point of its own).
fn paths_probe(paths: &[&str]) -> String {
    let list = paths.join(" ");
    format!(
        "for p in {list}; do [ -e $p ] || {{ echo \"$p|absent\"; continue; }}; \
         n=-; [ -d $p ] && n=$(ls -A $p | wc -l); \
         echo \"$p|$(stat -c %F $p)|$(head -c 1 $p 2>/dev/null | wc -c)|$n|$({MOUNT_OPTION})\"; done"
    )
}

/// The first per-mount option of the last mount on `$p` (`-`: none).
const MOUNT_OPTION: &str =
    "awk -v p=$p '$5 == p { split($6, o, \",\"); r = o[1] } END { print (r == \"\" ? \"-\" : r) }' /proc/self/mountinfo";

#[derive(Debug, PartialEq)]
struct Paths {
    rootfs_writable: (String, String),
    rootfs_readonly: (String, String),
    masked: Exec,
    readonly: Exec,
    kubelet_masked: String,
    kubelet_readonly: String,
    none_sent: String,
}

/// "runtime should support that ReadOnlyRootfs is false" / "is true",
/// "runtime should support MaskedPaths", "runtime should support
/// ReadonlyPaths"; and what the kubelet's default masked and read-only
/// paths look like, and the same paths when none are sent.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn read_only_rootfs_masked_and_readonly_paths() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "paths", Default::default(), &[]);
        let touch = [
            "sh",
            "-c",
            "touch test.go && [ -f test.go ] && echo 'Found'",
        ];
        let rootfs_writable = exited(&pod, pod.container("rootfs-rw", &touch));
        let mut c = pod.container("rootfs-ro", &touch);
        security(&mut c).readonly_rootfs = true;
        let rootfs_readonly = exited(&pod, c);

        // The image's `ls` is a busybox applet, which busybox's shell runs
        // without exec (and /bin/ls a symlink: masking it masks busybox):
        // the masked program is a script on a volume, found on PATH.
        let bin = volume_dir(&ctd, &unique_name("masked-bin"));
        fs::write(bin.join("masked-ls"), "#!/bin/sh\necho not masked\n").unwrap();
        fs::set_permissions(bin.join("masked-ls"), fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = pod.container("masked", PAUSE);
        c.mounts = vec![mount(&bin, "/opt/bin", true)];
        c.envs = vec![api::KeyValue {
            key: "PATH".into(),
            value: "/opt/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        }];
        security(&mut c).masked_paths = vec!["/opt/bin/masked-ls".into()];
        let id = running(&pod, c);
        let masked = exec(&ctd, rt, &id, &["/bin/sh", "-c", "masked-ls"]);

        let mut c = pod.container("readonly", PAUSE);
        security(&mut c).readonly_paths = vec!["/tmp".into()];
        let id = running(&pod, c);
        let readonly = exec(&ctd, rt, &id, &["touch", "/tmp/test"]);

        let mut c = pod.container("kubelet-defaults", PAUSE);
        let sc = security(&mut c);
        sc.masked_paths = KUBELET_MASKED.iter().map(|p| p.to_string()).collect();
        sc.readonly_paths = KUBELET_READONLY.iter().map(|p| p.to_string()).collect();
        let id = running(&pod, c);
        let probe = |id: &str, paths: &[&str]| {
            let (code, out, err) = exec(&ctd, rt, id, &["sh", "-c", &paths_probe(paths)]);
            assert_eq!((code, err.as_str()), (0, ""), "{rt}: {out}");
            out
        };
        let kubelet_masked = probe(&id, KUBELET_MASKED);
        let kubelet_readonly = probe(&id, KUBELET_READONLY);
        // Nothing sent: nothing masked or read-only but what the runtime
        // always does.
        let id = running(&pod, pod.container("none-sent", PAUSE));
        let none_sent = probe(&id, &[KUBELET_MASKED, KUBELET_READONLY].concat());

        remove(&ctd, rt, pod);
        let o = Paths {
            rootfs_writable,
            rootfs_readonly,
            masked,
            readonly,
            kubelet_masked,
            kubelet_readonly,
            none_sent,
        };
        assert_eq!(o.rootfs_writable.0, "Found\n", "{rt}: {o:#?}");
        assert_eq!(
            o.rootfs_readonly.1, "touch: test.go: Read-only file system\n",
            "{rt}: {o:#?}"
        );
        assert_ne!(o.masked.0, 0, "{rt}: {o:#?}");
        assert_eq!(
            o.masked.2, "/bin/sh: masked-ls: Permission denied\n",
            "{rt}"
        );
        assert_ne!(o.readonly.0, 0, "{rt}: {o:#?}");
        assert_eq!(
            o.readonly.2, "touch: /tmp/test: Read-only file system\n",
            "{rt}"
        );
        // Masked: nothing to read or list; read-only: a read-only mount.
        for line in o.kubelet_masked.lines().filter(|l| !l.ends_with("|absent")) {
            let f: Vec<&str> = line.split('|').collect();
            assert!(
                f.len() == 5 && f[2] == "0" && (f[3] == "0" || f[3] == "-"),
                "{rt}: masked path readable: {line}"
            );
        }
        assert!(
            o.kubelet_masked
                .contains("/proc/keys|character special file|0|-|"),
            "{rt}: {}",
            o.kubelet_masked
        );
        for line in o
            .kubelet_readonly
            .lines()
            .filter(|l| !l.ends_with("|absent"))
        {
            assert!(line.ends_with("|ro"), "{rt}: not read-only: {line}");
        }
        results.push((rt, o));
    }
    assert_same("rootfs, masked and read-only paths", &results);
}

/// What a container may do to the pod's network and how /sys, /proc/sys
/// and /dev look to it.
fn privilege_probe() -> String {
    format!(
        "for p in /sys /proc/sys; do echo $p $({MOUNT_OPTION}); done; ls /dev | tr '\\n' ' '; echo"
    )
}

#[derive(Debug, PartialEq)]
struct Privileges {
    privileged_brctl: i32,
    privileged_view: String,
    privileged_caps: String,
    unprivileged_brctl: i32,
    unprivileged_view: String,
    unprivileged_caps: String,
}

/// "runtime should support Privileged is true" / "is false": a privileged
/// container (in a privileged pod) manages the pod's network, an
/// unprivileged one cannot; what /sys, /proc/sys, /dev and the capability
/// sets look like in each.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn privileged_and_not() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let mut seen = Vec::new();
        for privileged in [true, false] {
            let sandbox = api::LinuxSandboxSecurityContext {
                privileged,
                ..Default::default()
            };
            let pod = run_pod(&ctd, rt, "privileged", sandbox, &[]);
            let mut c = pod.container("c", PAUSE);
            security(&mut c).privileged = privileged;
            let id = running(&pod, c);
            let brctl = exec(&ctd, rt, &id, &["brctl", "addbr", "foobar"]);
            let (code, view, err) = exec(&ctd, rt, &id, &["sh", "-c", &privilege_probe()]);
            assert_eq!((code, err.as_str()), (0, ""), "{rt}: {view}");
            let caps = exec(&ctd, rt, &id, CAPS).1;
            remove(&ctd, rt, pod);
            seen.push((brctl, view, caps));
        }
        let (unprivileged, privileged) = (seen.pop().unwrap(), seen.pop().unwrap());
        assert_eq!(
            privileged.0 .0, 0,
            "{rt}: privileged brctl: {:?}",
            privileged.0
        );
        assert_ne!(unprivileged.0 .0, 0, "{rt}: brctl: {:?}", unprivileged.0);
        assert!(
            privileged.1.starts_with("/sys rw\n/proc/sys -\n"),
            "{rt}: {}",
            privileged.1
        );
        assert!(
            unprivileged.1.starts_with("/sys ro\n/proc/sys -\n"),
            "{rt}: {}",
            unprivileged.1
        );
        // A privileged container sees the host's devices.
        assert!(privileged.1.contains(" kmsg "), "{rt}: {}", privileged.1);
        assert!(
            !unprivileged.1.contains(" kmsg "),
            "{rt}: {}",
            unprivileged.1
        );
        results.push((
            rt,
            Privileges {
                privileged_brctl: privileged.0 .0,
                privileged_view: privileged.1,
                privileged_caps: privileged.2,
                unprivileged_brctl: unprivileged.0 .0,
                unprivileged_view: unprivileged.1,
                unprivileged_caps: unprivileged.2,
            },
        ));
    }
    assert_same("privileged and unprivileged containers", &results);
}

#[derive(Debug, PartialEq)]
struct Capabilities {
    net_admin_added: (i32, String),
    net_admin_default: (i32, String),
    net_raw_dropped: Exec,
    all_added: String,
    all_dropped: String,
}

/// "runtime should support adding capability", "... dropping capability",
/// "... adding ALL capabilities", "... dropping ALL capabilities".
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn capabilities_added_and_dropped() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "caps", Default::default(), &[]);
        let with = |name: &str, add: &[&str], drop: &[&str]| {
            let mut c = pod.container(name, PAUSE);
            security(&mut c).capabilities = capabilities(add, drop);
            running(&pod, c)
        };
        // Each brctl makes a bridge of its own: the second must not fail
        // for a name the first took.
        let id = with("net-admin", &["NET_ADMIN"], &[]);
        let (code, _, err) = exec(&ctd, rt, &id, &["brctl", "addbr", "foobar"]);
        let net_admin_added = (code, err);
        let id = running(&pod, pod.container("default", PAUSE));
        let (code, _, err) = exec(&ctd, rt, &id, &["brctl", "addbr", "foobar2"]);
        let net_admin_default = (code, err);
        let id = with("no-net-raw", &[], &["NET_RAW"]);
        let net_raw_dropped = exec(&ctd, rt, &id, &["ping", "-c", "1", "127.0.0.1"]);
        let id = with("all-added", &["ALL"], &[]);
        let all_added = exec(&ctd, rt, &id, CAPS).1;
        let id = with("all-dropped", &[], &["ALL"]);
        let all_dropped = exec(&ctd, rt, &id, CAPS).1;
        remove(&ctd, rt, pod);

        let o = Capabilities {
            net_admin_added,
            net_admin_default,
            net_raw_dropped,
            all_added,
            all_dropped,
        };
        assert_eq!(o.net_admin_added.0, 0, "{rt}: {o:#?}");
        assert_ne!(o.net_admin_default.0, 0, "{rt}: {o:#?}");
        assert_ne!(o.net_raw_dropped.0, 0, "{rt}: {o:#?}");
        assert!(!o.net_raw_dropped.1.is_empty(), "{rt}: {o:#?}");
        assert!(
            o.net_raw_dropped.2.contains("permission denied"),
            "{rt}: {o:#?}"
        );
        assert_ne!(
            status_line(&o.all_added, "CapBnd:"),
            "CapBnd:\t0000000000000000",
            "{rt}"
        );
        assert_eq!(
            status_line(&o.all_dropped, "CapBnd:"),
            "CapBnd:\t0000000000000000",
            "{rt}"
        );
        results.push((rt, o));
    }
    assert_same("capabilities", &results);
}

/// cri-tools' `nonewprivs` image: a setuid-root program that prints its
/// effective uid, built static (the image has no libc) into `dir`.
fn setuid_program(dir: &Path) -> String {
    let bin = lxcri_e2e::cmd::compile_static_c(
        dir,
        "nnp",
        "#include <stdio.h>\n#include <unistd.h>\n\
         int main(void) { printf(\"Effective uid: %d\\n\", (int)geteuid()); return 0; }\n",
    );
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o4755)).expect("chmod u+s");
    "/opt/nnp/nnp".into()
}

/// "should not allow privilege escalation when true" / "should allow
/// privilege escalation when false": a setuid-root program run as uid 1000.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn no_new_privs() {
    let ctd = Containerd::start_cri();
    let dir = volume_dir(&ctd, "nnp");
    let program = setuid_program(&dir);
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "nnp", Default::default(), &[]);
        let mut seen = Vec::new();
        for nnp in [true, false] {
            let mut c = pod.container(&format!("nnp-{nnp}"), &[&program]);
            c.mounts = vec![mount(&dir, "/opt/nnp", true)];
            let sc = security(&mut c);
            sc.no_new_privs = nnp;
            sc.run_as_user = Some(api::Int64Value { value: 1000 });
            seen.push(exited(&pod, c));
        }
        remove(&ctd, rt, pod);
        assert_eq!(seen[0].0, "Effective uid: 1000\n", "{rt}: {seen:?}");
        assert_eq!(seen[1].0, "Effective uid: 0\n", "{rt}: {seen:?}");
        results.push((rt, seen));
    }
    assert_same("no_new_privs", &results);
}
