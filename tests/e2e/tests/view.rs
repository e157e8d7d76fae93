//! What a default and a privileged container see of their mounts, `/dev`
//! and boot id: the same as on runc (a privileged one's host devices are
//! nodes made by `mknod`, not a bind mount each). LXC makes `/dev` itself (its own tmpfs, a `ptmx`
//! bind, a boot id of the container's own); lxcri's init turns that into
//! runc's (the spec's `/dev` options, `ptmx` a symlink, the host's boot
//! id).

use lxcri_e2e::{assert_same, runtimes, Containerd};

/// Each mount as `point fstype options superoptions`, sorted: the source
/// (LXC names its `/dev` tmpfs `none`), the overlay's snapshot paths and
/// the `max=` LXC gives its devpts (`lxc.pty.max`) differ by name only.
const MOUNTS: &str = r#"sed -E 's/^[0-9]+ [0-9]+ [0-9:]+ ([^ ]+) ([^ ]+) ([^ ]+).* - ([^ ]+) [^ ]+ (.*)$/\2 \4 \3 \5 root=\1/; s/,lowerdir=[^ ]*//; s/,max=[0-9]+//' /proc/self/mountinfo | sort"#;

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
        assert_same(&format!("mounts, /dev and the boot id {flags:?}"), &results);
    }
}
