//! Lenient field decoders for PVE answers.
//!
//! PVE's JSON comes from Perl, whose encoder writes a scalar as a number or a
//! string depending on how it was last used: `"vmid":"100"`, `"mem":12345`,
//! `"name":123` for a host named `123`, `"template":""`. These helpers accept
//! either form instead of failing a whole listing over one field.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn to_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| *f >= 0.0)
                    .map(|f| f as u64)
            })
        }
        _ => None,
    }
}

pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(to_u64))
}

/// A required VMID-like integer; an unparsable value is an error here,
/// because a row without its id is useless.
pub(crate) fn u32_req<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = Value::deserialize(d)?;
    to_u64(&v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("expected an id, got {v}")))
}

/// PVE booleans: `1`/`0`, `"1"`/`"0"`, `true`/`false`, `""` (false).
pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::Number(n)) => n.as_f64().map(|f| f != 0.0),
        Some(Value::String(s)) => match s.trim() {
            "1" | "true" => Some(true),
            "0" | "false" | "" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

/// Strings that may have been sent as numbers.
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(u8::from(b).to_string()),
        _ => None,
    })
}

/// A required string that may have been sent as a number.
pub(crate) fn string_req<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "opt_u64")]
        a: Option<u64>,
        #[serde(default, deserialize_with = "opt_bool")]
        c: Option<bool>,
        #[serde(default, deserialize_with = "opt_string")]
        d: Option<String>,
        #[serde(deserialize_with = "u32_req")]
        id: u32,
    }

    #[test]
    fn numbers_as_strings_and_back() {
        let p: Probe = serde_json::from_str(r#"{"a":"123","c":"1","d":123,"id":"100"}"#).unwrap();
        assert_eq!(
            (p.a, p.c, p.d.as_deref(), p.id),
            (Some(123), Some(true), Some("123"), 100)
        );
        let p: Probe = serde_json::from_str(r#"{"a":12.0,"c":0,"d":"x","id":101}"#).unwrap();
        assert_eq!(
            (p.a, p.c, p.d.as_deref(), p.id),
            (Some(12), Some(false), Some("x"), 101)
        );
        let p: Probe = serde_json::from_str(r#"{"a":null,"id":102}"#).unwrap();
        assert_eq!((p.a, p.c, p.d), (None, None, None));
        assert!(serde_json::from_str::<Probe>(r#"{"id":"abc"}"#).is_err());
    }
}
