//! What a default and a privileged container see of their mounts, `/dev`
//! and boot id: the same as on runc (a privileged one's host devices are
//! nodes made by `mknod`, not a bind mount each). LXC makes `/dev` itself (its own tmpfs, a `ptmx`
//! bind, a boot id of the container's own); lxcri's init turns that into
//! runc's (the spec's `/dev` options, `ptmx` a symlink, the host's boot
//! id).

use lxcri_e2e::{
    assert_same, runc_is_1_2_or_later, runc_version, runtimes, spec, Containerd, Runtime,
};
use serde_json::json;

/// A masked directory as lxcri and runc 1.3.6, 1.4.3 and 1.5 mount it: a
/// read-only tmpfs with room for nothing; runc before them mounts a plain
/// read-only tmpfs.
const MASKED_DIR: &str = " tmpfs ro,relatime ro,size=4k,nr_inodes=1 root=";
const OLD_MASKED_DIR: &str = " tmpfs ro,relatime ro root=";

fn runc_masks_with_one_inode() -> bool {
    let v = runc_version();
    v >= (1, 4, 3) || ((1, 3, 6)..(1, 4, 0)).contains(&v)
}

/// `results` with lxcri's told as the runc on `PATH` tells it where
/// `newer` (what runc 1.2+ does) says that runc is older, and lxcri's
/// checked against `expected` (what lxcri gives whatever the runc).
fn as_runc_on_path(
    results: &mut [(Runtime, String)],
    expected: impl Fn(&str) -> bool,
    newer: bool,
    old_form: impl Fn(&str) -> String,
) {
    for (rt, out) in results.iter_mut() {
        if *rt == Runtime::Lxcri {
            assert!(expected(out), "lxcri: {out}");
            if !newer {
                *out = old_form(out);
            }
        }
    }
}

/// Each mount as `point fstype options superoptions`, sorted: the source
/// (LXC names its `/dev` tmpfs `none`) and the overlay's snapshot paths
/// differ by name only. The devpts is compared whole: LXC's `max=`
/// (`lxc.pty.max`) goes when the init remounts it with the spec's options.
const MOUNTS: &str = r#"sed -E 's/^[0-9]+ [0-9]+ [0-9:]+ ([^ ]+) ([^ ]+) ([^ ]+).* - ([^ ]+) [^ ]+ (.*)$/\2 \4 \3 \5 root=\1/; s/,lowerdir=[^ ]*//' /proc/self/mountinfo | sort"#;

/// `/dev`'s entries: type and mode, owner, device numbers or size, name.
const DEV: &str =
    "ls -la /dev | awk 'NR>1 && $NF != \".\" && $NF != \"..\" {print $1, $3, $4, $5, $6, $NF}'";

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn mounts_dev_and_boot_id_are_runcs() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let host_boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let script = format!(
        "{MOUNTS}; echo ==; {DEV}; echo ==; cat /proc/sys/kernel/random/boot_id; \
         echo ==; touch /dev/x && echo dev-writable"
    );
    // Privileged: every host device, made by runc's mknod (no bind mounts).
    for flags in [&[][..], &["--privileged"][..]] {
        let mut results = Vec::new();
        for rt in runtimes() {
            let id = ctd.new_id("view");
            let out = ctd.run(rt, &id, &["sh", "-c", &script], flags);
            assert_eq!(out.code, Some(0), "{rt} {flags:?}: {out}");
            let parts: Vec<&str> = out.stdout.split("==\n").collect();
            assert_eq!(parts.len(), 4, "{rt}: {out}");
            assert!(
                parts[0]
                    .lines()
                    .any(|l| l.starts_with("/dev tmpfs rw,nosuid ")),
                "{rt}: /dev is not the spec's nosuid tmpfs: {}",
                parts[0]
            );
            assert_eq!(parts[2], host_boot_id, "{rt}: the boot id");
            results.push((rt, out.stdout));
        }
        // Privileged: nothing masked.
        let firmware = format!("/sys/firmware{MASKED_DIR}/\n");
        as_runc_on_path(
            &mut results,
            |out| out.contains(&firmware) != flags.contains(&"--privileged"),
            runc_masks_with_one_inode(),
            |out| out.replace(MASKED_DIR, OLD_MASKED_DIR),
        );
        assert_same(&format!("mounts, /dev and the boot id {flags:?}"), &results);
    }
}

/// The rootfs's top directory holds what runc's does: nothing of lxcri's
/// (the runtime directory's mount point goes before the process runs),
/// with a writable and with a read-only rootfs.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn the_root_directory_is_runcs() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    for flags in [&[][..], &["--read-only"][..]] {
        let mut results = Vec::new();
        for rt in runtimes() {
            let id = ctd.new_id("rootdir");
            let out = ctd.run(rt, &id, &["ls", "-a", "/"], flags);
            assert_eq!(out.code, Some(0), "{rt} {flags:?}: {out}");
            results.push((rt, out.stdout));
        }
        assert_same(&format!("what / holds {flags:?}"), &results);
    }
}

/// The hostname as runc gives it: the spec's, or without one the node's
/// (the new UTS namespace starts as a copy), on both backends: PVE names
/// every CT, which must not reach the container.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn the_hostname_is_runcs() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    for flags in [&[][..], &["--net-host"][..]] {
        let mut results = Vec::new();
        for rt in runtimes() {
            let id = ctd.new_id("hostname");
            let out = ctd.run(rt, &id, &["hostname"], flags);
            assert_eq!(out.code, Some(0), "{rt} {flags:?}: {out}");
            results.push((rt, out.stdout));
        }
        assert_same(&format!("the hostname {flags:?}"), &results);
    }
    // ctr 1.6 has no --hostname: the spec's, through --config.
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("hostname");
        let mut s = spec::busybox_spec(&ctd, &id, &["hostname"]);
        s["hostname"] = json!("box");
        let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        results.push((rt, out.stdout));
    }
    assert_eq!(results.first().map(|(_, o)| o.as_str()), Some("box\n"));
    assert_same("the spec's hostname", &results);
}

/// A read-only `/dev` with `mode=711` and a device made in it: the node is
/// there, `/dev` is read-only (runc makes it so last) and has `mode=`'s
/// mode (runc 1.1 chmodded a tmpfs back to the image directory's, 755).
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_read_only_dev_with_a_device_is_runcs() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let script = "stat -c '%a %u' /dev; ls -l /dev/fuse | awk '{print $1, $3, $4, $5, $6}'; \
                  grep ' /dev ' /proc/self/mountinfo | cut -d' ' -f6; \
                  touch /dev/x 2>/dev/null || echo dev-read-only";
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("rodev");
        let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", script]);
        let options = spec::mount_options(&mut s, "/dev");
        options.retain(|o| !o.as_str().unwrap_or("").starts_with("mode="));
        options.extend([json!("ro"), json!("mode=711")]);
        s["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10,
            "minor": 229, "fileMode": 0o660, "uid": 0, "gid": 0}]);
        let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        results.push((rt, out.stdout));
    }
    let expected = "711 0\ncrw-rw---- root root 10, 229\nro,nosuid\ndev-read-only\n";
    as_runc_on_path(
        &mut results,
        |out| out == expected,
        runc_is_1_2_or_later(),
        |out| out.replacen("711 0", "755 0", 1),
    );
    assert_same("a read-only /dev with a device", &results);
}

/// Binds with `nosuid`, `nodev` and `noexec`, writable and read-only, a
/// file's and a directory's: each mount's flags are the spec's, as on
/// runc, and a script in the `noexec` one does not run. (LXC remounts a
/// writable bind only for flags its source has: the init adds the rest.)
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn bind_flags_are_the_specs() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let src = ctd.dir().join("bind-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("run.sh"), "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(
        src.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let binds = [
        ("/mnt/noexec", "", &["rbind", "noexec"][..]),
        ("/mnt/nodev", "", &["bind", "nodev", "nosuid"][..]),
        ("/mnt/ro", "", &["rbind", "ro", "nosuid", "noexec"][..]),
        ("/mnt/exec", "", &["rbind", "noexec", "exec"][..]),
        ("/mnt/file", "/run.sh", &["bind", "noexec"][..]),
        // Made again over LXC's by the share helper (the top mount's).
        ("/mnt/shared", "", &["rbind", "rshared", "noexec"][..]),
    ];
    let script = "for m in /mnt/noexec /mnt/nodev /mnt/ro /mnt/exec /mnt/file /mnt/shared; do \
                    echo \"$m $(grep \" $m \" /proc/self/mountinfo | tail -1 | cut -d' ' -f6)\"; done; \
                  /mnt/noexec/run.sh 2>/dev/null || echo noexec-refused; /mnt/exec/run.sh";
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("bindflags");
        let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", script]);
        for (dest, sub, options) in binds {
            s["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": dest, "type": "bind",
                "source": format!("{}{sub}", src.display()), "options": options,
            }));
        }
        let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        results.push((rt, out.stdout));
    }
    assert_eq!(
        results.first().map(|(_, o)| o.as_str()),
        Some(
            "/mnt/noexec rw,noexec,relatime\n/mnt/nodev rw,nosuid,nodev,relatime\n\
             /mnt/ro ro,nosuid,noexec,relatime\n/mnt/exec rw,relatime\n\
             /mnt/file rw,noexec,relatime\n/mnt/shared rw,noexec,relatime\n\
             noexec-refused\nran\n"
        ),
        "{results:?}"
    );
    assert_same("binds' flags", &results);
}

/// Spec tmpfs mounts as runc 1.2+ makes them: `mode=`'s mode, or without
/// one that of the image's directory under it (runc 1.1 chmodded the
/// root back to the image's whatever `mode=` said); a read-only one is
/// read-only per mount over a writable filesystem.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn tmpfs_mounts_are_runcs() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let script = "stat -c '%a %n' /var /root /home /newdir /dev/shm; \
                  grep -E ' /(var|root|home|newdir) ' /proc/self/mountinfo | cut -d' ' -f5,6,9-; \
                  touch /home/x 2>/dev/null || echo home-read-only";
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("tmpfsmode");
        let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", script]);
        // An image's own /dev/shm is under the new /dev: runc leaves the
        // spec's mode (1777) on the shm tmpfs.
        let rootfs = std::path::PathBuf::from(s["root"]["path"].as_str().unwrap());
        std::fs::create_dir_all(rootfs.join("dev/shm")).unwrap();
        std::fs::set_permissions(
            rootfs.join("dev/shm"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        for (dest, options) in [
            ("/var", &["mode=0700"][..]),
            ("/root", &[][..]),
            ("/home", &["ro", "mode=0711"][..]),
            ("/newdir", &["mode=0750", "size=1m"][..]),
        ] {
            s["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options,
            }));
        }
        let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        results.push((rt, out.stdout));
    }
    as_runc_on_path(
        &mut results,
        |out| {
            out == "700 /var\n700 /root\n711 /home\n750 /newdir\n1777 /dev/shm\n\
                    /var rw,relatime tmpfs rw,mode=700\n/root rw,relatime tmpfs rw,mode=700\n\
                    /home ro,relatime tmpfs rw,mode=711\n\
                    /newdir rw,relatime tmpfs rw,size=1024k,mode=750\nhome-read-only\n"
        },
        runc_is_1_2_or_later(),
        |out| {
            out.replacen("700 /var", "755 /var", 1).replacen(
                "/root rw,relatime tmpfs rw,mode=700",
                "/root rw,relatime tmpfs rw",
                1,
            )
        },
    );
    assert_same("tmpfs mounts", &results);
}

/// A pod container sees the same mounts (the kubelet's and CRI's
/// `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, `/dev/shm` included,
/// and on cgroup v1 each controller's own cgroup at `/sys/fs/cgroup/<ctrl>`,
/// so its memory limit is where an app looks) and `/dev` as on runc. CRI
/// binds the sandbox's `/dev/shm` `rw`: runc 1.2+ remounts it with exactly
/// that, without the `nosuid,nodev,noexec` of containerd's tmpfs.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_pod_container_sees_what_runc_gives() {
    use lxcri_e2e::cri::api::LinuxSandboxSecurityContext;
    use lxcri_e2e::cri::validate::{exited, remove, run_pod};

    let ctd = Containerd::start_cri();
    // On pve PVE names the CT's cgroup (`lxc/VMID`) and LXC mounts it
    // (docs/kubernetes.md, "cgroup v2"): `/sys/fs/cgroup` is left out there.
    let (cgroup_view, limit) = match ctd.pve() {
        None => (
            "",
            "; echo ==; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null",
        ),
        Some(_) => ("grep -v '^/sys/fs/cgroup' |", ""),
    };
    // Paths that name the sandbox or the container differ by its id only.
    let script = format!(
        "{MOUNTS} | {cgroup_view} sed -E 's#/sandboxes/[0-9a-f]+/#/sandboxes/ID/#; s#/[0-9a-f]{{64}}$#/ID#'; \
         echo ==; {DEV}{limit}"
    );
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(
            &ctd,
            rt,
            "view",
            LinuxSandboxSecurityContext::default(),
            &[],
        );
        let mut config = pod.container("c", &["sh", "-c", &script]);
        let linux = config.linux.get_or_insert_with(Default::default);
        linux
            .resources
            .get_or_insert_with(Default::default)
            .memory_limit_in_bytes = 64 << 20;
        let (out, err) = exited(&pod, config);
        remove(&ctd, rt, pod);
        assert!(out.contains("/etc/resolv.conf "), "{rt}: {out}{err}");
        if ctd.pve().is_none() {
            assert!(
                out.ends_with("==\n67108864\n"),
                "{rt}: the limit: {out}{err}"
            );
        }
        results.push((rt, out));
    }
    const SHM: &str = "/dev/shm tmpfs rw,relatime ";
    as_runc_on_path(
        &mut results,
        |out| out.contains(SHM),
        runc_is_1_2_or_later(),
        |out| out.replacen(SHM, "/dev/shm tmpfs rw,nosuid,nodev,noexec,relatime ", 1),
    );
    as_runc_on_path(
        &mut results,
        |out| !out.contains(OLD_MASKED_DIR),
        runc_masks_with_one_inode(),
        |out| out.replace(MASKED_DIR, OLD_MASKED_DIR),
    );
    assert_same("a pod container's mounts and /dev", &results);
}
