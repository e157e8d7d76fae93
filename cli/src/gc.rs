//! `lxcri gc`: containers containerd no longer has whose state, LXC
//! container or volume lxcri still holds on this node (see
//! [`crate::container_gc`]), the host ends and Open vSwitch ports lxcri
//! plugged for them (see [`crate::nic_gc`]), the CTs lxcri made on this
//! node whose container is gone (with `[pve]`), and unused ZFS image
//! datasets (with `zfs.pool`, see [`crate::image_gc`]).
//!
//! The verdicts are the library's ([`PveBackend::gc_scan`]): a CT is an
//! orphan when it is tagged `lxcri`, its VMID is in `vmid_range` and its
//! description names a containerd `namespace/id` that has no state on this
//! node (or whose state names another VMID). Without `--force` nothing is
//! removed; with it each orphan is re-checked and destroyed
//! ([`PveBackend::gc_remove`]). Live and foreign CTs are only reported.
//! Warm pool members are kept up to `pve.warm_pool_size`; stale, broken
//! and excess ones are orphans, drained the same way (so `warm_pool_size
//! = 0` and `lxcri gc --force` empties the pool).

use lxcri::config::Config;
use lxcri::error_chain;
use lxcri::rootfs::zfs::ZfsRootfs;
use lxcri::runtime::pve::{CtVerdict, GcEntry};
use lxcri::runtime::{PveBackend, Runtime, RuntimeError};

use crate::container_gc::ContainerReport;
use crate::image_gc::ImageReport;
use crate::nic_gc::NicReport;
use crate::table::or_dash;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Destroy the orphans (default: a dry run that only reports them).
    #[arg(long)]
    pub force: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Containers(crate::container_gc::ContainerScanError),
    #[error(transparent)]
    Nics(crate::nic_gc::NicScanError),
    #[error(transparent)]
    Images(crate::image_gc::ImageScanError),
    /// The library's error names the node and the call.
    #[error(transparent)]
    Scan(RuntimeError),
    #[error("removing the drained warm pool's state")]
    WarmPool(#[source] lxcri::runtime::pve::WarmPoolError),
}

/// What `main` prints, and whether a removal failed.
#[derive(Debug)]
pub struct Report {
    pub output: String,
    pub failed: bool,
}

/// What became of one CT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Live or foreign: never touched.
    Keep,
    /// An orphan in a dry run.
    WouldRemove,
    Removed,
    /// It was no orphan any more when `--force` came to it.
    Skipped,
    /// Destroying it failed; the error chain.
    Failed(String),
}

impl Action {
    fn as_str(&self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::WouldRemove => "would-remove",
            Action::Removed => "removed",
            Action::Skipped => "skipped",
            Action::Failed(_) => "failed",
        }
    }
}

/// The command: containers and NICs always, CTs through the API when
/// `[pve]` is set, image datasets when `zfs.pool` is.
pub fn run(config: Config, args: &Args) -> Result<Report, GcError> {
    let zfs = ZfsRootfs::from_settings(&config.zfs, &config.runtime_root);
    let runtime = Runtime::new(config.clone());
    // NICs before containers: removing an orphaned container removes the
    // NICs its state names as well, and the report should say that gc
    // removed them rather than that they were gone when it came to them.
    let nics = crate::nic_gc::run(&runtime, &config, args.force).map_err(GcError::Nics)?;
    let containers =
        crate::container_gc::collect(&runtime, args.force).map_err(GcError::Containers)?;
    let ttl = config.zfs.image_ttl();
    let cts = if config.pve.is_configured() {
        let rootfs = lxcri::rootfs::provider_for(&config);
        Some(collect(&PveBackend::new(config, rootfs), args)?)
    } else {
        None
    };
    let images = match &zfs {
        Some(zfs) => Some(crate::image_gc::collect(zfs, ttl, args.force).map_err(GcError::Images)?),
        None => None,
    };
    Ok(combine(containers, nics, cts, images, args))
}

/// One report of the container and NIC parts and the CT and image parts
/// there are.
fn combine(
    containers: ContainerReport,
    nics: NicReport,
    cts: Option<Report>,
    images: Option<ImageReport>,
    args: &Args,
) -> Report {
    let failed = containers.failed
        || nics.failed
        || cts.as_ref().is_some_and(|r| r.failed)
        || images.as_ref().is_some_and(|r| r.failed);
    let output = if args.json {
        let mut doc = match &cts {
            Some(r) => serde_json::from_str(&r.output).expect("our own JSON parses"),
            None => serde_json::json!({ "dry_run": !args.force }),
        };
        doc["containers"] = containers.json.clone();
        doc["nics"] = nics.json["nics"].clone();
        doc["ovs"] = nics.json["ovs"].clone();
        if let Some(images) = &images {
            doc["images"] = images.json.clone();
        }
        doc["ok"] = serde_json::Value::from(!failed);
        let mut out = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
        out.push('\n');
        out
    } else {
        let parts: Vec<String> = [containers.text, nics.text]
            .into_iter()
            .chain(cts.map(|r| r.output))
            .chain(images.map(|r| r.text))
            .collect();
        parts.join("\n")
    };
    Report { output, failed }
}

/// Scans the node, removes the orphans when `args.force`, and renders it.
pub fn collect(rt: &PveBackend, args: &Args) -> Result<Report, GcError> {
    let entries = rt.gc_scan().map_err(GcError::Scan)?;
    let actions = if args.force {
        remove(rt, &entries)
    } else {
        entries
            .iter()
            .map(|e| match e.verdict {
                CtVerdict::Orphan => Action::WouldRemove,
                _ => Action::Keep,
            })
            .collect()
    };
    let failed = actions.iter().any(|a| matches!(a, Action::Failed(_)));
    let pool_left = entries
        .iter()
        .zip(&actions)
        .any(|(e, a)| e.member.is_some() && !matches!(a, Action::Removed));
    if args.force && !failed && !pool_left && rt.warm_pool_size() == 0 {
        rt.forget_drained_pool().map_err(GcError::WarmPool)?;
    }
    let rows: Vec<(&GcEntry, Action)> = entries.iter().zip(actions).collect();
    let output = if args.json {
        json(rt.node(), &rows, args.force, failed)
    } else {
        text(rt.node(), &rows, args.force)
    };
    Ok(Report { output, failed })
}

/// Destroys each orphan of `entries` (re-checked by the library first);
/// the rest are kept.
pub fn remove(rt: &PveBackend, entries: &[GcEntry]) -> Vec<Action> {
    entries
        .iter()
        .map(|e| {
            if e.verdict != CtVerdict::Orphan {
                return Action::Keep;
            }
            match rt.gc_remove(e) {
                Ok(true) => Action::Removed,
                Ok(false) => Action::Skipped,
                Err(err) => Action::Failed(error_chain(&err)),
            }
        })
        .collect()
}

fn verdict(v: &CtVerdict) -> &'static str {
    match v {
        CtVerdict::Live => "live",
        CtVerdict::Orphan => "orphan",
        CtVerdict::Foreign => "foreign",
        CtVerdict::PoolMember => "pool",
    }
}

fn container(e: &GcEntry) -> String {
    or_dash(e.owner.as_ref().map(|(ns, id)| format!("{ns}/{id}")))
}

fn text(node: &str, rows: &[(&GcEntry, Action)], force: bool) -> String {
    if rows.is_empty() {
        return format!("no CTs tagged lxcri on node {node}\n");
    }
    let mut lines = vec![["VMID", "STATUS", "CONTAINER", "VERDICT", "REASON"]
        .map(String::from)
        .to_vec()];
    for (e, _) in rows {
        lines.push(vec![
            e.vmid.to_string(),
            or_dash(Some(e.status.as_str()).filter(|s| !s.is_empty())),
            container(e),
            verdict(&e.verdict).to_string(),
            e.reason.clone(),
        ]);
    }
    let mut out = crate::table::render(&lines);
    out.push('\n');
    let (mut would, mut removed, mut skipped, mut failed) = (0, 0, 0, 0);
    for (e, action) in rows {
        let ct = format!("CT {} ({})", e.vmid, container(e));
        let line = match action {
            Action::Keep => continue,
            Action::WouldRemove => {
                would += 1;
                format!("would remove {ct}")
            }
            Action::Removed => {
                removed += 1;
                format!("removed {ct}")
            }
            Action::Skipped => {
                skipped += 1;
                format!("skipped {ct}: no longer an orphan")
            }
            Action::Failed(err) => {
                failed += 1;
                format!("failed to remove {ct}: {err}")
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    let summary = if would + removed + skipped + failed == 0 {
        "no orphans".to_string()
    } else if force {
        format!("removed {removed}, skipped {skipped}, failed {failed}")
    } else {
        format!("dry run: nothing removed; `lxcri gc --force` removes the {would} orphan(s)")
    };
    out.push_str(&summary);
    out.push('\n');
    out
}

fn json(node: &str, rows: &[(&GcEntry, Action)], force: bool, failed: bool) -> String {
    let cts: Vec<_> = rows
        .iter()
        .map(|(e, action)| {
            let (namespace, id) = match &e.owner {
                Some((ns, id)) => (Some(ns), Some(id)),
                None => (None, None),
            };
            let mut v = serde_json::json!({
                "vmid": e.vmid,
                "status": e.status,
                "namespace": namespace,
                "id": id,
                "verdict": verdict(&e.verdict),
                "reason": e.reason,
                "action": action.as_str(),
            });
            if let Action::Failed(err) = action {
                v["error"] = serde_json::Value::from(err.as_str());
            }
            v
        })
        .collect();
    let doc = serde_json::json!({
        "node": node,
        "dry_run": !force,
        "ok": !failed,
        "cts": cts,
    });
    let mut out = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests;
