//! What containers leave on the node when nobody cleans up after them (a
//! shim killed and containerd's `<shim> delete` never run, or failed): the
//! state record and runtime directory, the LXC container and its cgroups,
//! the rootfs volume. `lxcri gc` finds them here and removes them (their
//! NICs: `nic_leftovers.rs`, by the verdicts made here).
//!
//! A container is an orphan when containerd has forgotten it (its bundle
//! directory is gone: containerd removes it on delete, after unmounting the
//! rootfs) and its init no longer runs. An LXC container in lxcri's lxcpath
//! with no state record is an orphan when LXC does not run it.

use std::path::Path;

use super::container::owner;
use super::error::Result;
use super::lifecycle::Runtime;
use super::lxc::split_container_name;
use crate::config::BackendKind;
use crate::lxc::LxcTools;
use crate::state::{ContainerRecord, UnreadableRecord};
use crate::userns::IdSlots;

/// One container lxcri holds something of on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub namespace: String,
    pub id: String,
    /// `lxc` or `pve`, as recorded (`lxc` for an LXC container alone).
    pub backend: String,
    pub what: LeftoverKind,
    pub orphan: bool,
    /// Why, in words.
    pub reason: String,
}

/// Whether a container is gone, and why (or why not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Verdict {
    pub orphan: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftoverKind {
    /// A state record (and what it names).
    State,
    /// An LXC container directory with no state record.
    LxcContainer,
    /// A slot of `userns.pool` held for a container with no state record
    /// (a create killed between taking it and recording it).
    UsernsSlot(u32),
}

impl Runtime {
    /// Every container with state on this node, and every LXC container in
    /// `lxc.lxcpath` without state, with its verdict.
    pub fn scan_leftovers(&self) -> Result<Vec<Leftover>> {
        let listing = self.store.list()?;
        let mut out: Vec<Leftover> = listing.records.iter().map(judge_record).collect();
        out.extend(listing.unreadable.iter().map(unreadable_record));
        for name in self.lxc_container_names() {
            let Some((namespace, id)) = split_container_name(&name) else {
                continue;
            };
            // A record, readable or not, speaks for its LXC container.
            if listing.holds(namespace, id) {
                continue;
            }
            let verdict = self.judge_lxc_container(&name);
            out.push(Leftover {
                namespace: namespace.to_string(),
                id: id.to_string(),
                backend: BackendKind::Lxc.as_str().into(),
                what: LeftoverKind::LxcContainer,
                orphan: verdict.orphan,
                reason: verdict.reason,
            });
        }
        for (slot, holder) in IdSlots::new(&self.store.userns_slots_dir()).taken()? {
            let Some((namespace, id)) = holder.split_once('/') else {
                continue;
            };
            // What an unreadable record may name stays with it: an id
            // range freed under a running container would be handed out
            // again.
            if listing.holds(namespace, id) {
                continue;
            }
            out.push(Leftover {
                namespace: namespace.to_string(),
                id: id.to_string(),
                backend: self.config.backend.as_str().into(),
                what: LeftoverKind::UsernsSlot(slot),
                orphan: true,
                reason: format!("holds id range slot {slot} of userns.pool without state"),
            });
        }
        out.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
        Ok(out)
    }

    /// Removes an orphan found by [`Runtime::scan_leftovers`], checking
    /// again first that it still is one. `Ok(false)`: it was not.
    pub fn remove_leftover(&self, l: &Leftover) -> Result<bool> {
        match l.what {
            LeftoverKind::State => {
                let Some(record) = self.store.load(&l.namespace, &l.id)? else {
                    return Ok(false);
                };
                if !judge_record(&record).orphan {
                    return Ok(false);
                }
                // With the backend that made it, whatever the config says now.
                let mut config = self.config.clone();
                config.backend = match record.backend.as_str() {
                    "pve" => BackendKind::Pve,
                    _ => BackendKind::Lxc,
                };
                let runtime = if config.backend == self.config.backend {
                    None
                } else {
                    Some(Runtime::new(config))
                };
                let runtime = runtime.as_ref().unwrap_or(self);
                runtime.destroy(&l.namespace, &l.id, &record.bundle, Some(&record))?;
                Ok(true)
            }
            LeftoverKind::UsernsSlot(slot) => {
                if self.store.load(&l.namespace, &l.id)?.is_some() {
                    return Ok(false);
                }
                super::node_userns::release(&self.store, &l.namespace, &l.id, slot)?;
                Ok(true)
            }
            LeftoverKind::LxcContainer => {
                let name = super::lxc::container_name(&l.namespace, &l.id);
                let lxc = self.lxc_tools();
                if self.store.load(&l.namespace, &l.id)?.is_some() || lxc.is_running(&name) {
                    return Ok(false);
                }
                lxc.remove(&name)?;
                Ok(true)
            }
        }
    }

    /// Before a create: an LXC container of the same name with no state
    /// record that LXC does not run is what a lost run left (the node
    /// rebooted and `/run` went with lxcri's state, while `lxc.lxcpath`
    /// stayed). It goes, as `lxcri gc` would remove it, so that containerd
    /// can start the container again. A create makes its state record
    /// before its LXC container, so a create in progress never looks so.
    pub(super) fn clear_lost_run(&self, namespace: &str, id: &str) -> Result<()> {
        if self.config.backend != BackendKind::Lxc {
            return Ok(());
        }
        // One stat on every create; the record is read only when it matters.
        let name = super::lxc::container_name(namespace, id);
        if !self.config.lxc.lxcpath.join(&name).is_dir()
            || self.store.load(namespace, id)?.is_some()
        {
            return Ok(());
        }
        let verdict = self.judge_lxc_container(&name);
        if verdict.orphan {
            tracing::warn!(container = %name, reason = %verdict.reason, "removing what a lost run of this container left");
            self.lxc_tools().remove(&name)?;
        }
        Ok(())
    }

    /// The verdict on containerd's `namespace/id` by the rules above, for
    /// what lxcri made for it outside its state and LXC container (its
    /// NICs): its state record's, else its LXC container's, else none is
    /// left and it is an orphan.
    pub(super) fn judge_owner(&self, namespace: &str, id: &str) -> Verdict {
        match self.store.load(namespace, id) {
            Ok(Some(record)) => {
                let l = judge_record(&record);
                return Verdict {
                    orphan: l.orphan,
                    reason: l.reason,
                };
            }
            Ok(None) => {}
            // What it names cannot be told: not provably gone.
            Err(e) => {
                return Verdict {
                    orphan: false,
                    reason: format!("state unreadable ({e}): kept"),
                }
            }
        }
        let name = super::lxc::container_name(namespace, id);
        if self.config.lxc.lxcpath.join(&name).is_dir() {
            return self.judge_lxc_container(&name);
        }
        Verdict {
            orphan: true,
            reason: format!("{} has no state and no LXC container", owner(namespace, id)),
        }
    }

    /// An LXC container without state is an orphan unless LXC runs it.
    fn judge_lxc_container(&self, name: &str) -> Verdict {
        let running = self.lxc_tools().is_running(name);
        Verdict {
            orphan: !running,
            reason: if running {
                format!("LXC container {name} runs")
            } else {
                format!("LXC container {name} has no state")
            },
        }
    }

    fn lxc_tools(&self) -> LxcTools {
        LxcTools::new(
            &self.config.lxc.lxcpath,
            self.config.lxc.log_level.lxc_name(),
        )
    }

    /// Names of the container directories in `lxc.lxcpath`.
    fn lxc_container_names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.config.lxc.lxcpath) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }
}

/// A record that cannot be read may name a running init, a VMID, NICs, an
/// id range: nothing of it is provably gone, so it is kept, with what to do.
fn unreadable_record(u: &UnreadableRecord) -> Leftover {
    Leftover {
        namespace: u.namespace.clone(),
        id: u.id.clone(),
        backend: "unknown".into(),
        what: LeftoverKind::State,
        orphan: false,
        reason: format!(
            "state unreadable ({}): kept; containerd's delete of {} removes it, or remove its directory once nothing of it runs",
            u.error,
            owner(&u.namespace, &u.id)
        ),
    }
}

fn judge_record(r: &ContainerRecord) -> Leftover {
    let leftover = |orphan, reason: String| Leftover {
        namespace: r.namespace.clone(),
        id: r.id.clone(),
        backend: r.backend.clone(),
        what: LeftoverKind::State,
        orphan,
        reason,
    };
    let container = owner(&r.namespace, &r.id);
    let init_runs = r.live_init_pid(Path::new("/proc")).is_some();
    if r.bundle.exists() {
        return leftover(
            false,
            format!("containerd has {container} (its bundle exists)"),
        );
    }
    if init_runs {
        return leftover(
            false,
            format!("the init of {container} runs (pid {})", r.pid.unwrap_or(0)),
        );
    }
    leftover(
        true,
        format!("containerd no longer has {container} (its bundle is gone)"),
    )
}
