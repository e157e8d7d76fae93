//! A real CT from a busybox rootfs: create through the API, lxcri-style local edits under
//! the config lock, start (pct-start-like config + lxc-start), status, stop, destroy.

mod common;

use common::Sim;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Stops the CT and removes its rootfs even when an assertion fails; declared after the
/// `Sim` so it runs before the stand-in is killed.
struct Cleanup {
    vmid: u32,
    lxcpath: PathBuf,
    rootfs: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("lxc-stop")
            .args(["-k", "-n", &self.vmid.to_string(), "-P"])
            .arg(&self.lxcpath)
            .status();
        let _ = std::fs::remove_dir_all(&self.rootfs);
    }
}

fn busybox_rootfs(dir: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for applet in ["sh", "sleep", "hostname"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
}

fn lxc_state(vmid: u32, lxcpath: &Path) -> String {
    let out = Command::new("lxc-info")
        .args(["-s", "-H", "-n", &vmid.to_string(), "-P"])
        .arg(lxcpath)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
#[ignore = "needs root and LXC: run by scripts/test"]
fn busybox_ct_starts_stops_and_is_destroyed() {
    let sim = Sim::start(&[]);
    // Cgroup names (lxc/VMID) are host-wide: a per-run VMID keeps parallel runs apart.
    let vmid = 100_000 + std::process::id() % 800_000;
    let lxcpath = sim.dir.path().join("var/lib/lxc");
    let rootfs = sim.dir.path().join("bbroot");
    let _cleanup = Cleanup {
        vmid,
        lxcpath: lxcpath.clone(),
        rootfs: rootfs.clone(),
    };
    busybox_rootfs(&rootfs);
    let n = &sim.node;

    let form = format!("vmid={vmid}&ostemplate=local%3Avztmpl%2Fnone.tar&hostname=bb&memory=64&unprivileged=0&ostype=unmanaged");
    let a = sim.call("POST", &format!("/nodes/{n}/lxc"), &form);
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(sim.wait_task(a.body["data"].as_str().unwrap()), "OK");

    // What lxcri does on the node as root: a directory rootfs and a raw init command.
    let conf = sim.dir.path().join(format!("etc/pve/lxc/{vmid}.conf"));
    let lock = sim
        .dir
        .path()
        .join(format!("run/lock/lxc/pve-config-{vmid}.lock"));
    {
        let f = std::fs::File::create(&lock).unwrap();
        let _held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).unwrap();
        let text = std::fs::read_to_string(&conf).unwrap();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with("rootfs:"))
            .map(String::from)
            .collect();
        lines.push(format!("rootfs: {}", rootfs.display()));
        lines.push("lxc.init.cmd: /bin/sleep 1000".into());
        std::fs::write(&conf, lines.join("\n") + "\n").unwrap();
    }

    let a = sim.call("POST", &format!("/nodes/{n}/lxc/{vmid}/status/start"), "");
    assert_eq!(sim.wait_task(a.body["data"].as_str().unwrap()), "OK");
    assert_eq!(lxc_state(vmid, &lxcpath), "RUNNING");
    let generated = std::fs::read_to_string(lxcpath.join(format!("{vmid}/config"))).unwrap();
    assert!(generated.contains("lxc.uts.name = bb\n"));
    assert!(
        generated.ends_with("lxc.init.cmd = /bin/sleep 1000\n"),
        "{generated}"
    );
    let cur = sim.call("GET", &format!("/nodes/{n}/lxc/{vmid}/status/current"), "");
    assert_eq!(cur.body["data"]["status"], "running");
    assert!(cur.body["data"]["pid"].as_u64().unwrap() > 1);
    assert_eq!(
        sim.call("POST", &format!("/nodes/{n}/lxc/{vmid}/status/start"), "")
            .status,
        500
    );
    assert_eq!(
        sim.call("DELETE", &format!("/nodes/{n}/lxc/{vmid}"), "")
            .status,
        500,
        "running CT needs force"
    );

    let a = sim.call("POST", &format!("/nodes/{n}/lxc/{vmid}/status/stop"), "");
    assert_eq!(sim.wait_task(a.body["data"].as_str().unwrap()), "OK");
    assert_eq!(lxc_state(vmid, &lxcpath), "STOPPED");

    let a = sim.call("DELETE", &format!("/nodes/{n}/lxc/{vmid}"), "purge=1");
    assert_eq!(sim.wait_task(a.body["data"].as_str().unwrap()), "OK");
    assert!(!conf.exists());
    assert!(!lxcpath.join(vmid.to_string()).exists());
    assert!(
        rootfs.join("bin/busybox").exists(),
        "a directory rootfs is not PVE's to delete"
    );
    assert!(sim.requests().iter().all(|l| l["valid"] == true));
}
