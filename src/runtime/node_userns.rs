//! `userns.unprivileged`: a container whose spec asks for no user namespace
//! gets one, with ids from a slot of `userns.pool` taken at create
//! (recorded before anything else is made) and freed on delete.
//!
//! A Kubernetes pod is one user namespace, as containerd 2 makes it for
//! `hostUsers: false`: the sandbox takes the slot, its containers join its
//! namespace and use its ids. The pod's network namespace is the node's
//! (CNI made it before the sandbox), which only the lxc backend can give a
//! container that joins the sandbox's user namespace
//! ([`crate::lxc::Namespaces::inherit_net`]); on pve PVE starts the CT, so
//! pods are refused there.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Linux, LinuxNamespaceType, Spec};

use super::error::{Result, RuntimeError};
use crate::config::{BackendKind, Config};
use crate::plan::NodeUserns;
use crate::spec::{CriAnnotations, CriContainerType};
use crate::state::{ContainerRecord, StateStore, UsernsSlot};
use crate::userns::{IdPool, IdSlots};

/// The node's choice for one container.
#[derive(Debug)]
pub(super) struct Chosen {
    pub userns: NodeUserns,
    /// The slot taken for it; `None` for a pod container (its sandbox's).
    pub slot: Option<u32>,
}

/// Chooses the container's user namespace if the node does (records a
/// slot taken in `record`, saved), or `None` when the spec brings its own
/// (refused if its host ids are the pool's), the option is off, or the
/// container's sandbox got none.
pub(super) fn choose(
    config: &Config,
    store: &StateStore,
    backend: BackendKind,
    spec: &Spec,
    cri: &CriAnnotations,
    record: &mut ContainerRecord,
) -> Result<Option<Chosen>> {
    if !config.userns.unprivileged {
        return Ok(None);
    }
    if let Some(linux) = spec.linux() {
        clear_of_pool(linux, &config.userns.pool())?;
        let own = linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::User);
        if own {
            return Ok(None);
        }
    }
    if cri.container_type.is_some() && backend == BackendKind::Pve {
        return Err(RuntimeError::UsernsPodOnPve);
    }
    if cri.container_type == Some(CriContainerType::Container) {
        let Some(userns) = sandbox_userns(store, &record.namespace, cri)? else {
            return Ok(None);
        };
        open_bundle_to(&record.bundle, userns.range.host_start)?;
        return Ok(Some(Chosen { userns, slot: None }));
    }
    let owner = format!("{}/{}", record.namespace, record.id);
    let (slot, range) =
        IdSlots::new(&store.userns_slots_dir()).take(&config.userns.pool(), &owner)?;
    record.userns_slot = Some(UsernsSlot { slot, range });
    store.save(record)?;
    open_bundle_to(&record.bundle, range.host_start)?;
    Ok(Some(Chosen {
        userns: NodeUserns { range, join: None },
        slot: Some(slot),
    }))
}

/// A spec's own mappings must not reach the pool's host ids: they are lent
/// to other containers, whose processes and files they would then be.
fn clear_of_pool(linux: &Linux, pool: &IdPool) -> Result<()> {
    for (field, maps) in [
        ("linux.uidMappings", linux.uid_mappings()),
        ("linux.gidMappings", linux.gid_mappings()),
    ] {
        for (i, m) in maps.iter().flatten().enumerate() {
            if pool.overlaps(m.host_id(), m.size()) {
                return Err(crate::plan::invalid(
                    &format!("{field}[{i}].hostID"),
                    &format!(
                        "{} host ids from {} reach into userns.pool {pool}, whose ranges \
                         userns.unprivileged gives to other containers",
                        m.size(),
                        m.host_id()
                    ),
                )
                .into());
            }
        }
    }
    Ok(())
}

/// The user namespace of the pod container's sandbox, if the node gave it
/// one: joined through its init, which must run.
fn sandbox_userns(
    store: &StateStore,
    namespace: &str,
    cri: &CriAnnotations,
) -> Result<Option<NodeUserns>> {
    let sandbox = cri.sandbox_id.clone().unwrap_or_default();
    let failed = |reason: &str| RuntimeError::UsernsSandbox {
        sandbox: sandbox.clone(),
        reason: reason.to_string(),
    };
    if sandbox.is_empty() {
        return Err(failed(
            "the container names no sandbox (io.kubernetes.cri.sandbox-id)",
        ));
    }
    let record = store
        .load(namespace, &sandbox)?
        .ok_or_else(|| failed("lxcri has no state for it"))?;
    let Some(taken) = record.userns_slot else {
        return Ok(None);
    };
    let pid = record
        .live_init_pid(Path::new("/proc"))
        .ok_or_else(|| failed("its init does not run"))?;
    Ok(Some(NodeUserns {
        range: taken.range,
        join: Some(PathBuf::from(format!("/proc/{pid}/ns/user"))),
    }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::CriAnnotations;
    use crate::userns::IdRange;

    fn config(tmp: &Path) -> Config {
        let root = tmp.join("run");
        let env = |name: &str| match name {
            "LXCRI_RUNTIME_ROOT" => Some(root.display().to_string()),
            "LXCRI_USERNS_UNPRIVILEGED" => Some("true".to_string()),
            _ => None,
        };
        let file = tmp.join("config.toml");
        std::fs::write(&file, "").unwrap();
        Config::load_with(Some(&file), &env).unwrap()
    }

    fn record(id: &str, pid: Option<i32>, slot: Option<UsernsSlot>) -> ContainerRecord {
        let mut r = crate::state::tests_support::record("k8s.io", id);
        r.pid = pid;
        r.pid_start_time = pid.and_then(|p| crate::pidfd::start_time(p).ok());
        r.userns_slot = slot;
        r
    }

    fn pod(kind: CriContainerType) -> CriAnnotations {
        CriAnnotations {
            container_type: Some(kind),
            sandbox_id: Some("sb".into()),
            ..CriAnnotations::default()
        }
    }

    const SPEC: &str = r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"},
        "linux": {"namespaces": [{"type": "mount"}]}}"#;

    #[test]
    fn pods_on_pve_are_refused_before_a_range_is_taken() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        let store = StateStore::new(tmp.path().join("run"));
        let spec: Spec = serde_json::from_str(SPEC).unwrap();
        for kind in [CriContainerType::Sandbox, CriContainerType::Container] {
            let mut rec = record("sb", None, None);
            let err = choose(
                &config,
                &store,
                BackendKind::Pve,
                &spec,
                &pod(kind),
                &mut rec,
            )
            .unwrap_err();
            assert!(matches!(err, RuntimeError::UsernsPodOnPve), "{err}");
            assert!(err.to_string().contains("lxc backend"), "{err}");
            assert_eq!(rec.userns_slot, None);
        }
        let taken = IdSlots::new(&store.userns_slots_dir()).taken().unwrap();
        assert!(taken.is_empty(), "{taken:?}");
    }

    #[test]
    fn a_specs_own_mappings_must_not_reach_into_the_pool() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        let store = StateStore::new(tmp.path().join("run"));
        let spec = |uid_host: u32, gid_host: u32, gid_size: u32| -> Spec {
            serde_json::from_value(serde_json::json!({
                "ociVersion": "1.0.2", "root": {"path": "rootfs"},
                "linux": {
                    "namespaces": [{"type": "mount"}, {"type": "user"}],
                    "uidMappings": [{"containerID": 0, "hostID": uid_host, "size": 65536}],
                    "gidMappings": [{"containerID": 0, "hostID": gid_host, "size": gid_size}],
                }
            }))
            .unwrap()
        };
        let choose_for = |config: &Config, spec: &Spec| {
            let mut rec = record("c", None, None);
            choose(
                config,
                &store,
                BackendKind::Lxc,
                spec,
                &CriAnnotations::default(),
                &mut rec,
            )
        };
        // `ctr run --uidmap 0:<pool start>:65536`: another container's ids.
        let err = choose_for(&config, &spec(1_000_000, 100_000, 65536)).unwrap_err();
        assert!(err.is_invalid_input(), "{err}");
        assert_eq!(
            err.to_string(),
            "linux.uidMappings[0].hostID: 65536 host ids from 1000000 reach into \
             userns.pool 1000000-68108863, whose ranges userns.unprivileged gives to other containers"
        );
        // One id into the pool is one too many.
        let err = choose_for(&config, &spec(100_000, 934_464, 65537)).unwrap_err();
        assert!(
            err.to_string().starts_with("linux.gidMappings[0].hostID: "),
            "{err}"
        );
        // Just below the pool, and with the option off, a spec's mapping is its own.
        assert!(choose_for(&config, &spec(100_000, 934_464, 65536))
            .unwrap()
            .is_none());
        let off = Config::default();
        assert!(choose_for(&off, &spec(1_000_000, 1_000_000, 65536))
            .unwrap()
            .is_none());
        let taken = IdSlots::new(&store.userns_slots_dir()).taken().unwrap();
        assert!(taken.is_empty(), "{taken:?}");
    }

    #[test]
    fn a_pod_container_joins_its_sandbox_namespace_and_range() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::new(tmp.path().join("run"));
        let cri = pod(CriContainerType::Container);
        let err = sandbox_userns(&store, "k8s.io", &cri).unwrap_err();
        assert!(
            err.to_string()
                .contains("pod sandbox sb: lxcri has no state"),
            "{err}"
        );

        // A sandbox made before the node chose namespaces: its containers neither.
        store.save(&record("sb", Some(1), None)).unwrap();
        assert_eq!(sandbox_userns(&store, "k8s.io", &cri).unwrap(), None);

        let range = IdRange {
            host_start: 1_065_536,
            len: 65536,
        };
        let slot = Some(UsernsSlot { slot: 1, range });
        let me = std::process::id() as i32;
        store.save(&record("sb", Some(me), slot)).unwrap();
        let joined = sandbox_userns(&store, "k8s.io", &cri).unwrap().unwrap();
        assert_eq!(joined.range, range);
        assert_eq!(
            joined.join,
            Some(PathBuf::from(format!("/proc/{me}/ns/user")))
        );

        let mut stopped = record("sb", Some(me), slot);
        stopped.pid_start_time = Some(1);
        store.save(&stopped).unwrap();
        let err = sandbox_userns(&store, "k8s.io", &cri).unwrap_err();
        assert!(err.to_string().contains("its init does not run"), "{err}");
    }
}
