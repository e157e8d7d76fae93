//! ZFS through the `zfs` command, as PVE drives it (libzfs_core is not
//! available to link against, and the command is what PVE's own storage
//! plugin uses, so both see the same datasets the same way).
//!
//! - [`DatasetName`]: a validated dataset or snapshot name; nothing else
//!   reaches the command line.
//! - [`ZfsCommand`]: the one narrow interface to the binary, so the logic
//!   above it is unit-tested with a fake; [`ZfsCli`] runs the real one.
//! - [`Zfs`]: the operations lxcri needs (create, snapshot, clone, rename,
//!   destroy, get, list), with failures classified into [`ZfsError`].

mod cli;
mod name;
mod ops;
mod size;

pub use cli::{ZfsCli, ZfsCommand};
pub use name::DatasetName;
pub use ops::{Property, Zfs};
pub use size::DiskSize;

#[derive(Debug, thiserror::Error)]
pub enum ZfsError {
    #[error("zfs: invalid dataset name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("zfs: invalid property {key:?}={value:?}: {reason}")]
    InvalidProperty {
        key: String,
        value: String,
        reason: &'static str,
    },
    #[error(
        "zfs: the command {binary} cannot run (install zfsutils-linux, or zfs-fuse): {source}"
    )]
    NotInstalled {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("zfs: no such pool {pool:?}")]
    NoSuchPool { pool: String },
    #[error("zfs: dataset {name:?} does not exist")]
    MissingDataset { name: String },
    #[error("zfs: {name:?} already exists")]
    AlreadyExists { name: String },
    #[error("zfs: {name:?} has dependent clones")]
    DependentClones { name: String },
    #[error("zfs: {name:?} is busy (mounted and in use)")]
    Busy { name: String },
    #[error("zfs: {name:?} is out of space (quota reached)")]
    OutOfSpace { name: String },
    #[error("zfs: `{command}` did not finish in time")]
    TimedOut {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("zfs {args}: exit {code}: {stderr}")]
    Failed {
        args: String,
        code: i32,
        stderr: String,
    },
}

pub type Result<T> = std::result::Result<T, ZfsError>;
