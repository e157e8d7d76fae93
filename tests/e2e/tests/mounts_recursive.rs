//! runc's recursive mount options on binds (`rro`, `rnosuid`, `rnoexec`,
//! `rnoatime`, ...; runc's tests/integration/mounts_recursive.bats), side
//! by side: the attributes reach every mount below the bind, `ro` alone
//! only the bind; a bind the spec puts inside one after it keeps its own
//! flags (runc set the attributes before making it), and one made by
//! lxcri's share helper (inside another bind) gets its own; in a user
//! namespace too, where the container's root sets them.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::json;

use lxcri_e2e::{assert_same, runtimes, spec, Containerd};

/// A host directory with a tmpfs mounted at `sub` and the directories
/// later binds go on; unmounted and removed on drop.
struct Volume(PathBuf);

impl Volume {
    fn new(path: PathBuf) -> Self {
        for d in ["sub", "later", "inner"] {
            std::fs::create_dir_all(path.join(d)).unwrap();
        }
        let volume = Volume(path);
        // Writable by anyone: a mapped root is nobody's owner here.
        mount(
            Some("none"),
            &volume.sub(),
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=1777"),
        )
        .unwrap_or_else(|e| panic!("tmpfs on {}: {e}", volume.sub().display()));
        volume
    }

    fn sub(&self) -> PathBuf {
        self.0.join("sub")
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = umount2(&self.sub(), MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Per path: whether a file can be made there, and the mount's options.
const PROBE: &str =
    "for p in /rro /rro/sub /rro/later /ro /ro/sub /ro/inner /flags /flags/sub; do \
       if touch $p/f 2>/dev/null; then w=rw; else w=ro; fi; \
       echo \"$p $w $(grep \" $p \" /proc/self/mountinfo | tail -1 | cut -d' ' -f6)\"; \
     done";

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn recursive_options_reach_every_mount_below_a_bind() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("rro");
        let volume = Volume::new(ctd.dir().join(format!("vol-{id}")));
        let other = ctd.dir().join(format!("other-{id}"));
        std::fs::create_dir_all(&other).unwrap();
        let src = volume.path().to_str().unwrap();
        let binds = [
            // As containerd's CRI asks for recursiveReadOnly: no `ro`.
            ("/rro", src, &["rbind", "rprivate", "rro"][..]),
            // After the one it lies in: runc made it after the attributes.
            ("/rro/later", other.to_str().unwrap(), &["rbind"][..]),
            ("/ro", src, &["rbind", "ro"][..]),
            // Inside another bind: lxcri's share helper makes it.
            ("/ro/inner", other.to_str().unwrap(), &["rbind", "rro"][..]),
            // (runc 1.1 sets a pair's both halves, `rnodev,rdev`: the
            // unit tests hold lxcri to later runc's last-one-wins.)
            (
                "/flags",
                src,
                &["rbind", "rnosuid", "rnoexec", "rnoatime"][..],
            ),
        ];
        let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", PROBE]);
        for (dest, source, options) in binds {
            s["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": dest, "type": "bind", "source": source, "options": options,
            }));
        }
        let out = ctd.run_config(rt, &id, &spec::write(&ctd, &id, &s));
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        results.push((rt, out.stdout));
        drop(volume);
        let _ = std::fs::remove_dir_all(&other);
    }
    assert_eq!(
        results.first().map(|(_, o)| o.as_str()),
        Some(
            "/rro ro ro,relatime\n/rro/sub ro ro,relatime\n/rro/later rw rw,relatime\n\
             /ro ro ro,relatime\n/ro/sub rw rw,relatime\n/ro/inner ro ro,relatime\n\
             /flags rw rw,nosuid,noexec,noatime\n/flags/sub rw rw,nosuid,noexec,noatime\n"
        ),
        "{results:?}"
    );
    assert_same("recursive mount options", &results);
}

/// `ctr run --uidmap` with `--mount ...,options=rbind:rro`: the init sets
/// the attributes from inside the container's user namespace, which owns
/// its mount namespace (a mount's locked flags stay, setting more is
/// allowed).
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn recursive_read_only_in_a_user_namespace() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let probe = "for p in /rro /rro/sub /ro /ro/sub; do \
           if touch $p/f 2>/dev/null; then w=rw; else w=ro; fi; echo \"$p $w\"; done";
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("rro-userns");
        let volume = Volume::new(ctd.dir().join(format!("vol-{id}")));
        std::fs::set_permissions(
            volume.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        let mount = |dst: &str, options: &str| {
            format!(
                "type=bind,src={},dst={dst},options={options}",
                volume.path().display()
            )
        };
        let (rro, ro) = (mount("/rro", "rbind:rro"), mount("/ro", "rbind:ro"));
        let map = "0:100000:65536";
        let flags = [
            "--uidmap", map, "--gidmap", map, "--mount", &rro, "--mount", &ro,
        ];
        let out = ctd.run(rt, &id, &["sh", "-c", probe], &flags);
        assert_eq!(out.code, Some(0), "{rt}: {out}");
        results.push((rt, out.stdout));
    }
    assert_eq!(
        results.first().map(|(_, o)| o.as_str()),
        Some("/rro ro\n/rro/sub ro\n/ro ro\n/ro/sub rw\n"),
        "{results:?}"
    );
    assert_same("recursive read-only in a user namespace", &results);
}
