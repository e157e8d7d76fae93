//! The runc CVE classes, tried from inside a container whose root can write
//! what lxcri put in its reach (`/.lxcri`, the runtime directory bound into
//! it): the init binary there overwritten (CVE-2019-5736: the host must
//! never execute it), the exit report replaced by a symlink to a host file
//! and to `/dev/zero` (the shim must not follow it, hang or run out of
//! memory). And what lxcri keeps for itself on the host is readable by its
//! owner only.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use lxcri_e2e::containerd::bin_dir;
use lxcri_e2e::{require, Containerd, Runtime, LXCRI_RUN_ROOT};
use sha2::{Digest, Sha256};

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

#[track_caller]
fn assert_owner_only(path: &Path) {
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "{} is mode {:o}",
        path.display(),
        mode & 0o777
    );
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn what_a_container_writes_in_its_reach_is_never_run_or_followed_by_the_host() {
    if !require(Runtime::Lxcri, "escape") {
        return;
    }
    let ctd = Containerd::start();
    ctd.import_busybox();
    let host_init = bin_dir().join("lxcri-init");
    let before = sha256(&host_init);
    let id = ctd.new_id("escape");
    ctd.run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);

    // What lxcri keeps for itself: owner-only.
    let state = Path::new(LXCRI_RUN_ROOT).join(ctd.namespace()).join(&id);
    assert_owner_only(&state.join("state.json"));
    assert_owner_only(&state.join("run/init.json"));
    assert_owner_only(&ctd.bundle(&id).join("lxcri-config.json"));
    if ctd.pve().is_none() {
        let lxc = Path::new(lxcri_e2e::LXCRI_LXC_PATH).join(format!("{}_{id}", ctd.namespace()));
        assert_owner_only(&lxc.join("config"));
    }

    // The init it started from: a link to the node's one copy of this
    // version, which nobody but root may write, bound read-only.
    let link = std::fs::metadata(state.join("lxcri-init")).expect("the init's link");
    let copies: Vec<_> = std::fs::read_dir(Path::new(LXCRI_RUN_ROOT).join(".init"))
        .expect("the node's init copies")
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.ino() == link.ino()))
        .collect();
    assert_eq!(copies.len(), 1, "the link is to a node copy");
    assert_eq!((link.mode() & 0o7777, link.uid()), (0o555, 0));
    assert_eq!(sha256(&copies[0]), before, "the copy is of the host's init");
    let copies_dir = std::fs::metadata(Path::new(LXCRI_RUN_ROOT).join(".init")).unwrap();
    assert_eq!(copies_dir.mode() & 0o7777, 0o711);
    let mount_point = state.join("run/lxcri-init");
    assert_eq!(std::fs::metadata(&mount_point).unwrap().len(), 0);

    // The runtime directory and its mount point are gone before the
    // process runs; what the container puts in their place is its own.
    let script = "[ -e /.lxcri ] && echo present || echo absent; mkdir /.lxcri; \
                  printf '#!/bin/sh\\ntouch /tmp/pwned-by-container\\n' > /.lxcri/lxcri-init; \
                  echo wrote=$?; \
                  rm -f /.lxcri/exit; ln -s /etc/shadow /.lxcri/exit; echo linked=$?";
    let out = ctd.exec(&id, "evil", &["sh", "-c", script], &[]);
    assert!(
        out.stdout.starts_with("absent\n")
            && out.stdout.contains("wrote=0")
            && out.stdout.contains("linked=0"),
        "{out}"
    );
    // exec runs the host's init, not the container's copy.
    let out = ctd.exec(&id, "after", &["sh", "-c", "echo alive"], &[]);
    assert_eq!(out.stdout, "alive\n", "{out}");
    assert_eq!(sha256(&host_init), before, "the host's lxcri-init changed");
    assert!(!Path::new("/tmp/pwned-by-container").exists());

    // An exit report that is /dev/zero: the shim reports the kernel's exit.
    let out = ctd.exec(
        &id,
        "zero",
        &["sh", "-c", "ln -sf /dev/zero /.lxcri/exit; echo ok"],
        &[],
    );
    assert_eq!(out.stdout, "ok\n", "{out}");
    ctd.kill(&id, "SIGKILL").ok();
    let stopped = lxcri_e2e::cmd::poll(Duration::from_secs(30), || {
        ctd.task(&id).filter(|(_, s)| s == "STOPPED")
    });
    assert!(
        stopped.is_some(),
        "the shim hung on the exit report: {:?}",
        ctd.task(&id)
    );
    let out = ctd.ctr(&["task", "rm", &id]).ok();
    assert!(out.stderr.contains("exit code 137"), "{out}");
    ctd.ctr(&["containers", "rm", &id]).ok();
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
}

/// A symlink one container leaves in a shared volume (`/data/evil -> /`)
/// must not make the next container's mount land on the host: a mount at
/// `/data/evil/tmp/X` goes to the container's own `/tmp/X` (as runc's
/// securejoin resolves it) or fails; the host's `/tmp/X` is never made.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_symlink_in_a_volume_does_not_carry_a_mount_onto_the_host() {
    use lxcri_e2e::cri::api::ContainerState;
    use lxcri_e2e::cri::pod::{base_pod_config, mount, volume_dir, Pod};
    let ctd = Containerd::start_cri();
    for rt in lxcri_e2e::runtimes() {
        let name = lxcri_e2e::unique_name("symvol");
        let shared = volume_dir(&ctd, &format!("{name}-shared"));
        let other = volume_dir(&ctd, &format!("{name}-other"));
        std::fs::write(other.join("marker"), "other volume\n").unwrap();
        let target = format!("lxcri-escape-{}", lxcri_e2e::random_u32());
        let host_path = Path::new("/tmp").join(&target);
        let pod = Pod::run(&ctd, rt, base_pod_config(&ctd, &name, false))
            .unwrap_or_else(|e| panic!("{rt}: {e}"));

        let mut c = pod.container("plant", &["sh", "-c", "ln -s / /data/evil && echo planted"]);
        c.mounts = vec![mount(&shared, "/data", false)];
        let planter = pod.start(c);
        pod.wait_state(
            &planter,
            ContainerState::ContainerExited,
            Duration::from_secs(30),
        );
        assert!(shared.join("evil").is_symlink(), "{rt}: no symlink planted");

        let mut c = pod.container(
            "mount",
            &["sh", "-c", &format!("cat /tmp/{target}/marker; sleep 1000")],
        );
        c.mounts = vec![
            mount(&shared, "/data", false),
            mount(&other, &format!("/data/evil/tmp/{target}"), true),
        ];
        let started = pod
            .create(c)
            .and_then(|id| ctd.cri().start_container(&id).map(|()| id));
        assert!(
            !host_path.exists(),
            "{rt}: the mount reached the host: {} exists",
            host_path.display()
        );
        if let Ok(id) = &started {
            let log = pod.wait_log("mount", "stdout", "other volume");
            assert!(!log.is_empty(), "{rt}");
            let _ = id;
        }
        pod.remove().unwrap_or_else(|e| panic!("{rt}: {e}"));
        let _ = std::fs::remove_dir(&host_path);
    }
}
