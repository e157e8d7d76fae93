//! `lxcri::network::ovsdb` against a real ovsdb-server, which each test
//! starts in a temporary directory of its own (no ovs-vswitchd: the
//! database alone holds what is checked here, so `ovs-vsctl` runs with
//! `--no-wait`, and lxcri's client too, which do not wait for a vswitchd
//! to apply the change; the e2e tests run one).
//! What lxcri writes is read back with `ovs-vsctl`, the tool PVE uses, so
//! the two must agree.
//!
//! Needs Open vSwitch (`apt-get install openvswitch-switch`), not root:
//! `cargo test -p lxcri --test ovsdb -- --ignored`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lxcri::network::ovsdb::{Ovsdb, OvsdbError, OvsdbTarget, PortVlan};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// An ovsdb-server this test started, stopped and removed when dropped.
struct OvsdbServer {
    child: Child,
    dir: tempfile::TempDir,
}

impl OvsdbServer {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lxcri-ovsdb.")
            .tempdir()
            .expect("temporary directory");
        let db = dir.path().join("conf.db");
        run(Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg(SCHEMA));
        let log = std::fs::File::create(dir.path().join("ovsdb-server.out")).unwrap();
        let child = Command::new("ovsdb-server")
            .arg(&db)
            .arg(format!(
                "--remote=punix:{}",
                dir.path().join("db.sock").display()
            ))
            .arg(format!(
                "--unixctl={}",
                dir.path().join("ovsdb.ctl").display()
            ))
            .arg(format!(
                "--log-file={}",
                dir.path().join("ovsdb.log").display()
            ))
            // Whatever it would put in its default directories goes here.
            .env("OVS_RUNDIR", dir.path())
            .env("OVS_LOGDIR", dir.path())
            .env("OVS_DBDIR", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run ovsdb-server (apt-get install openvswitch-switch): {e}")
            });
        let server = Self { child, dir };
        let until = Instant::now() + START_TIMEOUT;
        while std::os::unix::net::UnixStream::connect(server.socket()).is_err() {
            assert!(
                Instant::now() < until,
                "ovsdb-server does not listen on {} after {START_TIMEOUT:?}: {}",
                server.socket().display(),
                std::fs::read_to_string(server.dir.path().join("ovsdb-server.out"))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server.vsctl(&["init"]);
        server
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("db.sock")
    }

    fn target(&self) -> OvsdbTarget {
        format!("unix:{}", self.socket().display()).parse().unwrap()
    }

    fn connect(&self) -> Ovsdb {
        Ovsdb::connect(&self.target())
            .unwrap()
            .with_apply_wait(None)
    }

    /// `ovs-vsctl --no-wait ARGS` on this database: its stdout, trimmed.
    fn vsctl(&self, args: &[&str]) -> String {
        run(Command::new("ovs-vsctl")
            .arg(format!("--db=unix:{}", self.socket().display()))
            .args(["--no-wait", "--timeout=10"])
            .args(args))
    }

    fn add_bridge(&self, name: &str) {
        self.vsctl(&[
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
        ]);
    }

    /// The names of the Interface rows named `name` (zero or one).
    fn interfaces_named(&self, name: &str) -> String {
        self.vsctl(&[
            "--bare",
            "--columns=name",
            "find",
            "interface",
            &format!("name={name}"),
        ])
    }

    /// Signals the server (this test's own child, nothing else).
    fn signal(&self, signal: Signal) -> nix::Result<()> {
        kill(Pid::from_raw(self.child.id() as i32), signal)
    }
}

impl Drop for OvsdbServer {
    fn drop(&mut self) {
        // CONT in case a test stopped it.
        let _ = self.signal(Signal::SIGCONT);
        let _ = self.signal(Signal::SIGTERM);
        let until = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd`, panicking with its stderr unless it succeeds; its stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (apt-get install openvswitch-switch): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn vlan(tag: Option<u16>, trunks: &[u16]) -> PortVlan {
    PortVlan {
        tag,
        trunks: trunks.to_vec(),
    }
}

#[test]
#[ignore = "needs Open vSwitch: cargo test -p lxcri --test ovsdb -- --ignored"]
fn ports_get_each_vlan_mode_as_ovs_vsctl_reads_them() {
    let server = OvsdbServer::start();
    server.add_bridge("br0");
    let mut db = server.connect();

    let br0 = db.bridge("br0").unwrap().expect("br0");
    assert_eq!(
        (br0.name.as_str(), br0.datapath_type.as_str()),
        ("br0", "netdev")
    );
    assert_eq!(db.bridge("br9").unwrap(), None);

    let ids = [("lxcri-id", "default/c1"), ("lxcri-nic", "net0")];
    db.add_port("br0", "p-access", &vlan(Some(10), &[]), &ids, Some(1400))
        .unwrap();
    db.add_port("br0", "p-trunk", &vlan(None, &[30, 20]), &[], None)
        .unwrap();
    db.add_port("br0", "p-native", &vlan(Some(5), &[10, 20]), &[], None)
        .unwrap();
    db.add_port("br0", "p-plain", &vlan(None, &[]), &[], None)
        .unwrap();

    let get = |port: &str, column: &str| server.vsctl(&["get", "port", port, column]);
    let rows = [
        ("p-access", "10", "[]", "access"),
        ("p-trunk", "[]", "[20, 30]", "trunk"),
        ("p-native", "5", "[10, 20]", "native-untagged"),
        ("p-plain", "[]", "[]", "[]"),
    ];
    for (port, tag, trunks, mode) in rows {
        assert_eq!(get(port, "tag"), tag, "{port} tag");
        assert_eq!(get(port, "trunks"), trunks, "{port} trunks");
        assert_eq!(get(port, "vlan_mode"), mode, "{port} vlan_mode");
        assert_eq!(server.vsctl(&["port-to-br", port]), "br0");
        assert_eq!(
            server.vsctl(&["iface-to-br", port]),
            "br0",
            "{port}: one interface of its name"
        );
    }
    assert_eq!(
        get("p-access", "external_ids"),
        r#"{lxcri-id="default/c1", lxcri-nic=net0}"#
    );
    assert_eq!(
        server.vsctl(&["get", "interface", "p-access", "mtu_request"]),
        "1400"
    );
    assert_eq!(
        server.vsctl(&["get", "interface", "p-trunk", "mtu_request"]),
        "[]"
    );

    let found = db.ports_with_external_id("lxcri-id", None).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let p = &found[0];
    assert_eq!(
        (p.name.as_str(), p.bridge.as_deref()),
        ("p-access", Some("br0"))
    );
    assert_eq!(
        (p.tag, p.trunks.as_slice(), p.vlan_mode.as_deref()),
        (Some(10), &[][..], Some("access"))
    );
    assert_eq!(
        p.external_ids.get("lxcri-nic").map(String::as_str),
        Some("net0")
    );
    assert_eq!(
        db.ports_with_external_id("lxcri-id", Some("default/c1"))
            .unwrap(),
        found
    );
    assert!(db
        .ports_with_external_id("lxcri-id", Some("other"))
        .unwrap()
        .is_empty());
}

#[test]
#[ignore = "needs Open vSwitch: cargo test -p lxcri --test ovsdb -- --ignored"]
fn a_port_of_the_same_name_is_replaced_even_on_another_bridge() {
    let server = OvsdbServer::start();
    server.add_bridge("br0");
    server.add_bridge("br1");
    server.vsctl(&[
        "add-port",
        "br1",
        "p1",
        "tag=7",
        "--",
        "set",
        "port",
        "p1",
        "external_ids:old=1",
    ]);
    let mut db = server.connect();

    db.add_port("br0", "p1", &vlan(Some(8), &[]), &[("new", "1")], None)
        .unwrap();
    assert_eq!(server.vsctl(&["port-to-br", "p1"]), "br0");
    assert_eq!(server.vsctl(&["get", "port", "p1", "tag"]), "8");
    assert_eq!(
        server.vsctl(&["get", "port", "p1", "external_ids"]),
        "{new=\"1\"}"
    );
    assert_eq!(server.vsctl(&["list-ports", "br1"]), "");
    assert_eq!(
        server.interfaces_named("p1"),
        "p1",
        "the old Interface row is gone"
    );

    // Again on the same bridge: still one port, one interface.
    db.add_port("br0", "p1", &vlan(None, &[100]), &[], Some(9000))
        .unwrap();
    assert_eq!(server.vsctl(&["list-ports", "br0"]), "p1");
    assert_eq!(server.vsctl(&["get", "port", "p1", "vlan_mode"]), "trunk");
    assert_eq!(
        server.vsctl(&["get", "interface", "p1", "mtu_request"]),
        "9000"
    );
    assert_eq!(server.interfaces_named("p1"), "p1");
}

#[test]
#[ignore = "needs Open vSwitch: cargo test -p lxcri --test ovsdb -- --ignored"]
fn del_port_removes_port_and_interface_and_is_idempotent() {
    let server = OvsdbServer::start();
    server.add_bridge("br0");
    let mut db = server.connect();
    db.add_port("br0", "p1", &vlan(Some(10), &[]), &[], None)
        .unwrap();
    // One added by ovs-vsctl goes the same way.
    server.vsctl(&["add-port", "br0", "p2"]);

    assert!(db.del_port("p1", None).unwrap());
    assert!(!db.del_port("p1", None).unwrap());
    assert!(db.del_port("p2", None).unwrap());
    assert_eq!(server.vsctl(&["list-ports", "br0"]), "");
    assert_eq!(
        server.interfaces_named("p1"),
        "",
        "Interface rows are garbage-collected"
    );
    assert_eq!(server.interfaces_named("p2"), "");
    assert!(!db.del_port("never-was", None).unwrap());
    // The bridge's own port and interface are untouched.
    assert_eq!(server.interfaces_named("br0"), "br0");
}

/// A delete with a mark leaves a port of that name marked for another
/// owner (made meanwhile under the same name) or not marked at all.
#[test]
#[ignore = "needs Open vSwitch: cargo test -p lxcri --test ovsdb -- --ignored"]
fn a_marked_delete_takes_only_the_port_with_that_mark() {
    let server = OvsdbServer::start();
    server.add_bridge("br0");
    let mut db = server.connect();
    let owner = "lxcri-owner";
    db.add_port("br0", "p1", &vlan(None, &[]), &[(owner, "ns/b")], None)
        .unwrap();
    server.vsctl(&["add-port", "br0", "p2"]);
    assert!(!db.del_port("p1", Some((owner, "ns/a"))).unwrap());
    assert!(!db.del_port("p2", Some((owner, "ns/a"))).unwrap());
    assert_eq!(server.vsctl(&["list-ports", "br0"]), "p1\np2");
    assert!(db.del_port("p1", Some((owner, "ns/b"))).unwrap());
    assert_eq!(server.vsctl(&["list-ports", "br0"]), "p2");
}

#[test]
#[ignore = "needs Open vSwitch: cargo test -p lxcri --test ovsdb -- --ignored"]
fn errors_name_the_bridge_the_port_and_the_servers_reason() {
    let server = OvsdbServer::start();
    server.add_bridge("br0");
    let mut db = server.connect();

    let e = db
        .add_port("nobr", "p1", &vlan(None, &[]), &[], None)
        .unwrap_err();
    assert!(matches!(e, OvsdbError::NoSuchBridge { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "ovsdb: add-port nobr p1: no bridge named \"nobr\""
    );
    assert_eq!(server.interfaces_named("p1"), "");

    // The schema's range, enforced by the server: nothing is written.
    let e = db
        .add_port("br0", "p1", &vlan(None, &[]), &[], Some(0))
        .unwrap_err();
    assert!(matches!(e, OvsdbError::Transact { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with("ovsdb: add-port br0 p1: constraint violation: "),
        "{text}"
    );
    assert_eq!(server.vsctl(&["list-ports", "br0"]), "");

    // The connection is still good.
    assert!(db.bridge("br0").unwrap().is_some());
}

#[test]
#[ignore = "needs Open vSwitch: cargo test -p lxcri --test ovsdb -- --ignored"]
fn an_unreachable_or_stopped_server_fails_in_time_naming_the_target() {
    let server = OvsdbServer::start();
    let dir = tempfile::tempdir().unwrap();
    let missing: OvsdbTarget = format!("unix:{}/db.sock", dir.path().display())
        .parse()
        .unwrap();
    let e = Ovsdb::connect(&missing).err().expect("no server");
    assert!(matches!(e, OvsdbError::Connect { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains(&format!("cannot connect to {missing}: ")),
        "{e}"
    );

    // A stopped server still accepts into its backlog but never answers.
    server.signal(Signal::SIGSTOP).unwrap();
    let start = Instant::now();
    let deadline = Duration::from_millis(300);
    let result = Ovsdb::connect_with_deadline(&server.target(), deadline)
        .and_then(|mut db| db.bridge("br0"));
    let took = start.elapsed();
    server.signal(Signal::SIGCONT).unwrap();
    let e = result.expect_err("a stopped server answers nothing");
    assert!(matches!(e, OvsdbError::TimedOut { .. }), "{e:?}");
    assert!(e.to_string().contains(&server.target().to_string()), "{e}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // Running again, it answers a new connection.
    assert_eq!(server.connect().bridge("br0").unwrap(), None);
}
