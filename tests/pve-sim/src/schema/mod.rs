//! The PVE API schema (pve-docs' apidata, as JSON) and the lookup of a request's endpoint.
//!
//! The schema file is the authority for what a real PVE node accepts; the stand-in only adds
//! a few endpoints the trimmed file lacks (see `supplement.json`), marked as such in the log.

pub mod formats;
pub mod property_string;
pub mod validate;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::Path;

pub use validate::{validate, ParamErrors, Params};

/// Endpoints lxcri needs that the trimmed schema.json does not carry; hand-written from the
/// PVE 9.1 API viewer so they are validated the same way.
const SUPPLEMENT: &str = include_str!("supplement.json");

/// Where an endpoint definition came from, recorded with every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Schema,
    Supplement,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Schema => "schema.json",
            Origin::Supplement => "supplement",
        }
    }
}

type PathVars = Vec<(String, String)>;

struct Endpoint {
    template: String,
    segments: Vec<Segment>,
    methods: serde_json::Map<String, Value>,
    origin: Origin,
}

enum Segment {
    Literal(String),
    Var(String),
}

/// The loaded schema: path templates with their method definitions.
pub struct Schema {
    endpoints: Vec<Endpoint>,
}

/// A request's path matched against the schema.
pub struct Matched<'a> {
    pub template: &'a str,
    pub path_params: Vec<(String, String)>,
    pub definition: &'a Value,
    pub origin: Origin,
}

/// Why a path and method have no definition; both are answered 501 by PVE.
#[derive(Debug, PartialEq, Eq)]
pub enum Unmatched {
    NoSuchPath,
    NoSuchMethod,
}

/// The PVE 9.1 schema the repository carries (tests/data/pve-api/README.md).
const BUILT_IN: &str = include_str!("../../../data/pve-api/schema.json");

impl Schema {
    /// `path`, or the built-in schema when `None`.
    pub fn load(path: Option<&Path>) -> Result<Schema> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading PVE API schema {}", path.display()))?,
            None => BUILT_IN.to_string(),
        };
        let main: Value = serde_json::from_str(&text).context("parsing schema.json")?;
        let extra: Value = serde_json::from_str(SUPPLEMENT).context("parsing supplement.json")?;
        let mut endpoints = Vec::new();
        Self::add(&mut endpoints, &main, Origin::Schema)?;
        Self::add(&mut endpoints, &extra, Origin::Supplement)?;
        Ok(Schema { endpoints })
    }

    fn add(out: &mut Vec<Endpoint>, doc: &Value, origin: Origin) -> Result<()> {
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
            bail!("schema has no 'paths' object");
        };
        for (template, methods) in paths {
            let Some(methods) = methods.as_object() else {
                bail!("schema path {template} is not an object");
            };
            let segments = split(template)
                .map(
                    |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(var) => Segment::Var(var.to_string()),
                        None => Segment::Literal(s.to_string()),
                    },
                )
                .collect();
            out.push(Endpoint {
                template: template.clone(),
                segments,
                methods: methods.clone(),
                origin,
            });
        }
        Ok(())
    }

    /// Finds the definition for `method` on `path` (already without `/api2/json`).
    /// Literal segments win over variables, as in PVE's router (`/lxc/{vmid}/status` vs ...).
    pub fn lookup(&self, method: &str, path: &str) -> std::result::Result<Matched<'_>, Unmatched> {
        let parts: Vec<String> = split(path).map(percent_decode).collect();
        // (literal segments matched, endpoint, path variables)
        let mut best: Option<(usize, &Endpoint, PathVars)> = None;
        for ep in &self.endpoints {
            if ep.segments.len() != parts.len() {
                continue;
            }
            let mut vars = Vec::new();
            let mut literals = 0;
            let ok = ep.segments.iter().zip(&parts).all(|(seg, part)| match seg {
                Segment::Literal(l) => {
                    literals += 1;
                    l == part
                }
                Segment::Var(v) => {
                    vars.push((v.clone(), part.clone()));
                    !part.is_empty()
                }
            });
            if ok && best.as_ref().is_none_or(|(n, _, _)| literals > *n) {
                best = Some((literals, ep, vars));
            }
        }
        let (_, ep, path_params) = best.ok_or(Unmatched::NoSuchPath)?;
        let definition = ep.methods.get(method).ok_or(Unmatched::NoSuchMethod)?;
        Ok(Matched {
            template: &ep.template,
            path_params,
            definition,
            origin: ep.origin,
        })
    }

    /// The property schema of the CT config (from `PUT .../config`), used to check what is
    /// read back from config files the way PVE's config parser does.
    pub fn config_properties(&self) -> Option<&serde_json::Map<String, Value>> {
        let ep = self
            .endpoints
            .iter()
            .find(|e| e.template == "/nodes/{node}/lxc/{vmid}/config")?;
        ep.methods
            .get("PUT")?
            .pointer("/parameters/properties")?
            .as_object()
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Decodes `%XX` escapes in a path segment (UPIDs contain `:`, `@` and `!`, which clients
/// may or may not escape).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if let (b'%', Some(Ok(b))) = (bytes[i], hex.map(|h| u8::from_str_radix(h, 16))) {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(crate) fn test_schema() -> Schema {
    Schema::load(None).expect("the built-in schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_prefers_literals_and_reports_501_kinds() {
        let s = test_schema();
        let m = s.lookup("GET", "/nodes/n1/lxc/100/status/current").unwrap();
        assert_eq!(m.template, "/nodes/{node}/lxc/{vmid}/status/current");
        assert_eq!(
            m.path_params,
            vec![("node".into(), "n1".into()), ("vmid".into(), "100".into())]
        );
        assert_eq!(
            s.lookup("GET", "/nodes/n1/nope").err(),
            Some(Unmatched::NoSuchPath)
        );
        assert_eq!(
            s.lookup("PATCH", "/version").err(),
            Some(Unmatched::NoSuchMethod)
        );
        let m = s.lookup("GET", "/access/permissions").unwrap();
        assert_eq!(m.origin, Origin::Supplement);
    }

    #[test]
    fn upid_segments_are_decoded() {
        let s = test_schema();
        let m = s
            .lookup("GET", "/nodes/n1/tasks/UPID%3An1%3A0000%3A/status")
            .unwrap();
        assert_eq!(m.path_params[1].1, "UPID:n1:0000:");
    }
}
