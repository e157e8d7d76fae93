//! `userns.unprivileged`: a container whose spec asks for no user namespace
//! gets one, with ids from a slot of `userns.pool` taken at create
//! (recorded before anything else is made) and freed on delete.
//!
//! Kubernetes pods are refused: a pod's containers would have to join the
//! sandbox's user namespace, and LXC joins the user namespace before the
//! pod's network namespace (lxc 5.0.2 src/lxc/start.c `do_share_ns`,
//! namespaces in `ns_info` order), which the node's root owns and a
//! process inside the user namespace may no longer join.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::error::{Result, RuntimeError};
use crate::config::Config;
use crate::spec::CriAnnotations;
use crate::state::{ContainerRecord, StateStore, UsernsSlot};
use crate::userns::IdSlots;

/// Whether the node chooses this container's user namespace.
pub(super) fn applies(config: &Config, spec: &Spec) -> bool {
    let own = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    config.userns.unprivileged && !own
}

/// Takes a slot for the container and records it in `record` (saved).
pub(super) fn take(
    config: &Config,
    store: &StateStore,
    cri: &CriAnnotations,
    record: &mut ContainerRecord,
) -> Result<UsernsSlot> {
    if cri.container_type.is_some() {
        return Err(RuntimeError::UsernsPod);
    }
    let owner = format!("{}/{}", record.namespace, record.id);
    let (slot, range) =
        IdSlots::new(&store.userns_slots_dir()).take(&config.userns.pool(), &owner)?;
    let taken = UsernsSlot { slot, range };
    record.userns_slot = Some(taken);
    store.save(record)?;
    open_bundle_to(&record.bundle, range.host_start)?;
    Ok(taken)
}

/// LXC mounts the rootfs from inside the container's user namespace, so
/// its root must be able to enter the bundle: what containerd itself does
/// for a spec with a user namespace (containerd v1.6 runtime/v2/
/// bundle_linux.go `prepareBundleDirectoryPermissions`: group of the
/// mapped root, mode 0710), which it cannot know lxcri chose.
fn open_bundle_to(bundle: &Path, gid: u32) -> Result<()> {
    let err = |source| RuntimeError::RunDir {
        path: bundle.to_path_buf(),
        source,
    };
    std::os::unix::fs::chown(bundle, None, Some(gid)).map_err(err)?;
    std::fs::set_permissions(bundle, std::fs::Permissions::from_mode(0o710)).map_err(err)
}

/// Frees the container's slot. Idempotent.
pub(super) fn release(store: &StateStore, namespace: &str, id: &str, slot: u32) -> Result<()> {
    let owner = format!("{namespace}/{id}");
    Ok(IdSlots::new(&store.userns_slots_dir()).release(slot, &owner)?)
}
