//! Per-container state on disk, so a restarted shim (or `lxcri ps`, or the
//! shim's `delete` action after a crash) finds containers again.
//!
//! Layout: `<runtime_root>/<namespace>/<id>/` is the container's runtime
//! directory. It holds `state.json` (written atomically: tmp + rename) and
//! the `run/` directory that is bind-mounted into the container (see
//! `lxcri-init-spec`), so the state file is never visible inside it.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the state record inside a container's runtime directory.
pub const STATE_FILE: &str = "state.json";
/// Sub-directory bind-mounted at `/.lxcri` inside the container.
pub const CONTAINER_RUN_DIR: &str = "run";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading state {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing state {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid {what} {value:?}: only [A-Za-z0-9_.-] allowed, not starting with '.'")]
    InvalidName { what: &'static str, value: String },
}

pub type Result<T> = std::result::Result<T, StateError>;

/// What a container's state record says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerRecord {
    pub id: String,
    pub namespace: String,
    pub bundle: PathBuf,
    /// Backend that runs it (`lxc`, later `pve`).
    pub backend: String,
    /// The backend's name for it (LXC container name, or VMID on PVE).
    pub backend_name: String,
    /// Host pid of the container's init once it is running.
    pub pid: Option<i32>,
    /// `/proc/<pid>/stat` start time of `pid`, to detect pid reuse.
    pub pid_start_time: Option<u64>,
    /// Kubernetes sandbox id this container belongs to, if any.
    pub sandbox_id: Option<String>,
    /// Kubernetes pod name and namespace, if any.
    pub pod: Option<String>,
    pub pod_namespace: Option<String>,
    /// Whether the shim mounted the rootfs (and must unmount it on delete).
    pub rootfs_mounted: bool,
    /// Host path of the container's root filesystem (`root.path` of the
    /// bundle); records written before lxcri kept it lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<PathBuf>,
    /// Unix time (ns) of create.
    pub created_at_ns: u64,
    /// The PVE CT (`pve` backend), once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmid: Option<u32>,
    /// The PVE node the CT is on (`pve` backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// NICs lxcri plugged for it (removed on delete).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nics: Vec<crate::network::plug::PluggedNic>,
    /// The slot of `userns.pool` lxcri chose the container's ids from
    /// (`userns.unprivileged`), freed on delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_slot: Option<UsernsSlot>,
    /// Kubernetes container name (`io.kubernetes.cri.container-name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// The image, when containerd names it (`io.kubernetes.cri.image-name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The spec has `poststop` hooks, which delete runs (reading the spec
    /// from the bundle only then).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub poststop_hooks: bool,
}

impl ContainerRecord {
    /// The recorded init's pid while that process runs under `proc_root`
    /// (normally `/proc`): alive, no zombie, and with the recorded start
    /// time (otherwise the pid was reused).
    pub fn live_init_pid(&self, proc_root: &Path) -> Option<i32> {
        self.pid
            .filter(|&pid| pid > 0)
            .filter(|&pid| crate::pidfd::is_live_process(proc_root, pid, self.pid_start_time))
    }
}

/// A slot of the id pool and the ids it stood for when taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsernsSlot {
    pub slot: u32,
    pub range: crate::userns::IdRange,
}

/// Unix time in nanoseconds, as state records and exit reports carry it.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Checks a containerd id or namespace before it becomes a path component
/// or an LXC name.
pub fn validate_name(what: &'static str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidName {
            what,
            value: value.to_string(),
        })
    }
}

/// What [`StateStore::list`] found.
#[derive(Debug, Default)]
pub struct Listing {
    pub records: Vec<ContainerRecord>,
    /// Container directories whose record could not be read.
    pub unreadable: Vec<UnreadableRecord>,
}

impl Listing {
    /// `namespace/id` has a state record, readable or not: what it holds
    /// is not free for the taking.
    pub fn holds(&self, namespace: &str, id: &str) -> bool {
        let is = |ns: &str, i: &str| ns == namespace && i == id;
        self.records.iter().any(|r| is(&r.namespace, &r.id))
            || self.unreadable.iter().any(|u| is(&u.namespace, &u.id))
    }
}

/// A container directory whose `state.json` could not be read or parsed.
#[derive(Debug)]
pub struct UnreadableRecord {
    pub namespace: String,
    pub id: String,
    /// Names the file and why.
    pub error: StateError,
}

/// The runtime directories of all containers under one root.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
}

impl StateStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Where the taken slots of `userns.pool` are kept (a dot name, so
    /// no containerd namespace can be called that).
    pub fn userns_slots_dir(&self) -> PathBuf {
        self.root.join(".userns-slots")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The runtime directory of one container.
    pub fn container_dir(&self, namespace: &str, id: &str) -> Result<PathBuf> {
        validate_name("namespace", namespace)?;
        validate_name("container id", id)?;
        Ok(self.root.join(namespace).join(id))
    }

    pub fn save(&self, record: &ContainerRecord) -> Result<()> {
        let dir = self.container_dir(&record.namespace, &record.id)?;
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(".state.json.tmp");
        let body = serde_json::to_vec_pretty(record).expect("record serializes");
        let write = || -> std::io::Result<()> {
            fs::create_dir_all(&dir)?;
            crate::owner_only::write(&tmp, &body)?;
            fs::File::open(&tmp)?.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|source| StateError::Write { path, source })
    }

    /// Loads one record; `Ok(None)` when the container has no state.
    pub fn load(&self, namespace: &str, id: &str) -> Result<Option<ContainerRecord>> {
        let path = self.container_dir(namespace, id)?.join(STATE_FILE);
        Self::read(&path)
    }

    fn read(path: &Path) -> Result<Option<ContainerRecord>> {
        match fs::read(path) {
            Ok(body) => {
                serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|source| StateError::Corrupt {
                        path: path.to_path_buf(),
                        source,
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Every record under the root, across namespaces, sorted by namespace
    /// and id. A record that cannot be read (torn, hand-edited, written by
    /// a newer lxcri) is listed apart rather than failing the rest, as
    /// `runc list` skips a container it cannot load: one bad record must
    /// not blind `lxcri gc`, `ps` or the exporter to every other container.
    /// Only an unreadable root is an error.
    pub fn list(&self) -> Result<Listing> {
        let mut out = Listing::default();
        let namespaces = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.root.clone(),
                    source,
                })
            }
        };
        // Dot names are never containerd namespaces or ids: lxcri's own
        // files.
        let is_ours = |e: &fs::DirEntry| !e.file_name().to_string_lossy().starts_with('.');
        for ns in namespaces.flatten().filter(is_ours) {
            let Ok(ids) = fs::read_dir(ns.path()) else {
                continue;
            };
            let namespace = ns.file_name().to_string_lossy().into_owned();
            for dir in ids.flatten().filter(is_ours) {
                if !dir.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                match Self::read(&dir.path().join(STATE_FILE)) {
                    Ok(Some(rec)) => out.records.push(rec),
                    // A create that has not written its record yet.
                    Ok(None) => {}
                    Err(error) => out.unreadable.push(UnreadableRecord {
                        namespace: namespace.clone(),
                        id: dir.file_name().to_string_lossy().into_owned(),
                        error,
                    }),
                }
            }
        }
        out.records
            .sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
        out.unreadable
            .sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
        Ok(out)
    }

    /// Removes a container's runtime directory and everything in it.
    pub fn remove(&self, namespace: &str, id: &str) -> Result<()> {
        let dir = self.container_dir(namespace, id)?;
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StateError::Write { path: dir, source }),
        }
        // The namespace directory goes with its last container; a
        // non-empty one (other containers) stays.
        let _ = fs::remove_dir(self.root.join(namespace));
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A record of a running lxc-backend container, to vary in tests.
    pub fn record(ns: &str, id: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            namespace: ns.into(),
            bundle: "/b".into(),
            backend: "lxc".into(),
            backend_name: format!("{ns}_{id}"),
            pid: Some(42),
            pid_start_time: Some(7),
            sandbox_id: None,
            pod: None,
            pod_namespace: None,
            rootfs_mounted: true,
            rootfs: Some("/b/rootfs".into()),
            created_at_ns: 1,
            vmid: None,
            node: None,
            nics: Vec::new(),
            userns_slot: None,
            container_name: None,
            image: None,
            poststop_hooks: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::record;
    use super::*;

    #[test]
    fn save_load_list_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::new(tmp.path());
        store.save(&record("k8s.io", "b")).unwrap();
        store.save(&record("default", "a")).unwrap();
        assert_eq!(
            store.load("default", "a").unwrap(),
            Some(record("default", "a"))
        );
        let ids: Vec<_> = store
            .list()
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        store.remove("default", "a").unwrap();
        assert_eq!(store.load("default", "a").unwrap(), None);
        store.remove("default", "a").unwrap();
        assert!(!tmp.path().join("default").exists());
        assert!(tmp.path().join("k8s.io").exists());
    }

    #[test]
    fn names_cannot_escape_the_root() {
        let store = StateStore::new("/run/lxcri");
        for bad in ["..", "../x", "a/b", "", ".hidden", "a\nb"] {
            assert!(store.container_dir("default", bad).is_err(), "{bad:?}");
        }
        assert!(store.container_dir("k8s.io", "abc-1_2.3").is_ok());
    }

    #[test]
    fn an_unreadable_record_is_listed_apart_and_the_rest_still_are() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::new(tmp.path());
        store.save(&record("default", "a")).unwrap();
        store.save(&record("default", "c")).unwrap();
        // Torn, and from a newer lxcri with a field this one does not know.
        let torn = store.container_dir("default", "b").unwrap();
        fs::create_dir_all(&torn).unwrap();
        fs::write(torn.join(STATE_FILE), b"{\"id\": \"b\",").unwrap();
        let mut newer = serde_json::to_value(record("k8s.io", "d")).unwrap();
        newer["added_later"] = serde_json::json!(1);
        let newer_dir = store.container_dir("k8s.io", "d").unwrap();
        fs::create_dir_all(&newer_dir).unwrap();
        fs::write(newer_dir.join(STATE_FILE), newer.to_string()).unwrap();
        // A create that has not saved yet, a stray file, a temporary.
        fs::create_dir_all(store.container_dir("default", "e").unwrap()).unwrap();
        fs::write(tmp.path().join("default/stray"), b"").unwrap();
        fs::create_dir_all(tmp.path().join("default/.tmp")).unwrap();

        let listing = store.list().unwrap();
        let ids: Vec<_> = listing.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        let bad: Vec<_> = listing
            .unreadable
            .iter()
            .map(|u| (u.namespace.as_str(), u.id.as_str(), u.error.to_string()))
            .collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!((bad[0].0, bad[0].1), ("default", "b"));
        assert!(
            bad[0].2.contains("default/b/state.json is corrupt"),
            "{}",
            bad[0].2
        );
        assert_eq!((bad[1].0, bad[1].1), ("k8s.io", "d"));
        assert!(bad[1].2.contains("added_later"), "{}", bad[1].2);
        assert!(listing.holds("default", "b") && listing.holds("default", "a"));
        assert!(!listing.holds("default", "e") && !listing.holds("k8s.io", "b"));
    }

    #[test]
    fn an_unreadable_root_is_an_error_and_a_missing_one_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = StateStore::new(tmp.path().join("none")).list().unwrap();
        assert!(missing.records.is_empty() && missing.unreadable.is_empty());
        let file = tmp.path().join("file");
        fs::write(&file, b"").unwrap();
        let err = StateStore::new(&file).list().unwrap_err();
        assert!(matches!(err, StateError::Read { .. }), "{err:?}");
    }
}
