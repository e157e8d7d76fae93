//! Proxmox VE API client (synchronous; the shim calls it via `spawn_blocking`).
//!
//! - [`auth`]: API token (`USER@REALM!NAME` + secret from a file, never printed).
//! - [`transport`]: reqwest + rustls (ring), TLS trust by CA file or
//!   fingerprint pin, PVE envelope, error mapping, GET-only retries.
//! - [`error`]: [`PveError`], one variant per PVE failure mode.
//! - [`upid`]: task ids; [`tasks`]: awaiting them with backoff.
//! - [`api`]: the typed endpoints lxcri needs; [`types`]: their answers.
//! - [`stats`]: per-endpoint call, error and latency counters.
//!
//! The HTTP client is reqwest's blocking one, which runs its own small tokio
//! runtime: create, call *and drop* a [`PveClient`] outside async code (the
//! shim keeps it in an `Arc` and uses it from `spawn_blocking`).
//!
//! ```no_run
//! use lxcri::pve::client::{ApiToken, ClientOptions, PveClient, TlsTrust};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let token = ApiToken::from_file("lxcri@pve!shim", "/etc/lxcri/pve-token".as_ref())?;
//! let trust = TlsTrust::Fingerprint("AA:BB:...".parse()?);
//! let client = PveClient::new("https://pve1:8006", token, trust, ClientOptions::default())?;
//! let upid = client.start("pve1", 105)?;
//! client.wait_task(&upid, std::time::Duration::from_secs(60))?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod auth;
pub mod error;
mod lenient;
pub mod stats;
pub mod tasks;
pub mod tls;
pub mod transport;
pub mod types;
pub mod upid;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

pub use api::DeleteOptions;
pub use auth::{ApiToken, AuthError, Secret, TokenId};
pub use error::{PveError, Result};
pub use stats::{ClientStats, EndpointKey, EndpointStats, ErrorClass, TaskWaits, LATENCY_BUCKETS};
pub use tasks::{TaskExit, TaskLogLine, TaskStatus};
pub use tls::{Fingerprint, TlsError, TlsTrust};
pub use types::{NetworkIface, NodeCt, Permissions, StorageInfo, Version};
pub use upid::{Upid, UpidError};

use transport::Transport;

/// Timeouts, retry and polling knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// TCP + TLS connect.
    pub connect_timeout: Duration,
    /// Whole request, answer included. Task-starting calls return a UPID at
    /// once, so this only needs to cover PVE's ~3 s delay on a 401 and a
    /// busy pmxcfs.
    pub request_timeout: Duration,
    /// Extra attempts for idempotent (GET) calls.
    pub max_retries: u32,
    /// First retry delay; doubles up to `retry_backoff_max`.
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    /// Task-status polls (see [`tasks::next_poll_delay`]): the first after
    /// `task_poll_initial`, then every `task_poll_steady` until the task
    /// has run `task_poll_steady_for`, then doubling up to `task_poll_max`.
    pub task_poll_initial: Duration,
    pub task_poll_steady: Duration,
    pub task_poll_steady_for: Duration,
    pub task_poll_max: Duration,
    /// Task log lines to include in a task failure.
    pub task_log_tail: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
            retry_backoff: Duration::from_millis(200),
            retry_backoff_max: Duration::from_secs(2),
            task_poll_initial: Duration::from_millis(50),
            task_poll_steady: Duration::from_millis(100),
            task_poll_steady_for: Duration::from_secs(3),
            task_poll_max: Duration::from_secs(1),
            task_log_tail: 10,
        }
    }
}

/// A client for one PVE API endpoint. Cheap to share behind an `Arc`; all
/// methods take `&self` and the connection pool is internal.
#[derive(Debug)]
pub struct PveClient {
    transport: Transport,
    options: ClientOptions,
    token_id: TokenId,
}

impl PveClient {
    /// `url` is `https://HOST:8006` (or with `/api2/json`, or a bare host).
    pub fn new(
        url: &str,
        token: ApiToken,
        trust: TlsTrust,
        options: ClientOptions,
    ) -> Result<Self> {
        let transport = Transport::new(url, &token, &trust, options.clone())?;
        Ok(PveClient {
            transport,
            options,
            token_id: token.id().clone(),
        })
    }

    /// The API base, e.g. `https://pve1:8006/api2/json`.
    pub fn base_url(&self) -> &str {
        self.transport.base_url()
    }

    pub fn token_id(&self) -> &TokenId {
        &self.token_id
    }

    /// Call statistics, shared so a metrics exporter can hold on to them.
    pub fn stats(&self) -> Arc<ClientStats> {
        Arc::clone(self.transport.stats())
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }
}
