//! Retries: GET on 502-504, connection errors and timeouts; never POST.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::server::Reply;
use super::{fast_options, pinned, pinned_with, token, upid_for};
use crate::pve::client::{ErrorClass, PveClient, PveError, TlsTrust};

fn unavailable() -> Reply {
    Reply::json(503, "Service Unavailable", json!({"data": null}))
}

#[test]
fn get_is_retried_on_503() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let (server, client) = pinned(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) < 2 {
            unavailable()
        } else {
            Reply::data(json!({"version": "9.1.2"}))
        }
    });
    assert_eq!(client.version().unwrap().version, "9.1.2");
    assert_eq!(server.requests().len(), 3);
    let stats = client.stats().get("GET", "/version").unwrap();
    assert_eq!((stats.calls, stats.retries), (3, 2));
    assert_eq!(stats.errors[&ErrorClass::Server], 2);
}

#[test]
fn get_gives_up_after_max_retries() {
    let (server, client) = pinned(|_| unavailable());
    let err = client.version().unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        server.requests().len(),
        1 + fast_options().max_retries as usize
    );
}

#[test]
fn post_is_never_retried() {
    let upid = upid_for("vzstart", "105");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let (server, client) = pinned(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            unavailable()
        } else {
            Reply::data(json!(upid))
        }
    });
    let err = client.start("pve1", 105).unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(server.requests().len(), 1);
    let stats = client
        .stats()
        .get("POST", "/nodes/{node}/lxc/{vmid}/status/start")
        .unwrap();
    assert_eq!((stats.calls, stats.retries), (1, 0));
}

#[test]
fn connection_refused_get_is_retried_then_reported() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fp = super::server::Certs::self_signed().fingerprint();
    let client = PveClient::new(
        &format!("https://127.0.0.1:{port}"),
        token(),
        TlsTrust::Fingerprint(fp),
        fast_options(),
    )
    .unwrap();
    let err = client.version().unwrap_err();
    assert!(matches!(err, PveError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("GET /version: connection"),
        "{err}"
    );
    let stats = client.stats().get("GET", "/version").unwrap();
    assert_eq!(stats.calls, 1 + u64::from(fast_options().max_retries));
    assert_eq!(stats.errors[&ErrorClass::Transport], stats.calls);
    // POST to the same dead port: one attempt only.
    assert!(client.start("pve1", 105).is_err());
    let stats = client
        .stats()
        .get("POST", "/nodes/{node}/lxc/{vmid}/status/start")
        .unwrap();
    assert_eq!(stats.calls, 1);
}

#[test]
fn slow_answer_times_out() {
    let options = crate::pve::client::ClientOptions {
        request_timeout: Duration::from_millis(200),
        max_retries: 1,
        ..fast_options()
    };
    let (server, client) = pinned_with(options, |_| {
        Reply::data(json!({"version": "9.1.2"})).delayed(Duration::from_millis(1500))
    });
    let started = Instant::now();
    let err = client.version().unwrap_err();
    assert!(matches!(err, PveError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("GET /version"), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    // A timed-out GET is retried once (max_retries = 1).
    assert_eq!(server.requests().len(), 2);
    let stats = client.stats().get("GET", "/version").unwrap();
    assert_eq!(stats.errors[&ErrorClass::Timeout], 2);
}
