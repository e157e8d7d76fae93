//! `userns.unprivileged`: lxcri gives every container whose spec asks for no
//! user namespace one of its own, with a range of host ids from
//! `userns.pool` no other running container has, freed on delete; the
//! image is shifted into the range by idmapped layers, not copied. Each
//! container sees what runc gives a `--uidmap` container with the same
//! range.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use lxcri_e2e::{assert_same, require, Containerd, Runtime, LXCRI_RUN_ROOT};

const CONTAINERS: usize = 20;

/// What a container sees of its ids and what its root can do (its stdio
/// too: the shim's pipes belong to the container's root).
const PROBE: &str = "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; \
                     touch /new && stat -c '%u:%g' /new /bin/busybox; \
                     echo ok > /etc/written && cat /etc/written; \
                     echo by-path > /dev/stdout";

/// The slots of `userns.pool` taken for containers of `namespace`.
fn slots_of(namespace: &str) -> Vec<String> {
    let dir = Path::new(LXCRI_RUN_ROOT).join(".userns-slots");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|owner| owner.starts_with(&format!("{namespace}/")))
        .collect()
}

/// The first host id of the container's uid_map, from its probe output.
fn host_start(probe: &str) -> u32 {
    let f: Vec<&str> = probe.lines().next().unwrap().split_whitespace().collect();
    assert_eq!((f[0], f[2]), ("0", "65536"), "{probe}");
    f[1].parse().unwrap()
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn concurrent_containers_get_disjoint_ranges_and_free_them() {
    if !require(Runtime::Lxcri, "node-chosen user namespaces") {
        return;
    }
    let ctd = Containerd::start_with_env(&[("LXCRI_USERNS_UNPRIVILEGED", "true")]);
    ctd.import_busybox();
    let ids: Vec<String> = (0..CONTAINERS).map(|_| ctd.new_id("nu")).collect();
    std::thread::scope(|s| {
        for id in &ids {
            let ctd = &ctd;
            s.spawn(move || ctd.run_detached(Runtime::Lxcri, id, &["sleep", "1000"], &[]));
        }
    });
    assert_eq!(slots_of(ctd.namespace()).len(), CONTAINERS);

    let mut starts = Vec::new();
    let mut first = None;
    for id in &ids {
        let out = ctd.exec(id, "probe", &["sh", "-c", PROBE], &[]);
        assert!(out.success(), "{id}: {out}");
        let start = host_start(&out.stdout);
        // The container's root owns its image and what it writes, and on
        // the host those files belong to the range's first id.
        let (pid, _) = ctd.task(id).expect("task listed");
        for f in ["new", "bin/busybox", "etc/written"] {
            let m = std::fs::metadata(format!("/proc/{pid}/root/{f}")).unwrap();
            assert_eq!((m.uid(), m.gid()), (start, start), "{id}: /{f}");
        }
        if let Some(sim) = ctd.pve() {
            let (_, conf) = sim.ct_of(ctd.namespace(), id).expect("the CT");
            assert!(conf.contains("unprivileged: 1"), "{conf}");
            assert!(
                conf.contains(&format!("lxc.idmap: u 0 {start} 65536")),
                "{conf}"
            );
        }
        first.get_or_insert((start, out.stdout.clone()));
        starts.push(start);
    }
    let mut distinct = starts.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), CONTAINERS, "ranges shared: {starts:?}");
    for pair in distinct.windows(2) {
        assert!(pair[1] - pair[0] >= 65536, "ranges overlap: {pair:?}");
    }

    // runc with the same range as a `--uidmap` container sees the same.
    let (start, lxcri_view) = first.unwrap();
    if require(Runtime::Runc, "node-chosen user namespaces, runc side") {
        let map = format!("0:{start}:65536");
        let id = ctd.new_id("nu-runc");
        ctd.run_detached(
            Runtime::Runc,
            &id,
            &["sleep", "1000"],
            &["--uidmap", &map, "--gidmap", &map],
        );
        let out = ctd.exec(&id, "probe", &["sh", "-c", PROBE], &[]);
        assert!(out.success(), "runc: {out}");
        assert_same(
            "a container in the node's range vs runc --uidmap",
            &[(Runtime::Lxcri, lxcri_view), (Runtime::Runc, out.stdout)],
        );
        ctd.remove(&id);
    }

    // All first: `nu-1`'s leftovers are looked up by prefix, `nu-10` too.
    for id in &ids {
        ctd.remove(id);
    }
    for id in &ids {
        assert!(
            ctd.leftovers(id).is_empty(),
            "{id}: {:?}",
            ctd.leftovers(id)
        );
    }
    assert_eq!(slots_of(ctd.namespace()), Vec::<String>::new());
}

/// A rootfs lxcri did not mount cannot be shifted: the create fails
/// naming the option, and the slot it took is free again.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_rootfs_lxcri_cannot_shift_is_refused_and_leaves_nothing() {
    if !require(Runtime::Lxcri, "node-chosen user namespaces") {
        return;
    }
    let ctd = Containerd::start_with_env(&[("LXCRI_USERNS_UNPRIVILEGED", "true")]);
    // Never written to: the create is refused before LXC sees it.
    let rootfs = &lxcri_e2e::image::busybox().rootfs;
    let id = ctd.new_id("nu-dir");
    let out = ctd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        Runtime::Lxcri.containerd_name(),
        "--rootfs",
        rootfs.to_str().unwrap(),
        &id,
        "true",
    ]);
    assert!(!out.success(), "{out}");
    assert!(out.all_output().contains("userns.unprivileged"), "{out}");
    ctd.ctr(&["containers", "rm", &id]);
    assert!(ctd.leftovers(&id).is_empty(), "{:?}", ctd.leftovers(&id));
    assert_eq!(slots_of(ctd.namespace()), Vec::<String>::new());
}
