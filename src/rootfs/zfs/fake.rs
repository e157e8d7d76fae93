//! An in-memory ZFS for unit tests: datasets, snapshots, clones, user
//! properties and mounts, answering the commands [`crate::zfs::Zfs`] runs
//! the way zfs-fuse does (no `acltype`, busy renames while mounted, a
//! destroy that has to unmount first busy once), and showing its mounts
//! in a mount table (`fuse.zfs` at `/fake/<dataset>`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{CopyError, LayerCopier, MountEntry, ZfsMounts};
use crate::zfs::{Result, ZfsCommand, ZfsError};

#[derive(Debug, Clone, Default)]
pub struct Node {
    pub props: BTreeMap<String, String>,
    pub origin: Option<String>,
    pub mounted: bool,
}

#[derive(Debug, Default)]
pub struct State {
    pub pools: Vec<String>,
    pub nodes: BTreeMap<String, Node>,
    pub calls: Vec<String>,
    /// Paths unmounted through the mount table.
    pub unmounts: Vec<PathBuf>,
    /// The mount table cannot be read (zfs is asked instead).
    pub no_table: bool,
    /// Commands starting with this fail once with this error.
    pub fail_next: Option<(String, ZfsError)>,
}

#[derive(Debug, Clone, Default)]
pub struct FakeZfs(pub Arc<Mutex<State>>);

fn missing(name: &str) -> ZfsError {
    ZfsError::MissingDataset {
        name: name.to_string(),
    }
}

fn exists(name: &str) -> ZfsError {
    ZfsError::AlreadyExists {
        name: name.to_string(),
    }
}

fn failed(args: &[String], msg: &str) -> ZfsError {
    ZfsError::Failed {
        args: args.join(" "),
        code: 1,
        stderr: msg.to_string(),
    }
}

impl FakeZfs {
    pub fn with_pool(pool: &str) -> Self {
        let fake = Self::default();
        {
            let mut s = fake.0.lock().unwrap();
            s.pools.push(pool.to_string());
            s.nodes.insert(pool.to_string(), Node::default());
        }
        fake
    }

    pub fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().nodes.keys().cloned().collect()
    }

    pub fn prop(&self, name: &str, key: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap()
            .nodes
            .get(name)?
            .props
            .get(key)
            .cloned()
    }

    pub fn origin(&self, name: &str) -> Option<String> {
        self.0.lock().unwrap().nodes.get(name)?.origin.clone()
    }

    pub fn set_prop(&self, name: &str, key: &str, value: &str) {
        let mut s = self.0.lock().unwrap();
        s.nodes
            .get_mut(name)
            .expect("dataset exists")
            .props
            .insert(key.into(), value.into());
    }

    pub fn add(&self, name: &str, props: &[(&str, &str)]) {
        let mut node = Node::default();
        for (k, v) in props {
            node.props.insert(k.to_string(), v.to_string());
        }
        self.0.lock().unwrap().nodes.insert(name.into(), node);
    }

    pub fn fail_next(&self, prefix: &str, err: ZfsError) {
        self.0.lock().unwrap().fail_next = Some((prefix.into(), err));
    }

    pub fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().calls.clone()
    }

    /// The calls so far, forgotten.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap().calls)
    }

    pub fn set_mounted(&self, name: &str, mounted: bool) {
        let mut s = self.0.lock().unwrap();
        s.nodes.get_mut(name).expect("dataset exists").mounted = mounted;
    }
}

/// `-o k=v` pairs and the rest.
fn split_props(args: &[String]) -> (Vec<(String, String)>, Vec<String>) {
    let mut props = Vec::new();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-o" {
            let kv = it.next().expect("-o takes a value");
            let (k, v) = kv.split_once('=').expect("k=v");
            props.push((k.to_string(), v.to_string()));
        } else {
            rest.push(a.clone());
        }
    }
    (props, rest)
}

fn parent(name: &str) -> Option<&str> {
    name.rsplit_once('/').map(|(p, _)| p)
}

impl State {
    fn check_parent(&self, args: &[String], name: &str) -> Result<()> {
        let pool = name.split('/').next().unwrap_or(name);
        if !self.pools.iter().any(|p| p == pool) {
            return Err(ZfsError::NoSuchPool { pool: pool.into() });
        }
        match parent(name) {
            Some(p) if !self.nodes.contains_key(p) => Err(failed(args, "parent does not exist")),
            _ => Ok(()),
        }
    }

    fn get(&self, name: &str, key: &str) -> Result<String> {
        let node = self.nodes.get(name).ok_or_else(|| missing(name))?;
        Ok(match key {
            "acltype" => return Err(failed(&[], "bad property list: invalid property 'acltype'")),
            "mountpoint" if name.contains('@') => "-".into(),
            "mountpoint" => format!("/fake/{name}"),
            "mounted" => if node.mounted { "yes" } else { "no" }.into(),
            "origin" => node.origin.clone().unwrap_or("-".into()),
            k => node.props.get(k).cloned().unwrap_or_else(|| {
                // User properties are inherited, like ZFS does.
                let mut p = parent(name);
                while let Some(pn) = p {
                    if let Some(v) = self.nodes.get(pn).and_then(|n| n.props.get(k)) {
                        if k.contains(':') {
                            return v.clone();
                        }
                    }
                    p = parent(pn);
                }
                "-".into()
            }),
        })
    }

    fn has_clones(&self, snapshot: &str) -> bool {
        self.nodes
            .values()
            .any(|n| n.origin.as_deref() == Some(snapshot))
    }

    fn run(&mut self, args: &[String]) -> Result<String> {
        let (props, rest) = if matches!(args[0].as_str(), "create" | "clone") {
            split_props(args)
        } else {
            (Vec::new(), args.to_vec())
        };
        let a: Vec<&str> = rest.iter().map(String::as_str).collect();
        match a.as_slice() {
            ["list", "-H", "-o", "name", "-t", "all", name] => {
                if self.nodes.contains_key(*name) {
                    Ok(format!("{name}\n"))
                } else {
                    Err(missing(name))
                }
            }
            ["list", "-H", "-r", "-t", "filesystem,snapshot", "-o", cols, parent] => {
                if !self.nodes.contains_key(*parent) {
                    return Err(missing(parent));
                }
                let mut out = String::new();
                let under: Vec<String> = self
                    .nodes
                    .keys()
                    .filter(|n| {
                        *n == parent
                            || n.starts_with(&format!("{parent}/"))
                            || n.starts_with(&format!("{parent}@"))
                    })
                    .cloned()
                    .collect();
                for n in under {
                    let row: Vec<String> = cols
                        .split(',')
                        .map(|c| {
                            if c == "name" {
                                n.clone()
                            } else {
                                self.get(&n, c).unwrap_or("-".into())
                            }
                        })
                        .collect();
                    out.push_str(&row.join("\t"));
                    out.push('\n');
                }
                Ok(out)
            }
            ["create", name] => {
                if self.nodes.contains_key(*name) {
                    return Err(exists(name));
                }
                self.check_parent(args, name)?;
                let node = Node {
                    props: props.into_iter().collect(),
                    origin: None,
                    mounted: true,
                };
                self.nodes.insert(name.to_string(), node);
                Ok(String::new())
            }
            ["snapshot", snap] => {
                let (ds, _) = snap.split_once('@').expect("a snapshot");
                if !self.nodes.contains_key(ds) {
                    return Err(missing(ds));
                }
                if self.nodes.contains_key(*snap) {
                    return Err(exists(snap));
                }
                let props = self.nodes[ds].props.clone();
                self.nodes.insert(
                    snap.to_string(),
                    Node {
                        props,
                        ..Node::default()
                    },
                );
                Ok(String::new())
            }
            ["clone", snap, target] => {
                if !self.nodes.contains_key(*snap) {
                    return Err(missing(snap));
                }
                if self.nodes.contains_key(*target) {
                    return Err(exists(target));
                }
                self.check_parent(args, target)?;
                self.nodes.insert(
                    target.to_string(),
                    Node {
                        props: props.into_iter().collect(),
                        origin: Some(snap.to_string()),
                        mounted: true,
                    },
                );
                Ok(String::new())
            }
            ["rename", from, to] => {
                let node = self.nodes.get(*from).ok_or_else(|| missing(from))?;
                if node.mounted {
                    return Err(ZfsError::Busy {
                        name: from.to_string(),
                    });
                }
                if self.nodes.contains_key(*to) {
                    return Err(exists(to));
                }
                let moved: Vec<String> = self
                    .nodes
                    .keys()
                    .filter(|n| *n == from || n.starts_with(&format!("{from}@")))
                    .cloned()
                    .collect();
                for n in moved {
                    let node = self.nodes.remove(&n).expect("listed");
                    let new = format!("{to}{}", &n[from.len()..]);
                    for other in self.nodes.values_mut() {
                        if other.origin.as_deref() == Some(n.as_str()) {
                            other.origin = Some(new.clone());
                        }
                    }
                    self.nodes.insert(new, node);
                }
                Ok(String::new())
            }
            ["destroy", flags @ .., name] => {
                let recursive = flags.contains(&"-r");
                if !self.nodes.contains_key(*name) {
                    return Err(missing(name));
                }
                let doomed: Vec<String> = self
                    .nodes
                    .keys()
                    .filter(|n| {
                        *n == name
                            || (recursive
                                && (n.starts_with(&format!("{name}@"))
                                    || n.starts_with(&format!("{name}/"))))
                    })
                    .cloned()
                    .collect();
                if !recursive
                    && self
                        .nodes
                        .keys()
                        .any(|n| n.starts_with(&format!("{name}@")))
                {
                    return Err(failed(args, "filesystem has children"));
                }
                for d in &doomed {
                    if d.contains('@') && self.has_clones(d) {
                        return Err(ZfsError::DependentClones {
                            name: name.to_string(),
                        });
                    }
                }
                // zfs-fuse: a destroy that unmounts finds the dataset
                // busy, the next one destroys it.
                let mut busy = false;
                for d in &doomed {
                    let node = self.nodes.get_mut(d).expect("listed");
                    busy |= node.mounted;
                    node.mounted = false;
                }
                if busy {
                    return Err(ZfsError::Busy {
                        name: name.to_string(),
                    });
                }
                for d in doomed {
                    self.nodes.remove(&d);
                }
                Ok(String::new())
            }
            ["get", "-H", "-o", "value", key, name] => self.get(name, key).map(|v| v + "\n"),
            ["get", "-H", "-o", "property,value", keys, name] => {
                let mut out = String::new();
                for key in keys.split(',') {
                    out += &format!("{key}\t{}\n", self.get(name, key)?);
                }
                Ok(out)
            }
            ["set", kv, name] => {
                let (k, v) = kv.split_once('=').expect("k=v");
                let node = self.nodes.get_mut(*name).ok_or_else(|| missing(name))?;
                node.props.insert(k.into(), v.into());
                Ok(String::new())
            }
            ["mount", name] => {
                self.nodes
                    .get_mut(*name)
                    .ok_or_else(|| missing(name))?
                    .mounted = true;
                Ok(String::new())
            }
            ["umount", name] => {
                self.nodes
                    .get_mut(*name)
                    .ok_or_else(|| missing(name))?
                    .mounted = false;
                Ok(String::new())
            }
            _ => Err(failed(args, "fake zfs: unknown command")),
        }
    }
}

impl ZfsCommand for FakeZfs {
    fn run(&self, args: &[String]) -> Result<String> {
        let mut s = self.0.lock().unwrap();
        s.calls.push(args.join(" "));
        if let Some((prefix, _)) = &s.fail_next {
            if args.join(" ").starts_with(prefix.as_str()) {
                let (_, err) = s.fail_next.take().expect("checked");
                return Err(err);
            }
        }
        s.run(args)
    }
}

impl ZfsMounts for FakeZfs {
    fn list(&self) -> Vec<MountEntry> {
        let s = self.0.lock().unwrap();
        if s.no_table {
            return Vec::new();
        }
        s.nodes
            .iter()
            .filter(|(_, n)| n.mounted)
            .map(|(name, _)| MountEntry {
                path: PathBuf::from(format!("/fake/{name}")),
                root: "/".into(),
                fstype: "fuse.zfs".into(),
                source: name.clone(),
                super_options: "rw".into(),
            })
            .collect()
    }

    fn unmount(&self, path: &Path) -> nix::Result<()> {
        let mut s = self.0.lock().unwrap();
        let name = path
            .to_str()
            .and_then(|p| p.strip_prefix("/fake/"))
            .ok_or(nix::Error::EINVAL)?
            .to_string();
        let node = s.nodes.get_mut(&name).ok_or(nix::Error::EINVAL)?;
        if !node.mounted {
            return Err(nix::Error::EINVAL);
        }
        node.mounted = false;
        s.unmounts.push(path.to_path_buf());
        Ok(())
    }
}

/// One copy: the layers and the destination.
pub type Copy = (Vec<PathBuf>, PathBuf);

/// Records copies; fails with the given error when told to.
#[derive(Debug, Clone, Default)]
pub struct FakeCopier {
    pub copies: Arc<Mutex<Vec<Copy>>>,
    pub fail: Arc<Mutex<Option<CopyError>>>,
}

impl LayerCopier for FakeCopier {
    fn copy(&self, lowerdirs: &[PathBuf], dest: &Path) -> std::result::Result<(), CopyError> {
        if let Some(e) = self.fail.lock().unwrap().take() {
            return Err(e);
        }
        self.copies
            .lock()
            .unwrap()
            .push((lowerdirs.to_vec(), dest.to_path_buf()));
        Ok(())
    }
}
