//! Parameter verification as PVE's JSONSchema does it: every parameter must be declared
//! (unless `additionalProperties` allows more), required ones present, and each value of the
//! declared type, range, length, pattern, enum and format.

use super::{formats, property_string};
use property_string::truthy;
use regex::Regex;
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// Parameter name -> PVE's message for it; non-empty means HTTP 400.
pub type ParamErrors = BTreeMap<String, String>;

/// Checked parameters, normalised: integers and booleans (0/1) as JSON numbers.
#[derive(Debug, Default, Clone)]
pub struct Params(pub BTreeMap<String, Value>);

impl Params {
    pub fn str(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(Value::as_str)
    }
    pub fn int(&self, k: &str) -> Option<i64> {
        self.0.get(k).and_then(Value::as_i64)
    }
    #[cfg(test)]
    pub fn num(&self, k: &str) -> Option<f64> {
        self.0.get(k).and_then(Value::as_f64)
    }
    pub fn flag(&self, k: &str) -> bool {
        self.int(k).unwrap_or(0) != 0
    }
}

/// How many `net[n]`, `mp[n]`... PVE expands the `[n]` templates to.
fn indexed_limit(prefix: &str) -> u32 {
    match prefix {
        "net" => 32,
        _ => 256,
    }
}

/// Finds the property schema for `name`, resolving `net0` to `net[n]`.
pub fn property<'a>(props: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(p) = props.get(name) {
        return Some(p);
    }
    let digits = name.trim_start_matches(|c: char| !c.is_ascii_digit());
    let prefix = &name[..name.len() - digits.len()];
    let index: u32 = digits.parse().ok()?;
    if digits.len() > 1 && digits.starts_with('0') || index >= indexed_limit(prefix) {
        return None;
    }
    props.get(&format!("{prefix}[n]"))
}

/// Validates `input` against an endpoint definition (the method object of schema.json).
pub fn validate(definition: &Value, input: &[(String, Value)]) -> Result<Params, ParamErrors> {
    let empty = Map::new();
    let parameters = definition.get("parameters");
    let props = parameters
        .and_then(|p| p.get("properties"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let additional = parameters
        .and_then(|p| p.get("additionalProperties"))
        .is_some_and(truthy);
    let mut errors = ParamErrors::new();
    let mut out = Params::default();
    for (name, value) in input {
        match property(props, name) {
            Some(prop) => match check_value(prop, value, name) {
                Ok(v) => {
                    out.0.insert(name.clone(), v);
                }
                Err(e) => {
                    errors.insert(name.clone(), e);
                }
            },
            None if additional => {
                out.0.insert(name.clone(), value.clone());
            }
            None => {
                errors.insert(
                    name.clone(),
                    "property is not defined in schema and the schema does not allow additional properties".into(),
                );
            }
        }
    }
    for (name, prop) in props {
        if name.ends_with("[n]") {
            continue;
        }
        if !out.0.contains_key(name)
            && !errors.contains_key(name)
            && !prop.get("optional").is_some_and(truthy)
        {
            errors.insert(
                name.clone(),
                "property is missing and it is not optional".into(),
            );
        }
    }
    for name in out.0.keys() {
        let needs = property(props, name)
            .and_then(|p| p.get("requires"))
            .and_then(Value::as_str);
        if let Some(needs) = needs {
            if !out.0.contains_key(needs) {
                errors.insert(
                    name.clone(),
                    format!("missing property - '{name}' requires this property: '{needs}'"),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        _ => None,
    }
}

fn bound(prop: &Value, key: &str) -> Option<f64> {
    match prop.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Checks one value against one property schema and returns it normalised. `path` names
/// it in the errors of a property string inside (`net0.tag`), as pve-common's
/// JSONSchema.pm `check_object` builds it.
pub fn check_value(prop: &Value, value: &Value, path: &str) -> Result<Value, String> {
    let ty = prop.get("type").and_then(Value::as_str).unwrap_or("string");
    let got = || scalar_text(value).unwrap_or_else(|| value.to_string());
    let type_err = || format!("type check ('{ty}') failed - got '{}'", got());
    let checked = match ty {
        "integer" => {
            let n: i64 = match value {
                Value::Number(n) => n.as_i64().ok_or_else(type_err)?,
                Value::String(s) if Regex::new(r"^[+-]?\d+$").unwrap().is_match(s) => {
                    s.parse().map_err(|_| type_err())?
                }
                _ => return Err(type_err()),
            };
            check_range(prop, n as f64)?;
            Value::Number(n.into())
        }
        "number" => {
            let n: f64 = match value {
                Value::Number(n) => n.as_f64().ok_or_else(type_err)?,
                Value::String(s)
                    if Regex::new(r"^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$")
                        .unwrap()
                        .is_match(s) =>
                {
                    s.parse().map_err(|_| type_err())?
                }
                _ => return Err(type_err()),
            };
            check_range(prop, n)?;
            Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(type_err)?
        }
        // Deliberately strict: a form value must be "0" or "1" (what PVE documents), JSON
        // may also use true/false; "true" as text is what a sloppy client sends by mistake.
        "boolean" => match value {
            Value::Bool(b) => Value::Number((*b as i64).into()),
            Value::Number(n) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
                Value::Number(n.clone())
            }
            Value::String(s) if s == "0" || s == "1" => {
                Value::Number(s.parse::<i64>().unwrap().into())
            }
            _ => return Err(type_err()),
        },
        "array" | "object" => value.clone(),
        _ => {
            let s = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(type_err()),
            };
            check_string(prop, &s, path)?;
            Value::String(s)
        }
    };
    Ok(checked)
}

fn check_range(prop: &Value, n: f64) -> Result<(), String> {
    if let Some(min) = bound(prop, "minimum") {
        if n < min {
            return Err(format!("value must have a minimum value of {min}"));
        }
    }
    if let Some(max) = bound(prop, "maximum") {
        if n > max {
            return Err(format!("value must have a maximum value of {max}"));
        }
    }
    Ok(())
}

fn check_string(prop: &Value, s: &str, path: &str) -> Result<(), String> {
    let chars = s.chars().count() as f64;
    if let Some(max) = bound(prop, "maxLength") {
        if chars > max {
            return Err(format!("value may only be {max} characters long"));
        }
    }
    if let Some(min) = bound(prop, "minLength") {
        if chars < min {
            return Err(format!("value must be at least {min} characters long"));
        }
    }
    if let Some(values) = prop.get("enum").and_then(Value::as_array) {
        if !values.iter().any(|v| v.as_str() == Some(s)) {
            let list: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
            return Err(format!(
                "value '{s}' does not have a value in the enumeration '{}'",
                list.join(", ")
            ));
        }
    }
    if let Some(pattern) = prop.get("pattern").and_then(Value::as_str) {
        let re = perl_regex(pattern).map_err(|e| format!("bad schema pattern: {e}"))?;
        if !re.is_match(s) {
            return Err("value does not match the regex pattern".into());
        }
    }
    match prop.get("format") {
        Some(Value::String(name)) => formats::check(name, s)?,
        Some(Value::Object(sub)) => {
            property_string::check(sub, s, path)?;
        }
        _ => {}
    }
    Ok(())
}

/// Translates a Perl pattern from the schema to Rust `regex` syntax, anchored the way PVE
/// anchors patterns (`^(?:...)$`): `(?^:` is Perl's "default flags" group, `\0` a NUL.
pub fn perl_regex(pattern: &str) -> Result<Regex, regex::Error> {
    let rust = pattern.replace("(?^:", "(?:").replace(r"\0", r"\x00");
    Regex::new(&format!("^(?:{rust})$"))
}

#[cfg(test)]
mod tests;
