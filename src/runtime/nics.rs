//! The NICs lxcri plugs itself (see [`crate::network::plug`]): into the
//! container's new network namespace once its init runs, or into the
//! pod's. Unplugged on delete and when a create fails after plugging.
//! Host devices a spec moves in (`linux.netDevices`) go then too.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use super::error::{Result, RuntimeError};
use crate::config::Config;
use crate::network::host::KernelNetwork;
use crate::network::net_device::{move_net_devices, NetDevice};
use crate::network::plug::{plug_all, unplug, PluggedNic};
use crate::plan::{NetnsTarget, NetworkPlan};

/// Plugs the plan's NICs into the namespace of the container whose init
/// is `init_pid` (or the pod's).
pub(super) fn plug(
    config: &Config,
    plan: &NetworkPlan,
    init_pid: i32,
    owner: &str,
) -> Result<Vec<PluggedNic>> {
    let path = match &plan.netns {
        NetnsTarget::Own => format!("/proc/{init_pid}/ns/net").into(),
        NetnsTarget::Pod(p) => p.clone(),
    };
    let netns = File::open(&path).map_err(|source| RuntimeError::Netns {
        path: path.clone(),
        source,
    })?;
    let mut host = KernelNetwork::open(&config.network.ovsdb)
        .map_err(|e| RuntimeError::HostNetwork(Box::new(e)))?;
    Ok(plug_all(
        &mut host,
        &plan.nics,
        owner,
        netns.as_fd(),
        &config.network.ovsdb.to_string(),
    )?)
}

/// Removes NICs lxcri plugged for `owner`; nothing to do for none.
pub(super) fn unplug_nics(config: &Config, nics: &[PluggedNic], owner: &str) -> Result<()> {
    if nics.is_empty() {
        return Ok(());
    }
    let mut host = KernelNetwork::open(&config.network.ovsdb)
        .map_err(|e| RuntimeError::HostNetwork(Box::new(e)))?;
    Ok(unplug(&mut host, nics, owner)?)
}

/// Moves the spec's host devices into the network namespace the init of
/// the container runs in (its own or the pod's it joined).
pub(super) fn move_devices(devices: &[NetDevice], init_pid: i32) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let path = PathBuf::from(format!("/proc/{init_pid}/ns/net"));
    let netns = File::open(&path).map_err(|source| RuntimeError::Netns { path, source })?;
    move_net_devices(devices, netns.as_fd()).map_err(|e| RuntimeError::NetDevice(Box::new(e)))
}
