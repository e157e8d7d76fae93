use std::path::PathBuf;
use std::time::Duration;

use super::fake::{FakeCopier, FakeZfs};
use super::*;
use crate::rootfs::ImageLayers;

/// The image of `layers`, made if missing (as a pve create plans with it).
fn ensure(rootfs: &ZfsRootfs, layers: &ImageLayers) -> Result<ImageRef> {
    rootfs.image_mounted(layers, None).map(|(image, _)| image)
}

struct Setup {
    zfs: FakeZfs,
    copier: FakeCopier,
    rootfs: ZfsRootfs,
    tmp: tempfile::TempDir,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let zfs = FakeZfs::with_pool("tank");
    zfs.add("tank/data", &[]);
    zfs.set_mounted("tank/data", true);
    let copier = FakeCopier::default();
    let rootfs = ZfsRootfs::new(
        Box::new(zfs.clone()),
        DatasetName::parse("tank/data").unwrap(),
        DatasetName::parse("tank/data/lxcri-images").unwrap(),
        "1G".parse().unwrap(),
        tmp.path().join("locks"),
        Box::new(copier.clone()),
        Box::new(zfs.clone()),
    );
    Setup {
        zfs,
        copier,
        rootfs,
        tmp,
    }
}

impl Setup {
    /// containerd's overlay mount of an image with these layers, with an
    /// empty upper dir of its own.
    fn mounts(&self, lower: &str) -> Vec<RootfsMount> {
        let upper = self.tmp.path().join(format!("upper-{}", unique_suffix()));
        std::fs::create_dir_all(&upper).unwrap();
        vec![RootfsMount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "index=off".into(),
                format!("upperdir={}", upper.display()),
                format!("lowerdir={lower}"),
            ],
        }]
    }

    fn layers(&self, lower: &str) -> ImageLayers {
        ImageLayers::from_mounts(&self.mounts(lower)).unwrap()
    }

    fn under_images(&self) -> Vec<String> {
        self.zfs
            .names()
            .into_iter()
            .filter(|n| n.starts_with("tank/data/lxcri-images/"))
            .collect()
    }
}

#[test]
fn first_use_fills_once_then_every_use_reuses_the_snapshot() {
    let s = setup();
    let layers = s.layers("/l/2:/l/1");
    let a = ensure(&s.rootfs, &layers).unwrap();
    let b = ensure(&s.rootfs, &s.layers("/l/2:/l/1")).unwrap();
    assert_eq!(a, b);
    let img = format!("tank/data/lxcri-images/img-{}", layers.key.as_str());
    assert_eq!(a.dataset.as_str(), img);
    assert_eq!(a.snapshot.as_str(), format!("{img}@lxcri"));
    assert_eq!(s.copier.copies.lock().unwrap().len(), 1);
    let (lower, dest) = s.copier.copies.lock().unwrap()[0].clone();
    assert_eq!(lower, vec![PathBuf::from("/l/2"), PathBuf::from("/l/1")]);
    assert!(dest
        .to_string_lossy()
        .starts_with("/fake/tank/data/lxcri-images/partial-"));
    assert_eq!(s.under_images(), vec![img.clone(), format!("{img}@lxcri")]);
    assert_eq!(s.zfs.prop(&img, ROLE).as_deref(), Some(ROLE_IMAGE));
    assert_eq!(s.zfs.prop(&img, "refquota").as_deref(), Some("1G"));
    assert!(s.zfs.prop(&img, LAST_USED).is_some());
    assert_eq!(
        s.zfs.prop("tank/data/lxcri-images", ROLE).as_deref(),
        Some(ROLE_IMAGES)
    );
    // The snapshot is taken before the rename: a dataset named img-* is
    // complete.
    let calls = s.zfs.calls();
    let snap = calls
        .iter()
        .position(|c| c.starts_with("snapshot "))
        .unwrap();
    let rename = calls.iter().position(|c| c.starts_with("rename ")).unwrap();
    assert!(snap < rename, "{calls:#?}");
    // Another image has its own dataset.
    let other = ensure(&s.rootfs, &s.layers("/l/3:/l/1")).unwrap();
    assert_ne!(other.dataset, a.dataset);
    assert_eq!(s.copier.copies.lock().unwrap().len(), 2);
}

#[test]
fn concurrent_first_uses_fill_once() {
    let s = setup();
    let slow = SlowCopier(s.copier.clone());
    let rootfs = std::sync::Arc::new(ZfsRootfs::new(
        Box::new(s.zfs.clone()),
        DatasetName::parse("tank/data").unwrap(),
        DatasetName::parse("tank/data/lxcri-images").unwrap(),
        "1G".parse().unwrap(),
        s.tmp.path().join("locks"),
        Box::new(slow),
        Box::new(s.zfs.clone()),
    ));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let rootfs = rootfs.clone();
            let layers = s.layers("/l/9");
            std::thread::spawn(move || ensure(&rootfs, &layers).unwrap())
        })
        .collect();
    let refs: Vec<ImageRef> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(refs.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(s.copier.copies.lock().unwrap().len(), 1);
}

#[test]
fn containers_of_one_image_use_it_side_by_side() {
    let s = setup();
    let layers = s.layers("/l/1");
    ensure(&s.rootfs, &layers).unwrap();
    let rootfs = std::sync::Arc::new(s.rootfs);
    // Each use waits for the other to be inside too: only a shared lock
    // lets both in.
    let both = std::sync::Arc::new(std::sync::Barrier::new(2));
    let (done, finished) = std::sync::mpsc::channel();
    for _ in 0..2 {
        let (rootfs, both, done, layers) =
            (rootfs.clone(), both.clone(), done.clone(), layers.clone());
        std::thread::spawn(move || {
            let used = rootfs.with_image(&layers, None, |_| {
                both.wait();
                Ok(())
            });
            done.send(used.is_ok()).unwrap();
        });
    }
    for _ in 0..2 {
        let ok = finished.recv_timeout(Duration::from_secs(10));
        assert_eq!(ok, Ok(true), "the uses waited for each other");
    }
}

#[derive(Debug)]
struct SlowCopier(FakeCopier);

impl LayerCopier for SlowCopier {
    fn copy(&self, lowerdirs: &[PathBuf], dest: &Path) -> std::result::Result<(), CopyError> {
        std::thread::sleep(Duration::from_millis(100));
        self.0.copy(lowerdirs, dest)
    }
}

#[test]
fn a_full_quota_names_the_size_and_leaves_nothing() {
    let s = setup();
    *s.copier.fail.lock().unwrap() = Some(CopyError::OutOfSpace(
        "cp: cannot create 'x': Disk quota exceeded".into(),
    ));
    let err = ensure(&s.rootfs, &s.layers("/l/1")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("zfs.size = 1G") && text.contains("quota reached"),
        "{text}"
    );
    assert!(matches!(err, ZfsRootfsError::ImageTooLarge { .. }));
    assert!(s.under_images().is_empty(), "{:?}", s.under_images());
    // The next try fills afresh.
    ensure(&s.rootfs, &s.layers("/l/1")).unwrap();
}

#[test]
fn a_crashed_fill_is_never_used_and_gc_removes_it() {
    let s = setup();
    let layers = s.layers("/l/1");
    let key = layers.key.as_str().to_string();
    // What a fill that crashed after its snapshot leaves.
    s.zfs.add("tank/data/lxcri-images", &[(ROLE, ROLE_IMAGES)]);
    let partial = format!("tank/data/lxcri-images/partial-{key}-dead");
    s.zfs
        .add(&partial, &[(ROLE, ROLE_IMAGE), (IMAGE_KEY, key.as_str())]);
    s.zfs.add(&format!("{partial}@lxcri"), &[]);
    let image = ensure(&s.rootfs, &layers).unwrap();
    assert!(image.dataset.as_str().ends_with(&format!("img-{key}")));
    assert_eq!(s.copier.copies.lock().unwrap().len(), 1);

    let dry = s.rootfs.gc_images(Duration::from_secs(3600), true).unwrap();
    assert_eq!(dry.images.len(), 2, "{dry:#?}");
    let p = dry.images.iter().find(|i| i.dataset == partial).unwrap();
    assert!(p.remove, "{p:?}");
    assert!(
        s.zfs.names().contains(&partial),
        "a dry run removes nothing"
    );

    let done = s
        .rootfs
        .gc_images(Duration::from_secs(3600), false)
        .unwrap();
    assert!(!s.zfs.names().iter().any(|n| n.starts_with(&partial)));
    let img = done
        .images
        .iter()
        .find(|i| i.dataset == image.dataset.as_str())
        .unwrap();
    assert!(!img.remove && img.reason.contains("used"), "{img:?}");
}

#[test]
fn an_image_without_its_snapshot_is_refilled_only_if_ours() {
    let s = setup();
    let layers = s.layers("/l/1");
    let img = format!("tank/data/lxcri-images/img-{}", layers.key.as_str());
    s.zfs.add("tank/data/lxcri-images", &[]);
    s.zfs.add(&img, &[]);
    // Found out by the clone, which needs the snapshot.
    let vol = s.rootfs.volume("subvol-x-disk-0").unwrap();
    let err = s.rootfs.clone_for(&layers, None, &vol, "ns/a").unwrap_err();
    assert!(matches!(err, ZfsRootfsError::Foreign { .. }), "{err}");
    assert!(s.zfs.names().contains(&img), "not ours: left alone");
    assert!(!s.zfs.names().contains(&vol.to_string()));
    s.zfs.set_prop(&img, ROLE, ROLE_IMAGE);
    s.rootfs.clone_for(&layers, None, &vol, "ns/a").unwrap();
    assert!(s.zfs.names().contains(&format!("{img}@lxcri")));
    assert_eq!(s.copier.copies.lock().unwrap().len(), 1);
}

/// The `zfs` commands of one container's lifecycle on the lxc backend,
/// its image already made: one clone at create; at delete one get (is it
/// this container's, and of which image), the image's mark and the destroy
/// (its mount let go of first, so zfs-fuse does not find it busy). A
/// release once more (containerd's `<shim> delete` after a
/// crash) finds the volume gone with one get.
#[test]
fn a_lifecycle_of_an_existing_image_is_one_zfs_call_to_create_and_three_to_delete() {
    let s = setup();
    let layers = s.layers("/l/1");
    let image = ensure(&s.rootfs, &layers).unwrap();
    let vol = s.rootfs.volume("subvol-ns_a-disk-0").unwrap();
    s.zfs.take_calls();
    let path = s.rootfs.clone_for(&layers, None, &vol, "ns/a").unwrap();
    assert_eq!(path, PathBuf::from(format!("/fake/{vol}")));
    let (img, snap) = (&image.dataset, &image.snapshot);
    assert_eq!(
        s.zfs.take_calls(),
        [format!(
            "clone -o refquota=1G -o lxcri:role=rootfs -o lxcri:owner=ns/a {snap} {vol}"
        )]
    );
    let leaf = Some("subvol-ns_a-disk-0");
    s.rootfs.release(None, "ns/a", leaf).unwrap();
    let calls = s.zfs.take_calls();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert_eq!(
        calls[0],
        format!("get -H -o property,value lxcri:role,lxcri:owner,origin {vol}")
    );
    assert!(calls[1].starts_with("set lxcri:last-used="));
    assert!(calls[1].ends_with(&format!(" {img}")));
    assert_eq!(calls[2], format!("destroy -r {vol}"));
    assert!(!s.zfs.names().contains(&vol.to_string()));
    assert_eq!(s.zfs.0.lock().unwrap().unmounts, [path]);
    s.rootfs.release(None, "ns/a", leaf).unwrap();
    assert_eq!(s.zfs.take_calls(), calls[..1]);
}

#[test]
fn a_missing_pool_is_said_plainly_and_nothing_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let zfs = FakeZfs::with_pool("tank");
    let rootfs = ZfsRootfs::new(
        Box::new(zfs.clone()),
        DatasetName::parse("nopool/data").unwrap(),
        DatasetName::parse("nopool/data/lxcri-images").unwrap(),
        "1G".parse().unwrap(),
        tmp.path().join("locks"),
        Box::new(FakeCopier::default()),
        Box::new(zfs.clone()),
    );
    let s = setup();
    let err = ensure(&rootfs, &s.layers("/l/1")).unwrap_err();
    assert!(matches!(err, ZfsRootfsError::NoPool { .. }), "{err:?}");
    assert!(err.to_string().contains("zfs.pool"), "{err}");
    assert_eq!(zfs.names(), vec!["tank".to_string()]);
}

#[test]
fn the_mountpoint_of_a_missing_pool_dataset_names_zfs_pool() {
    let tmp = tempfile::tempdir().unwrap();
    let zfs = FakeZfs::with_pool("tank");
    let rootfs = ZfsRootfs::new(
        Box::new(zfs.clone()),
        DatasetName::parse("tank/nodata").unwrap(),
        DatasetName::parse("tank/nodata/lxcri-images").unwrap(),
        "1G".parse().unwrap(),
        tmp.path().join("locks"),
        Box::new(FakeCopier::default()),
        Box::new(zfs),
    );
    let err = rootfs.pool_mountpoint().unwrap_err();
    assert_eq!(
        err.to_string(),
        "zfs.pool \"tank/nodata\" does not exist (zfs list shows the datasets of this node)"
    );
}

#[test]
fn a_changed_upper_layer_is_refused() {
    let s = setup();
    let mounts = s.mounts("/l/1");
    let layers = ImageLayers::from_mounts(&mounts).unwrap();
    std::fs::write(layers.upperdir.as_ref().unwrap().join("f"), "x").unwrap();
    let err = ensure(&s.rootfs, &layers).unwrap_err();
    assert!(matches!(err, ZfsRootfsError::UpperNotEmpty(_)), "{err}");
    assert!(s.under_images().is_empty());
}

#[test]
fn volumes_are_marked_clones_and_only_their_owner_destroys_them() {
    let s = setup();
    let layers = s.layers("/l/1");
    let image = ensure(&s.rootfs, &layers).unwrap();
    let vol = s.rootfs.volume(&volume_leaf("default_web")).unwrap();
    assert_eq!(vol.as_str(), "tank/data/subvol-default_web-disk-0");
    let path = s
        .rootfs
        .clone_for(&layers, None, &vol, "default/web")
        .unwrap();
    assert_eq!(
        path,
        PathBuf::from("/fake/tank/data/subvol-default_web-disk-0")
    );
    let v = vol.as_str();
    assert_eq!(s.zfs.prop(v, "refquota").as_deref(), Some("1G"));
    assert_eq!(s.zfs.prop(v, ROLE).as_deref(), Some(ROLE_VOLUME));
    assert_eq!(s.zfs.prop(v, OWNER).as_deref(), Some("default/web"));
    // zfs-fuse has no acltype: PVE's Linux-only properties are left out.
    assert_eq!(s.zfs.prop(v, "acltype"), None);

    // An image with a clone is kept by gc, whatever its age.
    s.zfs.set_prop(image.dataset.as_str(), LAST_USED, "1");
    let report = s.rootfs.gc_images(Duration::from_secs(60), false).unwrap();
    assert!(!report.images[0].remove, "{report:?}");
    assert!(s.zfs.names().contains(&image.snapshot.to_string()));

    s.rootfs.destroy_volume(&vol, "default/other").unwrap();
    assert!(s.zfs.names().contains(&v.to_string()), "not its owner");
    s.rootfs.destroy_volume(&vol, "default/web").unwrap();
    assert!(!s.zfs.names().contains(&v.to_string()));
    s.rootfs.destroy_volume(&vol, "default/web").unwrap();
    // Let go of just now: the image is not idle yet...
    let report = s.rootfs.gc_images(Duration::from_secs(60), false).unwrap();
    assert!(!report.images[0].remove, "{report:?}");
    // ...until its ttl passes.
    s.zfs.set_prop(image.dataset.as_str(), LAST_USED, "1");
    let report = s.rootfs.gc_images(Duration::from_secs(60), false).unwrap();
    assert!(report.images[0].remove, "{report:?}");
    assert!(s.under_images().is_empty(), "{:?}", s.under_images());
}

#[test]
fn a_leftover_volume_of_the_same_container_is_replaced_anyone_elses_is_not() {
    let s = setup();
    let image = ensure(&s.rootfs, &s.layers("/l/1")).unwrap();
    let vol = s.rootfs.volume("subvol-x-disk-0").unwrap();
    let own = Replace::Own;
    s.rootfs.clone_volume(&image, &vol, "ns/a", own).unwrap();
    s.rootfs.clone_volume(&image, &vol, "ns/a", own).unwrap();
    let err = s
        .rootfs
        .clone_volume(&image, &vol, "ns/b", own)
        .unwrap_err();
    assert!(matches!(err, ZfsRootfsError::Foreign { .. }), "{err}");
    s.zfs.add("tank/data/subvol-y-disk-0", &[]);
    let other = s.rootfs.volume("subvol-y-disk-0").unwrap();
    let err = s
        .rootfs
        .clone_volume(&image, &other, "ns/a", own)
        .unwrap_err();
    assert!(matches!(err, ZfsRootfsError::Foreign { .. }), "{err}");
    assert!(s.zfs.names().contains(&other.to_string()));
    // PVE's fresh allocation (no marks) may be replaced where told so.
    s.rootfs
        .clone_volume(&image, &other, "ns/a", Replace::OwnOrUnmarked)
        .unwrap();
    assert_eq!(s.zfs.prop(other.as_str(), OWNER).as_deref(), Some("ns/a"));
}

#[test]
fn pve_allocated_volume_is_swapped_for_a_clone() {
    let s = setup();
    let mounts = s.mounts("/l/1");
    // A pve create plans with the image (made now, and mounted).
    let layers = ImageLayers::from_mounts(&mounts).unwrap();
    let (image, path) = s.rootfs.image_mounted(&layers, None).unwrap();
    assert_eq!(path, PathBuf::from(format!("/fake/{}", image.dataset)));
    // What PVE's alloc_image made for CT 10001.
    let v = "tank/data/subvol-10001-disk-0";
    s.zfs.add(v, &[("refquota", "1G")]);
    s.zfs.set_mounted(v, true);
    // The plan of the next container of that image asks nothing of zfs.
    s.zfs.take_calls();
    s.rootfs.image_mounted(&layers, None).unwrap();
    s.rootfs
        .replace_volume(&mounts, "subvol-10001-disk-0", "k8s.io/abc", None)
        .unwrap();
    assert_eq!(s.zfs.prop(v, OWNER).as_deref(), Some("k8s.io/abc"));
    assert_eq!(s.zfs.origin(v).as_deref(), Some(image.snapshot.as_str()));
    // The clone says whether the name is taken; PVE's volume goes only
    // once the image is there to replace it.
    let clone = format!(
        "clone -o refquota=1G -o lxcri:role=rootfs -o lxcri:owner=k8s.io/abc {} {v}",
        image.snapshot
    );
    assert_eq!(
        s.zfs.take_calls(),
        [
            clone.clone(),
            format!("get -H -o property,value lxcri:role,lxcri:owner {v}"),
            format!("destroy -r {v}"),
            clone,
        ]
    );
    // Someone else's marked volume under that name stays.
    let err = s
        .rootfs
        .replace_volume(&mounts, "subvol-10001-disk-0", "k8s.io/other", None)
        .unwrap_err();
    assert!(matches!(err, ZfsRootfsError::Foreign { .. }), "{err}");
    assert_eq!(s.zfs.prop(v, OWNER).as_deref(), Some("k8s.io/abc"));
}

#[test]
fn a_failed_clone_leaves_nothing_and_pves_volume_in_place() {
    let s = setup();
    let mounts = s.mounts("/l/1");
    let layers = ImageLayers::from_mounts(&mounts).unwrap();
    ensure(&s.rootfs, &layers).unwrap();
    let vol = s.rootfs.volume("subvol-ns_a-disk-0").unwrap();
    let full = || crate::zfs::ZfsError::OutOfSpace {
        name: "tank".into(),
    };
    s.zfs.fail_next("clone", full());
    let err = s.rootfs.clone_for(&layers, None, &vol, "ns/a").unwrap_err();
    assert!(err.to_string().contains("cloning the image as"), "{err}");
    assert!(!s.zfs.names().contains(&vol.to_string()));

    // A clone that cannot be found mounted is destroyed again.
    s.zfs.0.lock().unwrap().no_table = true;
    s.zfs
        .fail_next("get -H -o property,value mounted,mountpoint", full());
    s.rootfs.clone_for(&layers, None, &vol, "ns/a").unwrap_err();
    assert!(!s.zfs.names().contains(&vol.to_string()));
    s.zfs.0.lock().unwrap().no_table = false;

    // pve: the image cannot be made, so PVE's volume stays (the CT's
    // rollback destroys it with the CT).
    let v = "tank/data/subvol-10001-disk-0";
    s.zfs.add(v, &[("refquota", "1G")]);
    let other = s.mounts("/l/2");
    s.zfs.fail_next("create", full());
    s.rootfs
        .replace_volume(&other, "subvol-10001-disk-0", "k8s.io/abc", None)
        .unwrap_err();
    assert!(s.zfs.names().contains(&v.to_string()));
    assert_eq!(s.zfs.prop(v, OWNER), None);
}

#[test]
fn gc_leaves_unmarked_datasets_and_ones_elsewhere_alone() {
    let s = setup();
    s.zfs.add("tank/data/lxcri-images", &[(ROLE, ROLE_IMAGES)]);
    let key = "0".repeat(32);
    s.zfs.add(
        &format!("tank/data/lxcri-images/img-{key}"),
        &[(IMAGE_KEY, key.as_str())],
    );
    s.zfs.add(
        &format!("tank/data/img-{key}"),
        &[(ROLE, ROLE_IMAGE), (IMAGE_KEY, key.as_str())],
    );
    let before = s.zfs.names();
    let report = s.rootfs.gc_images(Duration::from_secs(60), false).unwrap();
    assert!(report.images.is_empty(), "{report:?}");
    assert_eq!(s.zfs.names(), before);
}

#[test]
fn a_zfs_failure_after_the_copy_leaves_no_partial_image() {
    let s = setup();
    s.zfs.fail_next(
        "snapshot",
        crate::zfs::ZfsError::OutOfSpace {
            name: "tank".into(),
        },
    );
    let err = ensure(&s.rootfs, &s.layers("/l/1")).unwrap_err();
    assert!(err.to_string().contains("snapshotting image"), "{err}");
    assert!(
        !s.under_images().iter().any(|d| d.contains("/partial-")),
        "{:?}",
        s.under_images()
    );
}
