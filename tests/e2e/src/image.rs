//! The busybox test image, built once per test process by
//! `tests/images/build-busybox-image` (no network).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::cmd;

/// Reference the image is imported as.
pub const BUSYBOX_REF: &str = "localhost/lxcri-test/busybox:latest";

/// The built image: an `oci-archive` for `ctr images import` and the same
/// rootfs unpacked (for `ctr run --config` specs).
#[derive(Debug)]
pub struct Image {
    pub archive: PathBuf,
    pub rootfs: PathBuf,
    pub reference: &'static str,
}

/// The repository root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/e2e sits two levels below the workspace root")
        .to_path_buf()
}

static DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_image_dir() {
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Builds the image on first use; later calls return the same one. The
/// temp dir holding it is removed when the test process exits.
pub fn busybox() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("lxcri-e2e-image.")
            .tempdir()
            .expect("temp dir for the test image")
            .keep();
        DIR.set(dir.clone()).expect("image dir set once");
        // SAFETY: registering a plain extern "C" fn without arguments.
        unsafe { libc::atexit(remove_image_dir) };
        let archive = dir.join("busybox.tar");
        let rootfs = dir.join("rootfs");
        let script = workspace_root().join("tests/images/build-busybox-image");
        cmd::run(
            Command::new(&script)
                .arg(&archive)
                .arg(&rootfs)
                .env("IMAGE_REF", BUSYBOX_REF),
            Duration::from_secs(120),
        )
        .ok();
        Image {
            archive,
            rootfs,
            reference: BUSYBOX_REF,
        }
    })
}
