//! Reading transact results: outcomes, selected rows in each encoding.

use std::collections::BTreeMap;

use serde_json::json;

use super::super::ops::{self, NewPort, Outcome};
use super::super::{OvsBridge, OvsPort, PortVlan};

fn add_port_txn() -> ops::Txn {
    let vlan = PortVlan::default();
    let new = NewPort {
        bridge: "br0",
        name: "p1",
        vlan: &vlan,
        external_ids: &[],
        mtu_request: None,
    };
    ops::add_port(&new, "b", None)
}

#[test]
fn outcome_of_a_committed_transaction_is_its_results() {
    let txn = ops::del_port("p1", "u", None);
    let results = vec![
        json!({}),
        json!({"count": 1}),
        json!({"count": 1}),
        json!({}),
    ];
    assert_eq!(
        txn.outcome(json!(results.clone())),
        Ok(Outcome::Done(results))
    );
}

#[test]
fn a_failed_precondition_means_changed() {
    let txn = add_port_txn();
    // The second wait (the port) failed; later ops are null.
    let result = json!([{}, {"error": "timed out", "details": "\"where\" clause test failed"},
                        null, null, null, null]);
    assert_eq!(txn.outcome(result), Ok(Outcome::Changed));
}

#[test]
fn an_operation_error_carries_the_servers_words() {
    let txn = add_port_txn();
    let result = json!([{}, {}, {"error": "constraint violation", "details": "tag 5000 out of range"},
                        null, null, null]);
    assert_eq!(
        txn.outcome(result),
        Ok(Outcome::Failed {
            error: "constraint violation".into(),
            details: "tag 5000 out of range".into(),
        })
    );
}

#[test]
fn a_commit_error_is_the_extra_result() {
    let txn = ops::del_port("p1", "u", None);
    let result = json!([{}, {"count": 1}, {"count": 1}, {},
        {"error": "referential integrity violation", "details": "cannot delete Port row"}]);
    assert_eq!(
        txn.outcome(result),
        Ok(Outcome::Failed {
            error: "referential integrity violation".into(),
            details: "cannot delete Port row".into(),
        })
    );
    // Without details.
    let result = json!([{"error": "timed out"}]);
    assert_eq!(
        ops::select_bridge("x").outcome(result),
        Ok(Outcome::Failed {
            error: "timed out".into(),
            details: String::new(),
        })
    );
}

#[test]
fn malformed_results_are_errors() {
    let txn = ops::del_port("p1", "u", None);
    assert!(txn.outcome(json!({"rows": []})).is_err());
    assert!(txn
        .outcome(json!([{}]))
        .unwrap_err()
        .contains("1 results for 4"));
    assert!(txn.outcome(json!([{"error": 5}])).is_err());
}

#[test]
fn found_uuids_read_the_select_rows() {
    let results = vec![
        json!({"rows": [{"_uuid": ["uuid", "p-uuid"]}]}),
        json!({"rows": []}),
    ];
    assert_eq!(ops::found_uuid(&results, 0), Ok(Some("p-uuid".into())));
    assert_eq!(ops::found_uuid(&results, 1), Ok(None));
    assert!(ops::found_uuid(&results, 2).is_err());
    assert!(ops::found_uuid(&[json!({"rows": [{"_uuid": "p"}]})], 0).is_err());
}

#[test]
fn bridge_rows() {
    let found = vec![json!({"rows": [{"name": "br0", "datapath_type": "netdev"}]})];
    assert_eq!(
        ops::parse_bridge(&found),
        Ok(Some(OvsBridge {
            name: "br0".into(),
            datapath_type: "netdev".into(),
        }))
    );
    assert_eq!(ops::parse_bridge(&[json!({"rows": []})]), Ok(None));
    assert!(ops::parse_bridge(&[json!({"rows": [{"name": "br0"}]})]).is_err());
}

#[test]
fn port_rows_in_every_encoding() {
    let results = vec![
        json!({"rows": [
            // Empty sets: no tag, no trunks, no mode; an empty map.
            {"_uuid": ["uuid", "u1"], "name": "plain", "tag": ["set", []],
             "trunks": ["set", []], "vlan_mode": ["set", []], "external_ids": ["map", []]},
            // One-element sets as bare atoms.
            {"_uuid": ["uuid", "u2"], "name": "access", "tag": 10, "trunks": 20,
             "vlan_mode": "access", "external_ids": ["map", [["lxcri-id", "c1"]]]},
            {"_uuid": ["uuid", "u3"], "name": "native", "tag": ["set", [5]],
             "trunks": ["set", [10, 20]], "vlan_mode": "native-untagged",
             "external_ids": ["map", [["a", "1"], ["b", "2"]]]},
        ]}),
        json!({"rows": [
            // One port: a bare uuid; two: a set.
            {"name": "br0", "ports": ["uuid", "u1"]},
            {"name": "br1", "ports": ["set", [["uuid", "u2"], ["uuid", "u9"]]]},
        ]}),
    ];
    let ports = ops::parse_ports(&results).unwrap();
    assert_eq!(
        ports,
        vec![
            OvsPort {
                name: "plain".into(),
                bridge: Some("br0".into()),
                tag: None,
                trunks: vec![],
                vlan_mode: None,
                external_ids: BTreeMap::new(),
            },
            OvsPort {
                name: "access".into(),
                bridge: Some("br1".into()),
                tag: Some(10),
                trunks: vec![20],
                vlan_mode: Some("access".into()),
                external_ids: [("lxcri-id".to_string(), "c1".to_string())].into(),
            },
            OvsPort {
                name: "native".into(),
                bridge: None,
                tag: Some(5),
                trunks: vec![10, 20],
                vlan_mode: Some("native-untagged".into()),
                external_ids: [("a", "1"), ("b", "2")]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .into(),
            },
        ]
    );
}

#[test]
fn bad_port_columns_name_port_and_column() {
    let port = |tag: serde_json::Value| {
        vec![
            json!({"rows": [{"_uuid": ["uuid", "u1"], "name": "p1", "tag": tag, "trunks": ["set", []],
                             "vlan_mode": ["set", []], "external_ids": ["map", []]}]}),
            json!({"rows": []}),
        ]
    };
    let e = ops::parse_ports(&port(json!(["set", [1, 2]]))).unwrap_err();
    assert!(
        e.contains("\"p1\" column tag") && e.contains("at most one"),
        "{e}"
    );
    let e = ops::parse_ports(&port(json!(5000))).unwrap_err();
    assert!(e.contains("not a VLAN id: 5000"), "{e}");
    let e = ops::parse_ports(&port(json!("x"))).unwrap_err();
    assert!(e.contains("column tag"), "{e}");
    assert!(ops::parse_ports(&port(json!(["set", []]))).is_ok());
}
