//! CTs made as lxcri makes them, for the tests that start real LXC containers: through
//! the API from an empty template onto `local-zfs:0`, then edited on the node under the
//! config lock (a directory rootfs, the created volume as `unused0`, a raw `lxc.include`).

use super::Sim;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Stops the CT and removes its rootfs even when an assertion fails; declared after the
/// `Sim` so it runs before the stand-in is killed.
pub struct Cleanup {
    pub vmid: u32,
    pub lxcpath: PathBuf,
    pub rootfs: PathBuf,
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

/// Cgroup and veth names (`lxc/VMID`, `vethVMIDi0`) are host-wide: the test binary's pid
/// keeps parallel runs and test files apart, and `k` (below 100, one per CT of a file's
/// tests, which run in parallel) a file's tests.
pub fn vmid(k: u32) -> u32 {
    assert!(
        k < 100,
        "CT number {k} would reach another test binary's VMIDs"
    );
    100_000 + (std::process::id() % 90_000) * 100 + k
}

pub fn busybox_rootfs(dir: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for applet in ["sh", "sleep", "hostname"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
}

pub fn ok_task(sim: &Sim, a: &super::Answer) {
    assert_eq!(a.status, 200, "{} {:?}", a.reason, a.body);
    assert_eq!(sim.wait_task(a.body["data"].as_str().unwrap()), "OK");
}

/// One CT as lxcri makes it, with its paths.
pub struct Ct {
    pub vmid: u32,
    pub lxcpath: PathBuf,
    pub rootfs: PathBuf,
    pub conf: PathBuf,
    pub subvol: PathBuf,
}

/// lxcri's create: the API call from the empty template onto a quota-less subvolume,
/// then the node-local edit under PVE's config lock. `init` goes in as `entrypoint`;
/// `include`, when given, is written to a fragment that `lxc.include` pulls in last.
pub fn create_like_lxcri(sim: &Sim, k: u32, init: &str, include: Option<&str>) -> (Ct, Cleanup) {
    create_with(sim, k, init, include, &Extra::default())
}

/// What a test adds to lxcri's create: API parameters (`&cores=1`), config lines for the
/// node-local edit (before the include), and another `rootfs:` value.
#[derive(Default)]
pub struct Extra {
    pub form: String,
    pub lines: Vec<String>,
    pub rootfs: Option<String>,
}

pub fn create_with(
    sim: &Sim,
    k: u32,
    init: &str,
    include: Option<&str>,
    extra: &Extra,
) -> (Ct, Cleanup) {
    let vmid = vmid(k);
    let lxcpath = sim.dir.path().join("var/lib/lxc");
    let rootfs = sim.dir.path().join(format!("bbroot-{vmid}"));
    let cleanup = Cleanup {
        vmid,
        lxcpath: lxcpath.clone(),
        rootfs: rootfs.clone(),
    };
    busybox_rootfs(&rootfs);
    sim.put_template("local", "lxcri-empty.tar.gz");
    let n = &sim.node;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let form = format!(
        "vmid={vmid}&ostemplate={}&rootfs={}&unprivileged=0&ostype=unmanaged&console=0&tty=0\
         &entrypoint={}&env={}&tags=lxcri&description={}&arch=amd64&hostname=bb&memory=64",
        enc("local:vztmpl/lxcri-empty.tar.gz"),
        enc("local-zfs:0"),
        enc(init),
        enc("A=1\0B=two"),
        enc("lxcri container c1\npod p1"),
    ) + &extra.form;
    ok_task(sim, &sim.call("POST", &format!("/nodes/{n}/lxc"), &form));
    let subvol = sim
        .dir
        .path()
        .join(format!("storage/local-zfs/subvol-{vmid}-disk-0"));
    assert!(subvol.is_dir());

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
        match &extra.rootfs {
            Some(r) => lines.push(format!("rootfs: {r}")),
            None => lines.push(format!("rootfs: {}", rootfs.display())),
        }
        lines.push(format!("unused0: local-zfs:subvol-{vmid}-disk-0"));
        lines.extend(extra.lines.iter().cloned());
        if let Some(fragment) = include {
            let dir = sim.dir.path().join(format!("run/lxcri/ns/c{vmid}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("pve-lxc.conf"), fragment).unwrap();
            lines.push(format!(
                "lxc.include: {}",
                dir.join("pve-lxc.conf").display()
            ));
        }
        std::fs::write(&conf, lines.join("\n") + "\n").unwrap();
    }
    let ct = Ct {
        vmid,
        lxcpath,
        rootfs,
        conf,
        subvol,
    };
    (ct, cleanup)
}

pub fn status(sim: &Sim, vmid: u32) -> Value {
    let a = sim.call(
        "GET",
        &format!("/nodes/{}/lxc/{vmid}/status/current", sim.node),
        "",
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body["data"].clone()
}
