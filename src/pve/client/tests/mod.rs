//! Client tests against a local HTTPS server (127.0.0.1 only), one file per
//! concern: TLS trust, HTTP error mapping and auth, retries, tasks, the
//! typed endpoints and their statistics.

mod endpoints;
mod errors;
mod retries;
mod server;
mod task_wait;
mod tls;

use std::time::Duration;

use super::{ApiToken, ClientOptions, PveClient, Secret, TlsTrust, TokenId};
use server::{Certs, Reply, Request, TestServer};

const TOKEN_ID: &str = "lxcri@pve!shim";
const SECRET: &str = "0f1e2d3c-very-secret-value";

fn token() -> ApiToken {
    ApiToken::new(TokenId::parse(TOKEN_ID).unwrap(), Secret::new(SECRET))
}

/// Short delays so retry and polling tests take milliseconds.
fn fast_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        max_retries: 2,
        retry_backoff: Duration::from_millis(1),
        retry_backoff_max: Duration::from_millis(5),
        task_poll_initial: Duration::from_millis(5),
        task_poll_steady: Duration::from_millis(5),
        task_poll_steady_for: Duration::from_millis(50),
        task_poll_max: Duration::from_millis(20),
        task_log_tail: 10,
    }
}

/// A self-signed server and a client pinned to its certificate.
fn pinned(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> (TestServer, PveClient) {
    pinned_with(fast_options(), handler)
}

fn pinned_with(
    options: ClientOptions,
    handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
) -> (TestServer, PveClient) {
    let certs = Certs::self_signed();
    let server = TestServer::start(&certs, handler);
    let client = PveClient::new(
        &server.url(),
        token(),
        TlsTrust::Fingerprint(certs.fingerprint()),
        options,
    )
    .unwrap();
    (server, client)
}

/// Decodes a query string or form body into pairs.
fn pairs(encoded: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{encoded}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn upid_for(task_type: &str, id: &str) -> String {
    format!("UPID:pve1:0000A1B2:0012ABCD:6740F00D:{task_type}:{id}:{TOKEN_ID}:")
}

#[test]
fn client_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PveClient>();
    assert_send_sync::<super::ClientStats>();
}
