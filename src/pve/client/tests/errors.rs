//! Auth header, HTTP error mapping, and the secret staying out of errors.

use serde_json::json;

use super::server::Reply;
use super::{pinned, SECRET, TOKEN_ID};
use crate::pve::client::PveError;

#[test]
fn token_header_is_sent() {
    let (server, client) = pinned(|_| Reply::data(json!({"version": "9.1.2"})));
    client.version().unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].target, "/api2/json/version");
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("PVEAPIToken={TOKEN_ID}={SECRET}").as_str())
    );
    // Tokens need no CSRF token; sending one would suggest ticket auth.
    assert!(requests[0].header("CSRFPreventionToken").is_none());
}

#[test]
fn unauthorized_names_call_but_not_secret() {
    let (_server, client) = pinned(|_| {
        Reply::json(
            401,
            "authentication failure",
            json!({"data": null, "message": "authentication failure\n"}),
        )
    });
    let err = client.version().unwrap_err();
    assert!(matches!(err, PveError::Unauthorized { .. }), "{err:?}");
    let text = format!("{err} / {err:?} / {client:?}");
    assert!(text.contains("GET /version"), "{text}");
    assert!(text.contains("authentication failure"), "{text}");
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    // Also through the source chain (reqwest errors render URLs, not headers).
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        assert!(!s.to_string().contains(SECRET));
        source = s.source();
    }
}

#[test]
fn bad_request_names_each_parameter() {
    let (_server, client) = pinned(|_| {
        Reply::json(
            400,
            "Parameter verification failed.",
            json!({"data": null, "errors": {
                "net0": "invalid format - format error\nnet0.bridge: property is missing and it is not optional\n",
                "memory": "value must have a minimum value of 16\n"
            }}),
        )
    });
    let params = vec![("vmid".to_string(), "105".to_string())];
    let err = client.create_lxc("pve1", &params).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("POST /nodes/pve1/lxc: parameter verification failed"),
        "{text}"
    );
    assert!(text.contains("net0: invalid format"), "{text}");
    assert!(
        text.contains("memory: value must have a minimum value of 16"),
        "{text}"
    );
    let PveError::BadRequest { errors, .. } = err else {
        panic!("not BadRequest")
    };
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["memory", "net0"]);
}

#[test]
fn forbidden_carries_missing_privilege() {
    let (_server, client) = pinned(|_| {
        Reply::json(
            403,
            "Permission check failed (/vms/105, VM.Allocate)",
            json!({"data": null}),
        )
    });
    let err = client.create_lxc("pve1", &[]).unwrap_err();
    let PveError::Forbidden {
        ref privilege,
        ref acl_path,
        ..
    } = err
    else {
        panic!("not Forbidden: {err:?}")
    };
    assert_eq!(privilege.as_deref(), Some("VM.Allocate"));
    assert_eq!(acl_path.as_deref(), Some("/vms/105"));
    assert!(
        err.to_string().contains("missing VM.Allocate on /vms/105"),
        "{err}"
    );
}

#[test]
fn server_error_and_not_implemented_carry_pve_message() {
    let (_server, client) = pinned(|req| {
        if req.path().ends_with("/status/start") {
            // Only the reason phrase carries the message, as in older PVE.
            Reply::json(500, "CT 105 already running", json!({"data": null}))
        } else {
            Reply::json(
                501,
                "Method 'GET /nodes/pve1/lxc' not implemented",
                json!({"data": null}),
            )
        }
    });
    let err = client.start("pve1", 105).unwrap_err();
    assert_eq!(server_message(&err), Some("CT 105 already running"));
    assert_eq!(
        err.to_string(),
        "POST /nodes/pve1/lxc/105/status/start: PVE error: CT 105 already running"
    );
    let err = client.node_lxc_list("pve1").unwrap_err();
    assert!(matches!(err, PveError::NotImplemented { .. }), "{err:?}");
    assert_eq!(err.status(), Some(501));
}

#[test]
fn unexpected_body_is_a_decode_error() {
    let (_server, client) = pinned(|_| Reply::json(200, "OK", json!({"data": "not-a-upid"})));
    let err = client.start("pve1", 105).unwrap_err();
    assert!(matches!(err, PveError::Upid(_)), "{err:?}");
    let (_server, client) = pinned(|_| Reply::json(200, "OK", json!({"data": "CT 105 status"})));
    let err = client.node_lxc_list("pve1").unwrap_err();
    assert!(matches!(err, PveError::Decode { .. }), "{err:?}");
}

/// PVE's message of a 500 answer.
fn server_message(e: &PveError) -> Option<&str> {
    match e {
        PveError::Server { message, .. } => Some(message),
        _ => None,
    }
}
