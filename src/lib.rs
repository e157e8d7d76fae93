//! lxcri: run OCI containers as LXC and Proxmox VE containers.
//!
//! The library is synchronous; the shim (`shim/`) calls it from
//! `spawn_blocking`. Folders are the architecture:
//!
//! - [`config`]: `/etc/lxcri/config.toml`, `LXCRI_*` overrides.
//! - [`command`]: external commands (`lxc-*`, `zfs`) with deadlines.
//! - [`spec`]: loading and validating an OCI bundle, lxcri annotations.
//! - [`lxc`]: the typed LXC config, its one renderer, the `lxc-*` tools.
//! - [`pidfd`]: process handles that survive pid reuse.
//! - [`proc_events`]: exit statuses of any process (a container's PID 1).
//! - [`security`]: capabilities, seccomp (compiled with libseccomp), rlimits.
//! - [`plan`]: pure translation OCI spec -> [`plan::ContainerPlan`] (LXC)
//!   and [`plan::pve`] (the PVE CT).
//! - [`cgroup`]: stats, freezer, resource updates on the container's cgroup.
//! - [`rootfs`]: mounting containerd's rootfs mounts on the bundle.
//! - [`runtime`]: one container lifecycle over a backend: `lxc` or `pve`.
//! - [`state`]: per-container state on disk, found again after restarts.
//! - [`network`]: NICs on Linux bridges and Open vSwitch (netlink, OVSDB).
//! - [`owner_only`]: files of lxcri's own that only root may read.
//! - [`pve`]: Proxmox VE API client, typed CT config, VMID allocation.
//! - [`userns`]: per-container host id ranges for node-chosen user namespaces.
//! - [`zfs`]: ZFS through the `zfs` command (validated names, classified
//!   failures), for the rootfs on ZFS clones.

pub mod cgroup;
pub mod command;
pub mod config;
mod escaped_text;
pub mod lxc;
pub mod metrics;
pub mod network;
pub mod owner_only;
pub mod pidfd;
pub mod plan;
pub mod proc_events;
pub mod pve;
pub mod rootfs;
pub mod runtime;
pub mod security;
pub mod spec;
pub mod state;
pub mod userns;
pub mod zfs;

/// `err: source: source...`, each text once (some messages embed their
/// source's). The one way lxcri turns an error chain into a line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let text = e.to_string();
        let s = text.trim();
        if !out.contains(s) {
            out.push_str(": ");
            out.push_str(s);
        }
        cur = e.source();
    }
    out
}
