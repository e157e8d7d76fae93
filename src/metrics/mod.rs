//! Prometheus metrics of a node's lxcri containers and of lxcri itself.
//!
//! - [`container`]: per-container figures read from state, cgroups and
//!   `/proc` (cAdvisor's names and units);
//! - [`ops`]: what only the shims see (operation durations and failures,
//!   PVE API calls), kept in a journal the exporter reads;
//! - [`rootfs_usage`]: root filesystem usage (ZFS volumes, overlay upper
//!   directories) and lxcri's ZFS datasets;
//! - [`exposition`]: all of it as Prometheus' text format, for
//!   `lxcri exporter`.

pub mod container;
pub mod exposition;
pub mod ops;
pub mod rootfs_usage;

pub use container::{ContainerLabels, ContainerSample, NetDev};
pub use ops::{OpsJournal, OpsRecord};
