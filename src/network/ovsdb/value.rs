//! The OVSDB encodings of values in JSON (RFC 7047 section 5.1): atoms
//! (strings, integers, `["uuid", U]`, `["named-uuid", N]`), sets
//! (`["set", [..]]`, or the bare atom for a set of exactly one), maps
//! (`["map", [[k, v], ..]]`). Decoders answer a description of what was
//! wrong, which the caller wraps with its context.

use std::collections::BTreeMap;

use serde_json::{json, Value};

pub(super) fn uuid(u: &str) -> Value {
    json!(["uuid", u])
}

/// A row inserted earlier in the same transaction, by its `uuid-name`.
pub(super) fn named_uuid(name: &str) -> Value {
    json!(["named-uuid", name])
}

/// Always the `["set", ..]` form: a bare array would be read as an atom.
pub(super) fn set(atoms: impl IntoIterator<Item = Value>) -> Value {
    json!(["set", atoms.into_iter().collect::<Vec<_>>()])
}

pub(super) fn string_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let pairs: Vec<Value> = pairs.into_iter().map(|(k, v)| json!([k, v])).collect();
    json!(["map", pairs])
}

/// The atoms of a set column: `["set", [..]]`, or one bare atom.
pub(super) fn set_atoms(v: &Value) -> Result<Vec<&Value>, String> {
    match tagged(v, "set") {
        Some(Value::Array(atoms)) => Ok(atoms.iter().collect()),
        Some(other) => Err(format!("a set whose members are not an array: {other}")),
        None => Ok(vec![v]),
    }
}

/// The string of a `["uuid", U]` atom.
pub(super) fn as_uuid(v: &Value) -> Result<&str, String> {
    match tagged(v, "uuid") {
        Some(Value::String(u)) => Ok(u),
        _ => Err(format!("not a uuid: {v}")),
    }
}

pub(super) fn as_str(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| format!("not a string: {v}"))
}

/// A VLAN id (the schema allows 0..=4095).
pub(super) fn as_vlan(v: &Value) -> Result<u16, String> {
    v.as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n <= 4095)
        .ok_or_else(|| format!("not a VLAN id: {v}"))
}

/// A set of at most one atom (an optional column) decoded by `atom`.
pub(super) fn optional<'a, T>(
    v: &'a Value,
    atom: impl Fn(&'a Value) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match set_atoms(v)?.as_slice() {
        [] => Ok(None),
        [one] => atom(one).map(Some),
        more => Err(format!("{} values where at most one fits: {v}", more.len())),
    }
}

/// A string-to-string map: `["map", [[k, v], ..]]`.
pub(super) fn as_string_map(v: &Value) -> Result<BTreeMap<String, String>, String> {
    let Some(Value::Array(pairs)) = tagged(v, "map") else {
        return Err(format!("not a map: {v}"));
    };
    pairs
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(k), Value::String(v)]) => Ok((k.clone(), v.clone())),
            _ => Err(format!("not a string pair in a map: {pair}")),
        })
        .collect()
}

/// The second element of `[tag, x]`.
fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v.as_array().map(Vec::as_slice) {
        Some([Value::String(t), inner]) if t == tag => Some(inner),
        _ => None,
    }
}
