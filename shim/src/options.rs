//! containerd's runtime options for non-runc shims
//! (`runtimeoptions.v1.Options{type_url, config_path, config_body}`), from
//! the `ConfigPath` runtime option in containerd's config; and the
//! configuration a container was created with, kept in its bundle.

use std::path::{Path, PathBuf};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::CodedInputStream;

use lxcri::config::Config;

use crate::error::{Result, ShimError};

const RUNTIME_OPTIONS_TYPE: &str = "runtimeoptions.v1.Options";
/// File in the bundle holding the configuration its container was created
/// with ([`Config::snapshot`]).
pub const CONFIG_SNAPSHOT_FILE: &str = "lxcri-config.json";

/// The `config_path` of runtime options, if containerd sent one.
pub fn config_path(options: Option<&Any>) -> Result<Option<PathBuf>> {
    let Some(any) = options else { return Ok(None) };
    let kind = any.type_url.rsplit('/').next().unwrap_or("");
    if kind != RUNTIME_OPTIONS_TYPE {
        // runc's options (BinaryName, SystemdCgroup, the IO owner) mean
        // nothing to lxcri. containerd 1.x sends them instead of the
        // runtime options when a client sets the IO owner (`ctr run
        // --uidmap`): a `--runtime-config-path` given with them is lost.
        tracing::warn!(
            type_url = %any.type_url,
            "task options of another runtime: ignored; no ConfigPath came with them, so the node's configuration is used"
        );
        return Ok(None);
    }
    let path = decode_config_path(&any.value)
        .map_err(|e| ShimError::InvalidArgument(format!("runtime options: {e}")))?;
    Ok(path.filter(|p| !p.is_empty()).map(PathBuf::from))
}

/// Field 2 (`config_path`, a string) of the options message.
fn decode_config_path(bytes: &[u8]) -> std::result::Result<Option<String>, String> {
    let mut input = CodedInputStream::from_bytes(bytes);
    let mut found = None;
    while !input.eof().map_err(|e| e.to_string())? {
        let tag = input.read_raw_varint32().map_err(|e| e.to_string())?;
        let (field, wire) = (tag >> 3, tag & 7);
        match (field, wire) {
            (2, 2) => found = Some(input.read_string().map_err(|e| e.to_string())?),
            (_, 0) => {
                input.read_raw_varint64().map_err(|e| e.to_string())?;
            }
            (_, 2) => {
                let len = input.read_raw_varint32().map_err(|e| e.to_string())?;
                input.skip_raw_bytes(len).map_err(|e| e.to_string())?;
            }
            (f, w) => return Err(format!("unexpected field {f} with wire type {w}")),
        }
    }
    Ok(found)
}

/// Keeps `config` in the bundle: the shim's `delete` action cleans the
/// container up with it, whatever the config file says by then.
pub fn save_config_snapshot(bundle: &Path, config: &Config) -> Result<()> {
    let path = bundle.join(CONFIG_SNAPSHOT_FILE);
    lxcri::owner_only::write(&path, config.snapshot().as_bytes()).map_err(|e| {
        ShimError::Failed(format!(
            "create: keeping the configuration in {}: {e}",
            path.display()
        ))
    })
}

/// The configuration the bundle's container was created with; `None` when
/// it has none (nothing of it was made: the snapshot comes first).
pub fn config_snapshot(bundle: &Path) -> Option<lxcri::config::Result<Config>> {
    let path = bundle.join(CONFIG_SNAPSHOT_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    Some(Config::from_snapshot(&path, &text))
}

/// Forgets the bundle's configuration once its container is all gone:
/// containerd's `<shim> delete` after a delete then has nothing to do (in
/// zfs mode it would ask ZFS for the volume once more). A shim killed
/// before this leaves it, and that `delete` cleans up as after a crash.
pub fn remove_config_snapshot(bundle: &Path) {
    let path = bundle.join(CONFIG_SNAPSHOT_FILE);
    if let Err(e) = std::fs::remove_file(&path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "removing the configuration snapshot");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(config_path: &str) -> Vec<u8> {
        let mut out = vec![0x0a, 3, b'a', b'b', b'c'];
        out.push(0x12);
        out.push(config_path.len() as u8);
        out.extend_from_slice(config_path.as_bytes());
        out
    }

    #[test]
    fn reads_config_path() {
        let any = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: options("/etc/lxcri/custom.toml"),
            ..Default::default()
        };
        assert_eq!(
            config_path(Some(&any)).unwrap(),
            Some(PathBuf::from("/etc/lxcri/custom.toml"))
        );
    }

    #[test]
    fn other_option_types_are_ignored_and_garbage_is_an_error() {
        let runc = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: vec![1, 2, 3],
            ..Default::default()
        };
        assert_eq!(config_path(Some(&runc)).unwrap(), None);
        let bad = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: vec![0x12, 50, b'x'],
            ..Default::default()
        };
        assert!(config_path(Some(&bad)).is_err());
    }

    #[test]
    fn a_forgotten_snapshot_leaves_the_delete_action_nothing_to_do() {
        let bundle = tempfile::tempdir().unwrap();
        save_config_snapshot(bundle.path(), &Config::default()).unwrap();
        assert!(config_snapshot(bundle.path()).is_some());
        remove_config_snapshot(bundle.path());
        assert!(config_snapshot(bundle.path()).is_none());
        remove_config_snapshot(bundle.path());
    }
}
