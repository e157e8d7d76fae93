//! What the runtime says a container is: the request that makes one, the
//! created container with its live handles, and the container the later
//! calls (kill, update, pause, stats, exec) act on.

use std::fs::File;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::error::{Result, RuntimeError};
use super::init_channel::InitConnection;
use crate::cgroup::ContainerCgroup;
use crate::rootfs::RootfsMount;
use crate::state::ContainerRecord;

/// What `create` needs to know.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub namespace: String,
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs_mounts: Vec<RootfsMount>,
}

impl CreateRequest {
    /// The owner mark on what lxcri makes for the container (`namespace/id`).
    pub fn owner(&self) -> String {
        owner(&self.namespace, &self.id)
    }
}

/// A container's owner mark on what lxcri makes for it: ZFS volumes and
/// (in their notes) PVE CTs.
pub fn owner(namespace: &str, id: &str) -> String {
    format!("{namespace}/{id}")
}

/// A container whose init runs: what kill, update, pause, stats and exec
/// act on.
#[derive(Debug, Clone)]
pub struct Container {
    /// As saved in its state record, the init's pid included.
    pub record: ContainerRecord,
    pub spec: Spec,
    /// The directory bind-mounted at `/.lxcri` in the container.
    pub run_dir: PathBuf,
    /// Located from the init when it reported ready.
    pub cgroup: Option<ContainerCgroup>,
}

impl Container {
    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn namespace(&self) -> &str {
        &self.record.namespace
    }

    pub fn bundle(&self) -> &Path {
        &self.record.bundle
    }

    /// Its spec has `poststart` hooks.
    pub fn has_poststart_hooks(&self) -> bool {
        self.spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().as_ref())
            .is_some_and(|l| !l.is_empty())
    }

    /// The longest its `startContainer` hooks may take, which the init
    /// runs between the start byte and the process's `execve`.
    pub fn start_hooks_time(&self) -> std::time::Duration {
        crate::plan::plan_hooks(&self.spec, self.id(), self.bundle())
            .map(|p| p.start_container_time())
            .unwrap_or_default()
    }

    /// The init's host pid.
    pub fn init_pid(&self) -> i32 {
        self.record.pid.unwrap_or(0)
    }

    /// Whether the container made a PID namespace of its own: when its init
    /// ends, the kernel ends every other process in it. One that joined
    /// another's (a pod's) or the host's has processes that outlive it.
    pub fn owns_pid_namespace(&self) -> bool {
        self.spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|nss| {
                nss.iter()
                    .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none())
            })
    }

    pub fn cgroup(&self) -> Result<&ContainerCgroup> {
        self.cgroup
            .as_ref()
            .ok_or_else(|| RuntimeError::NoCgroup(self.record.id.clone()))
    }
}

/// A created container: its init is running and waits for `start`.
#[derive(Debug)]
pub struct CreatedContainer {
    pub container: Container,
    /// The live connection to the init: stdio is handed over next.
    pub init: InitConnection,
    /// The start FIFO, opened read-write and kept so the init's open and
    /// the shim's later write never block or fail.
    pub start_gate: File,
    pub terminal: bool,
    /// The host uid and gid of the container's root when it has a user
    /// namespace ([`crate::lxc::LxcConfig::root_host_ids`]): its stdio
    /// pipes are given to them.
    pub root_ids: Option<(u32, u32)>,
}
