//! Mount propagation as on runc: a `Bidirectional` volume (`rshared`, with
//! `rootfsPropagation: rshared`, as containerd's CRI plugin sets them)
//! carries mounts both ways between host and container; a
//! `HostToContainer` volume (`rslave`) only from the host in.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use lxcri_e2e::{assert_same, cmd, runtimes, spec, Containerd, Runtime};

/// A host directory that is a shared mount of its own (kubelet makes the
/// source of a Bidirectional volume shared); unmounted and removed on drop.
struct SharedDir(PathBuf);

impl SharedDir {
    fn new(path: PathBuf) -> Self {
        std::fs::create_dir_all(path.join("inner")).unwrap();
        std::fs::create_dir_all(path.join("fromhost")).unwrap();
        let dir = SharedDir(path);
        dir.mount(&["--bind", dir.path(), dir.path()]);
        dir.mount(&["--make-shared", dir.path()]);
        dir
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn mount(&self, args: &[&str]) {
        let out = cmd::run(Command::new("mount").args(args), Duration::from_secs(10));
        assert!(out.success(), "mount {args:?}: {out}");
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-R", "-l", self.path()])
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_mountpoint(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = path.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(p))
}

/// What crossed: (container -> host over the Bidirectional volume,
/// container -> host over the HostToContainer one, host -> container over
/// each).
fn crossings(ctd: &Containerd, rt: Runtime) -> (bool, bool, String, String) {
    let id = ctd.new_id("prop");
    let bidi = SharedDir::new(ctd.dir().join(format!("bidi-{id}")));
    let h2c = SharedDir::new(ctd.dir().join(format!("h2c-{id}")));
    let script = "mount -t tmpfs tmpfs /bidi/inner && echo from-container > /bidi/inner/f \
                  && mount -t tmpfs tmpfs /h2c/inner && touch /ready && exec sleep 1000";
    let mut s = spec::busybox_spec(ctd, &id, &["sh", "-c", script]);
    for set in ["bounding", "effective", "permitted"] {
        let caps = s["process"]["capabilities"][set].as_array_mut().unwrap();
        caps.push(json!("CAP_SYS_ADMIN"));
    }
    let mounts = s["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": "/bidi", "type": "bind", "source": bidi.path(),
                       "options": ["rbind", "rshared"]}),
    );
    mounts.push(
        json!({"destination": "/h2c", "type": "bind", "source": h2c.path(),
                       "options": ["rbind", "rslave"]}),
    );
    s["linux"]["rootfsPropagation"] = json!("rshared");
    let path = spec::write(ctd, &id, &s);
    let out = ctd.run_config_detached(rt, &id, &path);
    assert!(out.success(), "{rt}: {out}");
    ctd.wait_status(&id, "RUNNING");
    let ready = cmd::poll(Duration::from_secs(20), || {
        ctd.exec(&id, &ctd.new_id("ready"), &["test", "-e", "/ready"], &[])
            .success()
            .then_some(())
    });
    assert!(
        ready.is_some(),
        "{rt}: the container never mounted its tmpfs"
    );
    let back =
        std::fs::read_to_string(bidi.0.join("inner/f")).unwrap_or_default() == "from-container\n";
    let h2c_back = is_mountpoint(&h2c.0.join("inner"));
    // The host mounts into both volumes.
    for dir in [&bidi, &h2c] {
        let target = format!("{}/fromhost", dir.path());
        dir.mount(&["-t", "tmpfs", "tmpfs", &target]);
        std::fs::write(format!("{target}/g"), "from-host\n").unwrap();
    }
    let read = |file: &str| {
        ctd.exec(&id, &ctd.new_id("read"), &["cat", file], &[])
            .stdout
    };
    let into_bidi = read("/bidi/fromhost/g");
    let into_h2c = read("/h2c/fromhost/g");
    ctd.remove(&id);
    (back, h2c_back, into_bidi, into_h2c)
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn bidirectional_and_host_to_container_volumes() {
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut results = Vec::new();
    for rt in runtimes() {
        let got = crossings(&ctd, rt);
        assert_eq!(
            got,
            (true, false, "from-host\n".into(), "from-host\n".into()),
            "{rt}: (container->host over rshared, over rslave, host->container over each)"
        );
        results.push((rt, got));
    }
    assert_same("mount propagation", &results);
}
