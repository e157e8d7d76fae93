//! Id-mapped binds (OCI `uidMappings`/`gidMappings` on a mount, runc's
//! `idmap`/`ridmap` options), as containerd's CRI gives a `hostUsers:
//! false` pod's volumes and `/etc/hosts`: a file's owner on disk appears
//! through the mount's mapping, and a file made there is stored with the
//! id mapped back. Side by side with runc where runc has id-mapped mounts
//! (1.2 and later; Debian 12's 1.1.5 ignores the fields, so there lxcri's
//! results are checked against the values alone).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::{json, Value};

use lxcri_e2e::{assert_same, runc_is_1_2_or_later, runtimes, spec, Containerd, Runtime};

/// What each scenario's container prints: owners through the binds, and
/// whether (and as whom) it can make a file in one.
const PROBE: &str = "stat -c '%n %u:%g' /v/root-file /v/user-file /v/sub /r/sub /hosts; \
     if touch /v/made 2>/dev/null; then stat -c 'made %u:%g' /v/made; else echo 'made: refused'; fi";

/// A host directory holding a file of root's, one of user 1000's and a
/// tmpfs at `sub` (root's): unmounted and removed on drop.
struct Volume(PathBuf);

impl Volume {
    fn new(path: PathBuf) -> Self {
        std::fs::create_dir_all(path.join("sub")).unwrap();
        std::fs::write(path.join("root-file"), "").unwrap();
        std::fs::write(path.join("user-file"), "").unwrap();
        std::os::unix::fs::chown(path.join("user-file"), Some(1000), Some(1000)).unwrap();
        let volume = Volume(path);
        mount(
            Some("none"),
            &volume.0.join("sub"),
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=755"),
        )
        .unwrap();
        volume
    }

    /// The owner on disk of what the container made, if it made it.
    fn made(&self) -> Option<String> {
        let md = std::fs::metadata(self.0.join("made")).ok()?;
        Some(format!("{}:{}", md.uid(), md.gid()))
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = umount2(&self.0.join("sub"), MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn maps(start: u32, size: u32) -> Value {
    json!([{"containerID": 0, "hostID": start, "size": size}])
}

struct Scenario {
    name: &'static str,
    /// The container's user namespace (host id of its root), if any.
    userns: Option<u32>,
    /// The mapping of `/v`, `/r` and `/hosts`: `None` is `idmap` alone
    /// (the container's).
    mount_map: Option<(u32, u32)>,
    expected: &'static str,
    /// The owner on disk of `/v/made`.
    made: Option<&'static str>,
}

const SCENARIOS: [Scenario; 4] = [
    // A Kubernetes pod's: the container's own mapping. The tmpfs below
    // `/v` is not id-mapped (runc's default); below `/r` (`ridmap`) it is.
    Scenario {
        name: "the container's mapping",
        userns: Some(100000),
        mount_map: Some((100000, 65536)),
        expected: "/v/root-file 0:0\n/v/user-file 1000:1000\n/v/sub 65534:65534\n\
                   /r/sub 0:0\n/hosts 0:0\nmade 0:0\n",
        made: Some("0:0"),
    },
    // `idmap` alone takes the container's mapping.
    Scenario {
        name: "idmap alone",
        userns: Some(100000),
        mount_map: None,
        expected: "/v/root-file 0:0\n/v/user-file 1000:1000\n/v/sub 65534:65534\n\
                   /r/sub 0:0\n/hosts 0:0\nmade 0:0\n",
        made: Some("0:0"),
    },
    // Another mapping than the container's: disk's 0 is the container's
    // 1000, its root has no id on disk.
    Scenario {
        name: "a mapping of its own",
        userns: Some(100000),
        mount_map: Some((101000, 1000)),
        expected: "/v/root-file 1000:1000\n/v/user-file 65534:65534\n/v/sub 65534:65534\n\
                   /r/sub 1000:1000\n/hosts 1000:1000\nmade: refused\n",
        made: None,
    },
    // No user namespace: the ids the mapping gives are the host's.
    Scenario {
        name: "no user namespace",
        userns: None,
        mount_map: Some((100000, 65536)),
        expected: "/v/root-file 100000:100000\n/v/user-file 101000:101000\n/v/sub 0:0\n\
                   /r/sub 100000:100000\n/hosts 100000:100000\nmade: refused\n",
        made: None,
    },
];

fn bind(dest: &str, source: &Path, options: &[&str], map: Option<(u32, u32)>) -> Value {
    let mut options: Vec<&str> = options.to_vec();
    let mut m = json!({"destination": dest, "type": "bind", "source": source});
    match map {
        Some((start, size)) => {
            m["uidMappings"] = maps(start, size);
            m["gidMappings"] = maps(start, size);
        }
        None if !options.contains(&"ridmap") => options.push("idmap"),
        None => {}
    }
    m["options"] = json!(options);
    m
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn id_mapped_binds_show_and_store_ids_through_their_mapping() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let with_runc = runc_is_1_2_or_later();
    if !with_runc {
        eprintln!("runc here has no id-mapped mounts (1.2+): lxcri's results checked alone");
    }
    for sc in &SCENARIOS {
        let mut results = Vec::new();
        for rt in runtimes() {
            if rt == Runtime::Runc && !with_runc {
                continue;
            }
            let id = ctd.new_id("idmap");
            let volume = Volume::new(ctd.dir().join(format!("vol-{id}")));
            let hosts = ctd.dir().join(format!("hosts-{id}"));
            std::fs::write(&hosts, "").unwrap();
            let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", PROBE]);
            if let Some(host) = sc.userns {
                let rootfs = PathBuf::from(s["root"]["path"].as_str().unwrap());
                spec::in_user_namespace(&mut s, host, &[&rootfs]);
            }
            let binds = [
                bind("/v", &volume.0, &["rbind"], sc.mount_map),
                bind("/r", &volume.0, &["rbind", "ridmap"], sc.mount_map),
                // A file, as containerd binds a pod's /etc/hosts.
                bind("/hosts", &hosts, &["bind", "ro"], sc.mount_map),
            ];
            s["mounts"].as_array_mut().unwrap().extend(binds);
            let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
            assert_eq!(out.code, Some(0), "{}: {rt}: {out}", sc.name);
            assert_eq!(out.stdout, sc.expected, "{}: {rt}", sc.name);
            assert_eq!(volume.made().as_deref(), sc.made, "{}: {rt}", sc.name);
            results.push((rt, out.stdout));
            let _ = std::fs::remove_file(&hosts);
        }
        assert_same(sc.name, &results);
    }
}

/// A filesystem that cannot be id-mapped (sysfs): create fails on both
/// runtimes naming the bind, and lxcri leaves nothing behind.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_source_that_cannot_be_id_mapped_fails_cleanly() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let with_runc = runc_is_1_2_or_later();
    for rt in runtimes() {
        if rt == Runtime::Runc && !with_runc {
            continue;
        }
        let id = ctd.new_id("idmap-sysfs");
        let mut s = spec::busybox_spec(&ctd, &id, &["true"]);
        s["mounts"].as_array_mut().unwrap().push(bind(
            "/k",
            Path::new("/sys/kernel"),
            &["rbind"],
            Some((100000, 65536)),
        ));
        let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert!(matches!(out.code, Some(c) if c != 0), "{rt}: {out}");
        assert!(out.all_output().contains("/sys/kernel"), "{rt}: {out}");
        ctd.ctr(&["containers", "rm", &id]);
        let left = lxcri_e2e::cmd::poll(std::time::Duration::from_secs(15), || {
            ctd.leftovers(&id).is_empty().then_some(())
        });
        assert!(
            left.is_some(),
            "{rt}: {id} left behind: {:#?}",
            ctd.leftovers(&id)
        );
    }
}

/// A bind inside another in a container with a user namespace: its mount
/// point is made as the container's root, as runc makes it: through an
/// id-mapped bind it is stored as the host's root's, in a plain volume
/// (writable by all) it belongs to the mapped root.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn mount_points_inside_binds_are_the_containers_roots() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let with_runc = runc_is_1_2_or_later();
    let mut results = Vec::new();
    for rt in runtimes() {
        if rt == Runtime::Runc && !with_runc {
            continue;
        }
        let id = ctd.new_id("idmap-inner");
        let (mapped, plain, other) = (
            Volume::new(ctd.dir().join(format!("mapped-{id}"))),
            ctd.dir().join(format!("plain-{id}")),
            ctd.dir().join(format!("other-{id}")),
        );
        for d in [&plain, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::set_permissions(&plain, std::os::unix::fs::PermissionsExt::from_mode(0o1777))
            .unwrap();
        let probe = "stat -c '%n %u:%g' /v/inner /w/inner";
        let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", probe]);
        let rootfs = PathBuf::from(s["root"]["path"].as_str().unwrap());
        spec::in_user_namespace(&mut s, 100000, &[&rootfs]);
        let unmapped = |dest: &str, source: &Path| json!({"destination": dest, "type": "bind", "source": source, "options": ["rbind"]});
        let binds = [
            bind("/v", &mapped.0, &["rbind"], Some((100000, 65536))),
            unmapped("/v/inner", &other),
            unmapped("/w", &plain),
            unmapped("/w/inner", &other),
        ];
        s["mounts"].as_array_mut().unwrap().extend(binds);
        let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        let owner = |p: &Path| {
            let md = std::fs::metadata(p).unwrap();
            format!("{}:{}", md.uid(), md.gid())
        };
        let on_disk = (owner(&mapped.0.join("inner")), owner(&plain.join("inner")));
        assert_eq!(
            on_disk,
            ("0:0".to_string(), "100000:100000".to_string()),
            "{rt}: mount points on disk"
        );
        results.push((rt, out.stdout));
        let _ = std::fs::remove_dir_all(&plain);
        let _ = std::fs::remove_dir_all(&other);
    }
    assert_eq!(
        results.first().map(|(_, o)| o.as_str()),
        Some("/v/inner 65534:65534\n/w/inner 65534:65534\n"),
        "{results:?}"
    );
    assert_same("mount points inside binds", &results);
}
