//! Loading an OCI bundle's `config.json`, and the annotations lxcri reads.
//!
//! oci-spec parses enum-typed fields (capabilities, rlimit types, seccomp
//! actions and flags, namespace and device types) strictly, and its errors
//! name no field. So the JSON is first checked as a plain value, and a bad
//! name is reported by its path (`process.capabilities.bounding[3]`); only
//! then is it parsed into [`oci_spec::runtime::Spec`].

pub mod annotations;
mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Process, Spec};
use serde::de::DeserializeOwned;

pub use annotations::{bundle_sandbox_id, CriAnnotations, CriContainerType};

/// The bundle file containerd writes.
pub const CONFIG_FILE: &str = "config.json";

/// The OCI runtime-spec major version lxcri implements.
const SUPPORTED_MAJOR: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Malformed JSON or a value of the wrong type; `source` shows the line
    /// and column too.
    #[error("{path}: invalid OCI config at line {line}, column {column}: {source}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {field}: missing (required by lxcri)")]
    Missing { path: PathBuf, field: &'static str },
    #[error("{path}: ociVersion {version:?} is not supported (lxcri implements runtime-spec 1.x)")]
    UnsupportedVersion { path: PathBuf, version: String },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("annotation {key}: {message}")]
    Annotation { key: String, message: String },
}

pub type Result<T> = std::result::Result<T, SpecError>;

/// Loads and checks `<bundle>/config.json`.
///
/// Fails for malformed JSON (naming the line and column), a badly spelled
/// enum value (naming the field), a missing `process` or `root`, or an
/// `ociVersion` whose major version is not 1.
pub fn load_bundle_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join(CONFIG_FILE);
    let body = std::fs::read(&path).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    parse_spec(&path, &body)
}

/// Parses a config.json body; `path` is only used in errors.
pub fn parse_spec(path: &Path, body: &[u8]) -> Result<Spec> {
    let mut raw: serde_json::Value = parse(path, body)?;
    validate::spec(&raw).map_err(|(field, message)| SpecError::Invalid {
        path: path.to_path_buf(),
        field,
        message,
    })?;
    let rewritten = raw
        .get_mut("process")
        .is_some_and(validate::to_oci_spec_forms);
    let spec: Spec = typed(path, body, raw, rewritten)?;

    let missing = |field| SpecError::Missing {
        path: path.to_path_buf(),
        field,
    };
    check_version(path, spec.version())?;
    let root = spec.root().as_ref().ok_or_else(|| missing("root"))?;
    if root.path().as_os_str().is_empty() {
        return Err(missing("root.path"));
    }
    if spec.process().is_none() {
        return Err(missing("process"));
    }
    Ok(spec)
}

/// Parses the OCI process of an exec request (containerd sends it as JSON),
/// with the same field checks as `process` in config.json. `what` names
/// the source in errors (e.g. `exec abc123`).
pub fn parse_process(what: &str, body: &[u8]) -> Result<Process> {
    let path = PathBuf::from(what);
    let mut raw: serde_json::Value = parse(&path, body)?;
    validate::process("process", &raw).map_err(|(field, message)| SpecError::Invalid {
        path: path.clone(),
        field,
        message,
    })?;
    let rewritten = validate::to_oci_spec_forms(&mut raw);
    typed(&path, body, raw, rewritten)
}

/// The typed parse: of `body`, which names line and column in errors, or
/// of `raw` when [`validate::to_oci_spec_forms`] rewrote it.
fn typed<T: DeserializeOwned>(
    path: &Path,
    body: &[u8],
    raw: serde_json::Value,
    rewritten: bool,
) -> Result<T> {
    if !rewritten {
        return parse(path, body);
    }
    serde_json::from_value(raw).map_err(|source| SpecError::Parse {
        path: path.to_path_buf(),
        line: source.line(),
        column: source.column(),
        source,
    })
}

fn parse<T: DeserializeOwned>(path: &Path, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| SpecError::Parse {
        path: path.to_path_buf(),
        line: source.line(),
        column: source.column(),
        source,
    })
}

fn check_version(path: &Path, version: &str) -> Result<()> {
    if version.is_empty() {
        return Err(SpecError::Missing {
            path: path.to_path_buf(),
            field: "ociVersion",
        });
    }
    let major = version.split('.').next().unwrap_or_default();
    if major != SUPPORTED_MAJOR || version.split('.').count() < 2 {
        return Err(SpecError::UnsupportedVersion {
            path: path.to_path_buf(),
            version: version.to_string(),
        });
    }
    Ok(())
}
