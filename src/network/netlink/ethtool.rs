//! Transmit checksum offload, through the ethtool ioctl.
//!
//! With offload on, a veth hands its packets on with the TCP checksum
//! left for the "hardware" to fill in; the kernel on the other end trusts
//! such packets, so a Linux bridge never notices. Open vSwitch's userspace
//! (netdev) datapath reads them as they are and sends them on with the
//! checksum still unfilled, and the receiver drops them: TCP fails while
//! ping works. With offload off the sender computes the checksum itself,
//! as after `ethtool -K IF tx off`.

use std::io;
use std::os::fd::AsRawFd;

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use super::link::check_name;
use super::{NetlinkError, Result};

/// `ETHTOOL_STXCSUM` (linux/ethtool.h): set transmit checksum offload.
const ETHTOOL_STXCSUM: u32 = 0x17;

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Turns transmit checksum offload off on `name`, a link in the calling
/// thread's network namespace.
pub fn disable_tx_checksum(name: &str) -> Result<()> {
    check_name(
        &format!("turning transmit checksum offload off on {name}"),
        name,
    )?;
    let failed = |source| NetlinkError::Ethtool {
        name: name.to_owned(),
        source,
    };
    // SAFETY: ifreq is plain data; all zeroes is a valid, empty request.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    // A checked name is shorter than ifr_name: its NUL stays in place.
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    let mut value = EthtoolValue {
        cmd: ETHTOOL_STXCSUM,
        data: 0,
    };
    req.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
    // Any socket reaches the ioctl; it names the namespace to look in.
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| failed(e.into()))?;
    // SAFETY: `req` is a valid ifreq whose data points at `value`, both
    // alive for the call; the kernel reads the name and the command.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut req) };
    if rc < 0 {
        return Err(failed(io::Error::last_os_error()));
    }
    Ok(())
}
