//! Property strings (`name=eth0,bridge=vmbr0,ip=dhcp`): PVE encodes the sub-schema of
//! `net[n]`, `rootfs`, `mp[n]`, `features`, `dev[n]`... as an object under `format`, with at
//! most one property marked `default_key` that may appear without its `key=`.

use super::validate::check_value;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Splits on commas outside double quotes; quotes let a value carry commas, as in PVE 7+.
fn split_parts(s: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => cur.push(chars.next().unwrap_or('\\')),
            ',' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted string".into());
    }
    parts.push(cur);
    Ok(parts.into_iter().filter(|p| !p.trim().is_empty()).collect())
}

/// Parses `s` into key -> value by the sub-schema `format`, without checking the values.
pub fn parse(format: &Map<String, Value>, s: &str) -> Result<BTreeMap<String, String>, String> {
    let default_key = format
        .iter()
        .find(|(_, p)| p.get("default_key").is_some_and(truthy))
        .map(|(k, _)| k.clone());
    let mut out = BTreeMap::new();
    for part in split_parts(s)? {
        // pve-common JSONSchema.pm parse_property_string: `^([^=]+)=(.+)$`, so an empty
        // key or value is no `key=value`; a part with no `=` is the default key's value.
        let (key, value) = match part.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => (k.to_string(), v.to_string()),
            Some(_) => return Err("missing key in comma-separated list property".into()),
            None => match &default_key {
                Some(dk) => (dk.clone(), part.clone()),
                None => {
                    return Err(
                        "value without key, but schema does not define a default key".into(),
                    )
                }
            },
        };
        if !format.contains_key(&key) {
            return Err(format!(
                "invalid key in comma-separated list property: {key}"
            ));
        }
        if out.insert(key.clone(), value).is_some() {
            return Err(format!(
                "duplicate key in comma-separated list property: {key}"
            ));
        }
    }
    Ok(out)
}

/// Parses and checks every value against its sub-property. The message is PVE's for the
/// parameter `path` (JSONSchema.pm `check_prop`, `parse_property_string`): `invalid format
/// - ` and the parser's error, or `format error` and one `PATH.KEY: message` line per
/// problem (PVE also ends each line with `\n`, and lists them in hash order).
pub fn check(
    format: &Map<String, Value>,
    s: &str,
    path: &str,
) -> Result<BTreeMap<String, String>, String> {
    let map = parse(format, s).map_err(|e| format!("invalid format - {e}"))?;
    let mut errors = Vec::new();
    for (key, prop) in format {
        let sub = format!("{path}.{key}");
        match map.get(key) {
            Some(v) => {
                let v = normalise_bool(prop, v);
                if let Err(e) = check_value(prop, &Value::String(v), &sub) {
                    errors.push(format!("{sub}: {e}"));
                }
            }
            None if !prop.get("optional").is_some_and(truthy) => {
                errors.push(format!("{sub}: property is missing and it is not optional"));
            }
            None => {}
        }
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(format!(
            "invalid format - format error\n{}",
            errors.join("\n")
        ))
    }
}

/// Inside property strings PVE runs `parse_boolean`, so `yes`/`on`/`true` are accepted
/// there even though top-level parameters only take 0/1.
fn normalise_bool(prop: &Value, v: &str) -> String {
    if prop.get("type").and_then(Value::as_str) != Some("boolean") {
        return v.to_string();
    }
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => "1".into(),
        "0" | "false" | "no" | "off" => "0".into(),
        _ => v.to_string(),
    }
}

/// Schema flags are written as 1/0 (or "1"), booleans in newer dumps.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => s != "0" && !s.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::test_schema;

    fn net_format() -> Map<String, Value> {
        let s = test_schema();
        s.config_properties().unwrap()["net[n]"]["format"]
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn net_property_string() {
        let f = net_format();
        let check = |s: &str| check(&f, s, "net0");
        let m = check("name=eth0,bridge=vmbr0,ip=dhcp,firewall=1,tag=5").unwrap();
        assert_eq!(m["bridge"], "vmbr0");
        assert_eq!(
            check("bridge=vmbr0").unwrap_err(),
            "invalid format - format error\nnet0.name: property is missing and it is not optional"
        );
        assert!(check("name=eth0,ip=10.1.1.1")
            .unwrap_err()
            .contains("\nnet0.ip: value does not look like a valid ipv4 network configuration"));
        assert_eq!(
            check("name=eth0,tag=5000").unwrap_err(),
            "invalid format - format error\nnet0.tag: value must have a maximum value of 4094"
        );
        assert_eq!(
            check("name=eth0,colour=red").unwrap_err(),
            "invalid format - invalid key in comma-separated list property: colour"
        );
        assert!(check("name=eth0,name=eth1")
            .unwrap_err()
            .contains("duplicate"));
        // PVE's `^([^=]+)=(.+)$`: an empty value is no key=value at all.
        assert_eq!(
            check("name=eth0,tag=").unwrap_err(),
            "invalid format - missing key in comma-separated list property"
        );
    }

    #[test]
    fn default_key_and_quotes() {
        let s = test_schema();
        let f = s.config_properties().unwrap()["mp[n]"]["format"]
            .as_object()
            .unwrap()
            .clone();
        let check = |s: &str| check(&f, s, "mp0");
        let m = check("/srv/data,mp=/data,ro=1").unwrap();
        assert_eq!(m["volume"], "/srv/data");
        let m = check("volume=\"/srv/a,b\",mp=/data").unwrap();
        assert_eq!(m["volume"], "/srv/a,b");
        assert!(check("/srv/data")
            .unwrap_err()
            .contains("mp0.mp: property is missing"));
        assert!(check("/srv/data,/other,mp=/x")
            .unwrap_err()
            .contains("duplicate"));
    }
}
