//! Finding CTs lxcri made whose container is gone (`lxcri gc`).
//!
//! A CT is lxcri's when it carries the `lxcri` tag, its VMID is in
//! `vmid_range` and its description names a containerd `namespace/id`.
//! It is live while that container's state record exists on this node
//! (containerd still knows the task; create saves it before PVE hears of
//! the CT) and names this VMID or none yet (a create in progress). Everything else tagged `lxcri` is reported, but
//! only orphans are ever removed.

use super::{CtOwner, PveBackend};
use crate::pve::config::Tag;
use crate::runtime::error::Result;

/// What `gc` concluded about one CT of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtVerdict {
    /// Its container is live: kept.
    Live,
    /// Its container is gone: removed by `gc --force`.
    Orphan,
    /// Tagged `lxcri` but not provably lxcri's (outside the range, or a
    /// description lxcri did not write): kept, for an admin to look at.
    Foreign,
}

/// One `lxcri`-tagged CT of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcEntry {
    pub vmid: u32,
    pub status: String,
    /// The containerd `namespace/id` its description names.
    pub owner: Option<(String, String)>,
    pub verdict: CtVerdict,
    /// Why, in words.
    pub reason: String,
}

impl PveBackend {
    /// Every `lxcri`-tagged CT on this node, with its verdict.
    pub fn gc_scan(&self) -> Result<Vec<GcEntry>> {
        let api = self.api()?;
        let cts = api.list(&self.node).map_err(super::api_err(format!(
            "listing the CTs of node {}",
            self.node
        )))?;
        let mut out = Vec::new();
        for ct in cts {
            if !ct.tag_list().contains(&Tag::LXCRI) {
                continue;
            }
            out.push(self.judge(ct.vmid, ct.status.unwrap_or_default())?);
        }
        out.sort_by_key(|e| e.vmid);
        Ok(out)
    }

    fn judge(&self, vmid: u32, status: String) -> Result<GcEntry> {
        let entry = |owner, verdict, reason: String| GcEntry {
            vmid,
            status: status.clone(),
            owner,
            verdict,
            reason,
        };
        let owner = match self.ct_owner(vmid) {
            Ok(o) => o,
            // One unreadable config must not stop the scan of the others.
            Err(e) => {
                return Ok(entry(
                    None,
                    CtVerdict::Foreign,
                    format!("config unreadable: {}", crate::error_chain(&e)),
                ))
            }
        };
        let range = self.config.pve.vmid_range;
        if !range.contains(vmid) {
            let named = match owner {
                CtOwner::Container { namespace, id } => Some((namespace, id)),
                _ => None,
            };
            return Ok(entry(
                named,
                CtVerdict::Foreign,
                format!("outside vmid_range {range}"),
            ));
        }
        let (namespace, id) = match owner {
            CtOwner::Gone => {
                return Ok(entry(
                    None,
                    CtVerdict::Foreign,
                    "no config on this node".into(),
                ))
            }
            CtOwner::Foreign => {
                return Ok(entry(
                    None,
                    CtVerdict::Foreign,
                    "its description was not written by lxcri".into(),
                ))
            }
            // Whose it is shows once the task has written the config.
            CtOwner::BeingCreated => {
                return Ok(entry(
                    None,
                    CtVerdict::Foreign,
                    "PVE is creating it (lock: create); look again later".into(),
                ))
            }
            CtOwner::Container { namespace, id } => (namespace, id),
        };
        let owner = Some((namespace.clone(), id.clone()));
        let record = match self.store.load(&namespace, &id) {
            Ok(r) => r,
            // An unreadable record: not provably gone, so kept.
            Err(e) => {
                return Ok(entry(
                    owner,
                    CtVerdict::Live,
                    format!("state of {namespace}/{id} unreadable: {e}"),
                ))
            }
        };
        Ok(match record {
            None => entry(
                owner,
                CtVerdict::Orphan,
                format!("container {namespace}/{id} has no state on this node"),
            ),
            Some(r) if r.vmid.is_some_and(|v| v != vmid) => entry(
                owner,
                CtVerdict::Orphan,
                format!(
                    "container {namespace}/{id} runs as CT {}",
                    r.vmid.unwrap_or_default()
                ),
            ),
            Some(r) if r.vmid.is_none() => entry(
                owner,
                CtVerdict::Live,
                format!("container {namespace}/{id} is being created"),
            ),
            Some(_) => entry(
                owner,
                CtVerdict::Live,
                format!("container {namespace}/{id}"),
            ),
        })
    }

    /// Destroys an orphan found by [`PveBackend::gc_scan`], re-checking
    /// first that it still is one. One that PVE holds locked (a backup)
    /// is reported at once, not waited for: the next `gc` gets it.
    pub fn gc_remove(&self, vmid: u32) -> Result<bool> {
        let status = String::new();
        let again = self.judge(vmid, status)?;
        let (CtVerdict::Orphan, Some((namespace, id))) = (&again.verdict, &again.owner) else {
            return Ok(false);
        };
        self.destroy_ct_if_ours(vmid, namespace, id, std::time::Duration::ZERO)?;
        Ok(true)
    }
}
