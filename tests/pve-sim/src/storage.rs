//! Storages of the simulated node: every storage is a directory `DATA_DIR/storage/ID`,
//! volumes are subdirectories named like ZFS subvols (`subvol-VMID-disk-N`), so volume ids
//! look like the real ones (`local-zfs:subvol-100-disk-0`) without needing ZFS.

use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};

/// Storages every simulated node has; more appear by creating `DATA_DIR/storage/NAME`.
const BUILTIN: &[(&str, &str, &str)] = &[
    ("local", "dir", "vztmpl,iso,backup,snippets,rootdir,images"),
    ("local-zfs", "zfspool", "rootdir,images"),
];

pub struct Storage {
    root: PathBuf,
}

impl Storage {
    pub fn new(data_dir: &Path) -> std::io::Result<Storage> {
        let root = data_dir.join("storage");
        for (id, _, _) in BUILTIN {
            fs::create_dir_all(root.join(id))?;
        }
        Ok(Storage { root })
    }

    fn exists(&self, id: &str) -> bool {
        self.root.join(id).is_dir()
    }

    pub fn list(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.root).into_iter().flatten().flatten() {
            let Ok(id) = e.file_name().into_string() else {
                continue;
            };
            let (ty, content) = BUILTIN
                .iter()
                .find(|(b, _, _)| *b == id)
                .map(|(_, t, c)| (*t, *c))
                .unwrap_or(("dir", "rootdir,images,vztmpl"));
            out.push(json!({
                "storage": id, "type": ty, "content": content, "active": 1, "enabled": 1,
                "shared": 0, "total": 100u64 << 30, "used": 0, "avail": 100u64 << 30,
            }));
        }
        out.sort_by(|a, b| a["storage"].as_str().cmp(&b["storage"].as_str()));
        out
    }

    /// Maps a volume (an absolute path or `STORAGE:VOLNAME`) to a host path.
    pub fn resolve(&self, volume: &str) -> Result<PathBuf, String> {
        if volume.starts_with('/') {
            return Ok(PathBuf::from(volume));
        }
        let (id, name) = volume
            .split_once(':')
            .ok_or_else(|| format!("unable to parse volume ID '{volume}'"))?;
        if !self.exists(id) {
            return Err(format!("storage '{id}' does not exist"));
        }
        if name.contains("..") {
            return Err(format!("unable to parse volume ID '{volume}'"));
        }
        Ok(self.root.join(id).join(name))
    }

    /// `STORAGE:SIZE_GiB` asks for a new volume (PVE's allocation syntax).
    pub fn is_allocation(volume: &str) -> bool {
        volume
            .split_once(':')
            .is_some_and(|(_, s)| !s.is_empty() && s.parse::<f64>().is_ok())
    }

    /// Allocates `STORAGE:SIZE` for `vmid` and returns the new volume id.
    pub fn allocate(&self, vmid: u32, volume: &str) -> Result<String, String> {
        let (id, _) = volume.split_once(':').unwrap_or((volume, ""));
        if !self.exists(id) {
            return Err(format!("storage '{id}' does not exist"));
        }
        for n in 0.. {
            let name = format!("subvol-{vmid}-disk-{n}");
            let path = self.root.join(id).join(&name);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(format!("{id}:{name}")),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("unable to create volume {}: {e}", path.display())),
            }
        }
        unreachable!()
    }

    /// Frees a volume if it is one of ours and belongs to `vmid` (never a bind path).
    pub fn free_owned(&self, vmid: u32, volume: &str) {
        if volume.starts_with('/') || !volume.contains(&format!("-{vmid}-disk-")) {
            return;
        }
        if let Ok(p) = self.resolve(volume) {
            let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
        }
    }

    /// Every volume of `vmid` on every storage (for `destroy-unreferenced-disks`).
    pub fn owned_by(&self, vmid: u32) -> Vec<String> {
        let tag = format!("-{vmid}-disk-");
        let mut out = Vec::new();
        for s in fs::read_dir(&self.root).into_iter().flatten().flatten() {
            let id = s.file_name().to_string_lossy().into_owned();
            for v in fs::read_dir(s.path()).into_iter().flatten().flatten() {
                let name = v.file_name().to_string_lossy().into_owned();
                if name.contains(&tag) {
                    out.push(format!("{id}:{name}"));
                }
            }
        }
        out
    }
}
