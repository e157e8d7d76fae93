//! Per-mount flags as runc 1.2+ gives them: a bind whose options name a
//! flag, set or cleared (`rw` too), is remounted with exactly those by the
//! init (`InitSpec::bind_flags`; LXC keeps the source's) or by the share
//! helper for the binds it makes; a tmpfs gets `mode=` of the directory it
//! covers ahead of the spec's options, and a read-only one is made
//! read-only per mount last.

use lxcri_init_spec::BindFlags;
use serde_json::json;

use super::{env, mount, with};

#[test]
fn binds_naming_a_flag_get_exactly_their_flags_from_the_init() {
    let env = env();
    let dir = env.host.join("dir");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = with(|v| {
        let bind = |dest: &str, options: &[&str]| json!({"destination": dest, "type": "bind", "source": dir, "options": options});
        mount(v, bind("/a", &["rbind", "nodev", "noexec"]));
        // Read-only binds too: LXC's remount would keep the source's.
        mount(v, bind("/b", &["rbind", "ro", "nosuid", "noatime"]));
        // The last of a pair wins.
        mount(v, bind("/c", &["bind", "noexec", "exec", "nosuid"]));
        // Only cleared: remounted with none (CRI's `rw`).
        mount(v, bind("/d", &["rbind", "rprivate", "rw"]));
        // No flag: the source's stay.
        mount(v, bind("/e", &["rbind", "rprivate"]));
        // Not a bind: LXC mounts it with its flags.
        mount(
            v,
            json!({"destination": "/f", "type": "tmpfs", "source": "tmpfs", "options": ["noexec"]}),
        );
    });
    let plan = env.plan(&spec).unwrap();
    let flags = |destination: &str, flags, cleared| BindFlags {
        destination: destination.into(),
        flags,
        cleared,
    };
    assert_eq!(
        plan.init.bind_flags,
        [
            flags("/a", libc::MS_NODEV | libc::MS_NOEXEC, 0),
            flags(
                "/b",
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOATIME,
                0
            ),
            flags("/c", libc::MS_NOSUID, libc::MS_NOEXEC),
            flags("/d", 0, libc::MS_RDONLY),
        ]
    );
}

/// A tmpfs as runc 1.2+ mounts it: over an image directory `mode=` of that
/// directory goes first, so the spec's `mode=` wins and stands in for a
/// missing one; a read-only one is mounted writable and made read-only
/// per mount.
#[test]
fn a_tmpfs_takes_the_images_mode_unless_it_states_one() {
    let env = env();
    std::fs::create_dir_all(env.rootfs.join("srv")).unwrap();
    std::fs::set_permissions(
        env.rootfs.join("srv"),
        std::os::unix::fs::PermissionsExt::from_mode(0o2750),
    )
    .unwrap();
    let tmpfs = |dest: &str, options: &[&str]| json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options});
    let spec = with(|v| {
        mount(v, tmpfs("/root", &["mode=0755", "size=1m"]));
        mount(v, tmpfs("/srv", &[]));
        mount(v, tmpfs("/new", &["mode=0750"]));
        mount(v, tmpfs("/app", &["ro", "nosuid"]));
        // Inside an earlier mount: runc makes the directory there.
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
    assert_eq!(options("root"), "mode=0700,mode=0755,size=1m,create=dir");
    assert_eq!(options("srv"), "mode=2750,create=dir");
    assert_eq!(options("new"), "mode=0750,create=dir");
    assert_eq!(options("app"), "mode=0755,nosuid,create=dir");
    assert_eq!(options("app/cache"), "mode=0700,create=dir");
    assert_eq!(plan.init.readonly_tmpfs, ["/app"]);
    assert_eq!(plan.init.bind_flags, []);
}

/// `/dev` is a new tmpfs (LXC's autodev, the spec's on runc): a tmpfs below
/// it keeps `mode=`, whatever the image's `/dev/shm` was; a mount a later
/// one covers from above gets nothing from the init (runc set a bind's
/// flags before it was covered, and the path of a read-only tmpfs is gone);
/// an `rshared` bind, which the share helper makes again over LXC's, gets
/// its flags there.
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
    let shm = plan
        .lxc
        .mounts
        .iter()
        .find(|m| m.destination == "dev/shm")
        .unwrap();
    assert_eq!(shm.options.join(","), "nosuid,mode=1777,create=dir");
    assert_eq!(plan.init.readonly_tmpfs, Vec::<String>::new());
    let flagged: Vec<&str> = plan
        .init
        .bind_flags
        .iter()
        .map(|r| r.destination.as_str())
        .collect();
    assert_eq!(flagged, ["/srv"]);
    let shared = plan
        .shared_mounts
        .iter()
        .find(|m| m.destination == "/shared")
        .unwrap();
    assert_eq!(
        shared.flags,
        Some((libc::MS_NOSUID, libc::MS_NOEXEC)),
        "{shared:?}"
    );
}

/// A bind covered by a later one at the same destination gives the later
/// one nothing: its flags and recursive attributes were runc's to set
/// before it was covered, and the one on top keeps its source's; a
/// read-only tmpfs does (runc makes its path read-only last).
#[test]
fn a_bind_covered_at_the_same_destination_lends_nothing_to_the_one_on_top() {
    let env = env();
    let dir = env.host.join("dir");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = with(|v| {
        let bind = |dest: &str, options: &[&str]| json!({"destination": dest, "type": "bind", "source": dir, "options": options});
        mount(v, bind("/x", &["rbind", "ro", "nosuid"]));
        mount(v, bind("/x", &["rbind"]));
        mount(v, bind("/y", &["rbind", "rro"]));
        mount(v, bind("/y", &["rbind", "rw"]));
        mount(
            v,
            json!({"destination": "/z", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}),
        );
        mount(v, bind("/z", &["rbind"]));
    });
    let plan = env.plan(&spec).unwrap();
    assert_eq!(
        plan.init.bind_flags,
        [BindFlags {
            destination: "/y".into(),
            flags: 0,
            cleared: libc::MS_RDONLY,
        }]
    );
    assert_eq!(plan.init.recursive_attrs, []);
    // runc's finalizeRootfs remounts a read-only tmpfs's path: the bind on
    // top of it becomes read-only there.
    assert_eq!(plan.init.readonly_tmpfs, ["/z"]);
    let z = plan
        .lxc
        .mounts
        .iter()
        .find(|m| m.fstype == "tmpfs" && m.destination == "z");
    assert_eq!(
        z.map(|m| m.options.join(",")),
        Some("create=dir".to_string())
    );
}
