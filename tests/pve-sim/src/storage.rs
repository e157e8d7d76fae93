//! Storages of the simulated node: every storage is a directory `DATA_DIR/storage/ID`,
//! volumes are subdirectories named like ZFS subvols (`subvol-VMID-disk-N`), so volume ids
//! look like the real ones (`local-zfs:subvol-100-disk-0`) without needing ZFS. Templates
//! live where a PVE dir storage keeps them: `ID:vztmpl/NAME` is `ID/template/cache/NAME`.
//! A `--zfs-storage ID=DATASET` is a real ZFS pool storage instead (see `zfs_storage`); it
//! has no directory here.

use crate::storage_cfg::{self, Section};
use crate::zfs_storage::{ZfsPool, ZfsStorageArg};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Storages every simulated node has; more appear by creating `DATA_DIR/storage/NAME`.
const BUILTIN: &[(&str, &str, &str)] = &[
    ("local", "dir", "vztmpl,iso,backup,snippets,rootdir,images"),
    ("local-zfs", "zfspool", "rootdir,images"),
];

pub struct Storage {
    root: PathBuf,
    /// The `--zfs-storage` storages by id; a built-in of the same id is replaced.
    zfs: BTreeMap<String, ZfsPool>,
}

impl Storage {
    /// Makes the directories of the built-in storages and opens the ZFS storages (each
    /// dataset must exist). A ZFS storage's id must not be a directory storage too: an
    /// empty `DATA_DIR/storage/ID` (a built-in of an earlier run) is removed, any other
    /// is an error.
    pub fn new(data_dir: &Path, zfs_args: &[ZfsStorageArg]) -> Result<Storage, String> {
        let root = data_dir.join("storage");
        for (i, arg) in zfs_args.iter().enumerate() {
            if zfs_args[..i].iter().any(|a| a.id == arg.id) {
                return Err(format!("--zfs-storage: storage '{}' given twice", arg.id));
            }
            let dir = root.join(&arg.id);
            if dir.exists() && fs::remove_dir(&dir).is_err() {
                return Err(format!(
                    "--zfs-storage {}={}: {} is a dir storage of that id; remove it or \
                     pick another id",
                    arg.id,
                    arg.dataset,
                    dir.display()
                ));
            }
        }
        let mut zfs = BTreeMap::new();
        for arg in zfs_args {
            zfs.insert(arg.id.clone(), ZfsPool::open(arg)?);
        }
        for (id, _, _) in BUILTIN {
            if !zfs.contains_key(*id) {
                let dir = root.join(id);
                fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            }
        }
        Ok(Storage { root, zfs })
    }

    pub fn exists(&self, id: &str) -> bool {
        self.zfs.contains_key(id) || self.root.join(id).is_dir()
    }

    /// The storage's type and content types (dir storages other than the built-ins hold
    /// `rootdir,images,vztmpl`).
    pub fn kind(&self, id: &str) -> (&'static str, &'static str) {
        if self.zfs.contains_key(id) {
            return ("zfspool", "rootdir,images");
        }
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
            if self.zfs.contains_key(&id) {
                continue;
            }
            let (ty, content) = self.kind(&id);
            out.push(json!({
                "storage": id, "type": ty, "content": content, "active": 1, "enabled": 1,
                "shared": 0, "total": 100u64 << 30, "used": 0, "avail": 100u64 << 30,
            }));
        }
        for (id, pool) in &self.zfs {
            let (used, avail) = pool.space().unwrap_or((0, 100u64 << 30));
            out.push(json!({
                "storage": id, "type": "zfspool", "content": "rootdir,images", "active": 1,
                "enabled": 1, "shared": 0, "total": used + avail, "used": used, "avail": avail,
            }));
        }
        out.sort_by(|a, b| a["storage"].as_str().cmp(&b["storage"].as_str()));
        out
    }

    /// The storages as storage.cfg sections. The built-in `local-zfs` is described as
    /// the PVE installer's `pool rpool/data`, although its volumes are directories under
    /// `DATA_DIR/storage/local-zfs` (no ZFS behind it).
    pub fn cfg_sections(&self) -> Vec<Section> {
        let mut out = Vec::new();
        for st in self.list() {
            let id = st["storage"].as_str().unwrap_or("").to_string();
            let content = st["content"].as_str().unwrap_or("").to_string();
            out.push(match (self.zfs.get(&id), self.kind(&id).0) {
                (Some(pool), _) => Section::ZfsPool {
                    id,
                    pool: pool.dataset().to_string(),
                    content,
                    mountpoint: pool.custom_mountpoint(),
                },
                (None, "zfspool") => Section::ZfsPool {
                    id,
                    pool: "rpool/data".into(),
                    content,
                    mountpoint: None,
                },
                _ => Section::Dir {
                    path: self.root.join(&id).display().to_string(),
                    id,
                    content,
                },
            });
        }
        out
    }

    /// Writes `path` (DATA_DIR/etc/pve/storage.cfg) from `cfg_sections`.
    pub fn write_cfg(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension(format!("cfg.tmp.{}", std::process::id()));
        fs::write(&tmp, storage_cfg::render(&self.cfg_sections()))?;
        fs::rename(&tmp, path)
    }

    /// Maps a volume (an absolute path or `STORAGE:VOLNAME`) to a host path.
    pub fn resolve(&self, volume: &str) -> Result<PathBuf, String> {
        if volume.starts_with('/') {
            return Ok(PathBuf::from(volume));
        }
        let (id, name) = volume
            .split_once(':')
            .ok_or_else(|| format!("unable to parse volume ID '{volume}'"))?;
        if let Some(pool) = self.zfs.get(id) {
            return pool.resolve(name);
        }
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
            if self.kind(id).0 == "zfspool" {
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
        let (id, size) = volume.split_once(':').unwrap_or((volume, ""));
        if let Some(pool) = self.zfs.get(id) {
            return pool.allocate(vmid, size);
        }
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

    /// Frees a volume if it is one of ours and belongs to `vmid` (never a bind path). A
    /// ZFS volume that cannot be destroyed is an error, as pve-storage
    /// src/PVE/Storage/ZFSPoolPlugin.pm `zfs_delete_zvol` dies; a directory volume's
    /// removal errors are only warnings there (DirPlugin `free_image`: `remove_tree`).
    pub fn free_owned(&self, vmid: u32, volume: &str) -> Result<(), String> {
        if volume.starts_with('/') || !volume.contains(&format!("-{vmid}-disk-")) {
            return Ok(());
        }
        if let Some((id, name)) = volume.split_once(':') {
            if let Some(pool) = self.zfs.get(id) {
                return pool.free(name);
            }
        }
        if let Ok(p) = self.resolve(volume) {
            let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
        }
        Ok(())
    }

    /// Every volume of `vmid` on every storage (for `destroy-unreferenced-disks`).
    pub fn owned_by(&self, vmid: u32) -> Vec<String> {
        let tag = format!("-{vmid}-disk-");
        let mut out = Vec::new();
        for s in fs::read_dir(&self.root).into_iter().flatten().flatten() {
            let id = s.file_name().to_string_lossy().into_owned();
            if self.zfs.contains_key(&id) {
                continue;
            }
            for v in fs::read_dir(s.path()).into_iter().flatten().flatten() {
                let name = v.file_name().to_string_lossy().into_owned();
                if name.contains(&tag) {
                    out.push(format!("{id}:{name}"));
                }
            }
        }
        for pool in self.zfs.values() {
            out.extend(pool.owned_by(vmid));
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
        let st = Storage::new(tmp.path(), &[]).unwrap();
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

    fn zfs_arg(id: &str, dataset: &str) -> ZfsStorageArg {
        ZfsStorageArg {
            id: id.into(),
            dataset: dataset.into(),
        }
    }

    #[test]
    fn a_zfs_storage_is_not_a_dir_storage_too() {
        let tmp = tempfile::tempdir().unwrap();
        let twice = [zfs_arg("z", "p/a"), zfs_arg("z", "p/b")];
        let err = Storage::new(tmp.path(), &twice).err().unwrap();
        assert!(err.contains("'z' given twice"), "{err}");
        let vols = tmp.path().join("storage/z/subvol-100-disk-0");
        fs::create_dir_all(&vols).unwrap();
        let err = Storage::new(tmp.path(), &[zfs_arg("z", "p/a")])
            .err()
            .unwrap();
        assert!(err.contains("is a dir storage of that id"), "{err}");
        assert!(vols.is_dir());
        // An empty directory (a built-in of an earlier run) is removed; then the dataset
        // is checked, and one that is not there stops the start.
        fs::remove_dir(&vols).unwrap();
        let missing = zfs_arg("local-zfs", "pvesimnosuchpool/data");
        let err = Storage::new(tmp.path(), &[missing]).err().unwrap();
        assert!(err.contains("the dataset is missing"), "{err}");
        assert!(err.contains("local-zfs=pvesimnosuchpool/data"), "{err}");
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
