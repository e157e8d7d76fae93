//! The host-side modes of `lxcri-init` (`share`, `hooks`, `host-view`):
//! each is given a JSON spec file, says why it failed on stderr and exits
//! non-zero then.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::bundle::write_file;
use super::error::Result;
use crate::command::{CommandRunner, SystemCommands};

/// Runs `init_binary MODE SPEC_FILE` with `spec` written to `spec_file`
/// (in a state directory the container does not see; removed after) and
/// up to `timeout`. The outer error is the spec file's; the inner one the
/// helper's own words, or why it could not run.
pub fn run_init_helper(
    init_binary: &Path,
    mode: &str,
    spec_file: &Path,
    spec: &impl Serialize,
    timeout: Duration,
) -> Result<std::result::Result<(), String>> {
    write_file(
        spec_file,
        &serde_json::to_vec(spec).expect("a helper spec serializes"),
    )?;
    let args: Vec<OsString> = vec![mode.into(), spec_file.as_os_str().to_owned()];
    let out = SystemCommands { timeout }.run(&init_binary.to_string_lossy(), &args);
    let _ = std::fs::remove_file(spec_file);
    Ok(match out {
        Err(e) => Err(e.to_string()),
        Ok(out) if !out.status.success() => {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
        Ok(_) => Ok(()),
    })
}
