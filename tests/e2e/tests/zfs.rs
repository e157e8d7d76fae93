//! `rootfs.mode = "zfs"` on real ZFS (zfs-fuse, a file-backed pool per
//! test): one image dataset per image, one clone per container, named and
//! sized like PVE's CT volumes; isolation of writes; cleanup on delete;
//! `lxcri gc` for unused images; clear errors that leave nothing behind.
//! On the pve backend (`LXCRI_E2E_BACKEND=pve`) the stand-in has a real
//! ZFS pool storage on the test's pool, and the clone is the CT's volume.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use lxcri_e2e::cmd::Background;
use lxcri_e2e::containerd::bin_dir;
use lxcri_e2e::node_faults::sigkill;
use lxcri_e2e::pve::{backend, BackendKind, PveSim};
use lxcri_e2e::zfs::ZfsPool;
use lxcri_e2e::{cleanup, require, Containerd, Runtime};

/// The PVE storage the stand-in serves from the test's pool.
const STORAGE: &str = "lxcri-zfs";

/// Fields drop in order: containerd (and every container) before the pool.
struct ZfsNode {
    ctd: Containerd,
    pool: ZfsPool,
    config: PathBuf,
}

impl ZfsNode {
    /// A pool with `<pool>/data` for the volumes, containerd with lxcri on
    /// the selected backend, and an lxcri config with `extra` lines under
    /// `[zfs]` (after `pool` and `size`).
    fn start(extra: &str) -> Self {
        Self::start_inner(extra, None)
    }

    /// As [`ZfsNode::start`], with the zfs settings also in every shim's
    /// environment: `ctr run --uidmap` sends runc's task options (the IO
    /// owner), which replace the runtime options holding the config path
    /// (containerd 1.x), or which ctr 2.x fails to build for a runtime
    /// whose options hold one ("can't unmarshal type
    /// runtimeoptions.v1.Options", client/task.go `getRuncOptions`).
    fn start_with_env(more: &[(&str, &str)]) -> Self {
        Self::start_inner("", Some(more))
    }

    fn start_inner(extra: &str, env: Option<&[(&str, &str)]>) -> Self {
        let pool = ZfsPool::create();
        pool.create("data", &[]);
        let data = pool.dataset("data");
        let settings = [
            ("LXCRI_ROOTFS_MODE", "zfs"),
            ("LXCRI_ZFS_POOL", data.as_str()),
            ("LXCRI_ZFS_SIZE", "256M"),
        ];
        let settings: Vec<(&str, &str)> = match env {
            Some(more) => settings.iter().chain(more).copied().collect(),
            None => Vec::new(),
        };
        let ctd = if backend() == BackendKind::Pve {
            let storage = format!("{STORAGE}={data}");
            let mut sim = PveSim::start_with(&["--zfs-storage", &storage]);
            sim.set_env("LXCRI_PVE_STORAGE", STORAGE);
            for (k, v) in &settings {
                sim.set_env(k, v);
            }
            Containerd::start_pve(sim)
        } else {
            Containerd::start_with_env(&settings)
        };
        ctd.import_busybox();
        let config = ctd.dir().join("lxcri-zfs.toml");
        Self::write_config(&config, &pool, extra);
        Self { ctd, pool, config }
    }

    fn write_config(path: &std::path::Path, pool: &ZfsPool, extra: &str) {
        std::fs::write(
            path,
            format!(
                "[rootfs]\nmode = \"zfs\"\n[zfs]\npool = \"{}\"\nsize = \"256M\"\n{extra}\n",
                pool.dataset("data")
            ),
        )
        .unwrap();
    }

    fn flag(&self) -> String {
        format!("--runtime-config-path={}", self.config.display())
    }

    fn run(&self, id: &str) {
        self.ctd
            .run_detached(Runtime::Lxcri, id, &["sleep", "1000"], &[&self.flag()]);
    }

    fn data(&self) -> String {
        self.pool.dataset("data")
    }

    fn images(&self) -> String {
        format!("{}/lxcri-images", self.data())
    }

    /// The container's volume, and on pve the CT's config text.
    fn volume(&self, id: &str) -> (String, Option<String>) {
        match self.ctd.pve() {
            Some(sim) => {
                let (vmid, text) = sim
                    .ct_of(self.ctd.namespace(), id)
                    .unwrap_or_else(|| panic!("no CT for {id}"));
                (format!("{}/subvol-{vmid}-disk-0", self.data()), Some(text))
            }
            None => (
                format!(
                    "{}/subvol-{}_{id}-disk-0",
                    self.data(),
                    self.ctd.namespace()
                ),
                None,
            ),
        }
    }

    /// Datasets below the images dataset (not itself).
    fn image_datasets(&self) -> Vec<String> {
        let prefix = format!("{}/", self.images());
        self.pool
            .datasets()
            .into_iter()
            .filter(|d| d.starts_with(&prefix))
            .collect()
    }

    /// Container volumes in the pool.
    fn volumes(&self) -> Vec<String> {
        let prefix = format!("{}/subvol-", self.data());
        self.pool
            .datasets()
            .into_iter()
            .filter(|d| d.starts_with(&prefix))
            .collect()
    }

    fn sh(&self, id: &str, exec_id: &str, script: &str) -> String {
        let out = self.ctd.exec(id, exec_id, &["sh", "-c", script], &[]);
        assert!(out.success(), "{out}");
        out.stdout
    }

    /// `lxcri gc` with this node's config (and the shim's environment).
    fn gc(&self, force: bool) -> String {
        let mut cmd = Command::new(bin_dir().join("lxcri"));
        cmd.arg("--config").arg(&self.config).arg("gc");
        if force {
            cmd.arg("--force");
        }
        if let Some(sim) = self.ctd.pve() {
            cmd.envs(sim.env());
        }
        let out = cmd.output().expect("run lxcri gc");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "lxcri gc: {text}");
        text
    }
}

#[test]
#[ignore = "needs root, containerd, LXC and zfs-fuse: run by scripts/test"]
fn clones_of_one_image_dataset_isolate_writes_and_go_with_their_containers() {
    if !require(Runtime::Lxcri, "zfs clones") {
        return;
    }
    let node = ZfsNode::start("");
    let (a, b) = (node.ctd.new_id("za"), node.ctd.new_id("zb"));
    node.run(&a);
    node.run(&b);

    // One image, complete (snapshot), whatever the number of containers.
    let images = node.image_datasets();
    assert_eq!(images.len(), 2, "one dataset and its snapshot: {images:?}");
    let image = images.iter().find(|d| !d.contains('@')).unwrap().clone();
    assert!(image.contains("/lxcri-images/img-"), "{image}");
    assert!(images.contains(&format!("{image}@lxcri")), "{images:?}");
    assert_eq!(
        node.pool.prop(&image, "lxcri:role").as_deref(),
        Some("image")
    );

    for id in [&a, &b] {
        let (volume, ct) = node.volume(id);
        assert_eq!(
            node.pool.prop(&volume, "origin"),
            Some(format!("{image}@lxcri")),
            "{volume} is a clone of the image"
        );
        assert_eq!(node.pool.prop(&volume, "refquota").as_deref(), Some("256M"));
        assert_eq!(
            node.pool.prop(&volume, "lxcri:role").as_deref(),
            Some("rootfs")
        );
        assert_eq!(
            node.pool.prop(&volume, "lxcri:owner"),
            Some(format!("{}/{id}", node.ctd.namespace()))
        );
        if let Some(text) = ct {
            let leaf = volume.rsplit('/').next().unwrap();
            assert!(
                text.contains(&format!("rootfs: {STORAGE}:{leaf},size=256M\n")),
                "the CT's rootfs is its clone, a volume of the storage:\n{text}"
            );
        }
        // The container runs from its clone.
        assert_eq!(node.sh(id, "busybox", "ls /bin/busybox"), "/bin/busybox\n");
    }

    // Writes stay in the writer's clone.
    node.sh(&a, "w", "echo from-a > /etc/zfs-marker");
    assert_eq!(node.sh(&a, "r1", "cat /etc/zfs-marker"), "from-a\n");
    assert_eq!(
        node.sh(&b, "r2", "cat /etc/zfs-marker 2>/dev/null || echo absent"),
        "absent\n"
    );
    let image_mnt = node.pool.prop(&image, "mountpoint").unwrap();
    assert!(
        !std::path::Path::new(&image_mnt)
            .join("etc/zfs-marker")
            .exists(),
        "the write reached the image"
    );

    // Delete destroys each clone; the image stays for the next container.
    let (vol_a, _) = node.volume(&a);
    node.ctd.remove(&a);
    if node.pool.datasets().contains(&vol_a) {
        let leaf = vol_a.rsplit('/').next().unwrap().to_string();
        let holders: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let pid = e.file_name().to_string_lossy().into_owned();
                let mi = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
                mi.contains(&leaf).then(|| {
                    let cmd =
                        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    format!("{pid}: {}", cmd.replace('\0', " "))
                })
            })
            .collect();
        panic!(
            "{vol_a} left behind; mounted in: {holders:#?}\n{}",
            node.ctd.log_tail(30)
        );
    }
    assert!(
        node.ctd.leftovers(&a).is_empty(),
        "{:?}",
        node.ctd.leftovers(&a)
    );
    node.ctd.remove(&b);
    assert!(node.volumes().is_empty(), "{:?}", node.volumes());
    assert_eq!(node.image_datasets().len(), 2);

    // gc: recently used, so kept...
    let out = node.gc(true);
    assert!(out.contains("keep"), "{out}");
    assert_eq!(node.image_datasets().len(), 2, "{out}");
    // ...until unused for longer than the ttl (last use moved back a day),
    // and never a dataset without lxcri's mark.
    node.pool.create("data/lxcri-images/not-lxcris", &[]);
    let zfs = node.pool.zfs(&["set", "lxcri:last-used=1", image.as_str()]);
    assert!(zfs.success(), "{zfs}");
    let dry = node.gc(false);
    assert!(dry.contains("would-remove"), "{dry}");
    assert_eq!(node.image_datasets().len(), 3, "a dry run removes nothing");
    let out = node.gc(true);
    assert!(out.contains("removed 1 image dataset"), "{out}");
    assert_eq!(
        node.image_datasets(),
        vec![format!("{}/not-lxcris", node.images())],
        "{out}"
    );
}

/// An admin's clone of a container's volume keeps `zfs destroy -r` from
/// destroying it: the delete fails and says why (on pve PVE's destroy task
/// fails there, pve-storage `ZFSPoolPlugin.pm` `zfs_delete_zvol`, and the CT
/// stays), and goes through once the clone is gone, leaving nothing.
#[test]
#[ignore = "needs root, containerd, LXC and zfs-fuse: run by scripts/test"]
fn a_volume_with_a_dependent_clone_fails_the_delete_until_it_is_gone() {
    if !require(Runtime::Lxcri, "zfs dependent clone") {
        return;
    }
    let node = ZfsNode::start("");
    let id = node.ctd.new_id("zdep");
    node.run(&id);
    let (volume, _) = node.volume(&id);
    let vmids = node
        .ctd
        .pve()
        .map(|sim| sim.vmids_of(node.ctd.namespace(), &id));
    let kill = node.ctd.kill(&id, "SIGKILL");
    assert!(kill.success(), "{kill}");
    node.ctd.wait_status(&id, "STOPPED");
    let snapshot = format!("{volume}@admin");
    let copy = node.pool.dataset("data/admin-copy");
    for args in [
        vec!["snapshot", snapshot.as_str()],
        // Not mounted: zfs-fuse holds a mounted clone busy for a while.
        vec![
            "clone",
            "-o",
            "canmount=off",
            snapshot.as_str(),
            copy.as_str(),
        ],
    ] {
        let out = node.pool.zfs(&args);
        assert!(out.success(), "{out}");
    }

    let rm = node.ctd.ctr(&["task", "rm", &id]);
    assert!(!rm.success(), "deleted with a dependent clone: {rm}");
    assert!(
        rm.stderr.contains("dependent clone"),
        "the error does not say why: {rm}"
    );
    assert!(node.pool.datasets().contains(&volume), "{volume} went");
    if let (Some(sim), Some(vmids)) = (node.ctd.pve(), &vmids) {
        assert!(!vmids.is_empty());
        for vmid in vmids {
            assert!(sim.config_file(*vmid).exists(), "CT {vmid} went: {rm}");
        }
    }

    let out = node.pool.zfs(&["destroy", "-r", &copy]);
    assert!(out.success(), "{out}");
    let rm = node.ctd.ctr(&["task", "rm", &id]);
    assert!(rm.success(), "{rm}\n{}", node.ctd.log_tail(30));
    node.ctd.ctr(&["containers", "rm", &id]);
    assert_eq!(node.ctd.leftovers(&id), Vec::<String>::new());
    assert!(node.volumes().is_empty(), "{:?}", node.volumes());
    if let Some(sim) = node.ctd.pve() {
        assert_eq!(sim.leftovers(), Vec::<String>::new(), "CTs left in PVE");
    }
}

#[test]
#[ignore = "needs root, containerd, LXC and zfs-fuse: run by scripts/test"]
fn containers_of_a_new_image_started_at_once_fill_it_once() {
    if !require(Runtime::Lxcri, "zfs concurrent first use") {
        return;
    }
    let node = ZfsNode::start("");
    let ids: Vec<String> = (0..3).map(|i| node.ctd.new_id(&format!("zc{i}"))).collect();
    let flag = node.flag();
    let runs: Vec<_> = ids
        .iter()
        .map(|id| {
            node.ctd.spawn_run(
                Runtime::Lxcri,
                id,
                &["sh", "-c", "cat /etc/hostname >/dev/null; echo ok"],
                &[&flag],
            )
        })
        .collect();
    for run in runs {
        let out = run.wait(std::time::Duration::from_secs(120));
        assert!(out.success() && out.stdout == "ok\n", "{out}");
    }
    let images = node.image_datasets();
    assert_eq!(
        images.len(),
        2,
        "one image dataset and its snapshot: {images:?}"
    );
    assert!(
        !images.iter().any(|d| d.contains("/partial-")),
        "{images:?}"
    );
    for id in &ids {
        node.ctd.remove(id);
    }
    assert!(node.volumes().is_empty(), "{:?}", node.volumes());
}

#[test]
#[ignore = "needs root, containerd, LXC and zfs-fuse: run by scripts/test"]
fn a_crashed_fill_is_not_used_and_gc_removes_it() {
    if !require(Runtime::Lxcri, "zfs crashed fill") {
        return;
    }
    let node = ZfsNode::start("");
    // What a shim killed while filling leaves: a partial dataset, marked,
    // with part of an image in it.
    let key = "0123456789abcdef0123456789abcdef";
    node.pool
        .create("data/lxcri-images", &[("lxcri:role", "images")]);
    let partial = format!("data/lxcri-images/partial-{key}-dead");
    node.pool.create(
        &partial,
        &[("lxcri:role", "image"), ("lxcri:image-key", key)],
    );
    let id = node.ctd.new_id("zp");
    node.run(&id);
    assert_eq!(node.sh(&id, "ok", "echo up"), "up\n");
    node.ctd.remove(&id);
    let out = node.gc(true);
    assert!(out.contains("partial image"), "{out}");
    let left = node.image_datasets();
    assert!(
        !left.iter().any(|d| d.contains("/partial-")),
        "{left:?}\n{out}"
    );
    assert_eq!(left.len(), 2, "the complete image stays: {left:?}");
}

/// The pool itself fills (not a quota). While a new image is copied: the
/// create fails saying so, with no partial image or clone left, and the
/// same image works once there is room. While containers run: a write
/// that fills the pool fails inside with ENOSPC, the container lives on,
/// and deleting it gives the space back.
#[test]
#[ignore = "needs root, containerd, LXC and zfs-fuse: run by scripts/test"]
fn a_full_pool_fails_the_image_copy_cleanly_and_running_containers_ride_it_out() {
    if !require(Runtime::Lxcri, "zfs full pool") {
        return;
    }
    let node = ZfsNode::start("");
    node.pool.leave_free("filler", 256 * 1024);
    let id = node.ctd.new_id("zfull");
    let out = node
        .ctd
        .run(Runtime::Lxcri, &id, &["true"], &[&node.flag()]);
    assert!(!out.success(), "created on a full pool: {out}");
    assert!(
        out.stderr.contains("out of space") || out.stderr.contains("No space left"),
        "the error should say the pool is full: {out}"
    );
    node.ctd.remove(&id);
    assert_eq!(node.ctd.leftovers(&id), Vec::<String>::new());
    assert_eq!(node.volumes(), Vec::<String>::new());
    assert!(
        !node
            .image_datasets()
            .iter()
            .any(|d| d.contains("/partial-")),
        "{:?}",
        node.image_datasets()
    );

    node.pool
        .zfs(&["set", "refreservation=none", &node.pool.dataset("filler")])
        .ok();
    let id = node.ctd.new_id("zfull");
    node.run(&id);
    node.pool.leave_free("filler", 8 * 1024 * 1024);
    let out = node.sh(
        &id,
        "fill",
        "dd if=/dev/zero of=/big bs=1M count=64 2>&1; echo rc=$?",
    );
    assert!(
        out.contains("No space left") && !out.contains("rc=0"),
        "the write should fail with ENOSPC: {out}"
    );
    assert_eq!(node.sh(&id, "after", "rm /big; echo alive"), "alive\n");
    let (volume, _) = node.volume(&id);
    node.ctd.remove(&id);
    assert_eq!(node.ctd.leftovers(&id), Vec::<String>::new());
    assert!(!node.volumes().contains(&volume), "{:?}", node.volumes());
}

#[test]
#[ignore = "needs root, containerd, LXC and zfs-fuse: run by scripts/test"]
fn missing_pool_full_quota_and_missing_command_fail_cleanly() {
    if !require(Runtime::Lxcri, "zfs bad input") {
        return;
    }
    let node = ZfsNode::start("");
    let data = node.data();
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "[rootfs]\nmode = \"zfs\"\n[zfs]\npool = \"lxnopool9/data\"\n".to_string(),
            // lxc: "zfs.pool \"lxnopool9\" does not exist" (zfs create);
            // pve: "zfs.pool \"lxnopool9/data\" does not exist" (the
            // storage check's `zfs get`, which runs first).
            "zfs.pool \"lxnopool9",
            "missing pool",
        ),
        (
            // busybox does not fit 1M: the quota fills while copying.
            format!("[rootfs]\nmode = \"zfs\"\n[zfs]\npool = \"{data}\"\nsize = \"1M\"\n"),
            "quota reached while filling",
            "full quota",
        ),
        (
            format!(
                "[rootfs]\nmode = \"zfs\"\n[zfs]\npool = \"{data}\"\ncommand = \"/nonexistent/zfs\"\n"
            ),
            "/nonexistent/zfs",
            "no zfs command",
        ),
    ];
    for (i, (config, expected, what)) in cases.iter().enumerate() {
        let path = node.ctd.dir().join(format!("bad-{i}.toml"));
        std::fs::write(&path, config).unwrap();
        let id = node.ctd.new_id("zbad");
        let flag = format!("--runtime-config-path={}", path.display());
        let out = node.ctd.run(Runtime::Lxcri, &id, &["true"], &[&flag]);
        assert!(!out.success(), "{what}: {out}");
        assert!(
            out.stderr.contains(expected),
            "{what}: the error should say {expected:?}: {out}"
        );
        node.ctd.remove(&id);
        assert!(
            node.ctd.leftovers(&id).is_empty(),
            "{what}: {:?}",
            node.ctd.leftovers(&id)
        );
        assert!(node.volumes().is_empty(), "{what}: {:?}", node.volumes());
        assert!(
            !node
                .image_datasets()
                .iter()
                .any(|d| d.contains("/partial-") || d.contains("/img-")),
            "{what}: {:?}",
            node.image_datasets()
        );
        if let Some(sim) = node.ctd.pve() {
            assert!(
                sim.vmids_of(node.ctd.namespace(), &id).is_empty(),
                "{what}: CT left"
            );
        }
    }
    if let Some(sim) = node.ctd.pve() {
        // A pool the PVE storage is not on: PVE would bind and destroy
        // another dataset, so lxcri refuses before it asks PVE for a CT.
        node.pool.create("other", &[]);
        let other = node.pool.dataset("other");
        let path = node.ctd.dir().join("other-pool.toml");
        std::fs::write(
            &path,
            format!("[rootfs]\nmode = \"zfs\"\n[zfs]\npool = \"{other}\"\nsize = \"256M\"\n"),
        )
        .unwrap();
        let id = node.ctd.new_id("zother");
        let flag = format!("--runtime-config-path={}", path.display());
        let out = node.ctd.run(Runtime::Lxcri, &id, &["true"], &[&flag]);
        assert!(!out.success(), "other pool: {out}");
        let expected = format!("is pool \"{data}\"");
        assert!(
            out.stderr.contains(&expected)
                && out.stderr.contains(&format!("zfs.pool is \"{other}\"")),
            "other pool: the error should name both pools: {out}"
        );
        node.ctd.remove(&id);
        assert!(
            !sim.requests()
                .iter()
                .any(|r| r["method"] == "POST" && r["template"] == "/nodes/{node}/lxc"),
            "other pool: no CT may be asked for: {:?}",
            sim.requests()
        );
        assert!(
            node.ctd.leftovers(&id).is_empty(),
            "{:?}",
            node.ctd.leftovers(&id)
        );
        let below_other: Vec<_> = node
            .pool
            .datasets()
            .into_iter()
            .filter(|d| d.starts_with(&format!("{other}/")))
            .collect();
        assert!(below_other.is_empty(), "other pool: {below_other:?}");
    }
}

/// A `--uidmap` container on a ZFS clone: containerd remaps the snapshot it
/// hands over, so the image dataset is one per (image, mapping) and the
/// container's root owns its clone's files as on overlay (the side by side
/// with runc is in userns.rs).
#[test]
#[ignore = "needs root, containerd, LXC and zfs-fuse: run by scripts/test"]
fn a_uidmap_container_runs_on_a_clone_of_its_own_mapping() {
    if !require(Runtime::Lxcri, "zfs clones under a user namespace") {
        return;
    }
    let node = ZfsNode::start_with_env(&[]);
    let (plain, mapped) = (node.ctd.new_id("zplain"), node.ctd.new_id("zmapped"));
    node.run(&plain);
    let map = "0:200000:65536";
    node.ctd.run_detached(
        Runtime::Lxcri,
        &mapped,
        &["sleep", "1000"],
        &["--uidmap", map, "--gidmap", map],
    );
    let images: Vec<String> = node
        .image_datasets()
        .into_iter()
        .filter(|d| !d.contains('@'))
        .collect();
    assert_eq!(images.len(), 2, "one image dataset per mapping: {images:?}");

    let inside = node.sh(
        &mapped,
        "maps",
        "cat /proc/self/uid_map; id -u; touch /new && stat -c '%u:%g' /new /bin/busybox",
    );
    assert!(inside.contains("0     200000      65536"), "{inside}");
    assert!(inside.contains("\n0\n0:0\n0:0\n"), "{inside}");
    // On the host, the clone's files belong to the mapped root.
    let (volume, _) = node.volume(&mapped);
    let mnt = node.pool.prop(&volume, "mountpoint").unwrap();
    for f in ["new", "bin/busybox"] {
        let meta = std::fs::metadata(std::path::Path::new(&mnt).join(f)).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((meta.uid(), meta.gid()), (200_000, 200_000), "{f}");
    }
    for id in [&plain, &mapped] {
        node.ctd.remove(id);
    }
    assert!(node.volumes().is_empty(), "{:?}", node.volumes());
}

/// `userns.unprivileged` on ZFS: each container's range gets an image of its
/// own, a clone of the image with its owners shifted (no copy of the data),
/// and the container's volume is a clone of that.
#[test]
#[ignore = "needs root, containerd, LXC and zfs-fuse: run by scripts/test"]
fn node_chosen_ranges_get_shifted_clones_of_the_image() {
    if !require(
        Runtime::Lxcri,
        "zfs clones under node-chosen user namespaces",
    ) {
        return;
    }
    let node = ZfsNode::start_with_env(&[("LXCRI_USERNS_UNPRIVILEGED", "true")]);
    let ids = [node.ctd.new_id("zn-a"), node.ctd.new_id("zn-b")];
    for id in &ids {
        node.run(id);
    }
    let images: Vec<String> = node
        .image_datasets()
        .into_iter()
        .filter(|d| !d.contains('@'))
        .collect();
    assert_eq!(images.len(), 3, "the image and one per range: {images:?}");
    let origins: Vec<Option<String>> = images.iter().map(|i| node.pool.prop(i, "origin")).collect();
    let base = images
        .iter()
        .zip(&origins)
        .find(|(_, o)| o.as_deref().is_none_or(|o| o == "-"))
        .map(|(i, _)| i.clone())
        .expect("the unshifted image");
    let mut starts = Vec::new();
    for id in &ids {
        let inside = node.sh(
            id,
            "probe",
            "head -1 /proc/self/uid_map; id -u; stat -c '%u:%g' /bin/busybox; touch /new && echo wrote",
        );
        let start: u32 = inside.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(inside.ends_with("\n0\n0:0\nwrote\n"), "{inside}");
        let (volume, _) = node.volume(id);
        // The volume is a clone of its range's image, itself a clone of the image.
        let origin = node.pool.prop(&volume, "origin").unwrap();
        let shifted = origin.strip_suffix("@lxcri").unwrap().to_string();
        assert_ne!(shifted, base, "{id} runs on the unshifted image");
        assert_eq!(
            node.pool.prop(&shifted, "origin"),
            Some(format!("{base}@lxcri")),
            "{shifted} is a clone of {base}"
        );
        let mnt = node.pool.prop(&volume, "mountpoint").unwrap();
        for f in ["bin/busybox", "new"] {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(std::path::Path::new(&mnt).join(f)).unwrap();
            assert_eq!((m.uid(), m.gid()), (start, start), "{id}: {f}");
        }
        starts.push(start);
    }
    assert_ne!(starts[0], starts[1], "{starts:?}");
    for id in &ids {
        node.ctd.remove(id);
    }
    assert!(node.volumes().is_empty(), "{:?}", node.volumes());
}

/// A reboot in zfs mode (lxc backend: the clone is named after the
/// container): `/run` goes, the pool and its clone stay. A new task of the
/// same container starts (on a new clone: unlike containerd's snapshot on
/// runc, a task's writes do not outlive it in zfs mode), and nothing of the
/// lost run is left once it is deleted.
#[test]
#[ignore = "needs root, containerd, LXC and zfs-fuse: run by scripts/test"]
fn after_a_reboot_the_same_container_starts_again_in_zfs_mode() {
    if !require(Runtime::Lxcri, "zfs reboot") || backend() == BackendKind::Pve {
        return;
    }
    let mut node = ZfsNode::start("");
    let id = node.ctd.new_id("zboot");
    node.run(&id);
    node.sh(&id, "mark", "echo lost > /lost-run");
    let (volume, _) = node.volume(&id);
    lxcri_e2e::node_faults::lose_run(&mut node.ctd, &id);
    // As a reboot would: the clone is no longer mounted.
    node.pool.zfs(&["unmount", &volume]);

    node.ctd.restart();
    node.ctd.ctr(&["task", "rm", "-f", &id]);
    let out = node.ctd.ctr(&["task", "start", "-d", &id]);
    assert!(
        out.success(),
        "task start after the reboot: {out}\n{}",
        node.ctd.log_tail(30)
    );
    node.ctd.wait_status(&id, "RUNNING");
    assert_eq!(node.sh(&id, "after", "echo up"), "up\n");
    node.ctd.kill(&id, "SIGKILL").ok();
    node.ctd.wait_status(&id, "STOPPED");
    node.ctd.remove(&id);
    assert_eq!(node.ctd.leftovers(&id), Vec::<String>::new());
    assert!(!node.volumes().contains(&volume), "{:?}", node.volumes());
}

/// The `zfs` commands lxcri runs for one container of an existing image
/// (`zfs.command` a wrapper that logs them): each is a round trip to the
/// ZFS daemon, the cost of zfs mode over overlay. lxc backend: the clone
/// at create; at delete the volume's marks, the image's last-use mark and
/// the volume's destroy (lxcri unmounts it first, or zfs-fuse finds it
/// busy and a second one is needed); containerd's `<shim> delete` that
/// follows has nothing left to do. pve: the clone finds PVE's volume
/// there, one get judges it, its destroy and the clone; at delete the
/// origin before PVE destroys the CT, the image's mark after it, and the
/// check that the volume went with the CT.
#[test]
#[ignore = "needs root, containerd, LXC and zfs-fuse: run by scripts/test"]
fn a_container_of_an_existing_image_costs_a_few_zfs_commands() {
    if !require(Runtime::Lxcri, "zfs commands per lifecycle") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let wrapper = dir.path().join("zfs");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\nexec zfs \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
    std::fs::set_permissions(&wrapper, mode).unwrap();
    let node = ZfsNode::start(&format!("command = \"{}\"", wrapper.display()));
    let first = node.ctd.new_id("zn");
    node.run(&first);
    node.ctd.remove(&first);

    let taken = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(str::to_string).collect::<Vec<_>>()
    };
    taken();
    let id = node.ctd.new_id("zn");
    node.run(&id);
    let create = taken();
    node.ctd.remove(&id);
    let delete = taken();
    // A destroy tried again is not counted: a mount namespace of another
    // test's container may hold a copy of the mount for a moment (see
    // operations.md, "Mount propagation").
    let verbs = |calls: &[String]| -> Vec<String> {
        let mut calls = calls.to_vec();
        calls.dedup_by(|a, b| a == b && a.starts_with("destroy "));
        calls
            .iter()
            .map(|c| c.split(' ').next().unwrap_or_default().to_string())
            .collect()
    };
    let (create_verbs, delete_verbs) = match backend() {
        BackendKind::Lxc => (vec!["clone"], vec!["get", "set", "destroy"]),
        BackendKind::Pve => (
            vec!["clone", "get", "destroy", "clone"],
            vec!["get", "set", "get"],
        ),
    };
    assert_eq!(verbs(&create), create_verbs, "create: {create:#?}");
    assert_eq!(verbs(&delete), delete_verbs, "delete: {delete:#?}");
    assert!(node.volumes().is_empty(), "{:?}", node.volumes());
}

/// A shim SIGKILLed at each step of create, and in the middle of delete:
/// containerd's cleanup of the dead shim (`<shim> delete`) destroys the
/// container's clone, and the image serves the next container.
#[test]
#[ignore = "needs root, containerd, LXC and zfs-fuse: run by scripts/test"]
fn a_shim_killed_at_any_step_leaves_no_clone() {
    if !require(Runtime::Lxcri, "zfs shim crashes") {
        return;
    }
    let points = tempfile::tempdir().unwrap();
    let dir = points.path().to_str().unwrap().to_string();
    let node = ZfsNode::start_with_env(&[(lxcri::runtime::CRASH_POINTS_ENV, &dir)]);
    let ns = node.ctd.namespace().to_string();
    // The next create or delete of `id` stops at `point`; returns the file
    // that says it has.
    let hold = |id: &str, point: &str| {
        let file = points.path().join(&ns).join(id);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, point).unwrap();
        let mut marker = file.into_os_string();
        marker.push(".reached");
        PathBuf::from(marker)
    };
    let kill_when_held = |id: &str, point: &str, marker: PathBuf| {
        let held = lxcri_e2e::cmd::poll(Duration::from_secs(60), || {
            std::fs::read_to_string(&marker).ok().filter(|p| p == point)
        });
        assert!(held.is_some(), "{id} never reached {point}");
        sigkill(cleanup::shim_pids(&ns, Runtime::Lxcri, id));
    };
    let clean = |id: &str, when: &str| {
        node.ctd.ctr(&["task", "rm", "-f", id]);
        node.ctd.ctr(&["containers", "rm", id]);
        let gone = lxcri_e2e::cmd::poll(Duration::from_secs(60), || {
            (node.volumes().is_empty() && node.ctd.leftovers(id).is_empty()).then_some(())
        });
        assert!(
            gone.is_some(),
            "killed at {when}: {:?} {:?}\n{}",
            node.volumes(),
            node.ctd.leftovers(id),
            node.ctd.log_tail(30)
        );
    };
    for point in ["prepared", "configured", "started", "created"] {
        let id = node.ctd.new_id(&format!("zk-{point}"));
        let marker = hold(&id, point);
        let run = node
            .ctd
            .spawn_run_detached(Runtime::Lxcri, &id, &["sleep", "1000"]);
        kill_when_held(&id, point, marker);
        let _ = run.wait(Duration::from_secs(60));
        clean(&id, point);
    }
    let id = node.ctd.new_id("zk-delete");
    node.ctd
        .run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    node.ctd.kill(&id, "SIGKILL").ok();
    node.ctd.wait_status(&id, "STOPPED");
    let marker = hold(&id, "torn-down");
    let rm = Background::spawn(node.ctd.ctr_command().args(["task", "rm", &id]));
    kill_when_held(&id, "torn-down", marker);
    let _ = rm.wait(Duration::from_secs(60));
    clean(&id, "torn-down");

    let images = node.image_datasets();
    let id = node.ctd.new_id("zk-after");
    node.run(&id);
    assert_eq!(node.image_datasets(), images, "the image was reused");
    node.ctd.remove(&id);
    clean(&id, "a normal run after the crashes");
}

/// pve with the warm pool: a claimed member's volume (allocated with
/// `zfs.size` when the member was made) is swapped for the container's
/// clone as in a create, and goes with the CT.
#[test]
#[ignore = "needs root, containerd, LXC and zfs-fuse: run by scripts/test"]
fn a_claimed_pool_member_gets_the_containers_clone() {
    if !require(Runtime::Lxcri, "zfs warm pool") || backend() != BackendKind::Pve {
        return;
    }
    use lxcri_e2e::pve_pool;
    let node = ZfsNode::start_with_env(&[("LXCRI_PVE_WARM_POOL_SIZE", "1")]);
    let sim = node.ctd.pve().expect("pve");
    let (a, b) = (node.ctd.new_id("zpa"), node.ctd.new_id("zpb"));
    node.run(&a);
    let pool = pve_pool::wait_members(sim, 1, std::time::Duration::from_secs(60))
        .expect("the refill made a member");
    let member = pool[0].0;
    let member_volume = format!("{}/subvol-{member}-disk-0", node.data());
    assert_eq!(
        node.pool.prop(&member_volume, "refquota").as_deref(),
        Some("256M")
    );
    assert_eq!(node.pool.prop(&member_volume, "origin"), None);

    node.run(&b);
    let (volume, ct) = node.volume(&b);
    assert_eq!(volume, member_volume, "b claimed the member");
    let origin = node.pool.prop(&volume, "origin").unwrap_or_default();
    assert!(
        origin.ends_with("@lxcri"),
        "{volume} is a clone: {origin:?}"
    );
    assert_eq!(
        node.pool.prop(&volume, "lxcri:owner"),
        Some(format!("{}/{b}", node.ctd.namespace()))
    );
    assert!(
        ct.unwrap_or_default()
            .contains(&format!("rootfs: {STORAGE}:subvol-{member}-disk-0")),
        "the CT's rootfs is the clone"
    );
    assert!(node.sh(&b, "e1", "ls /bin/busybox").contains("busybox"));

    for id in [&a, &b] {
        node.ctd.kill(id, "SIGKILL").ok();
        node.ctd.wait_status(id, "STOPPED");
        node.ctd.remove(id);
        assert_eq!(node.ctd.leftovers(id), Vec::<String>::new());
    }
    assert!(pve_pool::wait_refills_over(
        sim,
        &node.ctd.socket(),
        std::time::Duration::from_secs(60)
    ));
    let out = pve_pool::gc_force(sim, 0);
    assert!(out.success(), "{out}");
    assert!(pve_pool::members(sim).is_empty());
    assert_eq!(node.volumes(), Vec::<String>::new());
    assert_eq!(sim.leftovers(), Vec::<String>::new());
}
