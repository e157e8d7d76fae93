//! Container settings through containerd's CRI plugin, side by side with
//! runc: scenarios of cri-tools' validation suite (`pkg/validate`,
//! `container.go` and `container_linux.go`): a non-recursive read-only
//! mount, an OOM kill, mount propagation in its three modes and a volume
//! through a symlink,
//! with the same pod and container settings and the same expectations, and
//! what each runtime showed compared. Each test names the cri-tools `It` it
//! mirrors.

use std::fs;

use nix::mount::MsFlags;

use lxcri_e2e::cri::api::{self, ContainerState};
use lxcri_e2e::cri::pod::{handler, mount, volume_dir};
use lxcri_e2e::cri::validate::{
    exec, remove, run_pod, running, security, Exec, PAUSE, STATE_TIMEOUT,
};
use lxcri_e2e::{assert_same, containerd_version, runtimes, Containerd, Runtime};

/// "should support non-recursive readonly mounts" (container_linux.go): a
/// read-only volume whose host directory has a tmpfs mounted inside: the
/// volume is read-only, the tmpfs under it is not. (The recursive variant
/// is [`recursive_readonly_mount`].)
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn non_recursive_readonly_mount() {
    let ctd = Containerd::start_cri();
    let host = volume_dir(&ctd, "rro");
    let mut mounts = HostMounts::default();
    mounts.tmpfs(&host.join("tmpfs"));
    let mut results = Vec::new();
    for rt in runtimes() {
        let sandbox = api::LinuxSandboxSecurityContext {
            privileged: true,
            ..Default::default()
        };
        let pod = run_pod(&ctd, rt, "ro-mount", sandbox, &[]);
        let mut c = pod.container("c", PAUSE);
        c.mounts = vec![mount(&host, "/mnt", true)];
        let id = running(&pod, c);
        let submount = exec(&ctd, rt, &id, &["touch", &format!("/mnt/tmpfs/{rt}")]);
        let volume = exec(&ctd, rt, &id, &["touch", "/mnt/file"]);
        remove(&ctd, rt, pod);
        assert_eq!(submount, (0, String::new(), String::new()), "{rt}");
        assert_eq!(
            volume,
            (
                1,
                String::new(),
                "touch: /mnt/file: Read-only file system\n".into()
            ),
            "{rt}"
        );
        assert!(host.join("tmpfs").join(rt.short()).exists(), "{rt}");
        results.push((rt, (submount, volume)));
    }
    assert_same("a read-only volume with a submount", &results);
}

/// "should support recursive readonly mounts" and "should reject a
/// recursive readonly mount with PROPAGATION_HOST_TO_CONTAINER", "...
/// with PROPAGATION_BIDIRECTIONAL" and "... with ReadOnly: false"
/// (container_linux.go). cri-tools skips them for a runtime handler that
/// does not report RecursiveReadOnlyMounts, which containerd's CRI plugin
/// reports from 2.0 on for a runtime whose features list `rro` (lxcri's
/// shim `-info`). Before 2.0 no handler may claim it (containerd 1.x's CRI
/// drops the field). containerd 2.0, 2.1, 2.2 before 2.2.7 and 2.3 before
/// 2.3.4 ask runc's shim only (internal/cri/server/service.go
/// `introspectRuntimeFeatures`; containerd's fd7819bcb lifts it, in 2.4,
/// 2.2.7 and 2.3.4): lxcri's handler has no features there.
/// Where lxcri is asked, both handlers must claim it and the scenarios run
/// side by side.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn recursive_readonly_mount() {
    let ctd = Containerd::start_cri();
    let status = ctd.cri().status().expect("CRI Status");
    let features = |rt: Runtime| {
        status
            .runtime_handlers
            .iter()
            .find(|h| h.name == handler(rt))
            .and_then(|h| h.features)
    };
    let claims_rro = |rt: Runtime| features(rt).is_some_and(|f| f.recursive_read_only_mounts);
    if containerd_version() < (2, 0) {
        for rt in runtimes() {
            assert!(!claims_rro(rt), "{rt}: {status:?}");
        }
        return;
    }
    if features(Runtime::Lxcri).is_none() {
        // No request with the mount for lxcri here: such a containerd
        // dereferences the missing features and crashes (spec_linux_opts.go
        // `handler.Features.RecursiveReadOnlyMounts`). The kubelet asks only
        // handlers that claim it.
        assert!(containerd_version() < (2, 4), "{status:?}");
        assert!(
            !runtimes().contains(&Runtime::Runc) || claims_rro(Runtime::Runc),
            "{status:?}"
        );
        return;
    }
    let host = volume_dir(&ctd, "rro-recursive");
    let mut mounts = HostMounts::default();
    mounts.tmpfs(&host.join("tmpfs"));
    let rro = |readonly: bool, propagation: api::MountPropagation| api::Mount {
        recursive_read_only: true,
        propagation: propagation as i32,
        ..mount(&host, "/mnt", readonly)
    };
    let mut results = Vec::new();
    for rt in runtimes() {
        assert!(claims_rro(rt), "{rt}: {status:?}");
        let sandbox = api::LinuxSandboxSecurityContext {
            privileged: true,
            ..Default::default()
        };
        let pod = run_pod(&ctd, rt, "rro-mount", sandbox, &[]);
        let mut c = pod.container("c", PAUSE);
        c.mounts = vec![rro(true, api::MountPropagation::PropagationPrivate)];
        let id = running(&pod, c);
        let submount = exec(&ctd, rt, &id, &["touch", "/mnt/tmpfs/foo"]);
        let volume = exec(&ctd, rt, &id, &["touch", "/mnt/file"]);
        let mut refused = Vec::new();
        for (name, readonly, propagation) in [
            (
                "h2c",
                true,
                api::MountPropagation::PropagationHostToContainer,
            ),
            (
                "bidi",
                true,
                api::MountPropagation::PropagationBidirectional,
            ),
            ("rw", false, api::MountPropagation::PropagationPrivate),
        ] {
            let mut c = pod.container(name, PAUSE);
            c.mounts = vec![rro(readonly, propagation)];
            refused.push(pod.create(c).is_err());
        }
        remove(&ctd, rt, pod);
        assert_eq!(
            submount,
            (
                1,
                String::new(),
                "touch: /mnt/tmpfs/foo: Read-only file system\n".into()
            ),
            "{rt}"
        );
        assert_eq!(volume.0, 1, "{rt}: {volume:?}");
        assert_eq!(refused, [true, true, true], "{rt}");
        results.push((rt, (submount, volume, refused)));
    }
    assert_same("a recursively read-only volume", &results);
}

/// "should correctly mount image and enforce read-only" and "should reject
/// Image Volume with Readonly set to false" (image_volume.go): a volume that
/// is an image (Kubernetes' image volumes), which containerd's CRI plugin
/// mounts from the image's snapshot and hands to the runtime as a bind,
/// from 2.1 on. Its files are there, it is read-only and not `noexec`; a
/// writable one is refused (by containerd). Before
/// 2.1 containerd ignores the field and refuses the empty host path, for
/// either runtime (cri-tools skips then).
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn image_volume() {
    let ctd = Containerd::start_cri();
    let image = ctd
        .cri()
        .image_status(lxcri_e2e::image::BUSYBOX_REF)
        .expect("ImageStatus")
        .expect("the busybox image in CRI's namespace");
    let volume = |readonly: bool| api::Mount {
        container_path: "/mnt/image-volume".into(),
        readonly,
        image: Some(api::ImageSpec {
            image: image.id.clone(),
            user_specified_image: lxcri_e2e::image::BUSYBOX_REF.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let supported = containerd_version() >= (2, 1);
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "image-volume", Default::default(), &[]);
        let mut c = pod.container("c", PAUSE);
        c.mounts = vec![volume(true)];
        if !supported {
            let refused = pod.create(c);
            remove(&ctd, rt, pod);
            let err = refused.expect_err("an image volume before containerd 2.1");
            assert!(err.message.contains("mkdir"), "{rt}: {err}");
            continue;
        }
        let id = running(&pod, c);
        let seen = (
            exec(&ctd, rt, &id, &["ls", "-A", "/mnt/image-volume/bin/sh"]),
            exec(&ctd, rt, &id, &["touch", "/mnt/image-volume/test-write"]),
            exec(
                &ctd,
                rt,
                &id,
                &["/mnt/image-volume/bin/ls", "/mnt/image-volume/etc/passwd"],
            ),
        );
        let mut writable = pod.container("w", PAUSE);
        writable.mounts = vec![volume(false)];
        let writable_refused = pod.create(writable).is_err();
        remove(&ctd, rt, pod);
        assert_eq!(
            seen.0,
            (0, "/mnt/image-volume/bin/sh\n".into(), String::new()),
            "{rt}"
        );
        assert_eq!(
            seen.1,
            (
                1,
                String::new(),
                "touch: /mnt/image-volume/test-write: Read-only file system\n".into()
            ),
            "{rt}"
        );
        assert_eq!(
            seen.2,
            (0, "/mnt/image-volume/etc/passwd\n".into(), String::new()),
            "{rt}"
        );
        // containerd refuses it itself (container_image_mount.go).
        assert!(
            writable_refused,
            "{rt}: a writable image volume was created"
        );
        results.push((rt, (seen, writable_refused)));
    }
    assert_same("an image volume", &results);
}

/// "should terminate with exitCode 137 and reason OOMKilled"
/// (container_linux.go): 15 MiB of memory (and of memory+swap), a 20 MiB
/// buffer. containerd 1.6's CRI takes the reason only from a TaskOOM that
/// comes before the exit; runc's shim publishes the two from separate
/// goroutines, so under load runc's container can end as "Error" (seen
/// once with CI running beside it). lxcri publishes TaskOOM first: its
/// reason must be OOMKilled.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn oom_killed() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let sandbox = api::LinuxSandboxSecurityContext {
            privileged: true,
            ..Default::default()
        };
        let pod = run_pod(&ctd, rt, "oom", sandbox, &[]);
        let mut c = pod.container("c", &["sh", "-c", "dd if=/dev/zero of=/dev/null bs=20M"]);
        c.linux.as_mut().expect("linux").resources = Some(api::LinuxContainerResources {
            memory_limit_in_bytes: 15 << 20,
            memory_swap_limit_in_bytes: 15 << 20,
            ..Default::default()
        });
        let id = pod.start(c);
        let st = pod.wait_state(&id, ContainerState::ContainerExited, STATE_TIMEOUT);
        if rt == Runtime::Lxcri {
            // The status may be read before containerd recorded the reason.
            let reason = lxcri_e2e::cmd::poll(STATE_TIMEOUT, || {
                let st = ctd.cri().container_status(&id).ok()?;
                (st.reason == "OOMKilled").then_some(st.reason)
            });
            assert_eq!(reason.as_deref(), Some("OOMKilled"), "{rt}: {st:?}");
        }
        remove(&ctd, rt, pod);
        assert_eq!(st.exit_code, 137, "{rt}: {st:?}");
        results.push((rt, st.exit_code));
    }
    assert_same("an OOM kill's exit code", &results);
}

/// Host mounts of a test, detached (last first) on drop.
#[derive(Default)]
struct HostMounts(Vec<std::path::PathBuf>);

impl HostMounts {
    /// `mount --bind -R source target`, then `flags` (a propagation) on it.
    fn bind(&mut self, source: &std::path::Path, target: &std::path::Path, flags: MsFlags) {
        nix::mount::mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .unwrap_or_else(|e| panic!("bind {} on {}: {e}", source.display(), target.display()));
        self.0.push(target.to_path_buf());
        if !flags.is_empty() {
            nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
                .unwrap_or_else(|e| panic!("{flags:?} on {}: {e}", target.display()));
        }
    }

    /// A tmpfs at `path` (made if missing).
    fn tmpfs(&mut self, path: &std::path::Path) {
        fs::create_dir_all(path).expect("tmpfs mount point");
        nix::mount::mount(
            Some("none"),
            path,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", path.display()));
        self.0.push(path.to_path_buf());
    }

    /// A mount someone else made at `path` (a container, through
    /// propagation): detached too, if there is one.
    fn adopt(&mut self, path: std::path::PathBuf) {
        self.0.push(path);
    }
}

impl Drop for HostMounts {
    fn drop(&mut self) {
        for path in self.0.iter().rev() {
            // The mount may be gone already (or was never made): detaching
            // what is not a mount fails harmlessly.
            let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// What a container with a propagating volume and its host saw.
#[derive(Debug, PartialEq)]
struct Propagated {
    /// The host's mount made after the start, listed inside.
    host_mount_inside: Exec,
    /// The container's `mkdir` and `mount --bind /etc`.
    container_mount: (Exec, Exec),
    /// The container's mount seen from the host (`ls` of the mount point
    /// there).
    container_mount_on_host: Vec<String>,
}

/// "mount with 'rprivate' should not support propagation", "mount with
/// 'rshared' should support propagation from host to container and vice
/// versa", "mount with 'rslave' should support propagation from host to
/// container" (container_linux.go): a privileged container with the host
/// directory `mnt` (a bind of itself, rprivate or rshared) at the same path
/// inside; the host mounts a directory with `flagFile` below it after the
/// start, the container mounts `/etc` at `mnt/containerMntPoint`. Which of
/// the two each side sees depends on the mode only.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn mount_propagation() {
    use api::MountPropagation::{
        PropagationBidirectional as Shared, PropagationHostToContainer as Slave,
        PropagationPrivate as Private,
    };
    let ctd = Containerd::start_cri();
    for mode in [Private, Slave, Shared] {
        let mut results = Vec::new();
        for rt in runtimes() {
            let base = volume_dir(&ctd, &format!("propagation-{}-{rt}", mode.as_str_name()));
            let mnt = base.join("mnt");
            let src = base.join("propagationSrcDir");
            fs::create_dir_all(mnt.join("propagationMnt")).unwrap();
            fs::create_dir_all(&src).unwrap();
            fs::write(src.join("flagFile"), "").unwrap();
            let mut mounts = HostMounts::default();
            let host_propagation = if mode == Private {
                MsFlags::MS_PRIVATE | MsFlags::MS_REC
            } else {
                MsFlags::MS_SHARED | MsFlags::MS_REC
            };
            mounts.bind(&mnt, &mnt, host_propagation);
            mounts.adopt(mnt.join("containerMntPoint"));

            let sandbox = api::LinuxSandboxSecurityContext {
                privileged: true,
                ..Default::default()
            };
            let pod = run_pod(&ctd, rt, "propagation", sandbox, &[]);
            let mut c = pod.container("c", PAUSE);
            security(&mut c).privileged = true;
            let path = mnt.display().to_string();
            c.mounts = vec![api::Mount {
                container_path: path.clone(),
                host_path: path.clone(),
                propagation: mode as i32,
                ..Default::default()
            }];
            let id = running(&pod, c);
            let status = ctd.cri().container_status(&id).unwrap();

            mounts.bind(&src, &mnt.join("propagationMnt"), MsFlags::empty());
            let host_mount_inside = exec(
                &ctd,
                rt,
                &id,
                &["ls", "-A", &format!("{path}/propagationMnt")],
            );
            let mkdir = exec(
                &ctd,
                rt,
                &id,
                &["sh", "-c", &format!("mkdir -p {path}/containerMntPoint")],
            );
            let bind = exec(
                &ctd,
                rt,
                &id,
                &[
                    "sh",
                    "-c",
                    &format!("mount --bind /etc {path}/containerMntPoint"),
                ],
            );
            let on_host: Vec<String> = fs::read_dir(mnt.join("containerMntPoint"))
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into())
                        .collect()
                })
                .unwrap_or_default();
            remove(&ctd, rt, pod);
            drop(mounts);

            let m = status.mounts.first().cloned().unwrap_or_default();
            assert_eq!(
                (
                    m.host_path.as_str(),
                    m.container_path.as_str(),
                    m.readonly,
                    m.propagation
                ),
                (path.as_str(), path.as_str(), false, mode as i32),
                "{rt}: {status:?}"
            );
            let seen = Propagated {
                host_mount_inside,
                container_mount: (mkdir, bind),
                container_mount_on_host: if on_host.is_empty() {
                    Vec::new()
                } else {
                    vec!["(not empty)".into()]
                },
            };
            let host_to_container = mode != Private;
            let expect_listing = if host_to_container { "flagFile\n" } else { "" };
            assert_eq!(
                seen.host_mount_inside,
                (0, expect_listing.to_string(), String::new()),
                "{rt} {mode:?}"
            );
            assert_eq!(seen.container_mount.0 .0, 0, "{rt} {mode:?}: {seen:?}");
            assert_eq!(
                seen.container_mount.1,
                (0, String::new(), String::new()),
                "{rt} {mode:?}"
            );
            assert_eq!(
                !on_host.is_empty(),
                mode == Shared,
                "{rt} {mode:?}: the container's mount on the host: {on_host:?}"
            );
            results.push((rt, seen));
        }
        assert_same(&format!("propagation {mode:?}"), &results);
    }
}

/// "should support starting container with volume when host path is a
/// symlink" (container.go): the volume's host path is a symlink to a
/// directory with one file, and the container path is the symlink's path;
/// the container lists the file there.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn volume_through_a_symlink() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "symlink-volume", Default::default(), &[]);
        let dir = volume_dir(&ctd, &format!("test{}", pod.id));
        fs::write(dir.join("testVolume.file"), "").unwrap();
        let link = dir.with_file_name(format!("test{}-symlink", pod.id));
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let mut c = pod.container("c", PAUSE);
        let path = link.display().to_string();
        c.mounts = vec![api::Mount {
            container_path: path.clone(),
            host_path: path.clone(),
            selinux_relabel: true,
            ..Default::default()
        }];
        let id = running(&pod, c);
        let listed = exec(&ctd, rt, &id, &["ls", "-A", &path]);
        remove(&ctd, rt, pod);
        assert_eq!(
            listed,
            (0, "testVolume.file\n".into(), String::new()),
            "{rt}"
        );
        results.push((rt, listed));
    }
    assert_same("a volume through a symlink", &results);
}
