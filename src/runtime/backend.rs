//! The seam where backends plug in: `lxc` (the `lxc-*` tools on any Linux
//! host) and `pve` (CTs made through the Proxmox VE API). A backend is a
//! small set of steps; the lifecycle around them (the bundle, the init
//! rendezvous, the order of rollback and teardown) is
//! [`super::Runtime`]'s and written once.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use super::bundle::{BundleUndo, PreparedBundle};
use super::container::{Container, CreateRequest};
use super::control::{self, SignalNumber};
use super::error::{Result, RuntimeError};
use crate::cgroup::{CgroupPath, CgroupStats, ContainerCgroup};
use crate::config::BackendKind;
use crate::plan::NetworkPlan;
use crate::pve::client::ClientStats;
use crate::state::ContainerRecord;

/// A way of running containers on this node.
pub trait Backend: Send + Sync + Debug {
    fn kind(&self) -> BackendKind;

    /// The counters of the backend's API client, if it has one (pve).
    fn api_stats(&self) -> Option<Arc<ClientStats>> {
        None
    }

    /// Begins a create: fails if the backend already has this container.
    fn begin_create<'a>(&'a self, req: &'a CreateRequest) -> Result<Box<dyn CreateSteps + 'a>>;

    /// The container's own rootfs volume, by the name the backend gave it
    /// (`record` is `None` when the container has no state left).
    fn volume(&self, namespace: &str, id: &str, record: Option<&ContainerRecord>)
        -> Option<String>;

    /// Kills every process of the container; a stopped (or never made)
    /// one is fine.
    fn stop(&self, namespace: &str, id: &str, record: Option<&ContainerRecord>) -> Result<()>;

    /// Stops the container and removes what the backend made for it (the
    /// LXC container, the CT), before the rootfs and state go. Idempotent.
    fn teardown(&self, namespace: &str, id: &str, record: Option<&ContainerRecord>) -> Result<()>;

    /// Sends `signal` to the container's init, or with `all` to every
    /// process in its cgroup.
    fn kill(&self, c: &Container, signal: SignalNumber, all: bool) -> Result<()> {
        control::signal(c, signal, all)
    }

    /// Applies new resource limits to the running container.
    fn update(&self, c: &Container, resources: &LinuxResources) -> Result<()> {
        control::update_cgroup(c, resources)
    }

    /// Freezes every process of the container.
    fn pause(&self, c: &Container) -> Result<()> {
        Ok(c.cgroup()?.freeze()?)
    }

    fn resume(&self, c: &Container) -> Result<()> {
        Ok(c.cgroup()?.thaw()?)
    }

    /// Resource usage from the container's cgroup.
    fn stats(&self, c: &Container) -> Result<CgroupStats> {
        Ok(CgroupStats::read(c.cgroup()?))
    }

    /// Every process of the container.
    fn processes(&self, c: &Container) -> Result<Vec<i32>> {
        Ok(c.cgroup()?.procs()?)
    }
}

/// The backend's part of one create, in the order [`super::Runtime`]
/// runs it. Each step remembers what it made, so [`CreateSteps::rollback`]
/// undoes exactly that; the bundle is undone after it.
pub trait CreateSteps {
    /// The container's own rootfs volume, when it can be named before
    /// anything is made (the pve backend names it after the VMID).
    fn volume(&self) -> Option<String>;

    /// The LXC monitor's cgroup when the container's own may go where
    /// `linux.cgroupsPath` says (LXC places both or neither); `None`: the
    /// backend names the container's cgroups itself (pve: `lxc/VMID`).
    fn lxc_monitor_cgroup(&self) -> Option<CgroupPath> {
        None
    }

    /// Translates and checks everything this backend will write, from the
    /// planned bundle; makes nothing outside the runtime directory, so bad
    /// input never reaches LXC or PVE.
    fn configure(&mut self, bundle: &PreparedBundle) -> Result<()>;

    /// Reserves the backend's name for the container (LXC: its name; PVE: a
    /// VMID, won by creating the CT) and records it. `save` writes a record
    /// to disk: what the backend is about to take on the container's
    /// behalf is saved first, so that a shim killed in the middle leaves a
    /// record naming it for containerd's cleanup.
    fn reserve(
        &mut self,
        record: &mut ContainerRecord,
        save: &dyn Fn(&ContainerRecord) -> Result<()>,
    ) -> Result<()>;

    /// Writes the backend's config of the container (LXC: its config file;
    /// PVE: the node-local part of `VMID.conf`). A rootfs volume made here
    /// goes into `undo`.
    fn write_config(&mut self, bundle: &PreparedBundle, undo: &mut BundleUndo) -> Result<()>;

    /// Starts the container; its init then connects.
    fn start(&mut self) -> Result<()>;

    /// Whether the backend plugs these NICs itself when it starts the
    /// container (PVE, a CT's `netN`); otherwise lxcri plugs them once the
    /// init is ready.
    fn backend_plugs(&self, _network: &NetworkPlan) -> bool {
        false
    }

    /// How long the init may take to report ready after `start`, given
    /// how long it may take once the container runs.
    fn ready_timeout(&self, init: Duration) -> Duration {
        init
    }

    /// Whether the container still runs, or may still come up, while its
    /// init is awaited.
    fn is_running(&self) -> bool;

    /// The error when the container stopped (or could not start) before
    /// its init was ready.
    fn stopped_early(&self) -> RuntimeError;

    /// The init reported ready.
    fn ready(&self) {}

    /// The container's cgroup, found from its ready init: a backend that
    /// placed it at the spec's path records it as the one to remove later.
    fn claim_cgroup(&self, _cgroup: &ContainerCgroup) -> Result<()> {
        Ok(())
    }

    /// The name of the cgroup one level below the container's own that
    /// holds its processes, when the backend starts it that way (see
    /// [`crate::cgroup::ContainerCgroup::with_inner`]).
    fn cgroup_inner_dir(&self) -> Option<&'static str> {
        None
    }

    /// Undoes what `reserve`, `write_config` and `start` made.
    fn rollback(&mut self);
}
