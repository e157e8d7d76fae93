//! `rshared` binds (Kubernetes' `Bidirectional`) of a created container:
//! made from the host by `lxcri-init share` while the init waits after its
//! mounts (before the process runs), so each is a peer of the host's mount (see
//! [`lxcri_init_spec::ShareSpec`]).

use std::path::Path;
use std::time::Duration;

use lxcri_init_spec::{ShareSpec, SharedMount};

use super::error::{Result, RuntimeError};
use super::init_helper::run_init_helper;

/// The spec file, in the container's runtime directory (not the part the
/// container sees).
const SHARE_SPEC_FILE: &str = "share.json";
/// Binding a few mounts takes milliseconds; a hung filesystem must not hang
/// the create.
const SHARE_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds `mounts` into the mount namespace of the container whose init is
/// `init_pid`, with the host's `lxcri-init`.
pub fn bind_shared_mounts(
    init_binary: &Path,
    dir: &Path,
    init_pid: i32,
    mounts: &[SharedMount],
) -> Result<()> {
    let spec = ShareSpec {
        init_pid,
        mounts: mounts.to_vec(),
    };
    run_init_helper(
        init_binary,
        "share",
        &dir.join(SHARE_SPEC_FILE),
        &spec,
        SHARE_TIMEOUT,
    )?
    .map_err(|detail| RuntimeError::SharedMounts { detail })?;
    Ok(())
}
