//! What the `pve` backend writes into a CT's node-local `VMID.conf` itself,
//! as root, under PVE's lock: what the API keeps for `root@pam`. Pure
//! edits of the parsed file, so every rule is unit-tested.

use std::path::Path;

use crate::pve::config::{PveConfigError, PveConfigFile, RootFs, Volume};

/// What lxcri writes into `VMID.conf` itself, as root, under PVE's lock:
/// the container's rootfs (a host directory: root-only through the API),
/// the volume PVE allocated moved to `unusedN` (PVE destroys it with the
/// CT), and the one `lxc.include` of lxcri's fragment. Returns whether
/// the file changed.
pub fn attach_node_local(
    file: &mut PveConfigFile,
    rootfs: &Path,
    fragment: &Path,
    owned_dir: &Path,
) -> Result<bool, PveConfigError> {
    let mut changed = false;
    let current = file.get("rootfs").map(str::to_string);
    if let Some(value) = current {
        let first = value.split(',').next().unwrap_or("");
        let volume = first.strip_prefix("volume=").unwrap_or(first);
        if !volume.starts_with('/') && !volume.is_empty() {
            let free = (0..256)
                .map(|n| format!("unused{n}"))
                .find(|k| file.get(k).is_none())
                .ok_or_else(|| PveConfigError::InvalidValue {
                    field: "unused".into(),
                    value: volume.to_string(),
                    reason: "has no free unusedN slot".into(),
                })?;
            changed |= file.set_key(&free, volume)?;
        }
    }
    let root = RootFs {
        volume: Volume::HostPath(rootfs.to_path_buf()),
        options: Default::default(),
    };
    changed |= file.set_key("rootfs", &root.render()?)?;
    changed |= file.set_include(fragment, owned_dir)?;
    Ok(changed)
}

/// The name of the rootfs volume PVE allocated for CT `vmid` on `storage`
/// (`subvol-VMID-disk-N`), which the container's ZFS clone replaces.
pub fn allocated_rootfs_volume(
    file: &PveConfigFile,
    vmid: u32,
    storage: &str,
) -> Result<String, PveConfigError> {
    let value = file.get("rootfs").unwrap_or_default();
    let first = value.split(',').next().unwrap_or("");
    let volume = first.strip_prefix("volume=").unwrap_or(first);
    let bad = |reason: String| PveConfigError::InvalidValue {
        field: "rootfs".into(),
        value: value.to_string(),
        reason,
    };
    let (st, name) = volume
        .split_once(':')
        .ok_or_else(|| bad("is not a storage volume".into()))?;
    if st != storage {
        return Err(bad(format!("is not on storage {storage} (pve.storage)")));
    }
    let prefix = format!("subvol-{vmid}-disk-");
    let n = name
        .strip_prefix(&prefix)
        .ok_or_else(|| bad(format!("is not a {prefix}N volume: pve.storage must be a ZFS pool storage for rootfs.mode = \"zfs\"")))?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("is not a {prefix}N volume")));
    }
    Ok(name.to_string())
}

/// Adds only lxcri's `lxc.include` (zfs mode: the rootfs is PVE's volume).
pub fn attach_include(
    file: &mut PveConfigFile,
    fragment: &Path,
    owned_dir: &Path,
) -> Result<bool, PveConfigError> {
    file.set_include(fragment, owned_dir)
}

#[cfg(test)]
mod tests;
