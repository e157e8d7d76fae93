//! `DATA/etc/pve/storage.cfg`, written at startup to describe the stand-in's storages
//! in PVE's section-config format (pve-common src/PVE/SectionConfig.pm `write_config`):
//! `TYPE: ID`, then the required options, then the optional ones sorted by name, each as
//! a tab, the key, a space and the value (booleans as 1/0), and an empty line after each
//! section. The options are those of pve-storage src/PVE/Storage/DirPlugin.pm and
//! ZFSPoolPlugin.pm `options` (`path`, `pool` required; `content`, `mountpoint`,
//! `sparse` optional).

use std::fmt::Write;

/// One storage as storage.cfg describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Section {
    /// A directory storage: its path and content types.
    Dir {
        id: String,
        path: String,
        content: String,
    },
    /// A ZFS pool storage: its dataset, content types, and the dataset's mountpoint when
    /// it is not `/DATASET` (PVE's ZFSPoolPlugin assumes `/DATASET` otherwise).
    ZfsPool {
        id: String,
        pool: String,
        content: String,
        mountpoint: Option<String>,
    },
}

/// Content types as PVE writes them: a list joined by `,` (sorted here; PVE's order is
/// that of a Perl hash, so a reader must not depend on it).
fn content(list: &str) -> String {
    let mut c: Vec<&str> = list.split(',').filter(|c| !c.is_empty()).collect();
    c.sort_unstable();
    c.dedup();
    c.join(",")
}

pub fn render(sections: &[Section]) -> String {
    let mut out = String::new();
    for s in sections {
        match s {
            Section::Dir {
                id,
                path,
                content: c,
            } => {
                let _ = write!(
                    out,
                    "dir: {id}\n\tpath {path}\n\tcontent {}\n\n",
                    content(c)
                );
            }
            Section::ZfsPool {
                id,
                pool,
                content: c,
                mountpoint,
            } => {
                let _ = write!(
                    out,
                    "zfspool: {id}\n\tpool {pool}\n\tcontent {}\n",
                    content(c)
                );
                if let Some(m) = mountpoint {
                    let _ = writeln!(out, "\tmountpoint {m}");
                }
                out.push_str("\tsparse 1\n\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_written_as_pve_writes_them() {
        let text = render(&[
            Section::Dir {
                id: "local".into(),
                path: "/d/storage/local".into(),
                content: "vztmpl,iso,backup,snippets,rootdir,images".into(),
            },
            Section::ZfsPool {
                id: "local-zfs".into(),
                pool: "rpool/data".into(),
                content: "rootdir,images".into(),
                mountpoint: None,
            },
            Section::ZfsPool {
                id: "tank".into(),
                pool: "t1/data".into(),
                content: "rootdir,images".into(),
                mountpoint: Some("/mnt/t1/data".into()),
            },
        ]);
        assert_eq!(
            text,
            "dir: local\n\tpath /d/storage/local\n\tcontent backup,images,iso,rootdir,snippets,vztmpl\n\n\
             zfspool: local-zfs\n\tpool rpool/data\n\tcontent images,rootdir\n\tsparse 1\n\n\
             zfspool: tank\n\tpool t1/data\n\tcontent images,rootdir\n\tmountpoint /mnt/t1/data\n\tsparse 1\n\n"
        );
    }
}
