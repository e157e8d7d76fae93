//! Mounts inside bind mounts (volumes): LXC would make their mount points
//! following links a volume holds, so binds there are made by the share
//! helper inside the container, and other filesystems there are refused.

use serde_json::json;

use super::{env, mount, with};

#[test]
fn binds_inside_binds_are_made_inside_the_container_by_the_helper() {
    let env = env();
    let vol = env.host.join("dir/vol");
    let other = env.host.join("dir/other");
    let file = env.host.join("file");
    for d in [&vol, &other] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(&file, "").unwrap();
    let spec = with(|v| {
        mount(
            v,
            json!({"destination": "/data", "type": "bind", "source": vol, "options": ["rbind", "rprivate"]}),
        );
        // Over the volume itself, not inside it: LXC's.
        mount(
            v,
            json!({"destination": "/data", "type": "bind", "source": other, "options": ["bind"]}),
        );
        mount(
            v,
            json!({"destination": "/data/evil/x", "type": "bind", "source": other,
                        "options": ["rbind", "rprivate", "ro", "nosuid"]}),
        );
        mount(
            v,
            json!({"destination": "/data/f", "type": "bind", "source": file, "options": ["bind"]}),
        );
        // Beside it, with a common prefix: LXC's.
        mount(
            v,
            json!({"destination": "/database", "type": "bind", "source": other, "options": ["bind"]}),
        );
    });
    let plan = env.plan(&spec).unwrap();
    let lxc_dests: Vec<&str> = plan
        .lxc
        .mounts
        .iter()
        .map(|m| m.destination.as_str())
        .collect();
    assert!(
        lxc_dests.contains(&"data") && lxc_dests.contains(&"database"),
        "{lxc_dests:?}"
    );
    assert_eq!(
        lxc_dests.iter().filter(|d| **d == "data").count(),
        2,
        "{lxc_dests:?}"
    );
    assert!(
        !lxc_dests.iter().any(|d| d.starts_with("data/")),
        "{lxc_dests:?}"
    );

    let helper: Vec<_> = plan
        .shared_mounts
        .iter()
        .map(|m| m.destination.as_str())
        .collect();
    assert_eq!(helper, ["/data/evil/x", "/data/f"]);
    let x = &plan.shared_mounts[0];
    assert!(x.create);
    assert_eq!(x.flags, Some((libc::MS_RDONLY | libc::MS_NOSUID, 0)));
    assert_eq!(x.propagation.map(|p| p.recursive), Some(true));
    // No flag named: the source's stay.
    assert!(plan.shared_mounts[1].create && plan.shared_mounts[1].flags.is_none());
    // The init does not look for their propagation: they are not there yet.
    assert!(!plan
        .init
        .mount_propagation
        .iter()
        .any(|p| p.destination.starts_with("/data/")));
}

#[test]
fn other_filesystems_inside_binds_are_refused_naming_the_mount() {
    let env = env();
    let vol = env.host.join("dir/vol");
    std::fs::create_dir_all(&vol).unwrap();
    let spec = with(|v| {
        mount(
            v,
            json!({"destination": "/data", "type": "bind", "source": vol, "options": ["rbind"]}),
        );
        mount(
            v,
            json!({"destination": "/data/tmp", "type": "tmpfs", "source": "tmpfs"}),
        );
    });
    let e = env.err(&spec);
    assert!(
        e.contains("mounts[3].destination") && e.contains("inside the bind mount at /data"),
        "{e}"
    );
}
