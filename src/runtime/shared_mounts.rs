//! `rshared` binds (Kubernetes' `Bidirectional`) of a created container:
//! made from the host by `lxcri-init share` once the init is ready and
//! before the process runs, so each is a peer of the host's mount (see
//! [`lxcri_init_spec::ShareSpec`]).

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use lxcri_init_spec::{ShareSpec, SharedMount};

use super::bundle::write_file;
use super::error::{Result, RuntimeError};
use crate::command::{CommandRunner, SystemCommands};

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
    let path = dir.join(SHARE_SPEC_FILE);
    write_file(
        &path,
        &serde_json::to_vec(&spec).expect("share spec serializes"),
    )?;
    let program = init_binary.to_string_lossy();
    let args: Vec<OsString> = vec!["share".into(), path.clone().into_os_string()];
    let runner = SystemCommands {
        timeout: SHARE_TIMEOUT,
    };
    let failed = |detail: String| RuntimeError::SharedMounts { detail };
    let out = runner
        .run(&program, &args)
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}
