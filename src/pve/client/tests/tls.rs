//! TLS trust: fingerprint pin, CA file, and the default roots.

use serde_json::json;

use super::server::{Certs, Reply, TestServer};
use super::{fast_options, token};
use crate::pve::client::{PveClient, PveError, TlsTrust};

fn version_reply() -> Reply {
    Reply::data(json!({"version": "9.1.2", "release": "9.1", "repoid": "abc"}))
}

#[test]
fn fingerprint_pin_accepts_matching_certificate() {
    let certs = Certs::self_signed();
    let server = TestServer::start(&certs, |_| version_reply());
    // Lower-case without colons must work as well as PVE's `AA:BB:..` form.
    let pin = certs
        .fingerprint()
        .to_string()
        .replace(':', "")
        .to_lowercase();
    let trust = TlsTrust::Fingerprint(pin.parse().unwrap());
    let client = PveClient::new(&server.url(), token(), trust, fast_options()).unwrap();
    assert_eq!(client.version().unwrap().version, "9.1.2");
}

#[test]
fn fingerprint_mismatch_refuses_to_connect() {
    let certs = Certs::self_signed();
    let server = TestServer::start(&certs, |_| version_reply());
    let wrong = Certs::self_signed().fingerprint();
    let client = PveClient::new(
        &server.url(),
        token(),
        TlsTrust::Fingerprint(wrong),
        fast_options(),
    )
    .unwrap();
    let err = client.version().unwrap_err();
    let PveError::FingerprintMismatch {
        ref expected,
        ref actual,
        ..
    } = err
    else {
        panic!("expected a fingerprint mismatch, got {err:?}")
    };
    assert_eq!(*expected, wrong.to_string());
    assert_eq!(*actual, certs.fingerprint().to_string());
    let text = err.to_string();
    assert!(
        text.contains("GET /version") && text.contains(expected) && text.contains(actual),
        "{text}"
    );
    // Refused during the handshake: no request (and no token) reached it,
    // and a deterministic TLS failure is not retried.
    assert!(server.requests().is_empty());
    assert_eq!(client.stats().get("GET", "/version").unwrap().calls, 1);
}

#[test]
fn ca_file_verifies_chain_and_hostname() {
    let certs = Certs::with_ca();
    let server = TestServer::start(&certs, |_| version_reply());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("pve-root-ca.pem");
    std::fs::write(&ca, certs.ca_pem.as_ref().unwrap()).unwrap();
    let client =
        PveClient::new(&server.url(), token(), TlsTrust::CaFile(ca), fast_options()).unwrap();
    assert_eq!(client.version().unwrap().version, "9.1.2");
}

#[test]
fn ca_file_of_another_ca_is_refused() {
    let certs = Certs::with_ca();
    let server = TestServer::start(&certs, |_| version_reply());
    let other = Certs::with_ca();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("other-ca.pem");
    std::fs::write(&ca, other.ca_pem.as_ref().unwrap()).unwrap();
    let client =
        PveClient::new(&server.url(), token(), TlsTrust::CaFile(ca), fast_options()).unwrap();
    let err = client.version().unwrap_err();
    assert!(matches!(err, PveError::TlsHandshake { .. }), "{err:?}");
    assert!(server.requests().is_empty());
}

#[test]
fn default_roots_refuse_self_signed_certificate() {
    let certs = Certs::self_signed();
    let server = TestServer::start(&certs, |_| version_reply());
    let client = PveClient::new(
        &server.url(),
        token(),
        TlsTrust::WebPkiRoots,
        fast_options(),
    )
    .unwrap();
    let err = client.version().unwrap_err();
    assert!(matches!(err, PveError::TlsHandshake { .. }), "{err:?}");
}
