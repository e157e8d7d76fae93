//! A container's NICs, described in PVE's `netN` syntax and plugged by
//! lxcri: veth pairs over netlink ([`netlink`]), Linux bridges with VLAN
//! filtering, Open vSwitch ports through its database ([`ovsdb`]).

pub mod host;
pub mod net_device;
pub mod netlink;
pub mod nic;
pub mod ovsdb;
pub mod plug;
pub mod values;

/// The OVS `external_ids` key naming the container a port is for.
pub const OVS_OWNER_KEY: &str = "lxcri-owner";

#[cfg(test)]
mod tests;
