//! The JSON spec file a host-side helper mode (`exec`, `share`, `hooks`,
//! `host-view`) is given on its command line.

use std::path::Path;

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum SpecFileError {
    #[error("read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parse {path}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
}

pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T, SpecFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read(path).map_err(|source| SpecFileError::Read {
        path: shown.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| SpecFileError::Parse {
        path: shown,
        source,
    })
}
