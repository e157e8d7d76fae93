//! What can go wrong talking to ovsdb-server, each with the context an
//! operator needs: the target, the request, the port or bridge, and the
//! server's own words.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum OvsdbError {
    #[error("ovsdb: invalid target {target:?}: {reason}")]
    InvalidTarget {
        target: String,
        reason: &'static str,
    },
    #[error("ovsdb: cannot connect to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ovsdb: {target}: no answer to {method} within {deadline:?}")]
    TimedOut {
        target: String,
        method: String,
        deadline: Duration,
    },
    #[error("ovsdb: {target}: {method}: {source}")]
    Io {
        target: String,
        method: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ovsdb: {target} closed the connection during {method}")]
    Closed { target: String, method: String },
    #[error("ovsdb: {context}: unexpected answer: {detail}")]
    Protocol { context: String, detail: String },
    #[error("ovsdb: {target}: {method} failed: {error}")]
    Rpc {
        target: String,
        method: String,
        error: String,
    },
    /// An operation of a transaction, or its commit, failed: `error` and
    /// `details` are the server's (e.g. "constraint violation").
    #[error("ovsdb: {operation}: {error}: {details}")]
    Transact {
        operation: String,
        error: String,
        details: String,
    },
    #[error("ovsdb: {operation}: no bridge named {bridge:?}")]
    NoSuchBridge { operation: String, bridge: String },
    /// Another client changed the rows between our read and our write,
    /// every time we tried.
    #[error("ovsdb: {operation}: the database kept changing ({attempts} attempts)")]
    Conflict { operation: String, attempts: u32 },
    /// Committed, but ovs-vswitchd did not make the port work (the row is
    /// taken out again).
    #[error("ovsdb: {operation}: {reason}")]
    NotApplied { operation: String, reason: String },
    #[error("ovsdb: the connection to {target} is unusable after an earlier error")]
    Broken { target: String },
}

pub type Result<T> = std::result::Result<T, OvsdbError>;
