//! The node's storage definitions, `/etc/pve/storage.cfg`, read the way
//! PVE's section config parser reads it (pve-common src/PVE/SectionConfig.pm,
//! `parse_config`): a `TYPE: ID` header line, then indented `KEY VALUE`
//! lines up to the first empty line; `#` lines are comments. lxcri reads it
//! as root on the node to check that the storage it creates CTs on is the
//! ZFS pool its clones go into.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StorageCfgError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One storage: its type (`zfspool`, `dir`, `lvmthin`...), id and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageEntry {
    pub kind: String,
    pub id: String,
    pub options: BTreeMap<String, String>,
}

impl StorageEntry {
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// Whether `content` lists `what` (`rootdir`, `images`, ...).
    pub fn has_content(&self, what: &str) -> bool {
        self.option("content")
            .is_some_and(|c| c.split(',').any(|c| c.trim() == what))
    }

    /// `disable 1` switches a storage off on every node.
    pub fn is_disabled(&self) -> bool {
        self.option("disable").is_some_and(|d| d != "0")
    }

    /// `nodes` limits a storage to the nodes it lists.
    pub fn serves_node(&self, node: &str) -> bool {
        self.option("nodes")
            .map_or(true, |n| n.split(',').any(|n| n.trim() == node))
    }
}

/// The parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageCfg {
    entries: Vec<StorageEntry>,
}

impl StorageCfg {
    pub fn read(path: &Path) -> Result<Self, StorageCfgError> {
        let text = std::fs::read_to_string(path).map_err(|source| StorageCfgError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(&text))
    }

    /// Lines PVE would skip (garbage between sections) are skipped here too.
    pub fn parse(text: &str) -> Self {
        let mut entries: Vec<StorageEntry> = Vec::new();
        let mut in_section = false;
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if line.trim().is_empty() {
                in_section = false;
                continue;
            }
            if in_section && line.starts_with(char::is_whitespace) {
                let mut parts = line.trim().splitn(2, char::is_whitespace);
                let key = parts.next().unwrap_or_default().to_string();
                let value = parts.next().unwrap_or_default().trim().to_string();
                let entry = entries.last_mut().expect("in a section");
                entry.options.entry(key).or_insert(value);
                continue;
            }
            in_section = false;
            if let Some((kind, id)) = line.split_once(':') {
                let (kind, id) = (kind.trim_end(), id.trim());
                let word = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
                if word(kind) && word(id) && !kind.starts_with(char::is_whitespace) {
                    entries.push(StorageEntry {
                        kind: kind.to_string(),
                        id: id.to_string(),
                        options: BTreeMap::new(),
                    });
                    in_section = true;
                }
            }
        }
        Self { entries }
    }

    pub fn get(&self, id: &str) -> Option<&StorageEntry> {
        self.entries.iter().find(|e| e.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "\
dir: local
\tpath /var/lib/vz
\tcontent iso,vztmpl,backup

# the installer's ZFS storage
zfspool: local-zfs
\tpool rpool/data
\tsparse
\tcontent images,rootdir
\tnodes pve1,pve2

lvmthin: local-lvm
\tthinpool data
\tvgname pve
\tcontent rootdir,images
\tdisable 1
";

    #[test]
    fn parses_sections_as_pve_does() {
        let cfg = StorageCfg::parse(CFG);
        let zfs = cfg.get("local-zfs").unwrap();
        assert_eq!(zfs.kind, "zfspool");
        assert_eq!(zfs.option("pool"), Some("rpool/data"));
        assert_eq!(zfs.option("sparse"), Some(""));
        assert!(zfs.has_content("rootdir") && !zfs.has_content("vztmpl"));
        assert!(zfs.serves_node("pve2") && !zfs.serves_node("pve3"));
        assert!(!zfs.is_disabled());
        assert!(cfg.get("local-lvm").unwrap().is_disabled());
        assert_eq!(
            cfg.get("local").unwrap().option("path"),
            Some("/var/lib/vz")
        );
        assert!(cfg.get("nope").is_none());
    }

    #[test]
    fn an_empty_line_ends_a_section() {
        let cfg = StorageCfg::parse("zfspool: a\n\tpool p\n\n\tpool q\ndir: b\n\tpath /b\n");
        assert_eq!(cfg.get("a").unwrap().option("pool"), Some("p"));
        assert_eq!(cfg.get("b").unwrap().option("path"), Some("/b"));
    }
}
