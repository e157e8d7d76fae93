//! `lxcri gc`'s first part: containers containerd no longer has but whose
//! state, LXC container, cgroups or volume lxcri still holds on this node
//! (a shim killed and containerd's cleanup never run). The verdicts and
//! the removal are the library's ([`Runtime::scan_leftovers`]); without
//! `--force` nothing is removed.

use lxcri::error_chain;
use lxcri::runtime::{Leftover, LeftoverKind, Runtime};

use crate::table;

/// The container part of a gc run, rendered.
#[derive(Debug)]
pub struct ContainerReport {
    pub text: String,
    pub json: serde_json::Value,
    pub failed: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("listing lxcri's containers: {0}")]
pub struct ContainerScanError(String);

/// What became of one container (or NIC, [`crate::nic_gc`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Keep,
    WouldRemove,
    Removed,
    Skipped,
    Failed(String),
}

impl Outcome {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Outcome::Keep => "keep",
            Outcome::WouldRemove => "would-remove",
            Outcome::Removed => "removed",
            Outcome::Skipped => "skipped",
            Outcome::Failed(_) => "failed",
        }
    }
}

pub fn collect(rt: &Runtime, force: bool) -> Result<ContainerReport, ContainerScanError> {
    let found = rt
        .scan_leftovers()
        .map_err(|e| ContainerScanError(error_chain(&e)))?;
    let outcomes: Vec<Outcome> = found
        .iter()
        .map(|l| match (l.orphan, force) {
            (false, _) => Outcome::Keep,
            (true, false) => Outcome::WouldRemove,
            (true, true) => match rt.remove_leftover(l) {
                Ok(true) => Outcome::Removed,
                Ok(false) => Outcome::Skipped,
                Err(e) => Outcome::Failed(error_chain(&e)),
            },
        })
        .collect();
    let failed = outcomes.iter().any(|o| matches!(o, Outcome::Failed(_)));
    Ok(ContainerReport {
        text: text(&found, &outcomes, force),
        json: json(&found, &outcomes),
        failed,
    })
}

fn kind(l: &Leftover) -> &'static str {
    match l.what {
        LeftoverKind::State => "state",
        LeftoverKind::LxcContainer => "lxc-container",
        LeftoverKind::UsernsSlot(_) => "userns-slot",
    }
}

fn text(found: &[Leftover], outcomes: &[Outcome], force: bool) -> String {
    if found.is_empty() {
        return "no containers with state on this node\n".into();
    }
    let mut lines = vec![["CONTAINER", "BACKEND", "KIND", "VERDICT", "REASON"]
        .map(String::from)
        .to_vec()];
    for l in found {
        lines.push(vec![
            format!("{}/{}", l.namespace, l.id),
            l.backend.clone(),
            kind(l).into(),
            if l.orphan { "orphan" } else { "live" }.into(),
            l.reason.clone(),
        ]);
    }
    let mut out = table::render(&lines);
    out.push('\n');
    let mut orphans = 0;
    for (l, o) in found.iter().zip(outcomes) {
        let name = format!("container {}/{}", l.namespace, l.id);
        let line = match o {
            Outcome::Keep => continue,
            Outcome::WouldRemove => format!("would remove {name}"),
            Outcome::Removed => format!("removed {name}"),
            Outcome::Skipped => format!("skipped {name}: no longer an orphan"),
            Outcome::Failed(e) => format!("failed to remove {name}: {e}"),
        };
        orphans += 1;
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&match (orphans, force) {
        (0, _) => "no orphaned containers\n".to_string(),
        (_, true) => String::new(),
        (n, false) => {
            format!("dry run: nothing removed; `lxcri gc --force` removes the {n} orphaned container(s)\n")
        }
    });
    out
}

fn json(found: &[Leftover], outcomes: &[Outcome]) -> serde_json::Value {
    let rows: Vec<_> = found
        .iter()
        .zip(outcomes)
        .map(|(l, o)| {
            let mut v = serde_json::json!({
                "namespace": l.namespace,
                "id": l.id,
                "backend": l.backend,
                "kind": kind(l),
                "verdict": if l.orphan { "orphan" } else { "live" },
                "reason": l.reason,
                "action": o.as_str(),
            });
            if let Outcome::Failed(e) = o {
                v["error"] = serde_json::Value::from(e.as_str());
            }
            v
        })
        .collect();
    serde_json::Value::from(rows)
}
