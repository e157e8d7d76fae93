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

/// The temp dir holding the built images, removed when the test process
/// exits.
fn image_dir() -> &'static Path {
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("lxcri-e2e-image.")
            .tempdir()
            .expect("temp dir for the test images")
            .keep();
        // SAFETY: registering a plain extern "C" fn without arguments.
        unsafe { libc::atexit(remove_image_dir) };
        dir
    })
}

fn build(name: &str, reference: &'static str, env: &[(&str, &str)]) -> Image {
    let dir = image_dir();
    let archive = dir.join(format!("{name}.tar"));
    let rootfs = dir.join(format!("{name}-rootfs"));
    let script = workspace_root().join("tests/images/build-busybox-image");
    cmd::run(
        Command::new(&script)
            .arg(&archive)
            .arg(&rootfs)
            .env("IMAGE_REF", reference)
            .envs(env.iter().copied()),
        Duration::from_secs(120),
    )
    .ok();
    Image {
        archive,
        rootfs,
        reference,
    }
}

/// Builds the image on first use; later calls return the same one.
pub fn busybox() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| build("busybox", BUSYBOX_REF, &[]))
}

/// Reference of the pod sandbox image the CRI tests configure.
pub const PAUSE_REF: &str = "localhost/lxcri-test/pause:1";

/// The pod sandbox ("pause") image: the busybox rootfs whose entrypoint
/// sleeps until SIGTERM/SIGINT, like registry.k8s.io/pause.
pub fn pause() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        build(
            "pause",
            PAUSE_REF,
            &[
                (
                    "IMAGE_ENTRYPOINT",
                    r#"["/bin/sh","-c","trap 'exit 0' TERM INT; sleep 2147483647 & wait"]"#,
                ),
                ("IMAGE_CMD", "null"),
            ],
        )
    })
}

/// Reference of the busybox image whose user 1000 is also in group 50000 of
/// its `/etc/group` (cri-tools' `testImagePreDefinedGroup`).
pub const PREDEFINED_GROUP_REF: &str = "localhost/lxcri-test/busybox-group:1";

/// Builds the predefined-group image on first use.
pub fn predefined_group() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        build(
            "busybox-group",
            PREDEFINED_GROUP_REF,
            &[("IMAGE_GROUPS", "group-defined-in-image:x:50000:user")],
        )
    })
}
