//! Id-mapped binds (OCI `uidMappings`/`gidMappings`, runc's `idmap` and
//! `ridmap` options): made by the share helper, which alone can set an
//! idmapping, in the spec's order with the other binds it makes; refused
//! naming the field where runc refuses them.

use lxcri_init_spec::{IdRange, IdmapSource};
use serde_json::{json, Value};

use super::{env, mount, with};

fn range(inside: u32, outside: u32, size: u32) -> IdRange {
    IdRange {
        inside,
        outside,
        size,
    }
}

fn map(container: u32, host: u32, size: u32) -> Value {
    json!([{"containerID": container, "hostID": host, "size": size}])
}

fn userns(v: &mut Value) {
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    v["linux"]["uidMappings"] = map(0, 100000, 65536);
    v["linux"]["gidMappings"] = map(0, 100000, 65536);
}

#[test]
fn mapped_binds_are_the_helpers_with_their_mapping_and_recursion() {
    let env = env();
    let vol = env.host.join("dir/vol");
    let file = env.host.join("hosts");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(&file, "").unwrap();
    let spec = with(|v| {
        userns(v);
        // As containerd's CRI sends a hostUsers: false pod's volumes.
        mount(
            v,
            json!({"destination": "/data", "type": "bind", "source": vol,
                   "options": ["rbind", "rprivate", "rw"],
                   "uidMappings": map(0, 100000, 65536),
                   "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 10},
                                   {"containerID": 10, "hostID": 300000, "size": 5}]}),
        );
        // The container's own mapping, every mount below too.
        mount(
            v,
            json!({"destination": "/etc/hosts", "type": "bind", "source": file,
                   "options": ["bind", "ro", "idmap", "ridmap"]}),
        );
        // A bind inside an id-mapped one: the helper's too, after it.
        mount(
            v,
            json!({"destination": "/data/sub", "type": "bind", "source": vol, "options": ["rbind"]}),
        );
    });
    let plan = env.plan(&spec).unwrap();
    assert!(
        !plan
            .lxc
            .mounts
            .iter()
            .any(|m| m.destination.starts_with("data") || m.destination == "etc/hosts"),
        "{:?}",
        plan.lxc.mounts
    );
    let dests: Vec<_> = plan
        .shared_mounts
        .iter()
        .map(|m| m.destination.as_str())
        .collect();
    assert_eq!(dests, ["/data", "/etc/hosts", "/data/sub"]);
    let data = &plan.shared_mounts[0];
    // `rw`: remounted without the source's flags, as runc 1.2+.
    assert!(data.create && data.rbind);
    assert_eq!(data.flags, Some((0, libc::MS_RDONLY)));
    let idmap = data.idmap.as_ref().unwrap();
    assert!(!idmap.recursive, "runc's default: the bind's own mount");
    assert_eq!(
        idmap.mapping,
        IdmapSource::Ranges {
            uid: vec![range(0, 100000, 65536)],
            gid: vec![range(0, 200000, 10), range(10, 300000, 5)],
        }
    );
    let hosts = &plan.shared_mounts[1];
    assert!(hosts.create && !hosts.rbind);
    assert_eq!(hosts.flags, Some((libc::MS_RDONLY, 0)));
    let idmap = hosts.idmap.as_ref().unwrap();
    assert!(idmap.recursive, "the last of idmap/ridmap");
    assert_eq!(idmap.mapping, IdmapSource::Container);
    assert!(plan.shared_mounts[2].idmap.is_none());
    // Only the helper knows the options; LXC never sees them.
    assert!(!plan
        .lxc
        .mounts
        .iter()
        .any(|m| m.options.iter().any(|o| o.contains("idmap"))));
}

#[test]
fn helper_binds_keep_the_specs_order() {
    let env = env();
    let vol = env.host.join("dir/vol");
    std::fs::create_dir_all(&vol).unwrap();
    let spec = with(|v| {
        mount(
            v,
            json!({"destination": "/v", "type": "bind", "source": vol, "options": ["rbind"]}),
        );
        mount(
            v,
            json!({"destination": "/v/x", "type": "bind", "source": vol, "options": ["rbind"]}),
        );
        // rshared, inside a bind the helper makes: after it.
        mount(
            v,
            json!({"destination": "/v/x/y", "type": "bind", "source": vol,
                   "options": ["rbind", "rshared"]}),
        );
    });
    let plan = env.plan(&spec).unwrap();
    let dests: Vec<_> = plan
        .shared_mounts
        .iter()
        .map(|m| m.destination.as_str())
        .collect();
    assert_eq!(dests, ["/v/x", "/v/x/y"]);
}

#[test]
fn a_helper_bind_a_later_mount_would_cover_is_refused() {
    let env = env();
    let vol = env.host.join("dir/vol");
    std::fs::create_dir_all(&vol).unwrap();
    let spec = with(|v| {
        mount(
            v,
            json!({"destination": "/data", "type": "bind", "source": vol, "options": ["rbind"],
                   "uidMappings": map(0, 100000, 65536), "gidMappings": map(0, 100000, 65536)}),
        );
        mount(
            v,
            json!({"destination": "/", "type": "tmpfs", "source": "tmpfs"}),
        );
    });
    // Over the root is refused before that; a tmpfs over a parent is not.
    let e = env.err(&spec);
    assert!(e.contains("mounts[3]"), "{e}");
    let spec = with(|v| {
        mount(
            v,
            json!({"destination": "/app/data", "type": "bind", "source": vol, "options": ["rbind"],
                   "uidMappings": map(0, 100000, 65536), "gidMappings": map(0, 100000, 65536)}),
        );
        mount(
            v,
            json!({"destination": "/app", "type": "tmpfs", "source": "tmpfs"}),
        );
    });
    let e = env.err(&spec);
    assert!(
        e.contains("mounts[2].destination") && e.contains("mounts[3] at /app"),
        "{e}"
    );
}

#[test]
fn refused_where_runc_refuses_naming_the_field() {
    let env = env();
    let vol = env.host.join("dir/vol");
    std::fs::create_dir_all(&vol).unwrap();
    let cases: Vec<(Value, bool, &str)> = vec![
        // Not a bind.
        (
            json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                   "uidMappings": map(0, 1, 1), "gidMappings": map(0, 1, 1)}),
            true,
            "mounts[2]: ",
        ),
        (
            json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["ridmap"]}),
            true,
            "mounts[2]: ",
        ),
        // One of the two.
        (
            json!({"destination": "/d", "type": "bind", "source": vol,
                   "uidMappings": map(0, 100000, 10)}),
            true,
            "mounts[2].gidMappings",
        ),
        (
            json!({"destination": "/d", "type": "bind", "source": vol,
                   "uidMappings": [], "gidMappings": map(0, 100000, 10)}),
            true,
            "mounts[2].uidMappings",
        ),
        // What the kernel's map_write refuses.
        (
            json!({"destination": "/d", "type": "bind", "source": vol,
                   "uidMappings": map(0, 100000, 0), "gidMappings": map(0, 100000, 10)}),
            true,
            "mounts[2].uidMappings[0].size",
        ),
        (
            json!({"destination": "/d", "type": "bind", "source": vol,
                   "uidMappings": map(0, 100000, 10),
                   "gidMappings": [{"containerID": 0, "hostID": 5, "size": 10},
                                   {"containerID": 5, "hostID": 50, "size": 10}]}),
            true,
            "mounts[2].gidMappings[1].containerID",
        ),
        // `idmap` alone takes the container's mapping: there is none.
        (
            json!({"destination": "/d", "type": "bind", "source": vol, "options": ["rbind", "idmap"]}),
            false,
            "mounts[2].uidMappings",
        ),
    ];
    for (m, with_userns, field) in cases {
        let spec = with(|v| {
            if with_userns {
                userns(v);
            }
            mount(v, m.clone());
        });
        let e = env.err(&spec);
        assert!(e.contains(field), "{m}: {e}");
    }
}
