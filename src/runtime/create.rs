//! `create`, once for both backends: one sequence of steps with rollback.
//! A create that fails at any step leaves nothing behind: no LXC container
//! or CT, no mount, volume, runtime directory or state record.
//!
//! 1. the backend checks it has no such container
//!    ([`Backend::begin_create`](super::Backend::begin_create));
//! 2. the bundle: spec loaded and planned, state record saved, runtime
//!    directory with the init, rootfs in place ([`prepare_bundle`]);
//! 3. [`CreateSteps::configure`]: everything the backend writes, checked;
//! 4. the init's socket and start gate ([`InitRendezvous::prepare`]);
//! 5. [`CreateSteps::reserve`] (the name, or a VMID), recorded;
//! 6. [`CreateSteps::write_config`], [`CreateSteps::start`];
//! 7. the init reports its mounts made; its pid is recorded;
//! 8. the NICs lxcri plugs are plugged into the container's (or pod's)
//!    network namespace, and recorded ([`plug`]);
//! 9. the mqueue filesystem's root is given to the container's root
//!    ([`give_mqueue`]); `rshared` binds are made from the host
//!    ([`bind_shared_mounts`]);
//! 10. the create hooks run ([`run_create_hooks`]);
//! 11. the init finishes its setup and reports ready
//!     ([`CreateSteps::ready`]).
//!
//! Rollback runs in reverse: the NICs, [`CreateSteps::rollback`], then the
//! bundle.

use super::backend::CreateSteps;
use super::bundle::{hand_to_container_root, prepare_bundle, BundleInputs, BundleUndo};
use super::container::{CreateRequest, CreatedContainer};
use super::crash_points::{reached, CrashPoint};
use super::error::Result;
use super::hooks::{run_create_hooks, HookTarget};
use super::lifecycle::Runtime;
use super::mqueue_owner::give_mqueue;
use super::nics::{move_devices, plug, unplug_nics};
use super::rendezvous::InitRendezvous;
use super::shared_mounts::bind_shared_mounts;
use crate::network::plug::PluggedNic;
use lxcri_init_spec::INIT_SOCKET;

impl Runtime {
    /// Creates the container and starts its init, which waits for `start`.
    /// Fails without leaving anything behind.
    pub fn create(&self, req: &CreateRequest) -> Result<CreatedContainer> {
        self.clear_lost_run(&req.namespace, &req.id)?;
        let steps = self.backend.begin_create(req)?;
        let mut create = Create {
            rt: self,
            req,
            steps,
            bundle: BundleUndo::default(),
            plugged: Vec::new(),
            started: false,
            done: false,
        };
        let created = create.run();
        create.done = created.is_ok();
        created
    }
}

/// One create in progress; undoes what it made unless it finished.
struct Create<'a> {
    rt: &'a Runtime,
    req: &'a CreateRequest,
    steps: Box<dyn CreateSteps + 'a>,
    bundle: BundleUndo,
    /// NICs lxcri plugged, unplugged if a later step fails.
    plugged: Vec<PluggedNic>,
    /// The container was started (its init ran).
    started: bool,
    done: bool,
}

impl Create<'_> {
    fn run(&mut self) -> Result<CreatedContainer> {
        let rt = self.rt;
        let inputs = BundleInputs {
            config: &rt.config,
            store: &rt.store,
            rootfs: rt.rootfs.as_ref(),
            backend: rt.backend.kind(),
            volume: self.steps.volume(),
            lxc_monitor_cgroup: self.steps.lxc_monitor_cgroup(),
        };
        let (ns, id) = (self.req.namespace.as_str(), self.req.id.as_str());
        let (bundle, mut record) = prepare_bundle(&inputs, self.req, &mut self.bundle)?;
        reached(ns, id, CrashPoint::Prepared);
        self.steps.configure(&bundle)?;
        let rendezvous = InitRendezvous::prepare(&bundle.run_dir)?;
        if let Some(ids) = bundle.plan.lxc.root_host_ids() {
            hand_to_container_root(&bundle.run_dir.join(INIT_SOCKET), ids)?;
        }
        self.steps
            .reserve(&mut record, &|r| Ok(rt.store.save(r)?))?;
        rt.store.save(&record)?;
        reached(ns, id, CrashPoint::Reserved);
        self.steps.write_config(&bundle, &mut self.bundle)?;
        reached(ns, id, CrashPoint::Configured);
        if let Err(e) = self.steps.start() {
            // The init may have said why its container stopped at once.
            return Err(rendezvous.init_failure().unwrap_or(e));
        }
        // From here a failure stops a container that ran: its poststop
        // hooks run, as runc's destroy runs them.
        self.started = true;
        reached(ns, id, CrashPoint::Started);
        let shared = bundle.plan.shared_mounts.clone();
        let mqueue_owner = bundle.plan.mqueue_owner.clone();
        let network = bundle.plan.network.clone();
        let net_devices = bundle.plan.net_devices.clone();
        let hooks = bundle.plan.hooks.clone();
        let root_path = bundle.rootfs.clone();
        let dir = rt.store.container_dir(&self.req.namespace, &self.req.id)?;
        let steps = &self.steps;
        let timeout = steps.ready_timeout(rt.config.lxc.start_timeout());
        let mut created = rendezvous.finish(
            &rt.store,
            record,
            bundle,
            timeout,
            &|| steps.is_running(),
            || steps.stopped_early(),
        )?;
        // The init has made the container's mounts and waits: what needs
        // its namespaces happens now, before masked paths and a read-only
        // rootfs, where runc's hooks run too.
        if let Some(cgroup) = &created.container.cgroup {
            steps.claim_cgroup(cgroup)?;
        }
        if let Some(network) = network.filter(|n| !steps.backend_plugs(n)) {
            let plugged = plug(&rt.config, &network, created.init.pid(), &self.req.owner())?;
            self.plugged.clone_from(&plugged);
            created.container.record.nics = plugged;
            rt.store.save(&created.container.record)?;
        }
        move_devices(&net_devices, created.init.pid())?;
        if let Some(inner) = steps.cgroup_inner_dir() {
            let cgroup = created.container.cgroup.take();
            created.container.cgroup = cgroup.map(|cg| cg.with_inner(inner));
        }
        if let Some(owner) = &mqueue_owner {
            give_mqueue(created.init.pid(), owner)?;
        }
        let init_binary = rt.config.init_binary()?;
        if !shared.is_empty() {
            bind_shared_mounts(&init_binary, &dir, created.init.pid(), &shared)?;
        }
        run_create_hooks(
            &hooks,
            &HookTarget {
                dir: &dir,
                init_binary: &init_binary,
                init_pid: created.init.pid(),
                init_start_time: created.container.record.pid_start_time,
                root_path: &root_path,
                cgroup: created.container.cgroup.as_ref(),
            },
        )?;
        created.init.resume(timeout)?;
        steps.ready();
        reached(ns, id, CrashPoint::Created);
        Ok(created)
    }
}

impl Drop for Create<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Err(e) = unplug_nics(&self.rt.config, &self.plugged, &self.req.owner()) {
            tracing::warn!(error = %e, "rollback: removing the container's NICs");
        }
        self.steps.rollback();
        if self.started {
            if let Ok(dir) = self
                .rt
                .store
                .container_dir(&self.req.namespace, &self.req.id)
            {
                self.rt.poststop(&self.req.id, &self.req.bundle, &dir);
            }
        }
        self.bundle
            .undo(self.rt.rootfs.as_ref(), &self.rt.store, self.req);
    }
}
