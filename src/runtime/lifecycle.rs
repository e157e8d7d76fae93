//! [`Runtime`]: one container lifecycle over whichever backend the config
//! names. Create is in `create.rs`; here are the factory, destroy and the
//! calls on a running container, each once for both backends.

use std::path::Path;
use std::sync::Arc;

use lxcri_init_spec::{ExecSpec, ExitReport, ProcessSpec};
use oci_spec::runtime::LinuxResources;

use super::backend::Backend;
use super::container::{owner, Container};
use super::control::{self, SignalNumber};
use super::error::Result;
use super::hooks;
use super::lxc::LxcBackend;
use super::nics::unplug_nics;
use super::node_userns;
use super::pve::PveBackend;
use super::staged_binds;
use crate::cgroup::CgroupStats;
use crate::config::{BackendKind, Config};
use crate::rootfs::{self, RootfsProvider};
use crate::state::{ContainerRecord, StateStore};

/// Containers on this node, run by one backend.
#[derive(Debug)]
pub struct Runtime {
    pub(super) config: Config,
    pub(super) store: StateStore,
    pub(super) rootfs: Arc<dyn RootfsProvider>,
    pub(super) backend: Box<dyn Backend>,
}

/// An exit report is a few dozen bytes of JSON.
const EXIT_REPORT_LIMIT: u64 = 4096;

impl Runtime {
    /// The runtime `config.backend` names.
    pub fn new(config: Config) -> Self {
        let rootfs = rootfs::provider_for(&config);
        let backend: Box<dyn Backend> = match config.backend {
            BackendKind::Lxc => Box::new(LxcBackend::new(&config)),
            BackendKind::Pve => Box::new(PveBackend::new(config.clone(), rootfs.clone())),
        };
        Self::with_backend(config, rootfs, backend)
    }

    /// A runtime over a given backend and rootfs provider (tests, tools).
    pub fn with_backend(
        config: Config,
        rootfs: Arc<dyn RootfsProvider>,
        backend: Box<dyn Backend>,
    ) -> Self {
        Self {
            store: StateStore::new(&config.runtime_root),
            config,
            rootfs,
            backend,
        }
    }

    /// The configuration this runtime was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Kills every process of the container (one whose init never started
    /// included); a stopped one is fine.
    pub fn stop(&self, namespace: &str, id: &str) -> Result<()> {
        let record = self.store.load(namespace, id).ok().flatten();
        self.backend.stop(namespace, id, record.as_ref())
    }

    /// Removes everything made for the container: the backend's container
    /// (stopped first), the rootfs, the runtime directory and state.
    /// Idempotent, and works from the state on disk alone (the shim's
    /// `delete` action after a crash) or from none. `known` is the record
    /// the caller holds (the shim that made the container): what a record
    /// on disk that cannot be read any more named is still torn down.
    /// Without it, such a record stops the delete on the pve backend, and
    /// everything stays for `lxcri gc` to report: the record is what names
    /// the CT and the id range it runs with. An LXC container is found by
    /// its name.
    pub fn destroy(
        &self,
        namespace: &str,
        id: &str,
        bundle: &Path,
        known: Option<&ContainerRecord>,
    ) -> Result<()> {
        let record = match (self.store.load(namespace, id), known) {
            (Ok(record), _) => record,
            (Err(e), Some(known)) => {
                tracing::warn!(error = %e, "tearing down from the shim's copy of the state");
                Some(known.clone())
            }
            (Err(e), None) if self.config.backend == BackendKind::Pve => return Err(e.into()),
            (Err(e), None) => {
                tracing::warn!(error = %e, "tearing down by name, without the state");
                None
            }
        };
        let record = record.as_ref();
        self.backend.teardown(namespace, id, record)?;
        super::crash_points::reached(namespace, id, super::crash_points::CrashPoint::TornDown);
        if let Some(r) = record {
            let owner = super::container::owner(namespace, id);
            unplug_nics(&self.config, &r.nics, &owner)?;
        }
        let mounted = record.map(|r| r.rootfs_mounted).unwrap_or(true);
        // Records from before lxcri kept the path: containerd's default.
        let target = record
            .and_then(|r| r.rootfs.clone())
            .unwrap_or_else(|| bundle.join("rootfs"));
        self.rootfs.release(
            mounted.then_some(target.as_path()),
            &owner(namespace, id),
            self.backend.volume(namespace, id, record).as_deref(),
        )?;
        if let Some(s) = record.and_then(|r| r.userns_slot) {
            node_userns::release(&self.store, namespace, id, s.slot)?;
        }
        let dir = self.store.container_dir(namespace, id)?;
        staged_binds::unstage(&dir)?;
        if record.is_some_and(|r| r.poststop_hooks) {
            // Once: a repeated delete (containerd's cleanup after one that
            // failed late) finds no record.
            self.poststop(id, bundle, &dir);
        }
        self.store.remove(namespace, id)?;
        Ok(())
    }

    /// `poststop` hooks, once the container is gone: one that fails is
    /// logged and delete goes on, as the runtime spec says. The spec is
    /// read from the bundle, so containerd's cleanup after a shim crash
    /// runs them too, as runc's `delete --force` does.
    pub(super) fn poststop(&self, id: &str, bundle: &Path, dir: &Path) {
        let Ok(spec) = crate::spec::load_bundle_spec(bundle) else {
            return;
        };
        let Ok(plan) = crate::plan::plan_hooks(&spec, id, bundle) else {
            return;
        };
        let ran = self
            .config
            .init_binary()
            .map_err(Into::into)
            .and_then(|init| hooks::run_poststop(&plan, &init, dir));
        if let Err(e) = ran {
            tracing::warn!(container_id = id, error = %e, "poststop hook");
        }
    }

    /// `poststart` hooks, once the process runs. The caller stops the
    /// container when they fail, as runc does.
    pub fn poststart(&self, c: &Container) -> Result<()> {
        let plan = crate::plan::plan_hooks(&c.spec, c.id(), c.bundle())?;
        if plan.poststart.is_empty() {
            return Ok(());
        }
        let dir = self.store.container_dir(c.namespace(), c.id())?;
        hooks::run_poststart(&plan, &self.config.init_binary()?, &dir, c.init_pid())
    }

    /// What this runtime saw of one operation, for the metrics journal:
    /// its duration or failure's cause, and the PVE API calls made since
    /// the last one.
    pub fn ops_delta(
        &self,
        operation: &str,
        took: std::time::Duration,
        failed: Option<&str>,
    ) -> crate::metrics::OpsRecord {
        let mut delta = crate::metrics::OpsRecord::default();
        delta.operation(operation, self.backend.kind().as_str(), took, failed);
        if let Some(stats) = self.backend.api_stats() {
            let (calls, waits) = stats.take();
            delta.pve_calls(&calls, &waits);
        }
        delta
    }

    pub fn kill(&self, c: &Container, signal: SignalNumber, all: bool) -> Result<()> {
        self.backend.kill(c, signal, all)
    }

    /// SIGKILL to every process left in the container's cgroup, for a
    /// container whose init ended and that did not own its PID namespace
    /// (as containerd's runc shim does): nothing outlives its container.
    pub fn kill_remaining(&self, c: &Container) -> Result<()> {
        control::signal(c, SignalNumber::KILL, true)
    }

    pub fn update(&self, c: &Container, resources: &LinuxResources) -> Result<()> {
        self.backend.update(c, resources)
    }

    pub fn pause(&self, c: &Container) -> Result<()> {
        self.backend.pause(c)
    }

    pub fn resume(&self, c: &Container) -> Result<()> {
        self.backend.resume(c)
    }

    pub fn stats(&self, c: &Container) -> Result<CgroupStats> {
        self.backend.stats(c)
    }

    pub fn processes(&self, c: &Container) -> Result<Vec<i32>> {
        self.backend.processes(c)
    }

    /// What `lxcri-init exec` needs to run `process` in the container.
    pub fn exec_spec(&self, c: &Container, process: ProcessSpec) -> Result<ExecSpec> {
        control::exec_spec(c, process)
    }

    /// The exit status the container's init wrote into its runtime
    /// directory, if any (the same file on every backend).
    pub fn read_exit(&self, run_dir: &Path) -> Option<ExitReport> {
        let path = run_dir.join(lxcri_init_spec::EXIT_FILE);
        let body = super::container_files::read(&path, EXIT_REPORT_LIMIT).ok()?;
        serde_json::from_slice(&body).ok()
    }
}
