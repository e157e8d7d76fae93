//! Per-mount flags the init sets (`InitSpec::remount_flags`), and tmpfs
//! options as runc's mount gives them: `nosuid`/`nodev`/`noexec` on
//! writable binds (LXC remounts a bind only when it is read-only or its
//! source has flags the bind lacks), a read-only tmpfs's `ro`.

use lxcri_init_spec::{RemountFlags, TmpfsMode};
use serde_json::json;

use super::{env, mount, with};

#[test]
fn writable_binds_get_their_flags_from_the_init() {
    let env = env();
    let dir = env.host.join("dir");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = with(|v| {
        let bind = |dest: &str, options: &[&str]| json!({"destination": dest, "type": "bind", "source": dir, "options": options});
        mount(v, bind("/a", &["rbind", "nodev", "noexec"]));
        // Read-only: LXC's remount sets them.
        mount(v, bind("/b", &["rbind", "ro", "nosuid"]));
        // The last of a pair wins.
        mount(v, bind("/c", &["bind", "noexec", "exec", "nosuid"]));
        mount(v, bind("/d", &["rbind", "suid"]));
        // Not a bind: LXC mounts it with its flags.
        mount(
            v,
            json!({"destination": "/e", "type": "tmpfs", "source": "tmpfs", "options": ["noexec"]}),
        );
    });
    let plan = env.plan(&spec).unwrap();
    assert_eq!(
        plan.init.remount_flags,
        [
            RemountFlags {
                destination: "/a".into(),
                flags: libc::MS_NODEV | libc::MS_NOEXEC,
            },
            RemountFlags {
                destination: "/c".into(),
                flags: libc::MS_NOSUID,
            },
        ]
    );
}

/// A tmpfs as runc mounts it: over an image directory its root gets that
/// directory's mode (runc chmods it back after the mount), elsewhere
/// `mode=`'s; a read-only one is mounted writable and made read-only per
/// mount.
#[test]
fn a_tmpfs_gets_the_images_mode_and_a_read_only_mount() {
    let env = env();
    let tmpfs = |dest: &str, options: &[&str]| json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options});
    let spec = with(|v| {
        mount(v, tmpfs("/root", &["mode=0755", "size=1m"]));
        mount(v, tmpfs("/new", &["mode=0750"]));
        mount(v, tmpfs("/app", &["ro", "nosuid"]));
        // Inside an earlier mount: runc makes the directory, no chmod.
        mount(v, tmpfs("/app/cache", &["mode=0700"]));
    });
    let plan = env.plan(&spec).unwrap();
    let options = |dest: &str| {
        plan.lxc
            .mounts
            .iter()
            .find(|m| m.destination == dest)
            .map(|m| m.options.join(","))
            .unwrap()
    };
    // The spec's options go to the mount; the init chmods the root.
    assert_eq!(options("root"), "mode=0755,size=1m,create=dir");
    assert_eq!(options("app"), "nosuid,create=dir");
    assert_eq!(
        plan.init.tmpfs_modes,
        [
            TmpfsMode {
                destination: "/root".into(),
                mode: 0o700,
            },
            TmpfsMode {
                destination: "/app".into(),
                mode: 0o755,
            },
        ]
    );
    assert_eq!(
        plan.init.remount_flags,
        [RemountFlags {
            destination: "/app".into(),
            flags: libc::MS_RDONLY,
        }]
    );
}

/// `/dev` is a new tmpfs (LXC's autodev, the spec's on runc): a tmpfs below
/// it keeps `mode=`, whatever the image's `/dev/shm` was; a mount a later
/// one covers gets nothing from the init (runc worked on it before it was
/// covered); an `rshared` bind, which the share helper makes again over
/// LXC's, carries its flags there.
#[test]
fn dev_tmpfs_covered_mounts_and_shared_binds() {
    let env = env();
    std::fs::create_dir_all(env.rootfs.join("dev/shm")).unwrap();
    std::fs::create_dir_all(env.rootfs.join("srv/cache")).unwrap();
    let vol = env.host.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let spec = with(|v| {
        mount(
            v,
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                   "options": ["nosuid", "mode=1777"]}),
        );
        mount(
            v,
            json!({"destination": "/srv/cache", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}),
        );
        mount(
            v,
            json!({"destination": "/srv", "type": "bind", "source": vol, "options": ["rbind", "noexec"]}),
        );
        mount(
            v,
            json!({"destination": "/shared", "type": "bind", "source": vol,
                   "options": ["rbind", "rshared", "nosuid", "noexec", "exec"]}),
        );
    });
    let plan = env.plan(&spec).unwrap();
    assert_eq!(plan.init.tmpfs_modes, []);
    let flagged: Vec<&str> = plan
        .init
        .remount_flags
        .iter()
        .map(|r| r.destination.as_str())
        .collect();
    assert_eq!(flagged, ["/srv", "/shared"]);
    let shared = plan
        .shared_mounts
        .iter()
        .find(|m| m.destination == "/shared")
        .unwrap();
    assert!(
        shared.nosuid && !shared.noexec && !shared.nodev,
        "{shared:?}"
    );
}
