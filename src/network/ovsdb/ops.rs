//! The transactions lxcri sends to the Open_vSwitch database, built as
//! JSON by pure functions, and the reading of their results.
//!
//! A write that depends on what a read found (the uuid of a port to
//! replace, of the bridge to add to) starts with `wait` operations that
//! check those rows are still the same, with timeout 0: if another client
//! changed them in between, the whole transaction fails without effect
//! and the caller reads again ([`Outcome::Changed`]), as ovs-vsctl's
//! `verify` does.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::value::{self, as_str, as_uuid, as_vlan, optional, set_atoms};
use super::{OvsBridge, OvsPort, PortVlan};

const DATABASE: &str = "Open_vSwitch";
/// The `uuid-name`s of the rows `add_port` inserts.
const NEW_INTERFACE: &str = "new_interface";
const NEW_PORT: &str = "new_port";

/// The operations of one `transact` request.
#[derive(Debug)]
pub(super) struct Txn {
    ops: Vec<Value>,
    /// How many of the first ops are `wait` preconditions.
    preconditions: usize,
    /// Which op reads back the `next_cfg` it asked ovs-vswitchd to reach.
    next_cfg_at: Option<usize>,
}

/// How a transaction ended, when the server answered it.
#[derive(Debug, PartialEq)]
pub(super) enum Outcome {
    /// Committed: one result per operation.
    Done(Vec<Value>),
    /// A precondition no longer held: nothing was changed.
    Changed,
    /// An operation or the commit failed: the server's `error` and
    /// `details`.
    Failed { error: String, details: String },
}

impl Txn {
    fn read(ops: Vec<Value>) -> Self {
        Txn {
            ops,
            preconditions: 0,
            next_cfg_at: None,
        }
    }

    /// The `next_cfg` a committed transaction asked ovs-vswitchd to reach,
    /// if it asked.
    pub(super) fn next_cfg(&self, results: &[Value]) -> Result<Option<i64>, String> {
        let Some(at) = self.next_cfg_at else {
            return Ok(None);
        };
        match rows(results, at)? {
            [row] => as_i64(column(row, "next_cfg")?).map(Some),
            other => Err(format!("{} Open_vSwitch rows", other.len())),
        }
    }

    /// The `params` of the `transact` request.
    pub(super) fn params(&self) -> Value {
        let mut params = vec![json!(DATABASE)];
        params.extend(self.ops.iter().cloned());
        Value::Array(params)
    }

    /// Reads the `result` of the `transact` request: an array with one
    /// entry per operation, the first failed one carrying `error`, and one
    /// more entry when the commit itself failed (e.g. a constraint).
    pub(super) fn outcome(&self, result: Value) -> Result<Outcome, String> {
        let Value::Array(results) = result else {
            return Err(format!("a transact result that is not an array: {result}"));
        };
        let failed = results
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.get("error").map(|e| (i, e, r.get("details"))));
        if let Some((i, error, details)) = failed {
            let error = as_str(error)?.to_string();
            if i < self.preconditions && error == "timed out" {
                return Ok(Outcome::Changed);
            }
            let details = details.and_then(Value::as_str).unwrap_or("").to_string();
            return Ok(Outcome::Failed { error, details });
        }
        if results.len() < self.ops.len() {
            return Err(format!(
                "{} results for {} operations",
                results.len(),
                self.ops.len()
            ));
        }
        Ok(Outcome::Done(results))
    }
}

/// The uuids of the Bridge and the Port with these names (the read before
/// `add_port`/`del_port`).
pub(super) fn find_uuids(bridge: Option<&str>, port: &str) -> Txn {
    let select = |table, name| json!({"op": "select", "table": table, "where": [["name", "==", name]], "columns": ["_uuid"]});
    let mut ops = vec![select("Port", port)];
    ops.extend(bridge.map(|b| select("Bridge", b)));
    Txn::read(ops)
}

/// The uuid of Port `port` only if its external_ids has `key`=`value`.
pub(super) fn find_marked_port(port: &str, mark: (&str, &str)) -> Txn {
    Txn::read(vec![json!({
        "op": "select", "table": "Port",
        "where": marked(port, Some(mark)),
        "columns": ["_uuid"],
    })])
}

/// The conditions on a Port named `name` (with `mark` in its external_ids).
fn marked(name: &str, mark: Option<(&str, &str)>) -> Value {
    let mut conditions = vec![json!(["name", "==", name])];
    conditions.extend(
        mark.map(|(k, v)| json!(["external_ids", "includes", value::string_map([(k, v)])])),
    );
    Value::Array(conditions)
}

/// The uuid of the row `find_uuids` op `index` found, if any.
pub(super) fn found_uuid(results: &[Value], index: usize) -> Result<Option<String>, String> {
    match rows(results, index)? {
        [] => Ok(None),
        [row] => Ok(Some(as_uuid(column(row, "_uuid")?)?.to_string())),
        more => Err(format!("{} rows with one name", more.len())),
    }
}

/// The `wait` that holds while the rows named `name` in `table` are
/// exactly the one with `uuid`, or none.
fn still(table: &str, name: &str, uuid: Option<&str>) -> Value {
    let rows: Vec<Value> = uuid
        .map(|u| json!({"_uuid": value::uuid(u)}))
        .into_iter()
        .collect();
    json!({
        "op": "wait", "table": table, "timeout": 0,
        "where": [["name", "==", name]], "columns": ["_uuid"],
        "until": "==", "rows": rows,
    })
}

/// Takes Port `uuid` out of whichever bridge holds it and deletes it;
/// its Interfaces, referenced by nothing else, are garbage-collected
/// (Interface is not a root table).
fn remove_port(uuid: &str) -> [Value; 2] {
    [
        json!({
            "op": "mutate", "table": "Bridge",
            "where": [["ports", "includes", value::uuid(uuid)]],
            "mutations": [["ports", "delete", value::uuid(uuid)]],
        }),
        json!({"op": "delete", "table": "Port", "where": [["_uuid", "==", value::uuid(uuid)]]}),
    ]
}

fn comment(text: String) -> Value {
    // Kept in the database log next to the change, as ovs-vsctl does.
    json!({"op": "comment", "comment": format!("lxcri: {text}")})
}

/// What `add_port` is asked for.
pub(super) struct NewPort<'a> {
    pub(super) bridge: &'a str,
    pub(super) name: &'a str,
    pub(super) vlan: &'a PortVlan,
    pub(super) external_ids: &'a [(&'a str, &'a str)],
    pub(super) mtu_request: Option<u32>,
}

/// PVE's modes (`$ovs_bridge_add_port`): a tag alone is an access port,
/// trunks alone a trunk, both a trunk whose untagged frames are the tag's
/// VLAN (`native-untagged`). PVE leaves the first two to OVS's default,
/// which picks the same; writing them makes the row say what it is.
pub(super) fn vlan_mode(vlan: &PortVlan) -> Option<&'static str> {
    match (vlan.tag, vlan.trunks.is_empty()) {
        (None, true) => None,
        (Some(_), true) => Some("access"),
        (None, false) => Some("trunk"),
        (Some(_), false) => Some("native-untagged"),
    }
}

/// Replaces Port `new.name` (uuid `old`, if there is one) by a new Port
/// with one Interface of the same name in Bridge `bridge_uuid`: `ovs-vsctl
/// del-port P -- add-port B P tag=.. trunks=.. vlan_mode=.. -- set
/// Interface P mtu_request=..`, in one transaction.
pub(super) fn add_port(new: &NewPort, bridge_uuid: &str, old: Option<&str>) -> Txn {
    let mut ops = vec![
        still("Bridge", new.bridge, Some(bridge_uuid)),
        still("Port", new.name, old),
    ];
    let preconditions = ops.len();
    if let Some(old) = old {
        ops.extend(remove_port(old));
    }
    let mut interface = Map::new();
    interface.insert("name".into(), json!(new.name));
    if let Some(mtu) = new.mtu_request {
        interface.insert("mtu_request".into(), json!(mtu));
    }
    let mut port = Map::new();
    port.insert("name".into(), json!(new.name));
    port.insert("interfaces".into(), value::named_uuid(NEW_INTERFACE));
    if let Some(tag) = new.vlan.tag {
        port.insert("tag".into(), json!(tag));
    }
    if !new.vlan.trunks.is_empty() {
        let mut trunks = new.vlan.trunks.clone();
        // A set has no duplicates; the server refuses them.
        trunks.sort_unstable();
        trunks.dedup();
        port.insert(
            "trunks".into(),
            value::set(trunks.into_iter().map(Value::from)),
        );
    }
    if let Some(mode) = vlan_mode(new.vlan) {
        port.insert("vlan_mode".into(), json!(mode));
    }
    if !new.external_ids.is_empty() {
        port.insert(
            "external_ids".into(),
            value::string_map(new.external_ids.iter().copied()),
        );
    }
    ops.extend([
        json!({"op": "insert", "table": "Interface", "uuid-name": NEW_INTERFACE, "row": interface}),
        json!({"op": "insert", "table": "Port", "uuid-name": NEW_PORT, "row": port}),
        json!({
            "op": "mutate", "table": "Bridge",
            "where": [["_uuid", "==", value::uuid(bridge_uuid)]],
            "mutations": [["ports", "insert", value::named_uuid(NEW_PORT)]],
        }),
    ]);
    // As ovs-vsctl without --no-wait: ovs-vswitchd is asked to apply the
    // change (`next_cfg`), so the caller can wait until it has and see
    // whether the interface came up.
    ops.push(json!({
        "op": "mutate", "table": "Open_vSwitch", "where": [],
        "mutations": [["next_cfg", "+=", 1]],
    }));
    let next_cfg_at = Some(ops.len());
    ops.push(
        json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]}),
    );
    ops.push(comment(format!("add-port {} {}", new.bridge, new.name)));
    Txn {
        ops,
        preconditions,
        next_cfg_at,
    }
}

/// How far ovs-vswitchd got (`cur_cfg`) and interface `name`'s state.
pub(super) fn select_applied(name: &str) -> Txn {
    Txn::read(vec![
        json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["cur_cfg"]}),
        json!({
            "op": "select", "table": "Interface",
            "where": [["name", "==", name]], "columns": ["ofport", "error"],
        }),
    ])
}

/// What ovs-vswitchd made of an interface.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct InterfaceState {
    /// -1 when it could not add it.
    pub(super) ofport: Option<i64>,
    pub(super) error: Option<String>,
}

/// `cur_cfg`, and the interface when it still exists.
pub(super) fn parse_applied(results: &[Value]) -> Result<(i64, Option<InterfaceState>), String> {
    let cur_cfg = match rows(results, 0)? {
        [row] => as_i64(column(row, "cur_cfg")?)?,
        other => return Err(format!("{} Open_vSwitch rows", other.len())),
    };
    let interface = match rows(results, 1)? {
        [] => None,
        [row] => Some(InterfaceState {
            ofport: optional(column(row, "ofport")?, as_i64)?,
            error: optional(column(row, "error")?, as_str)?.map(str::to_string),
        }),
        more => return Err(format!("{} interfaces with one name", more.len())),
    };
    Ok((cur_cfg, interface))
}

fn as_i64(v: &Value) -> Result<i64, String> {
    v.as_i64().ok_or_else(|| format!("not an integer: {v}"))
}

/// Removes Port `name` (found as `uuid`) from its bridge; with `mark`, only
/// while the port still has it (checked in the same transaction).
pub(super) fn del_port(name: &str, uuid: &str, mark: Option<(&str, &str)>) -> Txn {
    let mut wait = still("Port", name, Some(uuid));
    wait["where"] = marked(name, mark);
    let mut ops = vec![wait];
    ops.extend(remove_port(uuid));
    ops.push(comment(format!("del-port {name}")));
    Txn {
        ops,
        preconditions: 1,
        next_cfg_at: None,
    }
}

pub(super) fn select_bridge(name: &str) -> Txn {
    Txn::read(vec![json!({
        "op": "select", "table": "Bridge",
        "where": [["name", "==", name]], "columns": ["name", "datapath_type"],
    })])
}

pub(super) fn parse_bridge(results: &[Value]) -> Result<Option<OvsBridge>, String> {
    match rows(results, 0)? {
        [] => Ok(None),
        [row] => Ok(Some(OvsBridge {
            name: as_str(column(row, "name")?)?.to_string(),
            datapath_type: as_str(column(row, "datapath_type")?)?.to_string(),
        })),
        more => Err(format!("{} bridges with one name", more.len())),
    }
}

/// Every Port with its VLAN settings and external_ids, and every Bridge's
/// ports (to name the bridge of each port), read at one moment.
pub(super) fn select_ports() -> Txn {
    Txn::read(vec![
        json!({
            "op": "select", "table": "Port", "where": [],
            "columns": ["_uuid", "name", "tag", "trunks", "vlan_mode", "external_ids"],
        }),
        json!({"op": "select", "table": "Bridge", "where": [], "columns": ["name", "ports"]}),
    ])
}

pub(super) fn parse_ports(results: &[Value]) -> Result<Vec<OvsPort>, String> {
    let mut bridge_of = BTreeMap::new();
    for bridge in rows(results, 1)? {
        let name = as_str(column(bridge, "name")?)?;
        for port in set_atoms(column(bridge, "ports")?)? {
            bridge_of.insert(as_uuid(port)?.to_string(), name.to_string());
        }
    }
    rows(results, 0)?
        .iter()
        .map(|row| {
            let uuid = as_uuid(column(row, "_uuid")?)?;
            let name = as_str(column(row, "name")?)?;
            let in_column = |col: &str, e: String| format!("Port {name:?} column {col}: {e}");
            Ok(OvsPort {
                name: name.to_string(),
                bridge: bridge_of.get(uuid).cloned(),
                tag: optional(column(row, "tag")?, as_vlan).map_err(|e| in_column("tag", e))?,
                trunks: set_atoms(column(row, "trunks")?)?
                    .into_iter()
                    .map(as_vlan)
                    .collect::<Result<_, _>>()
                    .map_err(|e| in_column("trunks", e))?,
                vlan_mode: optional(column(row, "vlan_mode")?, as_str)
                    .map_err(|e| in_column("vlan_mode", e))?
                    .map(str::to_string),
                external_ids: value::as_string_map(column(row, "external_ids")?)
                    .map_err(|e| in_column("external_ids", e))?,
            })
        })
        .collect()
}

/// The rows a `select` at `index` returned.
fn rows(results: &[Value], index: usize) -> Result<&[Value], String> {
    results
        .get(index)
        .and_then(|r| r.get("rows"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| format!("no rows in select result {index}"))
}

fn column<'a>(row: &'a Value, name: &str) -> Result<&'a Value, String> {
    row.get(name)
        .ok_or_else(|| format!("a row without column {name}: {row}"))
}
