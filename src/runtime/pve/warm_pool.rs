//! The warm pool (`pve.warm_pool_size`): stopped CTs of this node, created
//! ahead with only what a create fixes (see [`PoolClaim`]), so that a
//! container's create is a claim, one `PUT .../config`, the node-local
//! `VMID.conf` edit and a start: no create task on its critical path.
//!
//! - Who owns a CT is its description, as for every CT of lxcri's: a
//!   member's names its fingerprint, a claimed one its container.
//! - A claim records the VMID in the container's state first, then turns
//!   the description into the container's under PVE's config lock, if the
//!   CT still is a free member of the right fingerprint. The lock makes the
//!   check-and-set atomic between shims; the record makes teardown and
//!   `lxcri gc` find the CT once it is the container's, and a shim killed
//!   between the two leaves a member that is still nobody's.
//! - A refill runs in a thread of the shim after a create started its CT,
//!   one per node at a time (a flock in the pool's directory), and creates
//!   members until the node has `warm_pool_size` of the last create's
//!   fingerprint. PVE's create task finishes on its own, so a refill killed
//!   half-way leaves a member (or nothing), never an unnamed CT.
//! - The node-local state (`RUNTIME_ROOT/.pve-warm-pool/NODE-HASH/pool.json`,
//!   HASH of `pve.config_dir`: one pool per PVE node lxcri drives, which
//!   tests with several stand-ins on one host need) is only
//!   a hint written by refills: where claims look first, the fingerprint
//!   refills make, and the PVE release, so that `GET /version` is asked by
//!   refills rather than by every new shim.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::api::CtApi;
use super::create::CreateAttempts;
use super::{read_owner, CtOwner, PveBackend};
use crate::pve::client::PveError;
use crate::pve::config::{
    update_node_config, CreateParams, Description, MemberFingerprint, NodePaths, PoolClaim,
    PveVersion,
};
use crate::pve::vmid::{VmidAllocator, VmidError, VmidRange};
use crate::runtime::crash_points::{reached, CrashPoint};
use crate::runtime::error::Result;
use crate::state::ContainerRecord;

/// The pool's directory under the runtime root.
/// A dot name: never a containerd namespace, so no state scan reads it.
const POOL_DIR: &str = ".pve-warm-pool";
const STATE_FILE: &str = "pool.json";
const REFILL_LOCK: &str = "refill.lock";
/// How long a release read by a refill stands in for `GET /version`. A
/// node's upgrade restarts nothing of lxcri's, so the cache must age; every
/// refill (one per create) reads it again.
const VERSION_TTL: Duration = Duration::from_secs(600);
/// A refill waits this long for one running before it.
const REFILL_LOCK_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum WarmPoolError {
    #[error("warm pool state {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("waited {}s for the warm pool's refill lock {path}", waited.as_secs())]
    LockTimeout { path: PathBuf, waited: Duration },
    #[error("PVE API: {action}")]
    Api {
        action: String,
        #[source]
        source: Box<PveError>,
    },
    #[error("creating a warm pool member")]
    Create(#[source] VmidError),
}

/// The node-local hint of the pool, written by refills.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolState {
    /// Members of `wanted` as the last refill counted and made them.
    pub members: Vec<u32>,
    /// The fingerprint refills make members of: the last create's.
    pub wanted: Option<String>,
    /// The PVE release (`9.1`) and when it was read (seconds since the epoch).
    pub version: Option<String>,
    pub version_read_at: u64,
}

impl PoolState {
    fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// The state, or an empty one: a missing or damaged hint only costs
    /// claims (they fall back to a create) until the next refill.
    pub fn read(dir: &Path) -> PoolState {
        let path = Self::path(dir);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "warm pool state unreadable; ignoring it");
                PoolState::default()
            }),
            Err(_) => PoolState::default(),
        }
    }

    fn write(&self, dir: &Path) -> std::result::Result<(), WarmPoolError> {
        let path = Self::path(dir);
        let io = |source| WarmPoolError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join(format!(".{STATE_FILE}.{}", std::process::id()));
        let text = serde_json::to_vec(self).expect("the state serializes");
        fs::write(&tmp, text).map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)
    }

    /// The cached release, while younger than [`VERSION_TTL`].
    pub fn fresh_version(&self, now: u64) -> Option<PveVersion> {
        let age = now.checked_sub(self.version_read_at)?;
        if age > VERSION_TTL.as_secs() {
            return None;
        }
        PveVersion::parse(self.version.as_deref()?).ok()
    }

    /// The fingerprint members are made of, if one was recorded.
    pub fn wanted(&self) -> Option<MemberFingerprint> {
        self.wanted.as_deref().and_then(MemberFingerprint::parse)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where the pool of `node` (whose CT configs are under `config_dir`)
/// keeps its state and refill lock, under `runtime_root`.
pub fn pool_dir(runtime_root: &Path, node: &str, config_dir: &Path) -> PathBuf {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(config_dir.as_os_str().as_encoded_bytes());
    let short: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    runtime_root.join(POOL_DIR).join(format!("{node}-{short}"))
}

/// Whether a refill of the pool in `dir` runs now (it holds the refill
/// lock until it has listed the members it made, which claims take from).
pub fn is_refilling(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(REFILL_LOCK)) else {
        return false;
    };
    matches!(
        Flock::lock(file, FlockArg::LockExclusiveNonblock),
        Err((_, nix::errno::Errno::EWOULDBLOCK))
    )
}

impl PveBackend {
    /// Where this node's pool keeps its state and refill lock.
    pub fn warm_pool_dir(&self) -> PathBuf {
        pool_dir(
            &self.config.runtime_root,
            &self.node,
            &self.paths.config_dir,
        )
    }

    /// `pve.warm_pool_size`.
    pub fn warm_pool_size(&self) -> u32 {
        self.config.pve.warm_pool_size
    }

    /// Removes the pool's node-local state once `lxcri gc` drained a pool
    /// of size 0 (the state only serves a pool that is on).
    pub fn forget_drained_pool(&self) -> std::result::Result<(), WarmPoolError> {
        let dir = self.warm_pool_dir();
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(WarmPoolError::Io {
                path: dir,
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// The PVE release a refill read lately, when the pool is on.
    pub(super) fn cached_version(&self) -> Option<PveVersion> {
        if self.config.pve.warm_pool_size == 0 {
            return None;
        }
        PoolState::read(&self.warm_pool_dir()).fresh_version(unix_now())
    }

    /// Takes a free member of `claim`'s fingerprint for the container of
    /// `record`, or `None` when there is none (the create then makes its
    /// CT). The VMID is saved in the record before the member is touched.
    pub(super) fn claim_member(
        &self,
        claim: &PoolClaim,
        record: &mut ContainerRecord,
        save: &dyn Fn(&ContainerRecord) -> Result<()>,
    ) -> Result<Option<u32>> {
        let before = record.clone();
        for vmid in PoolState::read(&self.warm_pool_dir()).members {
            if !self.is_free_member(vmid, &claim.fingerprint) {
                continue;
            }
            record.vmid = Some(vmid);
            record.node = Some(self.node.clone());
            save(record)?;
            match self.take_member(vmid, claim) {
                Ok(true) => {
                    reached(&record.namespace, &record.id, CrashPoint::Claimed);
                    return Ok(Some(vmid));
                }
                Ok(false) => tracing::debug!(vmid, "pool member taken by another create"),
                Err(e) => {
                    tracing::warn!(vmid, error = %crate::error_chain(&e), "claiming a pool member")
                }
            }
            *record = before.clone();
            save(record)?;
        }
        Ok(None)
    }

    /// A cheap look without the lock: claims only lock members that were
    /// free a moment ago.
    fn is_free_member(&self, vmid: u32, fingerprint: &MemberFingerprint) -> bool {
        matches!(read_owner(&self.paths, vmid), Ok(CtOwner::PoolMember(fp)) if &fp == fingerprint)
    }

    /// Under PVE's config lock: the CT is still a free, stopped member of
    /// the fingerprint, and its description becomes the container's.
    fn take_member(&self, vmid: u32, claim: &PoolClaim) -> crate::pve::config::Result<bool> {
        update_node_config(&self.paths, vmid, |file| {
            let free = file.get("lock").is_none()
                && Description::pool_fingerprint(&file.description()).as_ref()
                    == Some(&claim.fingerprint)
                && !self.lxc.is_running(&vmid.to_string());
            if free {
                file.set_description(claim.description.as_str());
            }
            Ok(free)
        })
    }

    /// Takes member `vmid` out of the pool for `lxcri gc` (its description
    /// says `drained`, so no claim takes it and a later gc removes it if
    /// this destroy fails), if it still is a member of `fingerprint`.
    pub(super) fn drain_member(&self, vmid: u32, fingerprint: &MemberFingerprint) -> Result<bool> {
        let drained = MemberFingerprint::drained();
        let taken = update_node_config(&self.paths, vmid, |file| {
            let fp = Description::pool_fingerprint(&file.description());
            if fp.as_ref() != Some(fingerprint) || file.get("lock").is_some() {
                return Ok(false);
            }
            file.set_description(Description::pool_member(&drained).as_str());
            Ok(true)
        })
        .map_err(|source| super::PveBackendError::NodeConfig { vmid, source })?;
        if !taken {
            return Ok(false);
        }
        let api = self.api()?;
        self.destroy_ct(&api, vmid, Duration::ZERO)?;
        self.remove_stale_lxc_leftovers(vmid)?;
        Ok(true)
    }

    /// Starts a refill of the pool with members fitting `claim`, in a
    /// thread: it never holds a create back, and its failures are logged.
    pub(super) fn start_refill(&self, api: Arc<dyn CtApi>, claim: &PoolClaim) {
        let refill = Refill {
            api,
            node: self.node.clone(),
            paths: self.paths.clone(),
            dir: self.warm_pool_dir(),
            size: self.config.pve.warm_pool_size,
            range: self.config.pve.vmid_range,
            member: claim.member.clone(),
            fingerprint: claim.fingerprint.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("pve-pool-refill".into())
            .spawn(move || match refill.run() {
                Ok(0) => {}
                Ok(made) => tracing::info!(made, "warm pool refilled"),
                Err(e) => {
                    tracing::warn!(error = %crate::error_chain(&e), "warm pool refill failed")
                }
            });
        match spawned {
            Ok(handle) => {
                let mut running = REFILLS.lock().unwrap_or_else(|e| e.into_inner());
                running.retain(|h| !h.is_finished());
                running.push(handle);
            }
            Err(e) => tracing::warn!(error = %e, "starting the warm pool refill"),
        }
    }
}

/// This process's refill threads (see [`finish_refills`]).
static REFILLS: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits up to `wait` for this process's refills to end. A shim calls it
/// before it exits, so that a pod removed right after its start still
/// leaves the pool refilled; a refill still running then ends with the
/// process (the create tasks it started finish in PVE).
pub fn finish_refills(wait: Duration) {
    let deadline = Instant::now() + wait;
    let running = std::mem::take(&mut *REFILLS.lock().unwrap_or_else(|e| e.into_inner()));
    for handle in running {
        while !handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if handle.is_finished() {
            let _ = handle.join();
        }
    }
}

/// One refill: fills the node's pool up to `size` members of `fingerprint`.
struct Refill {
    api: Arc<dyn CtApi>,
    node: String,
    paths: NodePaths,
    dir: PathBuf,
    size: u32,
    range: VmidRange,
    member: CreateParams,
    fingerprint: MemberFingerprint,
}

impl Refill {
    fn run(&self) -> std::result::Result<u32, WarmPoolError> {
        let _lock = RefillLock::acquire(&self.dir, REFILL_LOCK_WAIT)?;
        let api_err = |action: &str| {
            let action = action.to_string();
            move |source| WarmPoolError::Api {
                action,
                source: Box::new(source),
            }
        };
        let version = self
            .api
            .version()
            .map_err(api_err("reading the PVE version"))?;
        let mut state = PoolState {
            members: self.members()?,
            wanted: Some(self.fingerprint.to_string()),
            version: Some(version.to_string()),
            version_read_at: unix_now(),
        };
        state.write(&self.dir)?;
        let allocator = VmidAllocator::new(self.range);
        let mut made = 0;
        while state.members.len() < self.size as usize {
            let attempts = CreateAttempts {
                api: self.api.as_ref(),
                node: &self.node,
                params: &self.member,
                before_create: &|_| Ok(()),
            };
            let vmid = allocator
                .allocate(&attempts)
                .map_err(WarmPoolError::Create)?;
            tracing::debug!(vmid, "created a warm pool member");
            state.members.push(vmid);
            state.write(&self.dir)?;
            made += 1;
        }
        Ok(made)
    }

    /// The node's free members of the fingerprint, by VMID.
    fn members(&self) -> std::result::Result<Vec<u32>, WarmPoolError> {
        let cts = self
            .api
            .list(&self.node)
            .map_err(|source| WarmPoolError::Api {
                action: format!("listing the CTs of node {}", self.node),
                source: Box::new(source),
            })?;
        let mut out: Vec<u32> = cts
            .into_iter()
            .filter(|ct| self.range.contains(ct.vmid))
            .filter(|ct| ct.lock.is_none() && ct.status.as_deref() == Some("stopped"))
            .filter(|ct| {
                matches!(read_owner(&self.paths, ct.vmid),
                    Ok(CtOwner::PoolMember(fp)) if fp == self.fingerprint)
            })
            .map(|ct| ct.vmid)
            .collect();
        out.sort_unstable();
        Ok(out)
    }
}

/// The node-wide refill lock: one refill at a time, the others wait and
/// then find the pool full.
struct RefillLock {
    _lock: Flock<File>,
}

impl RefillLock {
    fn acquire(dir: &Path, wait: Duration) -> std::result::Result<Self, WarmPoolError> {
        let path = dir.join(REFILL_LOCK);
        let io = |source| WarmPoolError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let started = Instant::now();
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(Self { _lock: lock }),
                Err((f, nix::errno::Errno::EWOULDBLOCK)) if started.elapsed() < wait => {
                    file = f;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(WarmPoolError::LockTimeout {
                        path,
                        waited: started.elapsed(),
                    })
                }
                Err((_, errno)) => return Err(io(std::io::Error::from(errno))),
            }
        }
    }
}

#[cfg(test)]
mod tests;
