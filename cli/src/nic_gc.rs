//! `lxcri gc`'s network part: host ends (`lx<8 hex>i<N>`, alias
//! `lxcri:<namespace>/<id>`) and Open vSwitch ports
//! (`external_ids:lxcri-owner`) whose container is gone. The verdicts and
//! the removal are the library's ([`Runtime::scan_nic_leftovers`]);
//! without `--force` nothing is removed. An Open vSwitch database out of
//! reach is one line of the report, and fails the run only when a state
//! record names an OVS port: then ports that exist went unseen.

use lxcri::config::Config;
use lxcri::error_chain;
use lxcri::network::host::{HostNetwork, KernelNetwork};
use lxcri::runtime::nic_leftovers::{NicLeftover, OvsCheck};
use lxcri::runtime::Runtime;

use crate::container_gc::Outcome;
use crate::table::{self, or_dash};

/// The network part of a gc run, rendered.
#[derive(Debug)]
pub struct NicReport {
    pub text: String,
    pub json: serde_json::Value,
    pub failed: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("listing lxcri's NICs: {0}")]
pub struct NicScanError(String);

/// The network part over the node's netlink and `network.ovsdb`.
pub fn run(rt: &Runtime, config: &Config, force: bool) -> Result<NicReport, NicScanError> {
    let mut host =
        KernelNetwork::open(&config.network.ovsdb).map_err(|e| NicScanError(error_chain(&e)))?;
    collect(rt, &mut host, &config.network.ovsdb.to_string(), force)
}

pub fn collect(
    rt: &Runtime,
    host: &mut dyn HostNetwork,
    ovsdb: &str,
    force: bool,
) -> Result<NicReport, NicScanError> {
    let scan = rt
        .scan_nic_leftovers(host)
        .map_err(|e| NicScanError(error_chain(&e)))?;
    let outcomes: Vec<Outcome> = scan
        .nics
        .iter()
        .map(|n| match (n.orphan, force) {
            (false, _) => Outcome::Keep,
            (true, false) => Outcome::WouldRemove,
            (true, true) => match rt.remove_nic_leftover(host, n) {
                Ok(true) => Outcome::Removed,
                Ok(false) => Outcome::Skipped,
                Err(e) => Outcome::Failed(error_chain(&e)),
            },
        })
        .collect();
    let failed = outcomes.iter().any(|o| matches!(o, Outcome::Failed(_)))
        || matches!(scan.ovs, OvsCheck::Failed { .. });
    Ok(NicReport {
        text: text(&scan.nics, &outcomes, &scan.ovs, force),
        json: json(&scan.nics, &outcomes, &scan.ovs, ovsdb),
        failed,
    })
}

fn kind(n: &NicLeftover) -> &'static str {
    match (n.link, n.port) {
        (true, true) => "veth+ovs-port",
        (true, false) => "veth",
        _ => "ovs-port",
    }
}

fn text(nics: &[NicLeftover], outcomes: &[Outcome], ovs: &OvsCheck, force: bool) -> String {
    let mut out = if nics.is_empty() {
        "no NICs lxcri plugged on this node\n".to_string()
    } else {
        rows(nics, outcomes, force)
    };
    match ovs {
        OvsCheck::Checked => {}
        OvsCheck::Unchecked { why } => {
            out.push_str(&format!("did not check Open vSwitch ports: {why}\n"));
        }
        OvsCheck::Failed { why, needed_by } => out.push_str(&format!(
            "failed to check Open vSwitch ports, which the state of {} names: {why}\n",
            needed_by.join(", ")
        )),
    }
    out
}

fn rows(nics: &[NicLeftover], outcomes: &[Outcome], force: bool) -> String {
    let mut lines = vec![[
        "HOST END",
        "KIND",
        "BRIDGE",
        "CONTAINER",
        "VERDICT",
        "REASON",
    ]
    .map(String::from)
    .to_vec()];
    for n in nics {
        lines.push(vec![
            n.host.clone(),
            kind(n).into(),
            or_dash(n.bridge.clone()),
            n.owner.clone(),
            if n.orphan { "orphan" } else { "live" }.into(),
            n.reason.clone(),
        ]);
    }
    let mut out = table::render(&lines);
    out.push('\n');
    let mut orphans = 0;
    for (n, o) in nics.iter().zip(outcomes) {
        let name = format!("NIC {} ({})", n.host, n.owner);
        let line = match o {
            Outcome::Keep => continue,
            Outcome::WouldRemove => format!("would remove {name}"),
            Outcome::Removed => format!("removed {name}"),
            Outcome::Skipped => format!("skipped {name}: gone, or no orphan any more"),
            Outcome::Failed(e) => format!("failed to remove {name}: {e}"),
        };
        orphans += 1;
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&match (orphans, force) {
        (0, _) => "no orphaned NICs\n".to_string(),
        (_, true) => String::new(),
        (n, false) => {
            format!(
                "dry run: nothing removed; `lxcri gc --force` removes the {n} orphaned NIC(s)\n"
            )
        }
    });
    out
}

fn json(
    nics: &[NicLeftover],
    outcomes: &[Outcome],
    ovs: &OvsCheck,
    ovsdb: &str,
) -> serde_json::Value {
    let rows: Vec<_> = nics
        .iter()
        .zip(outcomes)
        .map(|(n, o)| {
            let mut v = serde_json::json!({
                "host": n.host,
                "kind": kind(n),
                "bridge": n.bridge,
                "owner": n.owner,
                "verdict": if n.orphan { "orphan" } else { "live" },
                "reason": n.reason,
                "action": o.as_str(),
            });
            if let Outcome::Failed(e) = o {
                v["error"] = serde_json::Value::from(e.as_str());
            }
            v
        })
        .collect();
    let (checked, error) = match ovs {
        OvsCheck::Checked => (true, None),
        OvsCheck::Unchecked { why } | OvsCheck::Failed { why, .. } => (false, Some(why)),
    };
    serde_json::json!({
        "nics": rows,
        "ovs": { "ovsdb": ovsdb, "checked": checked, "error": error },
    })
}

#[cfg(test)]
mod tests;
