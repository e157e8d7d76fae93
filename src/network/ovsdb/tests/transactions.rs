//! The exact operations of each transaction.

use serde_json::{json, Value};

use super::super::ops::{self, NewPort};
use super::super::PortVlan;

const BRIDGE_UUID: &str = "11111111-1111-1111-1111-111111111111";
const OLD_PORT_UUID: &str = "22222222-2222-2222-2222-222222222222";

fn wait(table: &str, name: &str, uuid: Option<&str>) -> Value {
    let rows: Vec<Value> = uuid
        .map(|u| json!({"_uuid": ["uuid", u]}))
        .into_iter()
        .collect();
    json!({
        "op": "wait", "table": table, "timeout": 0,
        "where": [["name", "==", name]], "columns": ["_uuid"],
        "until": "==", "rows": rows,
    })
}

/// The operations after the preconditions (and any removal): the two
/// inserts, the bridge mutation, the comment.
fn plug(port_row: Value, interface_row: Value) -> Vec<Value> {
    vec![
        json!({"op": "insert", "table": "Interface", "uuid-name": "new_interface", "row": interface_row}),
        json!({"op": "insert", "table": "Port", "uuid-name": "new_port", "row": port_row}),
        json!({
            "op": "mutate", "table": "Bridge",
            "where": [["_uuid", "==", ["uuid", BRIDGE_UUID]]],
            "mutations": [["ports", "insert", ["named-uuid", "new_port"]]],
        }),
        // Asks ovs-vswitchd to apply it, and reads what to wait for.
        json!({
            "op": "mutate", "table": "Open_vSwitch", "where": [],
            "mutations": [["next_cfg", "+=", 1]],
        }),
        json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]}),
        json!({"op": "comment", "comment": "lxcri: add-port br0 veth100i0"}),
    ]
}

fn add_port_params(vlan: &PortVlan, ids: &[(&str, &str)], mtu: Option<u32>) -> Value {
    let new = NewPort {
        bridge: "br0",
        name: "veth100i0",
        vlan,
        external_ids: ids,
        mtu_request: mtu,
    };
    ops::add_port(&new, BRIDGE_UUID, None).params()
}

fn expected(rest: Vec<Value>) -> Value {
    let mut all = vec![
        json!("Open_vSwitch"),
        wait("Bridge", "br0", Some(BRIDGE_UUID)),
        wait("Port", "veth100i0", None),
    ];
    all.extend(rest);
    Value::Array(all)
}

#[test]
fn add_port_without_vlan_sets_no_vlan_column() {
    let params = add_port_params(&PortVlan::default(), &[], None);
    let port = json!({"name": "veth100i0", "interfaces": ["named-uuid", "new_interface"]});
    assert_eq!(params, expected(plug(port, json!({"name": "veth100i0"}))));
}

#[test]
fn add_port_with_a_tag_is_an_access_port() {
    let vlan = PortVlan {
        tag: Some(10),
        trunks: vec![],
    };
    let params = add_port_params(&vlan, &[("lxcri-id", "default/c1")], Some(1400));
    let port = json!({
        "name": "veth100i0", "interfaces": ["named-uuid", "new_interface"],
        "tag": 10, "vlan_mode": "access",
        "external_ids": ["map", [["lxcri-id", "default/c1"]]],
    });
    let interface = json!({"name": "veth100i0", "mtu_request": 1400});
    assert_eq!(params, expected(plug(port, interface)));
}

#[test]
fn add_port_with_trunks_is_a_trunk_port() {
    let vlan = PortVlan {
        tag: None,
        trunks: vec![30, 20, 30],
    };
    let params = add_port_params(&vlan, &[], None);
    // Sorted, without the duplicate: a set.
    let port = json!({
        "name": "veth100i0", "interfaces": ["named-uuid", "new_interface"],
        "trunks": ["set", [20, 30]], "vlan_mode": "trunk",
    });
    assert_eq!(params, expected(plug(port, json!({"name": "veth100i0"}))));
}

#[test]
fn add_port_with_a_single_trunk_still_writes_a_set() {
    let vlan = PortVlan {
        tag: None,
        trunks: vec![7],
    };
    let params = add_port_params(&vlan, &[], None);
    assert_eq!(params[4]["row"]["trunks"], json!(["set", [7]]));
}

#[test]
fn add_port_with_tag_and_trunks_is_native_untagged() {
    let vlan = PortVlan {
        tag: Some(5),
        trunks: vec![10, 20],
    };
    let params = add_port_params(&vlan, &[("a", "1"), ("b", "2")], None);
    let port = json!({
        "name": "veth100i0", "interfaces": ["named-uuid", "new_interface"],
        "tag": 5, "trunks": ["set", [10, 20]], "vlan_mode": "native-untagged",
        "external_ids": ["map", [["a", "1"], ["b", "2"]]],
    });
    assert_eq!(params, expected(plug(port, json!({"name": "veth100i0"}))));
}

#[test]
fn add_port_over_an_existing_port_removes_it_in_the_same_transaction() {
    let vlan = PortVlan::default();
    let new = NewPort {
        bridge: "br0",
        name: "veth100i0",
        vlan: &vlan,
        external_ids: &[],
        mtu_request: None,
    };
    let params = ops::add_port(&new, BRIDGE_UUID, Some(OLD_PORT_UUID)).params();
    let port = json!({"name": "veth100i0", "interfaces": ["named-uuid", "new_interface"]});
    let mut want = vec![
        json!("Open_vSwitch"),
        wait("Bridge", "br0", Some(BRIDGE_UUID)),
        wait("Port", "veth100i0", Some(OLD_PORT_UUID)),
        json!({
            "op": "mutate", "table": "Bridge",
            "where": [["ports", "includes", ["uuid", OLD_PORT_UUID]]],
            "mutations": [["ports", "delete", ["uuid", OLD_PORT_UUID]]],
        }),
        json!({"op": "delete", "table": "Port", "where": [["_uuid", "==", ["uuid", OLD_PORT_UUID]]]}),
    ];
    want.extend(plug(port, json!({"name": "veth100i0"})));
    assert_eq!(params, Value::Array(want));
}

#[test]
fn a_marked_port_is_found_only_with_its_mark() {
    let params = ops::find_marked_port("lx1i0", ("lxcri-owner", "ns/a")).params();
    assert_eq!(
        params,
        json!([
            "Open_vSwitch",
            {
                "op": "select", "table": "Port",
                "where": [
                    ["name", "==", "lx1i0"],
                    ["external_ids", "includes", ["map", [["lxcri-owner", "ns/a"]]]],
                ],
                "columns": ["_uuid"],
            }
        ])
    );
}

#[test]
fn del_port_checks_the_port_then_removes_it_from_any_bridge() {
    let params = ops::del_port("veth100i0", OLD_PORT_UUID, None).params();
    assert_eq!(
        params,
        json!([
            "Open_vSwitch",
            wait("Port", "veth100i0", Some(OLD_PORT_UUID)),
            {
                "op": "mutate", "table": "Bridge",
                "where": [["ports", "includes", ["uuid", OLD_PORT_UUID]]],
                "mutations": [["ports", "delete", ["uuid", OLD_PORT_UUID]]],
            },
            {"op": "delete", "table": "Port", "where": [["_uuid", "==", ["uuid", OLD_PORT_UUID]]]},
            {"op": "comment", "comment": "lxcri: del-port veth100i0"},
        ])
    );
}

#[test]
fn a_marked_del_port_holds_only_while_the_port_has_the_mark() {
    let params = ops::del_port("lx1i0", OLD_PORT_UUID, Some(("lxcri-owner", "ns/a"))).params();
    assert_eq!(
        params[1]["where"],
        json!([
            ["name", "==", "lx1i0"],
            [
                "external_ids",
                "includes",
                ["map", [["lxcri-owner", "ns/a"]]]
            ],
        ])
    );
    assert_eq!(params[1]["until"], "==");
}

#[test]
fn reads_select_by_name() {
    assert_eq!(
        ops::find_uuids(Some("br0"), "p1").params(),
        json!([
            "Open_vSwitch",
            {"op": "select", "table": "Port", "where": [["name", "==", "p1"]], "columns": ["_uuid"]},
            {"op": "select", "table": "Bridge", "where": [["name", "==", "br0"]], "columns": ["_uuid"]},
        ])
    );
    assert_eq!(
        ops::select_bridge("br0").params(),
        json!([
            "Open_vSwitch",
            {"op": "select", "table": "Bridge", "where": [["name", "==", "br0"]],
             "columns": ["name", "datapath_type"]},
        ])
    );
}

#[test]
fn vlan_modes_follow_pve() {
    let mode = |tag, trunks: &[u16]| {
        ops::vlan_mode(&PortVlan {
            tag,
            trunks: trunks.to_vec(),
        })
    };
    assert_eq!(mode(None, &[]), None);
    assert_eq!(mode(Some(4094), &[]), Some("access"));
    assert_eq!(mode(None, &[1, 2]), Some("trunk"));
    assert_eq!(mode(Some(1), &[2]), Some("native-untagged"));
}
