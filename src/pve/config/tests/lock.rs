use std::path::Path;
use std::time::Duration;

use super::*;

fn node() -> (tempfile::TempDir, NodePaths) {
    let dir = tempfile::tempdir().unwrap();
    let paths = NodePaths::under(dir.path());
    std::fs::create_dir_all(paths.config_dir.join("lxc")).unwrap();
    // pmxcfs's `local` of a quorate node.
    std::fs::create_dir(paths.quorum_file()).unwrap();
    (dir, paths)
}

#[test]
fn without_quorum_nothing_is_written_and_the_error_says_why() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, paths) = node();
    let conf = paths.config_file(101);
    let before = fixture("101-snapshots-pending.conf");
    std::fs::write(&conf, &before).unwrap();
    let edit = |f: &mut PveConfigFile| f.set_key("hostname", "other");
    let local = paths.quorum_file();
    // As pmxcfs shows `local` without quorum.
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o555)).unwrap();
    let err = update_node_config(&paths, 101, edit).unwrap_err();
    assert!(matches!(err, PveConfigError::NoQuorum { .. }), "{err}");
    assert!(
        err.to_string().contains("the PVE cluster has no quorum"),
        "{err}"
    );
    // A read-modify-write that changes nothing needs no quorum, as reads do not.
    assert!(!update_node_config(&paths, 101, |_| Ok(false)).unwrap());
    std::fs::remove_dir(&local).unwrap();
    let err = update_node_config(&paths, 101, edit).unwrap_err();
    assert!(
        matches!(err, PveConfigError::NoQuorum { .. }),
        "pmxcfs not mounted: {err}"
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(paths.config_dir.join("lxc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["101.conf"], "no temporary file left");
    std::fs::create_dir(&local).unwrap();
    assert!(
        update_node_config(&paths, 101, edit).unwrap(),
        "quorum is back"
    );
}

#[test]
fn paths_follow_the_node_layout() {
    let p = NodePaths::default();
    assert_eq!(p.config_file(100), Path::new("/etc/pve/lxc/100.conf"));
    assert_eq!(
        p.lock_file(100),
        Path::new("/run/lock/lxc/pve-config-100.lock")
    );
}

#[test]
fn update_writes_atomically_under_the_lock() {
    let (_dir, paths) = node();
    let conf = paths.config_file(101);
    std::fs::write(&conf, fixture("101-snapshots-pending.conf")).unwrap();
    let edit = |f: &mut PveConfigFile| -> Result<bool> {
        let a = f.set_include(
            Path::new("/var/lib/lxcri/pve/101.conf"),
            Path::new("/var/lib/lxcri/pve"),
        )?;
        let mp = bind_mount("/srv/shop/uploads", "/var/www/uploads");
        let b = f.set_key("mp0", &mp.render("mp0")?)?;
        Ok(a | b)
    };
    assert!(update_node_config(&paths, 101, edit).unwrap());
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        fixture("101-snapshots-pending.edited.conf")
    );
    assert!(paths.lock_file(101).exists());
    // Unchanged: no write at all (same inode).
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&conf).unwrap());
    assert!(!update_node_config(&paths, 101, edit).unwrap());
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&conf).unwrap()),
        ino
    );
    let names: Vec<_> = std::fs::read_dir(paths.config_dir.join("lxc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["101.conf"], "no temporary file left");
}

#[test]
fn a_failed_edit_leaves_the_file_alone() {
    let (_dir, paths) = node();
    let conf = paths.config_file(101);
    std::fs::write(&conf, fixture("101-snapshots-pending.conf")).unwrap();
    let err = update_node_config(&paths, 101, |f| f.set_key("memory", "1")).unwrap_err();
    assert!(err.to_string().contains("pending"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        fixture("101-snapshots-pending.conf")
    );
    std::fs::write(&conf, "lxc.no_new_privs: 1\n").unwrap();
    let err = update_node_config(&paths, 101, |_| Ok(true))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("101.conf") && err.contains("lxc.no_new_privs"),
        "{err}"
    );
}

#[test]
fn missing_config_is_an_error() {
    let (_dir, paths) = node();
    let err = update_node_config(&paths, 7777, |_| Ok(true))
        .unwrap_err()
        .to_string();
    assert!(err.contains("CT 7777 has no config file"), "{err}");
}

#[test]
fn the_lock_excludes_other_holders() {
    let (_dir, paths) = node();
    let held = ConfigLock::acquire(&paths, 300, Duration::from_secs(1)).unwrap();
    assert_eq!(held.path(), paths.lock_file(300));
    let p = paths.clone();
    let err = std::thread::spawn(move || {
        ConfigLock::acquire(&p, 300, Duration::from_millis(100)).unwrap_err()
    })
    .join()
    .unwrap();
    assert!(matches!(err, PveConfigError::LockTimeout { .. }), "{err}");
    // Another CT's lock is independent.
    ConfigLock::acquire(&paths, 301, Duration::from_millis(100)).unwrap();
    drop(held);
    ConfigLock::acquire(&paths, 300, Duration::from_millis(100)).unwrap();
}
