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
use lxcri::config::{BackendKind, Config, RootfsMode};
use lxcri::metrics::exposition::{render, NodeFacts, NodeView};
use lxcri::metrics::rootfs_usage::{overlay_uppers, zfs_usage, RootfsUsage, WalkCache, ZfsUsage};
use lxcri::metrics::{container, ContainerSample, OpsJournal};
use lxcri::state::StateStore;
use lxcri::zfs::{Zfs, ZfsCli};

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
    let walks = Arc::new(WalkCache::default());
    let server = http::Server {
        listener,
        web,
        telemetry_path: args.telemetry_path.clone(),
        scrape: Arc::new(move || scrape(&config, Path::new("/proc"), &walks)),
    };
    server.run().context("accepting connections")?;
    Ok(())
}

/// lxcri's ZFS datasets, when the node uses them; a failing `zfs` costs
/// only these figures.
fn zfs_datasets(config: &Config) -> Option<ZfsUsage> {
    let pool = config.zfs.pool.as_ref()?;
    if config.rootfs.mode != RootfsMode::Zfs {
        return None;
    }
    let zfs = Zfs::new(ZfsCli::new(&config.zfs.command));
    let images = config.zfs.images();
    let mut parents = vec![pool];
    if let Some(i) = images
        .as_ref()
        .filter(|i| !i.as_str().starts_with(&format!("{}/", pool.as_str())))
    {
        parents.push(i);
    }
    zfs_usage(&zfs, &parents)
        .map_err(|e| tracing::warn!(error = %e, "reading lxcri's ZFS datasets"))
        .ok()
}

/// One scrape's text.
pub fn scrape(config: &Config, proc_root: &Path, walks: &WalkCache) -> Result<String, String> {
    // Unreadable records are counted, not sampled (`lxcri gc` names them).
    let listing = StateStore::new(&config.runtime_root)
        .list()
        .map_err(|e| format!("reading lxcri's state: {e}"))?;
    let records = listing.records;
    let zfs = zfs_datasets(config);
    let uppers = std::fs::read(proc_root.join("self/mountinfo"))
        .map(|m| overlay_uppers(&String::from_utf8_lossy(&m)))
        .unwrap_or_default();
    let host = container::HostView::read(proc_root);
    // Containers are independent: read them on every CPU.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = records.len().div_ceil(threads).max(1);
    // `None` for a container whose init does not run.
    let read: Vec<Option<ContainerSample>> = std::thread::scope(|s| {
        let workers: Vec<_> = records
            .chunks(chunk)
            .map(|part| {
                let host = &host;
                s.spawn(move || {
                    part.iter()
                        .map(|r| container::sample(r, host))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a sampling thread panicked"))
            .collect()
    });
    let mut samples = Vec::new();
    let mut by_state: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (r, sample) in records.iter().zip(read) {
        let state = if sample.is_some() {
            "running"
        } else {
            "stopped"
        };
        *by_state
            .entry((r.backend.clone(), state.to_string()))
            .or_default() += 1;
        if let Some(mut s) = sample {
            let owner = format!("{}/{}", r.namespace, r.id);
            s.rootfs = zfs
                .as_ref()
                .and_then(|z| z.volumes.get(&owner).cloned())
                .or_else(|| {
                    let upper = uppers.get(r.rootfs.as_ref()?)?;
                    Some(RootfsUsage {
                        device: upper.display().to_string(),
                        used_bytes: walks.usage(upper),
                        limit_bytes: None,
                    })
                });
            samples.push(s);
        }
    }
    // A journal that cannot be read costs its own figures, not the scrape.
    let ops = OpsJournal::new(&config.runtime_root)
        .read()
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the shims' metrics journal");
            Default::default()
        });
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
        zfs: zfs.as_ref().map(|z| (z.images, z.clones)),
        unreadable_records: listing.unreadable.len() as u64,
        backend: config.backend.as_str().to_string(),
    };
    Ok(render(&NodeView {
        containers: &samples,
        ops: &ops,
        facts: &facts,
    }))
}
