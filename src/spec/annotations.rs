//! The annotations containerd's CRI plugin puts on every spec
//! (`io.kubernetes.cri.*`): whether this is a pod sandbox or a container,
//! which pod it belongs to, its image. The shim groups containers by
//! sandbox id, and the PVE backend writes pod, container and image names
//! into tags and notes, so the values are checked here (no control
//! characters). Every annotation name lxcri reads is defined here.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::Spec;

use super::{Result, SpecError, CONFIG_FILE};

pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
pub const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
pub const SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
pub const IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
/// lxcri's own annotations; only [`NIC_PREFIX`]`0` to `9` exist.
pub const LXCRI_PREFIX: &str = "io.lxcri.";
/// `io.lxcri.net0` ... `io.lxcri.net9`: a NIC in PVE's `netN` syntax.
pub const NIC_PREFIX: &str = "io.lxcri.net";

/// `io.kubernetes.cri.container-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriContainerType {
    /// The pod's sandbox (pause) container.
    Sandbox,
    /// An application container of a pod.
    Container,
}

/// The CRI annotations of a spec; all `None` for a non-CRI container
/// (e.g. `ctr run`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CriAnnotations {
    pub container_type: Option<CriContainerType>,
    pub sandbox_id: Option<String>,
    pub sandbox_name: Option<String>,
    pub sandbox_namespace: Option<String>,
    pub sandbox_uid: Option<String>,
    pub container_name: Option<String>,
    pub image_name: Option<String>,
}

impl CriAnnotations {
    pub fn from_spec(spec: &Spec) -> Result<Self> {
        let Some(ann) = spec.annotations() else {
            return Ok(Self::default());
        };
        let get = |key: &str| -> Result<Option<String>> {
            match ann.get(key) {
                None => Ok(None),
                Some(v) if v.is_empty() => Err(invalid(key, "is empty")),
                Some(v) if v.chars().any(char::is_control) => {
                    Err(invalid(key, "contains a control character"))
                }
                Some(v) => Ok(Some(v.clone())),
            }
        };
        let container_type = match get(CONTAINER_TYPE)?.as_deref() {
            None => None,
            Some("sandbox") => Some(CriContainerType::Sandbox),
            Some("container") => Some(CriContainerType::Container),
            Some(other) => {
                return Err(invalid(
                    CONTAINER_TYPE,
                    &format!("{other:?} is neither \"sandbox\" nor \"container\""),
                ))
            }
        };
        let sandbox_id = get(SANDBOX_ID)?;
        if let Some(id) = &sandbox_id {
            check_sandbox_id(id)?;
        }
        Ok(Self {
            container_type,
            sandbox_id,
            sandbox_name: get(SANDBOX_NAME)?,
            sandbox_namespace: get(SANDBOX_NAMESPACE)?,
            sandbox_uid: get(SANDBOX_UID)?,
            container_name: get(CONTAINER_NAME)?,
            // containerd leaves it empty where no image name is known.
            image_name: get(IMAGE_NAME).or_else(|e| match ann.get(IMAGE_NAME) {
                Some(v) if v.is_empty() => Ok(None),
                _ => Err(e),
            })?,
        })
    }
}

/// The `io.lxcri.netN` annotations as (N, annotation, value), by N. Any
/// other `io.lxcri.*` name is refused: a misspelled NIC must not be
/// silently left out.
pub fn nic_annotations(spec: &Spec) -> Result<Vec<(u8, String, String)>> {
    let Some(ann) = spec.annotations() else {
        return Ok(Vec::new());
    };
    let mut nics = Vec::new();
    for (key, value) in ann.iter().filter(|(k, _)| k.starts_with(LXCRI_PREFIX)) {
        let index = key
            .strip_prefix(NIC_PREFIX)
            .filter(|n| n.len() == 1)
            .and_then(|n| n.parse::<u8>().ok());
        let Some(index) = index else {
            return Err(invalid(
                key,
                &format!("unknown lxcri annotation (lxcri reads {NIC_PREFIX}0 to {NIC_PREFIX}9)"),
            ));
        };
        nics.push((index, key.clone(), value.clone()));
    }
    nics.sort();
    Ok(nics)
}

/// It becomes a path component and a grouping key.
fn check_sandbox_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.starts_with('.')
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(invalid(
            SANDBOX_ID,
            "only [A-Za-z0-9_.-] allowed, not starting with '.'",
        ));
    }
    Ok(())
}

/// The pod a bundle's container belongs to, from the annotations of its
/// `config.json` alone. The shim's `start` groups a pod's containers into
/// one shim process by it; a config.json broken elsewhere still reaches
/// `create`, which reports what is wrong with it.
pub fn bundle_sandbox_id(bundle: &Path) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Annotated {
        #[serde(default)]
        annotations: HashMap<String, String>,
    }
    let body = std::fs::read(bundle.join(CONFIG_FILE)).ok()?;
    let spec: Annotated = serde_json::from_slice(&body).ok()?;
    let id = spec.annotations.get(SANDBOX_ID)?;
    check_sandbox_id(id).ok()?;
    Some(id.clone())
}

fn invalid(key: &str, message: &str) -> SpecError {
    SpecError::Annotation {
        key: key.to_string(),
        message: message.to_string(),
    }
}
