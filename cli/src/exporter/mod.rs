//! `lxcri exporter`: serves the node's metrics to Prometheus
//! ([`lxcri::metrics`]), read from lxcri's state, the containers' cgroups
//! and `/proc`, and the shims' journal, on each scrape: no PVE API call and
//! no per-container command. Flags as Prometheus' exporters spell them.

mod http;
mod web_config;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use lxcri::config::{BackendKind, Config};
use lxcri::metrics::exposition::{render, NodeFacts, NodeView};
use lxcri::metrics::{container, OpsJournal};
use lxcri::pidfd;
use lxcri::state::StateStore;

pub use web_config::WebConfig;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (use `[::]:9464` or `0.0.0.0:9464` for a
    /// Prometheus on another host, with a web config for TLS and auth).
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9464")]
    pub listen_address: String,
    /// Path under which the metrics are served.
    #[arg(long = "web.telemetry-path", default_value = "/metrics")]
    pub telemetry_path: String,
    /// exporter-toolkit web config: TLS (`tls_server_config`) and basic
    /// auth (`basic_auth_users`, bcrypt hashes).
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config: Option<PathBuf>,
}

/// Serves until the listener fails; a bad flag or web config fails first.
pub fn run(config: Config, args: &Args) -> anyhow::Result<()> {
    if !args.telemetry_path.starts_with('/') || args.telemetry_path == "/" {
        anyhow::bail!(
            "--web.telemetry-path {:?}: a path other than / is needed",
            args.telemetry_path
        );
    }
    let web = match &args.web_config {
        Some(path) => WebConfig::load(path).context("--web.config.file")?,
        None => WebConfig::default(),
    };
    let listener = TcpListener::bind(&args.listen_address)
        .with_context(|| format!("--web.listen-address {}", args.listen_address))?;
    tracing::info!(
        address = %listener.local_addr()?,
        path = %args.telemetry_path,
        tls = web.tls.is_some(),
        basic_auth = !web.users.is_empty(),
        "serving metrics"
    );
    let config = Arc::new(config);
    let server = http::Server {
        listener,
        web,
        telemetry_path: args.telemetry_path.clone(),
        scrape: Arc::new(move || scrape(&config, Path::new("/proc"))),
    };
    server.run().context("accepting connections")?;
    Ok(())
}

/// One scrape's text.
pub fn scrape(config: &Config, proc_root: &Path) -> Result<String, String> {
    let records = StateStore::new(&config.runtime_root)
        .list()
        .map_err(|e| format!("reading lxcri's state: {e}"))?;
    let mut samples = Vec::new();
    let mut by_state: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in &records {
        let live = r
            .pid
            .filter(|p| *p > 0)
            .is_some_and(|p| pidfd::is_live_process(proc_root, p, r.pid_start_time));
        let state = if live { "running" } else { "stopped" };
        *by_state
            .entry((r.backend.clone(), state.to_string()))
            .or_default() += 1;
        if let Some(s) = container::sample(r, proc_root) {
            samples.push(s);
        }
    }
    let ops = OpsJournal::new(&config.runtime_root)
        .read()
        .map_err(|e| e.to_string())?;
    let facts = NodeFacts {
        containers: by_state.into_iter().collect(),
        vmids: (config.backend == BackendKind::Pve).then(|| {
            let range = config.pve.vmid_range;
            let used = records
                .iter()
                .filter(|r| r.vmid.is_some_and(|v| range.contains(v)))
                .count();
            (used as u64, u64::from(range.len()))
        }),
        zfs: None,
    };
    Ok(render(&NodeView {
        containers: &samples,
        ops: &ops,
        facts: &facts,
    }))
}
