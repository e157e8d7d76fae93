//! Host networking for the tests that plug CTs: a Linux bridge, a network namespace, and a
//! private Open vSwitch, each with a unique name and removed on drop, also when the test
//! fails. Only what a test made itself is removed, and daemons only by their own pids.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A unique link or namespace name: `prefix` and 8 hex digits (at most 15 characters for a
/// link, the kernel's limit).
pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 4];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom");
    format!("{prefix}{:08x}", u32::from_ne_bytes(b))
}

/// Runs a command; its output, whatever the exit status.
pub fn run(argv: &[&str]) -> Output {
    Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
}

/// Runs a command that must work; its stdout, trimmed.
pub fn must(argv: &[&str]) -> String {
    let out = run(argv);
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A Linux bridge (no VLAN filtering: this kernel has none), up.
pub struct Bridge(pub String);

impl Bridge {
    pub fn new(mtu: u32) -> Bridge {
        let b = Bridge(unique("pvsb"));
        must(&["ip", "link", "add", &b.0, "type", "bridge"]);
        must(&["ip", "link", "set", &b.0, "mtu", &mtu.to_string(), "up"]);
        b
    }

    /// The links enslaved to it.
    pub fn ports(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(format!("/sys/class/net/{}/brif", self.0))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        out.sort();
        out
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.0]);
    }
}

/// A network namespace (`ip netns add`), at `/run/netns/NAME`.
pub struct Netns(pub String);

impl Netns {
    pub fn new() -> Netns {
        let ns = Netns(unique("pvsn"));
        must(&["ip", "netns", "add", &ns.0]);
        ns
    }

    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.0)
    }

    /// `ip netns exec NS ARGS`.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut argv = vec!["ip", "netns", "exec", &self.0];
        argv.extend(args);
        run(&argv)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.0]);
    }
}

/// The machine-wide lock of lxcri's e2e OVS fixture (tests/e2e/src/ovs.rs): the userspace
/// datapath is one tap device, `ovs-netdev`, so only one such switch can run at a time.
const OVS_LOCK: &str = "/run/lock/lxcri-e2e-ovs.lock";
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// ovsdb-server and ovs-vswitchd of one test, started directly (never `ovs-ctl`, which
/// may `modprobe openvswitch` or `rmmod bridge`), with database, sockets and logs in a
/// temporary directory (`OVS_RUNDIR` etc. point there), bridges on the userspace datapath.
pub struct Ovs {
    dir: tempfile::TempDir,
    /// The switch first, then its database: the order they are stopped in.
    daemons: Vec<Child>,
    bridges: Vec<String>,
    _turn: nix::fcntl::Flock<File>,
}

impl Ovs {
    pub fn start() -> Ovs {
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(OVS_LOCK)
            .expect("the OVS lock file");
        let turn = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .unwrap_or_else(|(_, e)| panic!("flock {OVS_LOCK}: {e}"));
        assert!(
            !Path::new("/sys/class/net/ovs-netdev").exists(),
            "another ovs-vswitchd runs a userspace datapath here"
        );
        let mut ovs = Ovs {
            dir: tempfile::Builder::new()
                .prefix("pve-sim-ovs.")
                .tempdir()
                .unwrap(),
            daemons: Vec::new(),
            bridges: Vec::new(),
            _turn: turn,
        };
        let db = ovs.path("conf.db");
        must(&["ovsdb-tool", "create", db.to_str().unwrap(), SCHEMA]);
        let remote = format!("--remote=punix:{}", ovs.path("db.sock").display());
        let server = ovs.spawn("ovsdb-server", &[db.to_str().unwrap(), &remote]);
        ovs.daemons.insert(0, server);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(ovs.path("db.sock")).is_err() {
            assert!(Instant::now() < deadline, "ovsdb-server does not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        ovs.vsctl(&["--no-wait", "init"]);
        let switch = ovs.spawn("ovs-vswitchd", &[&ovs.db()]);
        ovs.daemons.insert(0, switch);
        // Without --no-wait ovs-vsctl returns once ovs-vswitchd applied the database.
        ovs.vsctl(&["init"]);
        ovs
    }

    /// `unix:DIR/db.sock`, for `ovs-vsctl --db=` and pve-sim's `--ovsdb`.
    pub fn db(&self) -> String {
        format!("unix:{}", self.path("db.sock").display())
    }

    /// `ovs-vsctl --db=.. --timeout=10 ARGS`, which must work: its stdout, trimmed.
    pub fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db={}", self.db());
        let mut argv = vec!["ovs-vsctl", &db, "--timeout=10"];
        argv.extend(args);
        must(&argv)
    }

    /// A bridge on the userspace datapath (its local port is a tap device of that name).
    pub fn add_bridge(&mut self) -> String {
        let name = unique("pvso");
        self.bridges.push(name.clone());
        let set = ["--", "set", "bridge", &name, "datapath_type=netdev"];
        self.vsctl(&[&["add-br", &name][..], &set].concat());
        assert!(
            Path::new("/sys/class/net").join(&name).exists(),
            "ovs-vswitchd made no tap for {name}"
        );
        name
    }

    /// A port of `bridge` for `ns`: a veth whose peer is `eth0` there with `cidr`, an
    /// access port of VLAN `tag`, tx checksum offload off on both ends (the userspace
    /// datapath needs that for TCP, see pve-sim's `netdev_offloads`).
    pub fn add_netns_port(&self, bridge: &str, ns: &Netns, cidr: &str, tag: u16) -> String {
        let host = unique("pvsv");
        let peer = ["peer", "name", "eth0", "netns", &ns.0];
        must(&[&["ip", "link", "add", &host, "type", "veth"][..], &peer].concat());
        must(&["ip", "link", "set", &host, "up"]);
        must(&["ethtool", "-K", &host, "tx", "off"]);
        for args in [
            &["ip", "addr", "add", cidr, "dev", "eth0"][..],
            &["ip", "link", "set", "eth0", "up"],
            &["ethtool", "-K", "eth0", "tx", "off"],
        ] {
            let out = ns.exec(args);
            assert!(out.status.success(), "{args:?} in {}", ns.0);
        }
        self.vsctl(&["add-port", bridge, &host, &format!("tag={tag}")]);
        host
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn spawn(&self, name: &str, args: &[&str]) -> Child {
        let out = File::create(self.path(&format!("{name}.out"))).unwrap();
        Command::new(name)
            .args(args)
            .arg(format!(
                "--unixctl={}",
                self.path(&format!("{name}.ctl")).display()
            ))
            .arg(format!(
                "--log-file={}",
                self.path(&format!("{name}.log")).display()
            ))
            .envs(
                ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"]
                    .map(|v| (v, self.dir.path())),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e} (apt-get install openvswitch-switch)"))
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        let db = format!("--db={}", self.db());
        for b in &self.bridges {
            let _ = run(&["ovs-vsctl", &db, "--timeout=10", "--if-exists", "del-br", b]);
        }
        for mut d in self.daemons.drain(..) {
            let pid = nix::unistd::Pid::from_raw(d.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(d.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}
