//! The client against a scripted server: framing, echo, errors, the
//! deadline, and the read-then-write retry.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::super::{Ovsdb, OvsdbError, PortVlan};
use super::fake::{FakeServer, Peer};

const DEADLINE: Duration = Duration::from_secs(5);

fn connect(server: &FakeServer) -> Ovsdb {
    Ovsdb::connect_with_deadline(&server.target, DEADLINE).unwrap()
}

/// Adds port `p1` to `br0`, untagged, as most scripts here expect.
fn add_p1(db: &mut Ovsdb) -> Result<(), OvsdbError> {
    db.add_port("br0", "p1", &PortVlan::default(), &[], None)
}

fn uuid_rows(uuid: Option<&str>) -> Value {
    let rows: Vec<Value> = uuid
        .map(|u| json!({"_uuid": ["uuid", u]}))
        .into_iter()
        .collect();
    json!({"rows": rows})
}

/// Answers the read before a write: the port's and the bridge's uuids.
fn answer_lookup(peer: &mut Peer, port: Option<&str>, bridge: Option<&str>) {
    let (id, params) = peer.recv_transact();
    assert_eq!(params[1]["op"], "select", "{params}");
    let mut results = vec![uuid_rows(port)];
    if params.as_array().is_some_and(|p| p.len() == 3) {
        results.push(uuid_rows(bridge));
    }
    peer.reply(&id, json!(results));
}

/// The `next_cfg` a committed add-port reads back.
const NEXT_CFG: i64 = 7;

/// Answers a write: committed, or its precondition at `failed_wait` failed.
fn answer_write(peer: &mut Peer, failed_wait: Option<usize>) -> Value {
    let (id, params) = peer.recv_transact();
    let n = params.as_array().map_or(0, |p| p.len() - 1);
    let results: Vec<Value> = (0..n)
        .map(|i| match failed_wait {
            Some(w) if i == w => {
                json!({"error": "timed out", "details": "\"where\" clause test failed"})
            }
            Some(w) if i > w => Value::Null,
            _ if params[i + 1]["op"] == "select" => json!({"rows": [{"next_cfg": NEXT_CFG}]}),
            _ => json!({}),
        })
        .collect();
    peer.reply(&id, json!(results));
    params
}

/// Answers the read of ovs-vswitchd's progress: `cur_cfg` and the
/// interface's `ofport` and `error` (as OVSDB sets: `["set", []]` is none).
fn answer_applied(peer: &mut Peer, cur_cfg: i64, ofport: Value, error: Value) {
    let (id, params) = peer.recv_transact();
    assert_eq!(params[1]["columns"], json!(["cur_cfg"]), "{params}");
    assert_eq!(params[2]["table"], "Interface", "{params}");
    peer.reply(
        &id,
        json!([
            {"rows": [{"cur_cfg": cur_cfg}]},
            {"rows": [{"ofport": ofport, "error": error}]},
        ]),
    );
}

#[test]
fn echo_requests_are_answered_and_messages_split_or_joined_are_framed() {
    let server = FakeServer::start(|peer| {
        let (id, params) = peer.recv_transact();
        assert_eq!(params[1]["table"], "Bridge");
        peer.send(json!({"method": "echo", "params": ["ping", 1], "id": "echo"}));
        assert_eq!(
            peer.recv(),
            json!({"result": ["ping", 1], "error": null, "id": "echo"})
        );
        // A notification and the answer in one write, the answer cut in two.
        let answer = json!({"id": id, "error": null,
            "result": [{"rows": [{"name": "br0", "datapath_type": "netdev"}]}]})
        .to_string();
        let (head, tail) = answer.split_at(answer.len() / 2);
        peer.send_raw(
            format!("{{\"method\":\"update\",\"params\":[null,{{}}],\"id\":null}}\n{head}")
                .as_bytes(),
        );
        std::thread::sleep(Duration::from_millis(50));
        peer.send_raw(tail.as_bytes());
        peer.expect_closed();
    });
    let mut db = connect(&server);
    let bridge = db.bridge("br0").unwrap().unwrap();
    assert_eq!(
        (bridge.name.as_str(), bridge.datapath_type.as_str()),
        ("br0", "netdev")
    );
    drop(db);
    server.join();
}

#[test]
fn an_error_answer_names_method_and_servers_error_and_keeps_the_connection() {
    let server = FakeServer::start(|peer| {
        let (id, _) = peer.recv_transact();
        peer.send(json!({"id": id, "result": null, "error": "unknown database"}));
        let (id, _) = peer.recv_transact();
        peer.reply(&id, json!([{"rows": []}]));
        peer.expect_closed();
    });
    let mut db = connect(&server);
    let e = db.bridge("br0").unwrap_err();
    assert!(matches!(e, OvsdbError::Rpc { .. }), "{e:?}");
    assert!(
        e.to_string().contains("transact failed: unknown database"),
        "{e}"
    );
    assert!(!db.is_broken(), "the server answered");
    assert_eq!(db.bridge("br0").unwrap(), None);
    drop(db);
    server.join();
}

#[test]
fn a_failed_operation_carries_operation_error_and_details() {
    let server = FakeServer::start(|peer| {
        answer_lookup(peer, None, Some("b-uuid"));
        let (id, _) = peer.recv_transact();
        peer.reply(
            &id,
            json!([{}, {}, {}, {"error": "constraint violation", "details": "5000 is not in range"},
                   null, null]),
        );
        peer.expect_closed();
    });
    let mut db = connect(&server);
    let vlan = PortVlan {
        tag: Some(5000),
        trunks: vec![],
    };
    let e = db.add_port("br0", "p1", &vlan, &[], None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ovsdb: add-port br0 p1: constraint violation: 5000 is not in range"
    );
    drop(db);
    server.join();
}

#[test]
fn a_server_that_never_answers_times_out_and_the_connection_is_dropped() {
    let server = FakeServer::start(|peer| {
        peer.recv_transact();
        // Never answer; the client hangs up.
        peer.expect_closed();
    });
    let mut db = Ovsdb::connect_with_deadline(&server.target, Duration::from_millis(200)).unwrap();
    assert!(!db.is_broken());
    let start = Instant::now();
    let e = db.bridge("br0").unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, OvsdbError::TimedOut { .. }), "{e:?}");
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(
        e.to_string().contains("no answer to transact within 200ms"),
        "{e}"
    );
    assert!(e.to_string().contains(&server.target.to_string()), "{e}");
    // A late answer must not be taken for the next request's.
    assert!(db.is_broken());
    let e = db.bridge("br0").unwrap_err();
    assert!(matches!(e, OvsdbError::Broken { .. }), "{e:?}");
    drop(db);
    server.join();
}

#[test]
fn a_server_hanging_up_mid_request_is_an_error() {
    let server = FakeServer::start(|peer| {
        peer.recv_transact();
        peer.send_raw(b"{\"id\":0,\"res");
    });
    let mut db = connect(&server);
    let e = db.del_port("p1", None).unwrap_err();
    assert!(matches!(e, OvsdbError::Closed { .. }), "{e:?}");
    server.join();
}

#[test]
fn add_port_reads_again_when_the_port_changed_in_between() {
    let server = FakeServer::start(|peer| {
        answer_lookup(peer, None, Some("b-uuid"));
        // Someone added a port of that name meanwhile: its wait fails.
        answer_write(peer, Some(1));
        answer_lookup(peer, Some("p-uuid"), Some("b-uuid"));
        let params = answer_write(peer, None);
        // The second write replaces the port found on the second read.
        assert_eq!(params[2]["rows"], json!([{"_uuid": ["uuid", "p-uuid"]}]));
        assert_eq!(params[4]["op"], "delete");
        answer_applied(peer, NEXT_CFG, json!(5), json!(["set", []]));
        peer.expect_closed();
    });
    let mut db = connect(&server);
    add_p1(&mut db).unwrap();
    drop(db);
    server.join();
}

#[test]
fn add_port_gives_up_when_the_database_keeps_changing() {
    let server = FakeServer::start(|peer| {
        for _ in 0..3 {
            answer_lookup(peer, None, Some("b-uuid"));
            answer_write(peer, Some(0));
        }
        peer.expect_closed();
    });
    let mut db = connect(&server);
    let e = add_p1(&mut db).unwrap_err();
    assert!(
        matches!(e, OvsdbError::Conflict { attempts: 3, .. }),
        "{e:?}"
    );
    drop(db);
    server.join();
}

#[test]
fn add_port_to_a_missing_bridge_writes_nothing_and_names_it() {
    let server = FakeServer::start(|peer| {
        answer_lookup(peer, Some("p-uuid"), None);
        peer.expect_closed();
    });
    let mut db = connect(&server);
    let e = db
        .add_port("nobr", "p1", &PortVlan::default(), &[], None)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ovsdb: add-port nobr p1: no bridge named \"nobr\""
    );
    drop(db);
    server.join();
}

#[test]
fn del_port_of_a_missing_port_only_reads() {
    let server = FakeServer::start(|peer| {
        answer_lookup(peer, None, None);
        answer_lookup(peer, Some("p-uuid"), None);
        let params = answer_write(peer, None);
        assert_eq!(
            params[3],
            json!({"op": "delete", "table": "Port",
            "where": [["_uuid", "==", ["uuid", "p-uuid"]]]})
        );
        peer.expect_closed();
    });
    let mut db = connect(&server);
    assert!(!db.del_port("p1", None).unwrap());
    assert!(db.del_port("p1", None).unwrap());
    drop(db);
    server.join();
}

#[test]
fn ports_are_filtered_by_external_id() {
    let server =
        FakeServer::start(|peer| {
            for _ in 0..3 {
                let (id, _) = peer.recv_transact();
                let port = |name: &str, ids: Value| {
                    json!({"_uuid": ["uuid", name], "name": name, "tag": ["set", []],
                       "trunks": ["set", []], "vlan_mode": ["set", []], "external_ids": ids})
                };
                peer.reply(&id, json!([
                {"rows": [
                    port("a", json!(["map", [["lxcri", "c1"]]])),
                    port("b", json!(["map", [["lxcri", "c2"], ["x", "y"]]])),
                    port("c", json!(["map", []])),
                ]},
                {"rows": [{"name": "br0", "ports": ["set", [["uuid", "a"], ["uuid", "b"]]]}]},
            ]));
            }
            peer.expect_closed();
        });
    let mut db = connect(&server);
    let names =
        |ports: Vec<super::super::OvsPort>| ports.into_iter().map(|p| p.name).collect::<Vec<_>>();
    assert_eq!(
        names(db.ports_with_external_id("lxcri", None).unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        names(db.ports_with_external_id("lxcri", Some("c2")).unwrap()),
        ["b"]
    );
    assert!(db.ports_with_external_id("none", None).unwrap().is_empty());
    drop(db);
    server.join();
}

#[test]
fn tcp_targets_work_alike() {
    let server = FakeServer::start_tcp(|peer| {
        let (id, _) = peer.recv_transact();
        peer.reply(&id, json!([{"rows": []}]));
        peer.expect_closed();
    });
    let mut db = connect(&server);
    assert_eq!(db.bridge("br0").unwrap(), None);
    drop(db);
    server.join();
}

#[test]
fn connecting_to_a_missing_socket_names_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = format!("unix:{}/db.sock", dir.path().display());
    let e = Ovsdb::connect(&target.parse().unwrap()).err().unwrap();
    assert!(matches!(e, OvsdbError::Connect { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("ovsdb: cannot connect to {target}: ")),
        "{e}"
    );
}

#[test]
fn add_port_returns_once_ovs_vswitchd_applied_it() {
    let server = FakeServer::start(|peer| {
        answer_lookup(peer, None, Some("b-uuid"));
        let params = answer_write(peer, None);
        let ops = params.as_array().unwrap();
        let bump = ops.iter().find(|op| op["table"] == "Open_vSwitch").unwrap();
        assert_eq!(bump["mutations"], json!([["next_cfg", "+=", 1]]));
        // Not yet, then done.
        answer_applied(peer, NEXT_CFG - 1, json!(["set", []]), json!(["set", []]));
        answer_applied(peer, NEXT_CFG, json!(3), json!(["set", []]));
        peer.expect_closed();
    });
    let mut db = connect(&server);
    add_p1(&mut db).unwrap();
    drop(db);
    server.join();
}

#[test]
fn a_port_ovs_vswitchd_could_not_add_fails_and_is_taken_out() {
    let server = FakeServer::start(|peer| {
        answer_lookup(peer, None, Some("b-uuid"));
        answer_write(peer, None);
        answer_applied(
            peer,
            NEXT_CFG,
            json!(-1),
            json!("could not open network device p1 (No such device)"),
        );
        // The row goes again.
        answer_lookup(peer, Some("p-uuid"), None);
        let params = answer_write(peer, None);
        assert!(params.to_string().contains("del-port p1"), "{params}");
        peer.expect_closed();
    });
    let mut db = connect(&server);
    let e = add_p1(&mut db).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ovsdb: add-port br0 p1: ovs-vswitchd: could not open network device p1 (No such device)"
    );
    drop(db);
    server.join();
}

#[test]
fn add_port_gives_up_on_an_ovs_vswitchd_that_never_applies() {
    let server = FakeServer::start(|peer| {
        answer_lookup(peer, None, Some("b-uuid"));
        answer_write(peer, None);
        loop {
            let (id, params) = peer.recv_transact();
            if params[1]["table"] == "Port" {
                // The lookup before the port is taken out again.
                peer.reply(&id, json!([{"rows": []}]));
                break;
            }
            peer.reply(
                &id,
                json!([{"rows": [{"cur_cfg": NEXT_CFG - 1}]}, {"rows": []}]),
            );
        }
        peer.expect_closed();
    });
    let mut db = connect(&server).with_apply_wait(Some(Duration::from_millis(50)));
    let e = add_p1(&mut db).unwrap_err().to_string();
    assert!(
        e.contains("did not apply it within") && e.contains("is ovs-vswitchd running?"),
        "{e}"
    );
    drop(db);
    server.join();
}
