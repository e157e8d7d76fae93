//! Filling an image dataset: the image's layers, merged as the container
//! would see them, copied into the dataset's mountpoint.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::command::{CommandRunner, SystemCommands};

/// Why a copy failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CopyError {
    /// The destination's quota (or pool) is full.
    #[error("out of space: {0}")]
    OutOfSpace(String),
    #[error("{0}")]
    Failed(String),
}

/// Copies the merged view of `lowerdirs` (topmost first) into `dest`.
pub trait LayerCopier: Send + Sync + std::fmt::Debug {
    fn copy(&self, lowerdirs: &[PathBuf], dest: &Path) -> Result<(), CopyError>;
}

/// A read-only overlay of the layers (whiteouts applied by the kernel, as
/// in the container), copied by `cp -a` (owners, modes, times, hard links,
/// device nodes and xattrs kept).
#[derive(Debug, Clone)]
pub struct OverlayCopier {
    /// Where the temporary overlay is mounted (one directory per copy).
    pub scratch: PathBuf,
}

impl LayerCopier for OverlayCopier {
    fn copy(&self, lowerdirs: &[PathBuf], dest: &Path) -> Result<(), CopyError> {
        let failed =
            |what: &str, e: &dyn std::fmt::Display| CopyError::Failed(format!("{what}: {e}"));
        let Some((first, _)) = lowerdirs.split_first() else {
            return Err(CopyError::Failed("no layers".into()));
        };
        if lowerdirs.len() == 1 {
            // Overlayfs wants two lower layers without an upper one; one
            // layer is already the merged view.
            return cp_all(first, dest);
        }
        let joined = lowerdirs
            .iter()
            .map(|p| p.to_str().filter(|s| !s.contains([':', ',', '\0'])))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| CopyError::Failed("a layer path has ':', ',' or NUL".into()))?
            .join(":");
        std::fs::create_dir_all(&self.scratch).map_err(|e| failed("scratch dir", &e))?;
        let view = tempfile_dir(&self.scratch).map_err(|e| failed("scratch dir", &e))?;
        mount(
            Some("overlay"),
            &view,
            Some("overlay"),
            MsFlags::MS_RDONLY,
            Some(format!("lowerdir={joined}").as_str()),
        )
        .map_err(|e| failed("mounting the image layers read-only", &e))
        .inspect_err(|_| {
            let _ = std::fs::remove_dir(&view);
        })?;
        let result = cp_all(&view, dest);
        let _ = umount2(&view, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&view);
        result
    }
}

/// A new empty directory under `parent`.
fn tempfile_dir(parent: &Path) -> std::io::Result<PathBuf> {
    for _ in 0..16 {
        let dir = parent.join(format!("view-{}", super::unique_suffix()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free scratch directory name"))
}

/// How long one image's copy may take: generous for a multi-GiB image on a
/// slow pool, but a hung filesystem fails the create instead of the shim.
const COPY_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// `cp -a SRC/. DEST/`: the contents and the root directory's own owner
/// and mode.
fn cp_all(src: &Path, dest: &Path) -> Result<(), CopyError> {
    let args: Vec<OsString> = vec![
        "-a".into(),
        "--".into(),
        src.join(".").into(),
        dest.join("").into(),
    ];
    let runner = SystemCommands {
        timeout: COPY_TIMEOUT,
    };
    let out = runner
        .run("cp", &args)
        .map_err(|e| CopyError::Failed(format!("running cp: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(classify(&String::from_utf8_lossy(&out.stderr)))
}

/// cp's stderr: a full quota or pool is the caller's to explain.
fn classify(stderr: &str) -> CopyError {
    let first = stderr.lines().next().unwrap_or("cp failed").to_string();
    if stderr.contains("Disk quota exceeded") || stderr.contains("No space left on device") {
        CopyError::OutOfSpace(first)
    } else {
        CopyError::Failed(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_and_space_errors_are_told_apart() {
        assert!(matches!(
            classify("cp: cannot create directory 'x/doc': Disk quota exceeded\ncp: more\n"),
            CopyError::OutOfSpace(l) if l.ends_with("Disk quota exceeded")
        ));
        assert!(matches!(
            classify("cp: error writing 'x': No space left on device\n"),
            CopyError::OutOfSpace(_)
        ));
        assert!(matches!(
            classify("cp: cannot stat 'x': Permission denied\n"),
            CopyError::Failed(_)
        ));
    }

    #[test]
    fn a_single_layer_is_copied_with_its_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        let dest = tmp.path().join("dest");
        std::fs::create_dir_all(layer.join("etc")).unwrap();
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(layer.join("etc/hostname"), "img\n").unwrap();
        std::os::unix::fs::symlink("etc/hostname", layer.join("link")).unwrap();
        let copier = OverlayCopier {
            scratch: tmp.path().join("scratch"),
        };
        copier.copy(&[layer], &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("etc/hostname")).unwrap(),
            "img\n"
        );
        assert_eq!(
            std::fs::read_link(dest.join("link")).unwrap(),
            PathBuf::from("etc/hostname")
        );
        let err = copier
            .copy(&[tmp.path().join("missing")], &dest)
            .unwrap_err();
        assert!(matches!(err, CopyError::Failed(_)), "{err}");
    }
}
