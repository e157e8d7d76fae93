//! Dataset and snapshot names as ZFS accepts them, checked before they
//! reach a command line or a PVE config.

use std::fmt;

use super::{Result, ZfsError};

/// ZFS's limit on a full name (ZFS_MAX_DATASET_NAME_LEN - 1).
const MAX_LEN: usize = 255;

/// `pool/a/b` or `pool/a/b@snap`: components of `[A-Za-z0-9_.:-]`, the
/// pool starting with a letter, no empty component, no `.`/`..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetName(String);

fn invalid(name: &str, reason: &'static str) -> ZfsError {
    ZfsError::InvalidName {
        name: name.to_string(),
        reason,
    }
}

fn check_component(name: &str, c: &str) -> Result<()> {
    if c.is_empty() {
        return Err(invalid(name, "empty component"));
    }
    if c == "." || c == ".." {
        return Err(invalid(name, "'.' and '..' are not components"));
    }
    if !c
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
    {
        return Err(invalid(name, "only [A-Za-z0-9_.:-] and '/' allowed"));
    }
    Ok(())
}

impl DatasetName {
    pub fn parse(name: &str) -> Result<Self> {
        if name.len() > MAX_LEN {
            return Err(invalid(name, "longer than 255 bytes"));
        }
        let (path, snap) = match name.split_once('@') {
            Some((p, s)) => (p, Some(s)),
            None => (name, None),
        };
        for c in path.split('/') {
            check_component(name, c)?;
        }
        if !path.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(invalid(name, "the pool name must start with a letter"));
        }
        if let Some(s) = snap {
            if s.contains('/') || s.contains('@') {
                return Err(invalid(name, "a snapshot name has no '/' or '@'"));
            }
            check_component(name, s)?;
        }
        Ok(Self(name.to_string()))
    }

    /// `self/child` (`self` must not be a snapshot).
    pub fn child(&self, child: &str) -> Result<Self> {
        if self.is_snapshot() {
            return Err(invalid(&self.0, "a snapshot has no children"));
        }
        Self::parse(&format!("{}/{child}", self.0))
    }

    /// `self@snap`.
    pub fn snapshot(&self, snap: &str) -> Result<Self> {
        if self.is_snapshot() {
            return Err(invalid(&self.0, "already a snapshot"));
        }
        Self::parse(&format!("{}@{snap}", self.0))
    }

    pub fn is_snapshot(&self) -> bool {
        self.0.contains('@')
    }

    /// The pool: the first component.
    pub fn pool(&self) -> &str {
        self.0.split(['/', '@']).next().unwrap_or(&self.0)
    }

    /// The last component of the dataset (without any `@snap`).
    pub fn leaf(&self) -> &str {
        let path = self.0.split('@').next().unwrap_or(&self.0);
        path.rsplit('/').next().unwrap_or(path)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_and_parts() {
        let d = DatasetName::parse("rpool/data/subvol-100-disk-0").unwrap();
        assert_eq!(d.pool(), "rpool");
        assert_eq!(d.leaf(), "subvol-100-disk-0");
        assert!(!d.is_snapshot());
        let s = d.snapshot("lxcri").unwrap();
        assert_eq!(s.as_str(), "rpool/data/subvol-100-disk-0@lxcri");
        assert_eq!(s.leaf(), "subvol-100-disk-0");
        assert_eq!(s.pool(), "rpool");
        assert!(s.child("x").is_err());
        assert!(s.snapshot("y").is_err());
        assert_eq!(
            DatasetName::parse("tank")
                .unwrap()
                .child("img:a.b_c-1")
                .unwrap()
                .as_str(),
            "tank/img:a.b_c-1"
        );
    }

    #[test]
    fn names_that_could_inject_are_refused() {
        for bad in [
            "",
            "tank/",
            "/tank",
            "tank//x",
            "tank/a b",
            "tank/x\nrootfs: evil",
            "1tank/x",
            "-tank",
            "tank/..",
            "tank/x@",
            "tank/x@a@b",
            "tank/x@a/b",
            "tank/x,y",
            "tank/x;y",
        ] {
            assert!(DatasetName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(DatasetName::parse(&format!("tank/{}", "a".repeat(300))).is_err());
        // A '-' inside a path is legal for ZFS and cannot be read as an
        // option: a name never starts with it.
        assert!(DatasetName::parse("tank/-o").is_ok());
    }
}
