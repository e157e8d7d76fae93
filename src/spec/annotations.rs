//! The annotations containerd's CRI plugin puts on every spec
//! (`io.kubernetes.cri.*`): whether this is a pod sandbox or a container,
//! and which pod it belongs to. The shim groups containers by sandbox id,
//! and the PVE backend writes pod and container names into tags and notes,
//! so the values are checked here (no control characters).

use oci_spec::runtime::Spec;

use super::{Result, SpecError};

pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
pub const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
pub const SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";

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
            // It becomes a path component and a grouping key.
            if !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                || id.starts_with('.')
            {
                return Err(invalid(
                    SANDBOX_ID,
                    "only [A-Za-z0-9_.-] allowed, not starting with '.'",
                ));
            }
        }
        Ok(Self {
            container_type,
            sandbox_id,
            sandbox_name: get(SANDBOX_NAME)?,
            sandbox_namespace: get(SANDBOX_NAMESPACE)?,
            sandbox_uid: get(SANDBOX_UID)?,
            container_name: get(CONTAINER_NAME)?,
        })
    }
}

fn invalid(key: &str, message: &str) -> SpecError {
    SpecError::Annotation {
        key: key.to_string(),
        message: message.to_string(),
    }
}
