//! Where `linux.cgroupsPath` asks a container's cgroup to be, read as runc
//! reads it.
//!
//! containerd writes one of two forms (internal/cri/server/helpers.go
//! `getCgroupsPath`; pkg/oci/spec.go for `ctr`): a path (`/<namespace>/<id>`,
//! or the pod's cgroup parent and the id, `/kubepods/burstable/pod<uid>/<id>`
//! under the kubelet's `cgroupfs` driver) or systemd's `slice:prefix:name`
//! when the parent is a slice. runc cleans a path lexically
//! (internal/pathrs/path.go `LexicallyCleanPath`) and, for an absolute one,
//! makes it in every hierarchy below the root; LXC then takes it as
//! `lxc.cgroup.dir.container`, relative to the root, and refuses components
//! that walk upwards (lxc 5.0.2 src/lxc/confile.c
//! `set_config_cgroup_container_dir`, src/lxc/cgroups/cgfsng.c
//! `__cgroup_tree_create`).

use std::fmt;

/// `PATH_MAX` and `NAME_MAX`: the kernel's limits on the directory LXC makes.
const MAX_PATH: usize = 4095;
const MAX_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CgroupPathError {
    #[error(
        "{0:?} names the root cgroup (or the runtime's own); a container needs a cgroup of its own"
    )]
    Root(String),
    #[error("{path:?}: {reason}")]
    Invalid { path: String, reason: String },
    #[error(
        "{path:?} is relative, and runc makes a relative path below its own cgroup in each hierarchy; lxcri's own cgroup differs between this host's hierarchies ({own}) and LXC takes one path for all: give an absolute path such as /<namespace>/<id>, or systemd's slice:prefix:name"
    )]
    Relative { path: String, own: String },
    #[error("{path:?} is relative to lxcri's own cgroup, which is unknown: {reason}")]
    OwnUnknown { path: String, reason: String },
}

/// The cgroup a relative `linux.cgroupsPath` is below: runc's own in each
/// v1 hierarchy (libcontainer/cgroups/fs `subsysPath`), the parent of its
/// own on v2, which has processes in it and so could not pass controllers
/// on (fs2 `defaultDirPath`). LXC takes one path for all hierarchies, so
/// only a place that is the same in all of them (always so on a v2-only
/// host) can be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnCgroup {
    /// The same path in every hierarchy, below the root ("" is the root).
    Uniform(String),
    /// Where each hierarchy has it (`memory=/a, cpu=/`), for the error.
    Mixed(String),
    /// `/proc/self/cgroup` could not be read: why.
    Unknown(String),
}

impl OwnCgroup {
    /// From the runtime's `/proc/self/cgroup` on a host of `version`.
    pub fn from_proc_cgroup(content: &str, version: super::CgroupVersion) -> Self {
        let entries: Vec<(&str, &str)> = super::proc_cgroup_entries(content)
            .map(|(controllers, path)| (controllers, path.trim_matches('/')))
            .collect();
        if version == super::CgroupVersion::V2 {
            let own = entries
                .iter()
                .find(|(c, _)| c.is_empty())
                .map_or("", |(_, p)| p);
            return Self::Uniform(
                own.rsplit_once('/')
                    .map_or("", |(parent, _)| parent)
                    .to_string(),
            );
        }
        match entries.first() {
            None => Self::Uniform(String::new()),
            Some((_, first)) if entries.iter().all(|(_, p)| p == first) => {
                Self::Uniform(first.to_string())
            }
            Some(_) => Self::Mixed(
                entries
                    .iter()
                    .map(|(c, p)| {
                        let c = if c.is_empty() { "unified" } else { c };
                        format!("{c}=/{p}")
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        }
    }
}

/// A cgroup below each hierarchy's root, e.g. `k8s.io/abc`: relative,
/// lexically clean, with no component LXC would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CgroupPath(String);

impl CgroupPath {
    /// A path below the root as LXC's config names it (no leading `/`).
    pub fn parse(text: &str) -> Result<Self, CgroupPathError> {
        let invalid = |reason: &str| CgroupPathError::Invalid {
            path: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() || text.starts_with('/') {
            return Err(invalid("must be a path below the cgroup root"));
        }
        if text.len() > MAX_PATH {
            return Err(invalid("is longer than PATH_MAX"));
        }
        for part in text.split('/') {
            if part.is_empty() || part == "." {
                return Err(invalid("has an empty or '.' component"));
            }
            // LXC refuses ".." anywhere in the value (confile.c `dotdot`).
            if part.contains("..") {
                return Err(invalid("contains '..'"));
            }
            if part.len() > MAX_NAME {
                return Err(invalid("has a component longer than NAME_MAX"));
            }
            if part.chars().any(char::is_control) {
                return Err(invalid("contains a control character"));
            }
            if part.trim() != part {
                return Err(invalid(
                    "has a component with leading or trailing whitespace",
                ));
            }
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

/// What `linux.cgroupsPath` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupPlacement {
    /// Unset: the runtime names the cgroup (LXC's `lxc.payload.<name>`).
    RuntimeDefault,
    /// A cgroup at this path in every hierarchy.
    Path(CgroupPath),
    /// A cgroup at this path below the runtime's own ([`Self::resolve`]).
    Relative(CgroupPath),
    /// systemd's `slice:prefix:name`: runc's systemd driver makes the unit
    /// `unit` in `slice` over D-Bus.
    SystemdUnit { slice: String, unit: String },
}

impl CgroupPlacement {
    /// Reads `linux.cgroupsPath`.
    pub fn from_oci(cgroups_path: Option<&str>) -> Result<Self, CgroupPathError> {
        let text = match cgroups_path {
            None | Some("") => return Ok(Self::RuntimeDefault),
            Some(t) => t,
        };
        let parts: Vec<&str> = text.split(':').collect();
        if let (false, [slice, prefix, name]) = (text.starts_with('/'), parts.as_slice()) {
            return systemd_unit(text, slice, prefix, name);
        }
        // runc cleans a relative path as if it were absolute.
        let clean = lexically_clean(text);
        if clean.is_empty() {
            return Err(CgroupPathError::Root(text.to_string()));
        }
        let path = CgroupPath::parse(&clean)?;
        Ok(if text.starts_with('/') {
            Self::Path(path)
        } else {
            Self::Relative(path)
        })
    }

    /// The cgroup to make, below each hierarchy's root: a relative path
    /// joined to `own`; `None` for the runtime's or systemd's own names.
    pub fn resolve(&self, own: &OwnCgroup) -> Result<Option<CgroupPath>, CgroupPathError> {
        match (self, own) {
            (Self::Path(p), _) => Ok(Some(p.clone())),
            (Self::Relative(p), OwnCgroup::Uniform(base)) if base.is_empty() => Ok(Some(p.clone())),
            (Self::Relative(p), OwnCgroup::Uniform(base)) => {
                CgroupPath::parse(&format!("{base}/{}", p.as_str())).map(Some)
            }
            (Self::Relative(p), OwnCgroup::Mixed(own)) => Err(CgroupPathError::Relative {
                path: p.as_str().to_string(),
                own: own.clone(),
            }),
            (Self::Relative(p), OwnCgroup::Unknown(reason)) => Err(CgroupPathError::OwnUnknown {
                path: p.as_str().to_string(),
                reason: reason.clone(),
            }),
            (Self::RuntimeDefault | Self::SystemdUnit { .. }, _) => Ok(None),
        }
    }
}

/// runc's `getUnitName`: a scope `prefix-name.scope` unless the name is a
/// slice itself; an empty slice is systemd's default, `system.slice`.
fn systemd_unit(
    text: &str,
    slice: &str,
    prefix: &str,
    name: &str,
) -> Result<CgroupPlacement, CgroupPathError> {
    let invalid = |reason: &str| CgroupPathError::Invalid {
        path: text.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(invalid("slice:prefix:name has an empty name"));
    }
    if !slice.is_empty() && (!slice.ends_with(".slice") || slice.contains('/')) {
        return Err(invalid(
            "the slice of slice:prefix:name must be a systemd slice unit like kubepods.slice",
        ));
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(CgroupPlacement::SystemdUnit {
        slice: if slice.is_empty() {
            "system.slice".into()
        } else {
            slice.to_string()
        },
        unit,
    })
}

/// Go's `filepath.Clean` of an absolute path, without the leading `/`:
/// `.` and empty components go, `..` takes the previous one (none above
/// the root).
fn lexically_clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> CgroupPlacement {
        CgroupPlacement::from_oci(Some(text)).unwrap()
    }

    fn at(p: &str) -> CgroupPlacement {
        CgroupPlacement::Path(CgroupPath::parse(p).unwrap())
    }

    #[test]
    fn an_absolute_path_is_cleaned_as_runc_cleans_it() {
        assert_eq!(path("/default/c1"), at("default/c1"));
        assert_eq!(
            path("/kubepods/burstable/pod1//./c1/"),
            at("kubepods/burstable/pod1/c1")
        );
        assert_eq!(path("/a/../../b"), at("b"));
        assert_eq!(
            path("/a:b:c"),
            at("a:b:c"),
            "absolute: a path, colons or not"
        );
        assert_eq!(
            CgroupPath::parse("k8s.io/c1").unwrap().to_string(),
            "/k8s.io/c1"
        );
    }

    #[test]
    fn unset_is_the_runtime_default() {
        for unset in [None, Some("")] {
            assert_eq!(
                CgroupPlacement::from_oci(unset).unwrap(),
                CgroupPlacement::RuntimeDefault
            );
        }
    }

    #[test]
    fn the_root_and_what_lxc_refuses_are_errors() {
        for root in ["/", "/..", "//./"] {
            assert!(matches!(
                CgroupPlacement::from_oci(Some(root)),
                Err(CgroupPathError::Root(_))
            ));
        }
        let long_name = format!("/{}", "x".repeat(256));
        for bad in [
            "/a/..b/c", "/a/b../c", "/a/x..y", "/a/\nb", "/a/b\0", "/ a", &long_name,
        ] {
            let e = CgroupPlacement::from_oci(Some(bad)).unwrap_err();
            assert!(matches!(e, CgroupPathError::Invalid { .. }), "{bad:?}: {e}");
        }
        for bad in ["", "/x", "a//b", "a/./b", "../a"] {
            assert!(CgroupPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_relative_path_is_below_the_runtimes_own_cgroup_when_one_path_says_it() {
        use crate::cgroup::CgroupVersion::{V1, V2};
        // v2: the parent of runc's own, which has no processes.
        let v2 = OwnCgroup::from_proc_cgroup("0::/system.slice/containerd.service\n", V2);
        assert_eq!(v2, OwnCgroup::Uniform("system.slice".into()));
        assert_eq!(
            OwnCgroup::from_proc_cgroup("0::/init.scope\n", V2),
            OwnCgroup::Uniform(String::new())
        );
        let root = OwnCgroup::from_proc_cgroup("3:cpu:/\n2:memory:/\n0::/\n", V1);
        assert_eq!(root, OwnCgroup::Uniform(String::new()), "all at the root");
        let v1 =
            OwnCgroup::from_proc_cgroup("3:cpu:/sys/ctd\n2:memory:/sys/ctd\n0::/sys/ctd\n", V1);
        assert_eq!(v1, OwnCgroup::Uniform("sys/ctd".into()), "v1: its own");
        let under = |text: &str, own: &OwnCgroup| {
            CgroupPlacement::from_oci(Some(text))
                .and_then(|p| p.resolve(own))
                .map(|p| p.map(|p| p.as_str().to_string()))
        };
        assert_eq!(
            under("pods/c1", &v2).unwrap().as_deref(),
            Some("system.slice/pods/c1")
        );
        assert_eq!(
            under("pods/c1", &v1).unwrap().as_deref(),
            Some("sys/ctd/pods/c1")
        );
        // Cleaned first, so it cannot climb out of the runtime's cgroup.
        assert_eq!(
            under("../../x", &v2).unwrap().as_deref(),
            Some("system.slice/x")
        );
        let unknown = OwnCgroup::Unknown("/proc/self/cgroup: gone".into());
        assert!(under("x", &unknown)
            .unwrap_err()
            .to_string()
            .contains("gone"));
        assert_eq!(
            under("a:b", &root).unwrap().as_deref(),
            Some("a:b"),
            "one colon: a name"
        );
        assert!(matches!(under(".", &root), Err(CgroupPathError::Root(_))));
        assert_eq!(under("kubepods.slice:p:n", &v2).unwrap(), None, "systemd's");
        assert_eq!(CgroupPlacement::RuntimeDefault.resolve(&v2).unwrap(), None);

        let hybrid = OwnCgroup::from_proc_cgroup("4:memory:/pa/x\n1:cpu:/\n0::/\n", V1);
        assert_eq!(
            hybrid,
            OwnCgroup::Mixed("memory=/pa/x, cpu=/, unified=/".into())
        );
        let e = under("pods/c1", &hybrid).unwrap_err().to_string();
        assert!(
            e.contains("memory=/pa/x") && e.contains("give an absolute path"),
            "{e}"
        );
        // Absolute paths do not care.
        assert_eq!(
            under("/pods/c1", &hybrid).unwrap().as_deref(),
            Some("pods/c1")
        );
    }

    #[test]
    fn systemds_form_names_the_unit_runc_would_make() {
        assert_eq!(
            path("kubepods-besteffort-pod1.slice:cri-containerd:abc"),
            CgroupPlacement::SystemdUnit {
                slice: "kubepods-besteffort-pod1.slice".into(),
                unit: "cri-containerd-abc.scope".into(),
            }
        );
        assert_eq!(
            path(":runc:x.slice"),
            CgroupPlacement::SystemdUnit {
                slice: "system.slice".into(),
                unit: "x.slice".into(),
            }
        );
        for bad in ["a.slice:p:", "notaslice:p:n", "a/b.slice:p:n"] {
            assert!(
                matches!(
                    CgroupPlacement::from_oci(Some(bad)),
                    Err(CgroupPathError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }
}
