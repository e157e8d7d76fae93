//! What the host's cgroup hierarchy offers, checked before a container is
//! started: LXC fails a start with an obscure error when a limit's file is
//! missing (no swap accounting, an I/O scheduler without weights), so
//! create checks first and names the file.

use std::path::{Path, PathBuf};

use super::CgroupSetting;
use super::CgroupVersion;

#[derive(Debug, thiserror::Error)]
pub enum HostCgroupError {
    #[error(
        "linux.resources: this host's cgroup has no {file} (the {controller} controller {why}), so the limit cannot be applied"
    )]
    Missing {
        file: String,
        controller: String,
        why: &'static str,
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
    /// `blkio.bfq.weight`, as runc does).
    pub fn adapt(&self, settings: &mut [CgroupSetting]) -> Result<(), HostCgroupError> {
        // v2: interface files exist only below the root; what the root
        // delegates is what a container cgroup can use.
        let delegated = match self.version {
            CgroupVersion::V2 => std::fs::read_to_string(self.root.join("cgroup.subtree_control"))
                .unwrap_or_default(),
            CgroupVersion::V1 => String::new(),
        };
        for s in settings.iter_mut() {
            let controller = s.file.split('.').next().unwrap_or_default().to_string();
            match self.version {
                CgroupVersion::V1 => {
                    let dir = self.root.join(&controller);
                    if !dir.is_dir() {
                        return Err(HostCgroupError::Missing {
                            file: s.file.clone(),
                            controller,
                            why: "is not mounted",
                        });
                    }
                    if dir.join(&s.file).exists() {
                        continue;
                    }
                    let bfq = s.file.replacen("blkio.", "blkio.bfq.", 1);
                    if s.file.starts_with("blkio.weight") && dir.join(&bfq).exists() {
                        s.file = bfq;
                        continue;
                    }
                    return Err(HostCgroupError::Missing {
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
                            file: s.file.clone(),
                            controller,
                            why: "is not enabled for child cgroups",
                        });
                    }
                }
            }
        }
        Ok(())
    }
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
            .adapt(&mut [setting("memory.memsw.limit_in_bytes")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory.memsw.limit_in_bytes"), "{err}");
        let err = host
            .adapt(&mut [setting("pids.max")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("pids controller is not mounted"), "{err}");
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
        host.adapt(&mut [setting("memory.max"), setting("cpu.max")])
            .unwrap();
        let err = host
            .adapt(&mut [setting("io.weight")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("io controller is not enabled"), "{err}");
    }
}
