//! A private Open vSwitch per test: its own ovsdb-server and ovs-vswitchd,
//! children of the test, with database, sockets and logs in a temporary
//! directory, and bridges on the userspace datapath (`datapath_type =
//! netdev`), since the test machines have no openvswitch kernel module.
//!
//! Started directly, never through `ovs-ctl`, which runs `modprobe
//! openvswitch` and may even `rmmod bridge`. `OVS_RUNDIR` (and its
//! siblings) point into the directory, so ovs-vswitchd makes its bridges'
//! OpenFlow sockets (`BRIDGE.mgmt`, `BRIDGE.snoop`) there rather than in
//! /var/run/openvswitch.
//!
//! One userspace switch per network namespace at a time: the netdev
//! datapath is a tap device named `ovs-netdev`, and a second ovs-vswitchd
//! fails every bridge with "creating tap device failed: Device or resource
//! busy". So an [`OvsSwitch`] holds a machine-wide lock while it lives.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cmd::{self, Background, CmdOutput};
use crate::{machine_lock, random_u32, unique_name};

const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
/// Serialises the tests' switches ([`OvsSwitch::start`]).
const LOCK_FILE: &str = "/run/lock/lxcri-e2e-ovs.lock";
/// The tap device of a running userspace datapath.
const DATAPATH_TAP: &str = "/sys/class/net/ovs-netdev";
/// How long the daemons may take to answer, or to exit when asked.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(20);
/// Deadline for one command (`ovs-vsctl` waits 10 s itself).
const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// The kernel's limit on a link name, which a netdev bridge's tap has.
const MAX_LINK_NAME: usize = 15;

/// ovsdb-server and ovs-vswitchd of one test. Dropping it deletes the
/// bridges it made, stops both daemons (SIGTERM, then SIGKILL) and
/// removes its directory.
pub struct OvsSwitch {
    dir: PathBuf,
    /// Stopped in this order: the switch before its database.
    daemons: Vec<(&'static str, Child)>,
    bridges: Mutex<Vec<String>>,
    /// Held until Drop has cleaned up.
    _turn: File,
}

impl OvsSwitch {
    /// Starts both daemons and waits until ovs-vswitchd has applied the
    /// initial configuration. Panics, with their logs, when that fails.
    pub fn start() -> Self {
        let tools = [
            "ovsdb-tool",
            "ovsdb-server",
            "ovs-vswitchd",
            "ovs-vsctl",
            "ethtool",
        ];
        let which = cmd::run(Command::new("which").args(tools), CMD_TIMEOUT);
        assert!(
            which.success(),
            "one of {tools:?} is missing: apt-get install openvswitch-switch ethtool\n{which}"
        );
        let turn = machine_lock(LOCK_FILE, "Open vSwitch test");
        if Path::new(DATAPATH_TAP).exists() {
            // Under the lock, a test switch still running was left by a
            // test process that died without its Drop.
            let switches: Vec<String> = crate::cleanup::processes()
                .into_iter()
                .filter(|(_, cmdline)| cmdline.starts_with("ovs-vswitchd"))
                .map(|(pid, cmdline)| format!("{pid}: {cmdline}"))
                .collect();
            panic!(
                "another ovs-vswitchd runs a userspace datapath here ({DATAPATH_TAP} exists), \
                 and a second one could make no bridge; stop it (one left by a killed test \
                 has lxcri-e2e-ovs. in its command line):\n  {}",
                switches.join("\n  ")
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("lxcri-e2e-ovs.")
            .tempdir()
            .expect("temporary directory for Open vSwitch")
            .keep();
        // From here on, Drop cleans up.
        let mut switch = OvsSwitch {
            dir,
            daemons: Vec::new(),
            bridges: Mutex::new(Vec::new()),
            _turn: turn,
        };
        let db = switch.path("conf.db");
        cmd::run(
            Command::new("ovsdb-tool")
                .arg("create")
                .arg(&db)
                .arg(SCHEMA),
            CMD_TIMEOUT,
        )
        .ok();
        let remote = format!("--remote=punix:{}", switch.path("db.sock").display());
        let ovsdb = switch.spawn(
            "ovsdb-server",
            &[db.to_str().expect("utf-8 temp path"), &remote],
        );
        switch.daemons.insert(0, ("ovsdb-server", ovsdb));
        let listening = cmd::poll(DAEMON_TIMEOUT, || {
            std::os::unix::net::UnixStream::connect(switch.path("db.sock"))
                .ok()
                .map(drop)
        });
        if listening.is_none() {
            panic!(
                "ovsdb-server does not listen after {DAEMON_TIMEOUT:?}\n{}",
                switch.logs()
            );
        }
        switch.vsctl(&["--no-wait", "init"]);
        let vswitchd = switch.spawn("ovs-vswitchd", &[&switch.db()]);
        switch.daemons.insert(0, ("ovs-vswitchd", vswitchd));
        // Without --no-wait, ovs-vsctl returns once ovs-vswitchd has
        // applied the database (its `cur_cfg` caught up): it is ready.
        let ready = switch.vsctl_output(&["init"]);
        assert!(
            ready.success(),
            "ovs-vswitchd is not ready: {ready}\n{}",
            switch.logs()
        );
        switch
    }

    /// The database's target for `ovs-vsctl --db` and lxcri: `unix:DIR/db.sock`.
    pub fn db(&self) -> String {
        format!("unix:{}", self.path("db.sock").display())
    }

    /// `ovs-vsctl --db=.. --timeout=10 ARGS`: its stdout, trimmed. Panics
    /// with stderr and the daemons' logs when it fails.
    pub fn vsctl(&self, args: &[&str]) -> String {
        let out = self.vsctl_output(args);
        assert!(out.success(), "{out}\n{}", self.logs());
        out.stdout.trim().to_string()
    }

    /// Makes bridge `name` (at most 15 characters: it is also a tap
    /// device; unique, chosen by the caller) on the userspace datapath.
    pub fn add_bridge(&self, name: &str) {
        assert!(
            name.len() <= MAX_LINK_NAME,
            "bridge name {name:?} over 15 characters"
        );
        self.bridges.lock().unwrap().push(name.to_string());
        self.vsctl(&[
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
        ]);
        // ovs-vsctl succeeds even when ovs-vswitchd could not make it.
        assert!(
            Path::new("/sys/class/net").join(name).exists(),
            "bridge {name} has no tap device: ovs-vswitchd did not make it\n{}",
            self.logs()
        );
    }

    /// The ports of `bridge` (not its own), sorted.
    pub fn ports(&self, bridge: &str) -> Vec<String> {
        self.vsctl(&["list-ports", bridge])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A network namespace `<ns_prefix>-<unique>` whose `eth0` has
    /// `ip_cidr` and is the peer of a veth whose host end is a port of
    /// `bridge` (an access port of VLAN `tag`, when given). Dropping it
    /// removes the port, the veth and the namespace.
    pub fn netns_port(
        &self,
        bridge: &str,
        ns_name_prefix: &str,
        ip_cidr: &str,
        tag: Option<u16>,
    ) -> NetnsPort {
        let (addr, _) = ip_cidr.split_once('/').expect("ADDRESS/PREFIX");
        let port = NetnsPort {
            ns: unique_name(ns_name_prefix),
            host_if: format!("lxov{:08x}", random_u32()),
            addr: addr.to_string(),
            db: self.db(),
        };
        ip(&["netns", "add", &port.ns]);
        ip(&[
            "link",
            "add",
            &port.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &port.ns,
        ]);
        ip(&["-n", &port.ns, "addr", "add", ip_cidr, "dev", "eth0"]);
        ip(&["-n", &port.ns, "link", "set", "lo", "up"]);
        ip(&["-n", &port.ns, "link", "set", "eth0", "up"]);
        ip(&["link", "set", &port.host_if, "up"]);
        // The userspace datapath reads and writes the veth through a raw
        // socket and never fills in checksums the kernel left to the
        // device: ping works, TCP does not (openvswitch/ovs-issues#273).
        cmd::run(
            Command::new("ethtool").args(["-K", &port.host_if, "tx", "off"]),
            CMD_TIMEOUT,
        )
        .ok();
        port.exec(&["ethtool", "-K", "eth0", "tx", "off"]).ok();
        let tag = tag.map(|t| format!("tag={t}"));
        let mut args = vec!["add-port", bridge, &port.host_if];
        args.extend(tag.as_deref());
        self.vsctl(&args);
        port
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn vsctl_output(&self, args: &[&str]) -> CmdOutput {
        cmd::run(
            Command::new("ovs-vsctl")
                .arg(format!("--db={}", self.db()))
                .arg("--timeout=10")
                .args(args),
            CMD_TIMEOUT,
        )
    }

    /// Runs daemon `name` as a child with its control socket, log and
    /// output in the directory.
    fn spawn(&self, name: &str, args: &[&str]) -> Child {
        let out = File::create(self.path(&format!("{name}.out"))).expect("daemon output file");
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
                ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"].map(|v| (v, &self.dir)),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup the output file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
    }

    /// The end of each daemon's log and output, for failure messages.
    fn logs(&self) -> String {
        let mut text = String::new();
        for file in [
            "ovsdb-server.log",
            "ovsdb-server.out",
            "ovs-vswitchd.log",
            "ovs-vswitchd.out",
        ] {
            let content = fs::read_to_string(self.path(file)).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            text.push_str(&format!("--- {file} (end) ---\n{}\n", tail.join("\n")));
        }
        text
    }
}

impl Drop for OvsSwitch {
    fn drop(&mut self) {
        let vswitchd_up = self
            .daemons
            .iter_mut()
            .any(|(name, child)| *name == "ovs-vswitchd" && matches!(child.try_wait(), Ok(None)));
        for bridge in self.bridges.lock().map(|b| b.clone()).unwrap_or_default() {
            // With the switch gone, nobody would apply it: do not wait.
            let mut args = vec!["--if-exists", "del-br", bridge.as_str()];
            if !vswitchd_up {
                args.insert(0, "--no-wait");
            }
            let out = self.vsctl_output(&args);
            if !out.success() {
                eprintln!("warning: cannot delete test bridge {bridge}: {out}");
            }
        }
        for (name, mut child) in self.daemons.drain(..) {
            // Only the daemons this switch started, by their pids.
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let exited = cmd::poll(DAEMON_TIMEOUT, || {
                matches!(child.try_wait(), Ok(Some(_))).then_some(())
            });
            if exited.is_none() {
                eprintln!("warning: {name} ignored SIGTERM for {DAEMON_TIMEOUT:?}; killing it");
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("warning: cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// A network namespace plugged into a test switch ([`OvsSwitch::netns_port`]).
pub struct NetnsPort {
    ns: String,
    host_if: String,
    addr: String,
    /// The switch's database, to take the port out again.
    db: String,
}

impl NetnsPort {
    /// The network namespace (`ip netns` name).
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// The veth's host end: the name of the OVS port.
    pub fn host_if(&self) -> &str {
        &self.host_if
    }

    /// The address of `eth0` in the namespace (without prefix length).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Runs `ip netns exec NS ARGS`.
    pub fn exec(&self, args: &[&str]) -> CmdOutput {
        cmd::run(
            Command::new("ip")
                .args(["netns", "exec", &self.ns])
                .args(args),
            CMD_TIMEOUT,
        )
    }

    /// Like [`NetnsPort::exec`], in the background.
    pub fn spawn(&self, args: &[&str]) -> Background {
        Background::spawn(
            Command::new("ip")
                .args(["netns", "exec", &self.ns])
                .args(args),
        )
    }

    /// Whether one `busybox ping` to `addr` is answered within 2 s.
    pub fn ping(&self, addr: &str) -> bool {
        self.exec(&["busybox", "ping", "-c1", "-W2", addr])
            .success()
    }
}

impl Drop for NetnsPort {
    fn drop(&mut self) {
        // The switch may be gone already: then there is nothing to delete.
        cmd::run(
            Command::new("ovs-vsctl").args([
                &format!("--db={}", self.db),
                "--timeout=5",
                "--if-exists",
                "del-port",
                &self.host_if,
            ]),
            CMD_TIMEOUT,
        );
        // Deleting one end deletes the pair; either may not exist yet.
        cmd::run(
            Command::new("ip").args(["link", "del", &self.host_if]),
            CMD_TIMEOUT,
        );
        let out = cmd::run(
            Command::new("ip").args(["netns", "del", &self.ns]),
            CMD_TIMEOUT,
        );
        if !out.success() && !out.stderr.contains("No such file") {
            eprintln!(
                "warning: cannot delete network namespace {}: {out}",
                self.ns
            );
        }
    }
}

/// Runs `ip ARGS`, panicking when it fails.
fn ip(args: &[&str]) {
    cmd::run(Command::new("ip").args(args), CMD_TIMEOUT).ok();
}
