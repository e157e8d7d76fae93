//! What the host's cgroup hierarchy offers, checked before a container is
//! started: LXC fails a start with an obscure error when a limit's file is
//! missing (no swap accounting, an I/O scheduler without weights), so
//! create checks first and names the file.

use std::path::{Path, PathBuf};

use super::{CgroupPath, CgroupSetting, CgroupVersion};

#[derive(Debug, thiserror::Error)]
pub enum HostCgroupError {
    #[error(
        "{field}: this host's cgroup has no {file} (the {controller} controller {why}), so the limit cannot be applied"
    )]
    Missing {
        field: &'static str,
        file: String,
        controller: String,
        why: &'static str,
    },
    #[error(
        "linux.resources.hugepageLimits: this host has no {size} huge pages (its hugetlb cgroup has no {file})"
    )]
    HugePageSize { size: String, file: String },
    #[error("linux.cgroupsPath: preparing the cpuset of {path}: {source}")]
    Cpuset {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The host's cgroup mount (normally `/sys/fs/cgroup`).
#[derive(Debug, Clone)]
pub struct HostCgroups {
    root: PathBuf,
    version: CgroupVersion,
}

impl HostCgroups {
    pub fn new(root: impl Into<PathBuf>, version: CgroupVersion) -> Self {
        Self {
            root: root.into(),
            version,
        }
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    pub fn detect() -> Self {
        let root = Path::new("/sys/fs/cgroup");
        Self::new(root, CgroupVersion::detect(root))
    }

    /// Checks every setting against the host and adapts what has a known
    /// equivalent (`blkio.weight` on hosts whose scheduler is BFQ is
    /// `blkio.bfq.weight`, as runc does). A huge page limit gets its
    /// reservation twin where the host has one (runc 1.2 writes both).
    pub fn adapt(&self, settings: &mut Vec<CgroupSetting>) -> Result<(), HostCgroupError> {
        self.check(settings)?;
        let reservations: Vec<CgroupSetting> = settings
            .iter()
            .filter_map(|s| {
                let file = hugetlb_reservation(&s.file)?;
                offers(&self.hierarchy("hugetlb"), &file)
                    .then(|| CgroupSetting::new(file, s.value.clone()))
            })
            .collect();
        settings.extend(reservations);
        Ok(())
    }

    /// The hierarchy `controller`'s files are in: its own v1 one, or the
    /// v2 root.
    fn hierarchy(&self, controller: &str) -> PathBuf {
        match self.version {
            CgroupVersion::V1 => self.root.join(controller),
            CgroupVersion::V2 => self.root.clone(),
        }
    }

    fn check(&self, settings: &mut [CgroupSetting]) -> Result<(), HostCgroupError> {
        // v2: interface files exist only below the root; what the root
        // delegates is what a container cgroup can use.
        let delegated = match self.version {
            CgroupVersion::V2 => std::fs::read_to_string(self.root.join("cgroup.subtree_control"))
                .unwrap_or_default(),
            CgroupVersion::V1 => String::new(),
        };
        for s in settings.iter_mut() {
            let controller = s.file.split('.').next().unwrap_or_default().to_string();
            let dir = self.hierarchy(&controller);
            match self.version {
                CgroupVersion::V1 => {
                    if !dir.is_dir() {
                        return Err(HostCgroupError::Missing {
                            field: field_of(&s.file),
                            file: s.file.clone(),
                            controller,
                            why: "is not mounted",
                        });
                    }
                    if offers(&dir, &s.file) {
                        continue;
                    }
                    if let Some(size) = hugetlb_page_size(&s.file) {
                        return Err(HostCgroupError::HugePageSize {
                            size: size.to_string(),
                            file: s.file.clone(),
                        });
                    }
                    let bfq = s.file.replacen("blkio.", "blkio.bfq.", 1);
                    if s.file.starts_with("blkio.weight") && offers(&dir, &bfq) {
                        s.file = bfq;
                        continue;
                    }
                    return Err(HostCgroupError::Missing {
                        field: field_of(&s.file),
                        file: s.file.clone(),
                        controller,
                        why: "does not offer it",
                    });
                }
                CgroupVersion::V2 => {
                    let known = controller == "cgroup"
                        || delegated.split_whitespace().any(|c| c == controller);
                    if !known {
                        return Err(HostCgroupError::Missing {
                            field: field_of(&s.file),
                            file: s.file.clone(),
                            controller,
                            why: "is not enabled for child cgroups",
                        });
                    }
                    // The files of a page size the host lacks are in no cgroup.
                    if let Some(size) = hugetlb_page_size(&s.file) {
                        if !offers(&dir, &s.file) {
                            return Err(HostCgroupError::HugePageSize {
                                size: size.to_string(),
                                file: s.file.clone(),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// v1: the hierarchies mounted below the root (`memory`, `cpu,cpuacct`,
    /// `systemd`...), not a hybrid host's v2 one; empty on v2.
    pub fn v1_hierarchies(&self) -> Vec<PathBuf> {
        if self.version != CgroupVersion::V1 {
            return Vec::new();
        }
        let mut found: Vec<PathBuf> = super::hierarchy_dirs(&self.root)
            .into_iter()
            .filter(|d| d.join("cgroup.procs").exists() && !d.join("cgroup.controllers").exists())
            .collect();
        found.sort();
        found
    }

    /// v1: the cpuset of the cgroup LXC makes at `cgroup`. LXC fills
    /// `cpuset.cpus` and `cpuset.mems` of the first directory of the path
    /// only (lxc 5.0.2 src/lxc/cgroups/cgfsng.c `cpuset1_initialize`);
    /// below one that does not pass them on (`cgroup.clone_children` 0, as
    /// the kubelet's pod cgroups) a new cgroup gets neither and no process
    /// can join it (ENOSPC). runc makes each directory above the
    /// container's and copies the parent's values into one left empty
    /// (libcontainer/cgroups/fs/cpuset.go `cpusetEnsureParent`); so does
    /// this, and gives the container's own its parent's values through the
    /// config, unless the spec sets them.
    pub fn prepare_cpuset(
        &self,
        cgroup: &CgroupPath,
        settings: &mut Vec<CgroupSetting>,
    ) -> Result<(), HostCgroupError> {
        let base = self.root.join("cpuset");
        if self.version != CgroupVersion::V1 || !base.join("cpuset.cpus").exists() {
            return Ok(());
        }
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| HostCgroupError::Cpuset { path, source }
        };
        let parts: Vec<&str> = cgroup.as_str().split('/').collect();
        let mut parent = base;
        for part in &parts[..parts.len() - 1] {
            let dir = parent.join(part);
            match std::fs::create_dir(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(err(&dir)(e))
                }
                _ => {}
            }
            for file in CPUSET_FILES {
                // Only a fake hierarchy lacks the file of a new directory.
                let own = match read_trimmed(&dir.join(file)) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    own => own.map_err(err(&dir))?,
                };
                if own.is_empty() {
                    let inherited = read_trimmed(&parent.join(file)).map_err(err(&parent))?;
                    std::fs::write(dir.join(file), inherited).map_err(err(&dir))?;
                }
            }
            parent = dir;
        }
        for file in CPUSET_FILES {
            if !settings.iter().any(|s| s.file == file) {
                let value = read_trimmed(&parent.join(file)).map_err(err(&parent))?;
                settings.push(CgroupSetting::new(file, value));
            }
        }
        Ok(())
    }
}

/// Whether hierarchy `dir` (a v1 controller's, or the v2 root) gives a
/// cgroup `file`. Some are not on the root cgroup but on every one below it
/// (the kernel's `CFTYPE_NOT_ON_ROOT`: `pids.max`, `blkio.bfq.weight`, every
/// v2 interface file), so the cgroups directly below the root count too; a
/// host has some (LXC's `lxc.pivot`, systemd's slices).
fn offers(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
        || std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_type().is_ok_and(|t| t.is_dir()) && e.path().join(file).exists())
}

/// The spec field a cgroup file's value comes from, for errors.
fn field_of(file: &str) -> &'static str {
    if file.starts_with("hugetlb.") {
        "linux.resources.hugepageLimits"
    } else {
        "linux.resources"
    }
}

/// The page size of a huge page limit's file (`hugetlb.2MB.max`,
/// `hugetlb.2MB.limit_in_bytes`), not of its reservation twin.
fn hugetlb_page_size(file: &str) -> Option<&str> {
    let rest = file.strip_prefix("hugetlb.")?;
    let size = rest
        .strip_suffix(".limit_in_bytes")
        .or_else(|| rest.strip_suffix(".max"))?;
    (!size.contains('.')).then_some(size)
}

/// The reservation file (Linux 5.7) of a huge page limit's file:
/// `hugetlb.2MB.rsvd.max` for `hugetlb.2MB.max`.
fn hugetlb_reservation(file: &str) -> Option<String> {
    let size = hugetlb_page_size(file)?;
    let suffix = file.strip_prefix("hugetlb.")?.strip_prefix(size)?;
    Some(format!("hugetlb.{size}.rsvd{suffix}"))
}

/// What a v1 cpuset needs before a process can join it.
const CPUSET_FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

fn read_trimmed(path: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn setting(file: &str) -> CgroupSetting {
        CgroupSetting::new(file, "1")
    }

    #[test]
    fn v1_files_are_checked_and_blkio_weight_falls_back_to_bfq() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("memory")).unwrap();
        fs::write(tmp.path().join("memory/memory.limit_in_bytes"), "").unwrap();
        fs::create_dir_all(tmp.path().join("blkio")).unwrap();
        fs::write(tmp.path().join("blkio/blkio.bfq.weight"), "").unwrap();
        let host = HostCgroups::new(tmp.path(), CgroupVersion::V1);

        let mut ok = vec![setting("memory.limit_in_bytes"), setting("blkio.weight")];
        host.adapt(&mut ok).unwrap();
        assert_eq!(ok[1].file, "blkio.bfq.weight");

        let err = host
            .adapt(&mut vec![setting("memory.memsw.limit_in_bytes")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory.memsw.limit_in_bytes"), "{err}");
        let err = host
            .adapt(&mut vec![setting("pids.max")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("pids controller is not mounted"), "{err}");
        // Not on the root cgroup, on those below it (CFTYPE_NOT_ON_ROOT).
        fs::create_dir_all(tmp.path().join("pids/lxc.pivot")).unwrap();
        let err = host.adapt(&mut vec![setting("pids.max")]).unwrap_err();
        assert!(err.to_string().contains("does not offer it"), "{err}");
        fs::write(tmp.path().join("pids/lxc.pivot/pids.max"), "max\n").unwrap();
        host.adapt(&mut vec![setting("pids.max")]).unwrap();
    }

    #[test]
    fn huge_page_limits_need_the_page_size_and_get_their_reservation_where_offered() {
        let tmp = tempfile::tempdir().unwrap();
        let v1 = HostCgroups::new(tmp.path(), CgroupVersion::V1);
        let limit = |file: &str| vec![CgroupSetting::new(file, "0")];
        // A host whose hugetlb controller is not on a v1 hierarchy: runc
        // cannot set the limit either.
        let err = v1
            .adapt(&mut limit("hugetlb.2MB.limit_in_bytes"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("hugetlb controller is not mounted"),
            "{err}"
        );

        let dir = tmp.path().join("hugetlb");
        fs::create_dir_all(&dir).unwrap();
        for f in [
            "hugetlb.2MB.limit_in_bytes",
            "hugetlb.2MB.rsvd.limit_in_bytes",
            "hugetlb.1GB.limit_in_bytes",
        ] {
            fs::write(dir.join(f), "").unwrap();
        }
        let mut both = limit("hugetlb.2MB.limit_in_bytes");
        both.extend(limit("hugetlb.1GB.limit_in_bytes"));
        v1.adapt(&mut both).unwrap();
        // 1GB has no reservation file here (as before Linux 5.7): none.
        assert_eq!(
            both.iter().map(|s| s.file.as_str()).collect::<Vec<_>>(),
            [
                "hugetlb.2MB.limit_in_bytes",
                "hugetlb.1GB.limit_in_bytes",
                "hugetlb.2MB.rsvd.limit_in_bytes"
            ]
        );
        assert!(both.iter().all(|s| s.value == "0"));
        let err = v1
            .adapt(&mut limit("hugetlb.64KB.limit_in_bytes"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.resources.hugepageLimits: this host has no 64KB huge pages (its hugetlb cgroup has no hugetlb.64KB.limit_in_bytes)"
        );

        // v2: delegated by the root, the files in the cgroups below it.
        let v2root = tmp.path().join("v2");
        fs::create_dir_all(v2root.join("lxc.pivot")).unwrap();
        fs::write(v2root.join("cgroup.subtree_control"), "cpu memory\n").unwrap();
        let v2 = HostCgroups::new(&v2root, CgroupVersion::V2);
        let err = v2.adapt(&mut limit("hugetlb.2MB.max")).unwrap_err();
        assert!(
            err.to_string().contains("not enabled for child cgroups"),
            "{err}"
        );
        fs::write(
            v2root.join("cgroup.subtree_control"),
            "cpu memory hugetlb\n",
        )
        .unwrap();
        for f in ["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max"] {
            fs::write(v2root.join("lxc.pivot").join(f), "max\n").unwrap();
        }
        let mut ok = limit("hugetlb.2MB.max");
        v2.adapt(&mut ok).unwrap();
        assert_eq!(
            ok,
            [
                CgroupSetting::new("hugetlb.2MB.max", "0"),
                CgroupSetting::new("hugetlb.2MB.rsvd.max", "0")
            ]
        );
        let err = v2.adapt(&mut limit("hugetlb.1GB.max")).unwrap_err();
        assert!(err.to_string().contains("no 1GB huge pages"), "{err}");
    }

    #[test]
    fn huge_page_file_names() {
        assert_eq!(hugetlb_page_size("hugetlb.2MB.max"), Some("2MB"));
        assert_eq!(hugetlb_page_size("hugetlb.1GB.limit_in_bytes"), Some("1GB"));
        assert_eq!(hugetlb_page_size("hugetlb.2MB.rsvd.max"), None);
        assert_eq!(hugetlb_page_size("memory.max"), None);
        assert_eq!(
            hugetlb_reservation("hugetlb.2MB.max").as_deref(),
            Some("hugetlb.2MB.rsvd.max")
        );
        assert_eq!(
            hugetlb_reservation("hugetlb.1GB.limit_in_bytes").as_deref(),
            Some("hugetlb.1GB.rsvd.limit_in_bytes")
        );
        assert_eq!(hugetlb_reservation("hugetlb.2MB.rsvd.max"), None);
    }

    #[test]
    fn a_v1_cpuset_below_cgroups_that_pass_nothing_on_gets_its_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let cpuset = tmp.path().join("cpuset");
        fs::create_dir_all(cpuset.join("kubepods/pod1")).unwrap();
        for (dir, cpus) in [("", "0-3"), ("kubepods", "0-3"), ("kubepods/pod1", "")] {
            fs::write(cpuset.join(dir).join("cpuset.cpus"), format!("{cpus}\n")).unwrap();
            fs::write(
                cpuset.join(dir).join("cpuset.mems"),
                if cpus.is_empty() { "" } else { "0\n" },
            )
            .unwrap();
        }
        let host = HostCgroups::new(tmp.path(), CgroupVersion::V1);
        let path = CgroupPath::parse("kubepods/pod1/new/c1").unwrap();
        let mut settings = vec![CgroupSetting::new("cpuset.cpus", "1")];
        host.prepare_cpuset(&path, &mut settings).unwrap();
        // Empty ones filled from their parent; the leaf is LXC's to make.
        for dir in ["kubepods/pod1", "kubepods/pod1/new"] {
            assert_eq!(
                fs::read_to_string(cpuset.join(dir).join("cpuset.cpus")).unwrap(),
                "0-3"
            );
            assert_eq!(
                fs::read_to_string(cpuset.join(dir).join("cpuset.mems")).unwrap(),
                "0"
            );
        }
        assert!(!cpuset.join("kubepods/pod1/new/c1").exists());
        // The spec's own cpus stay; the mems it did not set are the parent's.
        assert_eq!(
            settings,
            [
                CgroupSetting::new("cpuset.cpus", "1"),
                CgroupSetting::new("cpuset.mems", "0")
            ]
        );
        // v2 (or no cpuset hierarchy): nothing to do.
        let mut none = Vec::new();
        HostCgroups::new(tmp.path(), CgroupVersion::V2)
            .prepare_cpuset(&path, &mut none)
            .unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn v2_needs_the_controller_delegated() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            tmp.path().join("cgroup.subtree_control"),
            "cpu memory pids\n",
        )
        .unwrap();
        let host = HostCgroups::new(tmp.path(), CgroupVersion::V2);
        host.adapt(&mut vec![setting("memory.max"), setting("cpu.max")])
            .unwrap();
        let err = host
            .adapt(&mut vec![setting("io.weight")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("io controller is not enabled"), "{err}");
    }
}
