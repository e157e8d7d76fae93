//! The shim's part of lxcri's metrics: each create, start and delete of a
//! container (its duration, or its failure's cause) and the PVE API calls
//! it made go to the node's journal ([`lxcri::metrics::OpsJournal`]), which
//! `lxcri exporter` reads. Written on a blocking thread nobody waits for: a
//! slow disk or a busy exporter never delays containerd's call.

use std::time::Instant;

use lxcri::metrics::OpsJournal;
use lxcri::runtime::Runtime;

/// Records one operation that began at `began`; `failed` is its cause.
pub fn record(rt: &Runtime, operation: &'static str, began: Instant, failed: Option<&'static str>) {
    let delta = rt.ops_delta(operation, began.elapsed(), failed);
    let journal = OpsJournal::new(&rt.config().runtime_root);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = journal.add(&delta) {
            tracing::warn!(error = %e, operation, "metrics journal: not recorded");
        }
    });
}
