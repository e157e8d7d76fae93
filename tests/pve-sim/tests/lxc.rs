//! Real CTs from a busybox rootfs, created the way lxcri creates them: through the API from
//! an empty template onto `local-zfs:0`, then edited on the node under the config lock
//! (a directory rootfs, the created volume as `unused0`, a raw `lxc.include`), started
//! (pct-start-like config + lxc-start), stopped and destroyed. Nothing of a CT (its cgroups,
//! its lxc-start, its LXC directory) may outlive its stop or destroy.

mod common;

use common::Sim;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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

/// Cgroup names (`lxc/VMID`) are host-wide: a per-run VMID keeps parallel runs apart, and
/// `k` keeps this file's tests apart.
fn vmid(k: u32) -> u32 {
    100_000 + (std::process::id() % 90_000) * 10 + k
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

/// The cgroup hierarchies: every controller directory of a v1 or hybrid host (with
/// `unified`), or the v2 root itself.
fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut out = vec![root.to_path_buf()];
    for e in std::fs::read_dir(root).unwrap().flatten() {
        // Real directories only: `cpu` -> `cpu,cpuacct` links would repeat one.
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(e.path());
        }
    }
    out
}

/// LXC's cgroups of a CT (`lxc.cgroup.dir.container = lxc/VMID`,
/// `lxc.cgroup.dir.monitor = lxc.monitor/VMID`) that still exist anywhere.
fn leftover_cgroups(vmid: u32) -> Vec<PathBuf> {
    hierarchies()
        .iter()
        .flat_map(|h| ["lxc", "lxc.monitor"].map(|d| h.join(d).join(vmid.to_string())))
        .filter(|p| p.exists())
        .collect()
}

/// Whether the CT's lxc-start still listens on its command socket.
fn monitor_listening(vmid: u32, lxcpath: &Path) -> bool {
    let want = format!(" @{}/{vmid}/command", lxcpath.display());
    std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .any(|l| l.ends_with(&want))
}

/// Whether the CT's `lxc-start` process still exists (a reaped one has no /proc entry, a
/// zombie has an empty cmdline).
fn lxc_start_alive(vmid: u32, lxcpath: &Path) -> bool {
    let want = format!("-n\0{vmid}\0-P\0{}\0", lxcpath.display());
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        cmdline.starts_with("lxc-start\0") && cmdline.contains(&want)
    })
}

fn ok_task(sim: &Sim, a: &common::Answer) {
    assert_eq!(a.status, 200, "{} {:?}", a.reason, a.body);
    assert_eq!(sim.wait_task(a.body["data"].as_str().unwrap()), "OK");
}

/// One CT as lxcri makes it, with its paths.
struct Ct {
    vmid: u32,
    lxcpath: PathBuf,
    rootfs: PathBuf,
    conf: PathBuf,
    subvol: PathBuf,
}

/// lxcri's create: the API call from the empty template onto a quota-less subvolume,
/// then the node-local edit under PVE's config lock. `init` goes in as `entrypoint`;
/// `include`, when given, is written to a fragment that `lxc.include` pulls in last.
fn create_like_lxcri(sim: &Sim, k: u32, init: &str, include: Option<&str>) -> (Ct, Cleanup) {
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
    );
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
        lines.push(format!("rootfs: {}", rootfs.display()));
        lines.push(format!("unused0: local-zfs:subvol-{vmid}-disk-0"));
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

fn status(sim: &Sim, vmid: u32) -> Value {
    let a = sim.call(
        "GET",
        &format!("/nodes/{}/lxc/{vmid}/status/current", sim.node),
        "",
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body["data"].clone()
}

/// After a stop: no cgroup and no command socket; after a stop or destroy task also no
/// `lxc-start` (which lingers about half a second after closing its socket). The shared
/// parents `lxc` and `lxc.monitor` stay.
fn assert_nothing_left(ct: &Ct, when: &str, task_done: bool) {
    assert_eq!(
        leftover_cgroups(ct.vmid),
        Vec::<PathBuf>::new(),
        "cgroups left {when}"
    );
    assert!(
        !monitor_listening(ct.vmid, &ct.lxcpath),
        "lxc-start still listening {when}"
    );
    if task_done {
        assert!(
            !lxc_start_alive(ct.vmid, &ct.lxcpath),
            "lxc-start still running {when}"
        );
    }
    for h in hierarchies() {
        if h.join("lxc.monitor").exists() {
            assert!(h.join("lxc").is_dir(), "shared {}/lxc removed", h.display());
        }
    }
}

/// lxcri's delete (`DELETE` with purge, force, destroy-unreferenced-disks),
/// then nothing of the CT is left: config, LXC dir, unused0, cgroups,
/// monitor.
fn destroy_like_lxcri(sim: &Sim, ct: &Ct) {
    let (n, vmid) = (&sim.node, ct.vmid);
    ok_task(
        sim,
        &sim.call(
            "DELETE",
            &format!("/nodes/{n}/lxc/{vmid}"),
            "purge=1&force=1&destroy-unreferenced-disks=1",
        ),
    );
    assert_nothing_left(ct, "after destroy", true);
    assert!(!ct.conf.exists());
    assert!(!ct.lxcpath.join(vmid.to_string()).exists());
    assert!(!ct.subvol.exists(), "unused0 is freed");
}

#[test]
#[ignore = "needs root and LXC: run by scripts/test"]
fn lxcri_ct_starts_stops_and_is_destroyed() {
    let sim = Sim::start(&[]);
    let n = sim.node.clone();
    // The include comes last, so its init wins over the entrypoint's.
    let (ct, _cleanup) = create_like_lxcri(
        &sim,
        0,
        "/bin/sleep 999",
        Some("lxc.init.cmd = /bin/sleep 1000\n"),
    );
    let vmid = ct.vmid;
    let cfg = sim.call("GET", &format!("/nodes/{n}/lxc/{vmid}/config"), "");
    let data = &cfg.body["data"];
    assert_eq!(data["rootfs"], ct.rootfs.display().to_string());
    assert_eq!(data["unused0"], format!("local-zfs:subvol-{vmid}-disk-0"));
    assert_eq!(
        (data["console"].as_u64(), data["tty"].as_u64()),
        (Some(0), Some(0))
    );

    ok_task(
        &sim,
        &sim.call("POST", &format!("/nodes/{n}/lxc/{vmid}/status/start"), ""),
    );
    assert_eq!(lxc_state(vmid, &ct.lxcpath), "RUNNING");
    let generated = std::fs::read_to_string(ct.lxcpath.join(format!("{vmid}/config"))).unwrap();
    assert!(generated.contains("lxc.uts.name = bb\n"));
    assert!(generated.contains(&format!("lxc.rootfs.path = {}\n", ct.rootfs.display())));
    // `env` as lxc.environment.runtime (LXC 6), or lxc.environment on LXC 5.
    assert!(generated.contains(" = B=two\n"), "{generated}");
    assert!(
        generated.ends_with("/pve-lxc.conf\n") && generated.contains("lxc.include = "),
        "{generated}"
    );
    let cur = status(&sim, vmid);
    assert_eq!(cur["status"], "running");
    let pid = cur["pid"].as_u64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("1000"),
        "the include's lxc.init.cmd runs"
    );

    let again = sim.call("POST", &format!("/nodes/{n}/lxc/{vmid}/status/start"), "");
    assert_eq!(
        (again.status, again.reason.clone()),
        (500, format!("CT {vmid} already running"))
    );
    let destroy = sim.call("DELETE", &format!("/nodes/{n}/lxc/{vmid}"), "");
    assert_eq!(
        (destroy.status, destroy.reason.clone()),
        (
            500,
            format!("unable to destroy CT {vmid} - container is running")
        ),
        "a running CT needs force"
    );

    ok_task(
        &sim,
        &sim.call("POST", &format!("/nodes/{n}/lxc/{vmid}/status/stop"), ""),
    );
    // The stop task ends once lxc-start is gone, and LXC's cgroups with it.
    assert_eq!(lxc_state(vmid, &ct.lxcpath), "STOPPED");
    assert_nothing_left(&ct, "after status/stop", true);
    assert_eq!(status(&sim, vmid)["status"], "stopped");
    let again = sim.call("POST", &format!("/nodes/{n}/lxc/{vmid}/status/stop"), "");
    assert_eq!(
        (again.status, again.reason.clone()),
        (500, format!("CT {vmid} not running"))
    );

    // Start it again and destroy it running, as lxcri's delete does.
    ok_task(
        &sim,
        &sim.call("POST", &format!("/nodes/{n}/lxc/{vmid}/status/start"), ""),
    );
    assert_eq!(lxc_state(vmid, &ct.lxcpath), "RUNNING");
    destroy_like_lxcri(&sim, &ct);
    assert!(
        ct.rootfs.join("bin/busybox").exists(),
        "a directory rootfs is not PVE's to delete"
    );
    assert!(sim.requests().iter().all(|l| l["valid"] == true));
}

#[test]
#[ignore = "needs root and LXC: run by scripts/test"]
fn ct_whose_init_exits_leaves_no_cgroups() {
    let sim = Sim::start(&[]);
    let n = sim.node.clone();
    let (ct, _cleanup) = create_like_lxcri(&sim, 1, "/bin/sleep 1", None);
    let vmid = ct.vmid;
    ok_task(
        &sim,
        &sim.call("POST", &format!("/nodes/{n}/lxc/{vmid}/status/start"), ""),
    );
    assert_eq!(status(&sim, vmid)["status"], "running");
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(&sim, vmid)["status"] == "running" {
        assert!(Instant::now() < deadline, "the CT did not stop by itself");
        std::thread::sleep(Duration::from_millis(5));
    }
    // "stopped" is PVE's check_running: LXC has cleaned up by then.
    assert_nothing_left(&ct, "once status/current says stopped", false);
    let stop = sim.call("POST", &format!("/nodes/{n}/lxc/{vmid}/status/stop"), "");
    assert_eq!(
        (stop.status, stop.reason.clone()),
        (500, format!("CT {vmid} not running"))
    );
    ok_task(
        &sim,
        &sim.call("DELETE", &format!("/nodes/{n}/lxc/{vmid}"), "purge=1"),
    );
    assert_nothing_left(&ct, "after destroy", true);
    assert!(!ct.lxcpath.join(vmid.to_string()).exists());
    assert!(!ct.subvol.exists());
}

#[test]
#[ignore = "needs root and LXC: run by scripts/test"]
fn destroy_right_after_init_exit_waits_for_lxc_start() {
    let sim = Sim::start(&[]);
    let n = sim.node.clone();
    let (ct, _cleanup) = create_like_lxcri(&sim, 2, "/bin/sleep 1", None);
    let vmid = ct.vmid;
    ok_task(
        &sim,
        &sim.call("POST", &format!("/nodes/{n}/lxc/{vmid}/status/start"), ""),
    );
    // LXC says STOPPED before it has removed the CT's cgroups; destroy at that moment
    // (as lxcri does when the init exits) must still leave nothing.
    let deadline = Instant::now() + Duration::from_secs(20);
    while lxc_state(vmid, &ct.lxcpath) != "STOPPED" {
        assert!(Instant::now() < deadline, "the CT did not stop by itself");
    }
    destroy_like_lxcri(&sim, &ct);
}
