//! Finding CTs lxcri made whose container is gone (`lxcri gc`).
//!
//! A CT is lxcri's when it carries the `lxcri` tag, its VMID is in
//! `vmid_range` and its description names a containerd `namespace/id`.
//! It is live while that container's state record exists on this node
//! (containerd still knows the task; create saves it before PVE hears of
//! the CT) and names this VMID or none yet (a create in progress). Everything else tagged `lxcri` is reported, but
//! only orphans are ever removed.
//!
//! Warm pool members (see `warm_pool`) are drained: a member is an orphan
//! when its fingerprint is not the one refills make now (stale, or
//! `drained` by an earlier gc), when it is not stopped (broken), or when
//! it is one more than `pve.warm_pool_size` (by VMID; so size 0 drains
//! the pool). Removing one takes it out of the pool under PVE's config
//! lock first, so no create can claim it while it goes.

use super::{CtOwner, PoolState, PveBackend};
use crate::pve::config::{MemberFingerprint, Tag};
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
    /// A member of the warm pool, within its size: kept.
    PoolMember,
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
    /// A warm pool member's fingerprint.
    pub member: Option<MemberFingerprint>,
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
        self.judge_members(&mut out);
        Ok(out)
    }

    /// Which members stay: those of the fingerprint refills make (any,
    /// when no refill recorded one), stopped, up to the pool's size.
    fn judge_members(&self, entries: &mut [GcEntry]) {
        let wanted = PoolState::read(&self.warm_pool_dir()).wanted();
        let size = self.config.pve.warm_pool_size as usize;
        let mut kept = 0;
        for e in entries.iter_mut() {
            let Some(fp) = &e.member else {
                continue;
            };
            let reason = if *fp == MemberFingerprint::drained() {
                "warm pool member being drained".to_string()
            } else if let Some(w) = wanted.as_ref().filter(|w| *w != fp) {
                format!("warm pool member of a stale fingerprint {fp} (the pool makes {w})")
            } else if e.status != "stopped" {
                format!("broken warm pool member: {} instead of stopped", e.status)
            } else if kept >= size {
                format!("warm pool member beyond pve.warm_pool_size = {size}")
            } else {
                kept += 1;
                continue;
            };
            e.verdict = CtVerdict::Orphan;
            e.reason = reason;
        }
    }

    fn judge(&self, vmid: u32, status: String) -> Result<GcEntry> {
        let entry = |owner, verdict, reason: String| GcEntry {
            vmid,
            status: status.clone(),
            owner,
            verdict,
            reason,
            member: None,
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
            CtOwner::PoolMember(fp) => {
                let reason = format!("warm pool member ({fp})");
                return Ok(GcEntry {
                    member: Some(fp),
                    ..entry(None, CtVerdict::PoolMember, reason)
                });
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
    /// A warm pool member is drained if it still is a member of the
    /// fingerprint seen.
    pub fn gc_remove(&self, seen: &GcEntry) -> Result<bool> {
        let vmid = seen.vmid;
        if let Some(fp) = &seen.member {
            return self.drain_member(vmid, fp);
        }
        let status = String::new();
        let again = self.judge(vmid, status)?;
        let (CtVerdict::Orphan, Some((namespace, id))) = (&again.verdict, &again.owner) else {
            return Ok(false);
        };
        self.destroy_ct_if_ours(vmid, namespace, id, std::time::Duration::ZERO)?;
        Ok(true)
    }
}
