//! Errors of the PVE client, and the mapping of PVE's error responses.
//!
//! Every request error names the method and the concrete API path, so a log
//! line says which call failed; none carries the token secret (it lives only
//! in the `Authorization` header, which no error renders).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;

use super::auth::AuthError;
use super::tls::TlsError;
use super::upid::UpidError;

/// A local `Result` for the client.
pub type Result<T> = std::result::Result<T, PveError>;

#[derive(Debug, thiserror::Error)]
pub enum PveError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    TlsConfig(#[from] TlsError),
    #[error("invalid PVE URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("building the HTTP client")]
    BuildClient(#[source] reqwest::Error),

    /// 400: PVE's parameter verification failed; `errors` maps each
    /// offending parameter to PVE's complaint about it.
    #[error(
        "{method} {path}: parameter verification failed: {}",
        describe_params(errors, message)
    )]
    BadRequest {
        method: Method,
        path: String,
        message: String,
        errors: BTreeMap<String, String>,
    },
    /// 401: wrong token id or secret, or the token expired.
    #[error(
        "{method} {path}: authentication failed (check token_id and the token secret): {message}"
    )]
    Unauthorized {
        method: Method,
        path: String,
        message: String,
    },
    /// 403: the token lacks `privilege` on `acl_path`.
    #[error(
        "{method} {path}: permission denied{}: {message}",
        describe_privilege(acl_path, privilege)
    )]
    Forbidden {
        method: Method,
        path: String,
        message: String,
        acl_path: Option<String>,
        privilege: Option<String>,
    },
    /// 500: any other failure PVE reports (`CT 100 already running`, lock
    /// errors, `already exists`).
    #[error("{method} {path}: PVE error: {message}")]
    Server {
        method: Method,
        path: String,
        message: String,
    },
    /// 501: PVE does not know the path/method (wrong version or a typo).
    #[error("{method} {path}: not implemented by this PVE: {message}")]
    NotImplemented {
        method: Method,
        path: String,
        message: String,
    },
    /// Any other HTTP status (404, 502-504 from a proxy, ...).
    #[error("{method} {path}: HTTP {status}: {message}")]
    Http {
        method: Method,
        path: String,
        status: u16,
        message: String,
    },
    #[error("{method} {path}: request timed out")]
    Timeout {
        method: Method,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method} {path}: connection to PVE failed")]
    Connect {
        method: Method,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server's certificate did not match the pinned fingerprint; the
    /// connection was refused before any request was sent.
    #[error("{method} {path}: TLS certificate fingerprint mismatch: expected {expected}, server presented {actual}")]
    FingerprintMismatch {
        method: Method,
        path: String,
        expected: String,
        actual: String,
    },
    /// Certificate verification or the handshake failed otherwise.
    #[error("{method} {path}: TLS handshake with PVE failed: {message}")]
    TlsHandshake {
        method: Method,
        path: String,
        message: String,
    },
    #[error("{method} {path}: unexpected response: {message}")]
    Decode {
        method: Method,
        path: String,
        message: String,
    },
    #[error(transparent)]
    Upid(#[from] UpidError),
    /// A task ended with an exit status other than `OK` / `WARNINGS: n`.
    #[error("task {upid} failed: {exitstatus}{}", describe_log(log))]
    TaskFailed {
        upid: String,
        exitstatus: String,
        /// The last lines of the task log.
        log: Vec<String>,
    },
    #[error("task {upid} still running after {timeout:?}")]
    TaskTimeout { upid: String, timeout: Duration },
}

impl PveError {
    /// The HTTP status PVE answered with, if the error is an HTTP answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            PveError::BadRequest { .. } => Some(400),
            PveError::Unauthorized { .. } => Some(401),
            PveError::Forbidden { .. } => Some(403),
            PveError::Server { .. } => Some(500),
            PveError::NotImplemented { .. } => Some(501),
            PveError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth retrying an idempotent request: the request may not have
    /// reached PVE, or a proxy in front of it was briefly unavailable.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            PveError::Timeout { .. } | PveError::Connect { .. } => true,
            PveError::Http { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

/// PVE's error envelope: `{"data":null,"message":"...","errors":{...}}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Option<BTreeMap<String, serde_json::Value>>,
}

/// Maps a non-2xx answer. `reason` is the status line's reason phrase,
/// which is where PVE puts its message (the body may lack one).
pub(crate) fn from_response(
    method: &Method,
    path: &str,
    status: u16,
    reason: Option<&str>,
    body: &[u8],
) -> PveError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message = parsed
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .or(reason.map(str::trim).filter(|r| !r.is_empty()))
        .map(str::to_string)
        .unwrap_or_else(|| {
            reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no message")
                .to_string()
        });
    let (method, path) = (method.clone(), path.to_string());
    match status {
        400 => {
            let errors = parsed
                .errors
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| {
                    let text = match v {
                        serde_json::Value::String(s) => s.trim().to_string(),
                        other => other.to_string(),
                    };
                    (k, text)
                })
                .collect();
            PveError::BadRequest {
                method,
                path,
                message,
                errors,
            }
        }
        401 => PveError::Unauthorized {
            method,
            path,
            message,
        },
        403 => {
            let (acl_path, privilege) = parse_permission_message(&message);
            PveError::Forbidden {
                method,
                path,
                message,
                acl_path,
                privilege,
            }
        }
        500 => PveError::Server {
            method,
            path,
            message,
        },
        501 => PveError::NotImplemented {
            method,
            path,
            message,
        },
        _ => PveError::Http {
            method,
            path,
            status,
            message,
        },
    }
}

/// `Permission check failed (/vms/100, VM.Allocate)` -> (`/vms/100`,
/// `VM.Allocate`). Other 403 texts (`user != root@pam`, root-only
/// features) carry no ACL path and yield `(None, None)`.
pub(crate) fn parse_permission_message(message: &str) -> (Option<String>, Option<String>) {
    let Some(start) = message.find("Permission check failed (") else {
        return (None, None);
    };
    let inner = &message[start + "Permission check failed (".len()..];
    let inner = inner.rfind(')').map_or(inner, |end| &inner[..end]);
    match inner.split_once(',') {
        Some((acl, privs)) if acl.trim_start().starts_with('/') => {
            let privs = privs.trim();
            (
                Some(acl.trim().to_string()),
                (!privs.is_empty()).then(|| privs.to_string()),
            )
        }
        _ => (None, None),
    }
}

fn describe_params(errors: &BTreeMap<String, String>, message: &str) -> String {
    if errors.is_empty() {
        return message.to_string();
    }
    let mut out = String::new();
    for (i, (name, text)) in errors.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let _ = write!(out, "{name}: {text}");
    }
    out
}

fn describe_privilege(acl_path: &Option<String>, privilege: &Option<String>) -> String {
    match (acl_path, privilege) {
        (Some(acl), Some(privilege)) => format!(" (missing {privilege} on {acl})"),
        _ => String::new(),
    }
}

fn describe_log(log: &[String]) -> String {
    if log.is_empty() {
        return String::new();
    }
    format!("; task log tail:\n  {}", log.join("\n  "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_request_names_each_parameter() {
        let body = br#"{"data":null,"errors":{"vmid":"invalid format - value does not look like a valid VM ID\n","hostname":"value too long"}}"#;
        let err = from_response(
            &Method::POST,
            "/nodes/pve1/lxc",
            400,
            Some("Parameter verification failed."),
            body,
        );
        let text = err.to_string();
        assert!(text.starts_with("POST /nodes/pve1/lxc: parameter verification failed"));
        assert!(text.contains("vmid: invalid format"), "{text}");
        assert!(text.contains("hostname: value too long"), "{text}");
        let PveError::BadRequest { errors, .. } = err else {
            panic!("not BadRequest")
        };
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn forbidden_extracts_privilege() {
        let err = from_response(
            &Method::POST,
            "/nodes/pve1/lxc",
            403,
            Some("Permission check failed (/vms/100, VM.Allocate)"),
            br#"{"data":null}"#,
        );
        let PveError::Forbidden {
            ref acl_path,
            ref privilege,
            ..
        } = err
        else {
            panic!("not Forbidden")
        };
        assert_eq!(acl_path.as_deref(), Some("/vms/100"));
        assert_eq!(privilege.as_deref(), Some("VM.Allocate"));
        assert!(err.to_string().contains("missing VM.Allocate on /vms/100"));
        assert_eq!(
            parse_permission_message("Permission check failed (user != root@pam)"),
            (None, None)
        );
        assert_eq!(
            parse_permission_message(
                "Permission check failed (/storage/local-zfs, Datastore.AllocateSpace)"
            ),
            (
                Some("/storage/local-zfs".to_string()),
                Some("Datastore.AllocateSpace".to_string())
            )
        );
    }

    /// PVE's message of a 500 answer.
    fn server_message(e: &PveError) -> Option<&str> {
        match e {
            PveError::Server { message, .. } => Some(message),
            _ => None,
        }
    }

    #[test]
    fn server_error_prefers_body_message_then_reason() {
        let err = from_response(
            &Method::POST,
            "/nodes/pve1/lxc/100/status/start",
            500,
            Some("CT 100 already running"),
            br#"{"data":null,"message":"CT 100 already running\n"}"#,
        );
        assert_eq!(server_message(&err), Some("CT 100 already running"));
        let err = from_response(&Method::GET, "/x", 500, Some("lock timeout"), b"");
        assert_eq!(server_message(&err), Some("lock timeout"));
        let err = from_response(&Method::GET, "/x", 502, None, b"<html>");
        assert_eq!(err.to_string(), "GET /x: HTTP 502: Bad Gateway");
        assert!(err.is_transient());
        let err = from_response(
            &Method::GET,
            "/nope",
            501,
            Some("Method 'GET /nope' not implemented"),
            b"",
        );
        assert!(matches!(err, PveError::NotImplemented { .. }));
    }
}
