//! Running containers: one lifecycle ([`Runtime`]) over a backend
//! ([`Backend`]): `lxc` ([`LxcBackend`], the `lxc-*` tools) or `pve`
//! ([`PveBackend`], CTs made through the Proxmox VE API).
//!
//! - `create.rs`: the one create sequence and its rollback; `bundle.rs` its
//!   first part (spec, plan, state, runtime directory, rootfs) and
//!   `rendezvous.rs` its last (the init reports ready).
//! - `lifecycle.rs`: [`Runtime`]: destroy and the calls on a running
//!   container, delegated to the backend; `control.rs`: what both backends
//!   do through the kernel (signals, cgroup limits, joining for exec).
//! - `leftovers.rs`: what containers nobody cleaned up after left behind
//!   (`lxcri gc`); `nic_leftovers.rs` the same for their NICs.
//! - `backend.rs`: the [`Backend`] and [`CreateSteps`] traits, the only
//!   things a backend implements.
//! - `nics.rs`: the NICs lxcri plugs itself, in and out.
//! - `crash_points.rs`: where the fault tests kill a shim mid-create or
//!   mid-delete (off unless the test's environment turns it on).
//! - [`init_channel`]: the socket to `lxcri-init`.

mod backend;
mod bundle;
mod container;
mod container_files;
mod control;
mod crash_points;
mod create;
mod error;
mod hooks;
mod host_netns;
pub mod init_channel;
mod init_copy;
mod init_helper;
mod joined_userns;
mod leftovers;
mod lifecycle;
mod lxc;
mod mqueue_owner;
pub mod nic_leftovers;
mod nics;
mod node_userns;
pub mod pve;
mod rendezvous;
mod shared_mounts;
mod staged_binds;

#[cfg(test)]
mod tests;

pub use backend::{Backend, CreateSteps};
pub use bundle::{BundleUndo, PreparedBundle};
pub use container::{owner, Container, CreateRequest, CreatedContainer};
pub use control::{return_exec_helper, InvalidSignal, SignalNumber};
pub use crash_points::CRASH_POINTS_ENV;
pub use error::{PveBackendError, Result, RuntimeError};
pub use init_channel::{InitChannelError, InitConnection, InitListener};
pub use leftovers::{Leftover, LeftoverKind};
pub use lifecycle::Runtime;
pub use lxc::{container_name, LxcBackend};
pub use pve::PveBackend;
