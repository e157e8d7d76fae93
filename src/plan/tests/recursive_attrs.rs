//! runc's recursive mount options (`rro`, `rnosuid`, ...) on binds: the
//! init sets them on binds LXC made, the share helper on the ones it makes;
//! LXC never sees them, and other filesystems refuse them.

use std::path::Path;

use lxcri_init_spec::{MountAttrs, RecursiveAttrs};
use serde_json::{json, Value};

use super::{env, mount, with};
use crate::plan::PlanError;

const RDONLY: u64 = libc::MOUNT_ATTR_RDONLY;
const NOSUID: u64 = libc::MOUNT_ATTR_NOSUID;
const NOEXEC: u64 = libc::MOUNT_ATTR_NOEXEC;

/// A bind of `source` at `dest`.
fn bind(dest: &str, source: &Path, options: &[&str]) -> Value {
    json!({"destination": dest, "type": "bind", "source": source, "options": options})
}

#[test]
fn a_binds_recursive_options_go_to_the_init_not_to_lxc() {
    let env = env();
    let vol = env.host.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let spec = with(|v| {
        // CRI's recursiveReadOnly: no plain `ro`.
        mount(v, bind("/data", &vol, &["rbind", "rprivate", "rro"]));
        mount(
            v,
            bind(
                "/app",
                &vol,
                &["rbind", "ro", "rnosuid", "rnoexec", "rexec"],
            ),
        );
        mount(v, bind("/plain", &vol, &["rbind", "ro"]));
    });
    let plan = env.plan(&spec).unwrap();
    assert_eq!(
        plan.init.recursive_attrs,
        [
            RecursiveAttrs {
                destination: "/data".into(),
                attrs: MountAttrs {
                    set: RDONLY,
                    clear: 0
                },
            },
            RecursiveAttrs {
                destination: "/app".into(),
                attrs: MountAttrs {
                    set: NOSUID,
                    clear: NOEXEC
                },
            },
        ]
    );
    for m in &plan.lxc.mounts {
        assert!(
            !m.options
                .iter()
                .any(|o| o.starts_with("rro") || o.starts_with("rno")),
            "{m:?}"
        );
    }
    let data = plan.lxc.mounts.iter().find(|m| m.destination == "data");
    assert_eq!(
        data.unwrap().options,
        ["rbind", "rprivate", "create=dir"],
        "writable to LXC, read-only from the init on"
    );
    assert!(plan.shared_mounts.is_empty());
}

/// Binds the share helper makes (inside another bind, or `rshared`) get
/// theirs from it; the LXC bind under an `rshared` one is covered by the
/// helper's copy, so the init leaves it alone.
#[test]
fn the_share_helper_sets_them_on_its_binds() {
    let env = env();
    let vol = env.host.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let spec = with(|v| {
        mount(v, bind("/data", &vol, &["rbind", "rro"]));
        mount(v, bind("/data/sub", &vol, &["rbind", "rnoexec"]));
        mount(v, bind("/peer", &vol, &["rbind", "rshared", "rro"]));
    });
    let plan = env.plan(&spec).unwrap();
    let dests: Vec<&str> = plan
        .init
        .recursive_attrs
        .iter()
        .map(|r| r.destination.as_str())
        .collect();
    assert_eq!(dests, ["/data"]);
    let shared = |dest: &str| {
        plan.shared_mounts
            .iter()
            .find(|m| m.destination == dest)
            .unwrap_or_else(|| panic!("{dest}: {:?}", plan.shared_mounts))
            .recursive
    };
    assert_eq!(
        shared("/data/sub"),
        Some(MountAttrs {
            set: NOEXEC,
            clear: 0
        })
    );
    assert_eq!(
        shared("/peer"),
        Some(MountAttrs {
            set: RDONLY,
            clear: 0
        })
    );
}

/// runc set them before a later mount covered the bind.
#[test]
fn a_covered_bind_gets_nothing_from_the_init() {
    let env = env();
    let vol = env.host.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let spec = with(|v| {
        mount(v, bind("/srv/a", &vol, &["rbind", "rro"]));
        mount(
            v,
            json!({"destination": "/srv", "type": "tmpfs", "source": "tmpfs", "options": []}),
        );
    });
    let plan = env.plan(&spec).unwrap();
    assert_eq!(plan.init.recursive_attrs, []);
}

#[test]
fn other_filesystems_refuse_them_naming_the_option() {
    let env = env();
    let spec = with(|v| {
        mount(
            v,
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "rro"]}),
        );
    });
    let err = env.plan(&spec).unwrap_err();
    let PlanError::Unsupported { field, reason } = &err else {
        panic!("{err}");
    };
    assert!(field.ends_with("].options[1]"), "{field}");
    assert!(
        reason.contains("\"rro\"") && reason.contains("bind"),
        "{reason}"
    );
}
