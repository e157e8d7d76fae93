//! The pure part of the `pve` backend: what a container's CT looks like in
//! PVE (its API parameters) and what lxcri writes into its node-local
//! config. No I/O here, so every rule is unit-tested.

use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::pve::config::{
    resources_from_oci, Arch, Description, DescriptionInfo, Entrypoint, Hostname, PveConfig,
    PveConfigError, PveConfigFile, PveVersion, RootFs, Tags, Volume,
};
use crate::spec::CriAnnotations;
use crate::zfs::DiskSize;

/// The CRI annotation naming the image (set by containerd's CRI plugin).
pub const IMAGE_NAME_ANNOTATION: &str = "io.kubernetes.cri.image-name";

/// What [`ct_config`] builds a CT from.
#[derive(Debug, Clone, Copy)]
pub struct CtInputs<'a> {
    pub version: PveVersion,
    pub namespace: &'a str,
    pub id: &'a str,
    pub spec: &'a Spec,
    pub cri: &'a CriAnnotations,
    /// The init's path inside the container (`/.lxcri/lxcri-init`).
    pub init_cmd: &'a str,
    /// `[pve] template`.
    pub template: &'a str,
    /// `[pve] storage`: where PVE allocates the CT's root volume.
    pub storage: &'a str,
    /// `rootfs.mode = "zfs"`: the volume's size (`zfs.size`); the volume
    /// becomes the container's clone. `None`: a quota-less volume PVE
    /// insists on allocating, unused (the rootfs is containerd's).
    pub rootfs_size: Option<DiskSize>,
}

/// The CT of a container, as PVE's API takes it. In overlay mode the rootfs
/// here is a quota-less volume PVE insists on allocating; the container's
/// real rootfs (containerd's, a host directory) is root-only and set
/// node-locally by [`attach_node_local`]. In zfs mode it is the volume the
/// container's clone replaces ([`allocated_rootfs_volume`]).
pub fn ct_config(i: &CtInputs<'_>) -> Result<PveConfig, PveConfigError> {
    let name = i
        .spec
        .hostname()
        .as_deref()
        .filter(|h| !h.is_empty())
        .or(i.cri.container_name.as_deref())
        .or(i.cri.sandbox_name.as_deref())
        .unwrap_or(i.id);
    let mut ct = PveConfig::new(i.version, Hostname::sanitize_or(name, i.id));
    ct.tags = Tags::for_container(
        i.cri.sandbox_namespace.as_deref(),
        i.cri.sandbox_name.as_deref(),
    );
    let image = i
        .spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(IMAGE_NAME_ANNOTATION))
        .cloned();
    ct.description = Some(Description::for_container(&DescriptionInfo {
        container_id: i.id.to_string(),
        containerd_namespace: Some(i.namespace.to_string()),
        namespace: i.cri.sandbox_namespace.clone(),
        pod: i.cri.sandbox_name.clone(),
        container_name: i.cri.container_name.clone(),
        image,
    }));
    let linux = i.spec.linux().as_ref();
    if let Some(res) = linux.and_then(|l| l.resources().as_ref()) {
        ct.resources = resources_from_oci(res)?;
    }
    ct.entrypoint = Some(Entrypoint::new(vec![i.init_cmd.to_string()])?);
    ct.env = pve_env(i.spec);
    ct.unprivileged = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| nss.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    ct.ostemplate = Some(i.template.to_string());
    ct.rootfs = Some(RootFs {
        volume: Volume::Allocate {
            storage: i.storage.to_string(),
            size: i.rootfs_size,
        },
        options: Default::default(),
    });
    ct.arch = Arch::host();
    // lxcri-init owns stdio; PVE's consoles would be gettys nobody runs.
    ct.console = Some(false);
    ct.tty = Some(0);
    Ok(ct)
}

/// The process environment as PVE shows it (`env`), keeping only what
/// PVE can store: `NAME=value` with `NAME` of `[A-Za-z0-9_]` and no
/// control character in the value. The process gets its whole environment
/// from the init either way; this is the admin's view.
fn pve_env(spec: &Spec) -> Vec<(String, String)> {
    let env = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default();
    env.iter()
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, v)| {
            !k.is_empty()
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !v.chars().any(char::is_control)
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

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
