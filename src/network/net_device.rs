//! Moving a host network device into a container's network namespace
//! (`linux.netDevices`), as runc 1.4+'s `devChangeNetNamespace`
//! (libcontainer/network_linux.go) does: the device is set down, its
//! permanent global addresses noted, moved and renamed in one request, the
//! addresses set again inside (the kernel drops them on the way) and the
//! device set up. Once moved it is the namespace's: when a container's own
//! namespace goes, the kernel gives a physical device back to the host and
//! destroys a virtual one.

use std::os::fd::BorrowedFd;

use super::netlink::{in_netns, Netlink, NetlinkError};
use super::values::LinkName;

/// One device to move: its name on the host and in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDevice {
    pub host: LinkName,
    pub name: LinkName,
}

#[derive(Debug, thiserror::Error)]
#[error("linux.netDevices: {host}: {source}")]
pub struct NetDeviceError {
    pub host: String,
    #[source]
    pub source: NetlinkError,
}

/// Moves `devices` from the caller's network namespace into `netns`, in
/// order; the first failure stops it (what moved stays there, as with
/// runc).
pub fn move_net_devices(
    devices: &[NetDevice],
    netns: BorrowedFd<'_>,
) -> Result<(), NetDeviceError> {
    if devices.is_empty() {
        return Ok(());
    }
    let fail = |d: &NetDevice, source| NetDeviceError {
        host: d.host.to_string(),
        source,
    };
    let mut host = Netlink::open().map_err(|e| fail(&devices[0], e))?;
    for device in devices {
        move_one(&mut host, device, netns).map_err(|e| fail(device, e))?;
    }
    Ok(())
}

fn move_one(
    host: &mut Netlink,
    device: &NetDevice,
    netns: BorrowedFd<'_>,
) -> Result<(), NetlinkError> {
    let name = device.host.as_str();
    let link = host.link(name)?.ok_or_else(|| NetlinkError::NoSuchLink {
        op: "looking the device up on the host".into(),
        name: name.to_owned(),
    })?;
    // Down first, so nothing on the host uses it while it changes.
    host.set_down(name)?;
    let addresses = host.permanent_global_addresses(link.index)?;
    host.move_to_netns(link.index, device.name.as_str(), netns)?;
    let inside = device.name.as_str();
    in_netns(netns, || -> Result<(), NetlinkError> {
        let mut nl = Netlink::open()?;
        for (addr, prefix) in &addresses {
            nl.add_address(inside, *addr, *prefix)?;
        }
        nl.set_up(inside)
    })?
}
