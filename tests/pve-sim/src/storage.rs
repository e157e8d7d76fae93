//! Storages of the simulated node: every storage is a directory `DATA_DIR/storage/ID`,
//! volumes are subdirectories named like ZFS subvols (`subvol-VMID-disk-N`), so volume ids
//! look like the real ones (`local-zfs:subvol-100-disk-0`) without needing ZFS. Templates
//! live where a PVE dir storage keeps them: `ID:vztmpl/NAME` is `ID/template/cache/NAME`.

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

    /// The storage's type and content types (dir storages other than the built-ins hold
    /// `rootdir,images,vztmpl`).
    fn kind(id: &str) -> (&'static str, &'static str) {
        BUILTIN
            .iter()
            .find(|(b, _, _)| *b == id)
            .map(|(_, t, c)| (*t, *c))
            .unwrap_or(("dir", "rootdir,images,vztmpl"))
    }

    pub fn list(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.root).into_iter().flatten().flatten() {
            let Ok(id) = e.file_name().into_string() else {
                continue;
            };
            let (ty, content) = Self::kind(&id);
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

    /// The file of an `ostemplate`: `ID:vztmpl/NAME` is `ID/template/cache/NAME`, as on a
    /// PVE dir storage; an absolute path is taken as it is. A template that is not there is
    /// PVE's `volume 'ID:vztmpl/NAME' does not exist`.
    pub fn template(&self, volume: &str) -> Result<PathBuf, String> {
        let path = if volume.starts_with('/') {
            PathBuf::from(volume)
        } else {
            let (id, name) = volume
                .split_once(':')
                .ok_or_else(|| format!("unable to parse volume ID '{volume}'"))?;
            if !self.exists(id) {
                return Err(format!("storage '{id}' does not exist"));
            }
            let file = name.strip_prefix("vztmpl/").ok_or_else(|| {
                format!("pve-sim: ostemplate '{volume}' is not a STORAGE:vztmpl/NAME volume")
            })?;
            if Self::kind(id).0 == "zfspool" {
                // PVE's zfspool plugin cannot parse a template volume name.
                return Err(format!("unable to parse zfs volume name '{name}'"));
            }
            if file.is_empty() || file.contains('/') || file == ".." {
                return Err(format!("unable to parse directory volume name '{name}'"));
            }
            self.root.join(id).join("template/cache").join(file)
        };
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!("volume '{volume}' does not exist"))
        }
    }

    /// `STORAGE:SIZE_GiB` asks for a new volume (PVE's allocation syntax).
    pub fn is_allocation(volume: &str) -> bool {
        volume
            .split_once(':')
            .is_some_and(|(_, s)| !s.is_empty() && s.parse::<f64>().is_ok())
    }

    /// The size PVE writes for a new `STORAGE:SIZE_GiB` volume (`size=8G`, `size=512M`, and
    /// `size=0T` for 0, a subvolume without quota): GiB rounded down to whole MiB, printed
    /// by PVE's `format_size` in the largest unit that divides it.
    pub fn size_text(gib: &str) -> String {
        let mib = (gib.parse::<f64>().unwrap_or(0.0) * 1024.0)
            .floor()
            .max(0.0) as u64;
        let gib = mib / 1024;
        if !mib.is_multiple_of(1024) {
            format!("{mib}M")
        } else if !gib.is_multiple_of(1024) {
            format!("{gib}G")
        } else {
            // 0 divides by every unit, so PVE prints it as 0T.
            format!("{}T", gib / 1024)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_live_in_template_cache_of_a_dir_storage() {
        let tmp = tempfile::tempdir().unwrap();
        let st = Storage::new(tmp.path()).unwrap();
        let cache = tmp.path().join("storage/local/template/cache");
        fs::create_dir_all(&cache).unwrap();
        fs::write(cache.join("lxcri-empty.tar.gz"), b"").unwrap();
        assert_eq!(
            st.template("local:vztmpl/lxcri-empty.tar.gz").unwrap(),
            cache.join("lxcri-empty.tar.gz")
        );
        assert_eq!(
            st.template("local:vztmpl/other.tar.gz").unwrap_err(),
            "volume 'local:vztmpl/other.tar.gz' does not exist"
        );
        assert_eq!(
            st.template("nfs9:vztmpl/x.tar.gz").unwrap_err(),
            "storage 'nfs9' does not exist"
        );
        assert_eq!(
            st.template("local-zfs:vztmpl/x.tar.gz").unwrap_err(),
            "unable to parse zfs volume name 'vztmpl/x.tar.gz'"
        );
        assert!(st.template("local:vztmpl/../x.tar.gz").is_err());
        assert!(st.template("local:iso/x.iso").is_err());
    }

    #[test]
    fn sizes_print_like_pve() {
        assert_eq!(Storage::size_text("8"), "8G");
        assert_eq!(Storage::size_text("0"), "0T");
        assert_eq!(Storage::size_text("0.5"), "512M");
        assert_eq!(Storage::size_text("2048"), "2T");
        assert_eq!(Storage::size_text("1.0001"), "1G");
    }
}
