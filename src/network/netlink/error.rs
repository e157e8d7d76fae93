//! What can go wrong talking rtnetlink, always naming the operation.

use std::io;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("opening a NETLINK_ROUTE socket: {0}")]
    Socket(#[source] io::Error),
    /// The kernel refused the request (its NLMSG_ERROR); `kernel_message`
    /// is the extended ack's text when the kernel gave one.
    #[error("{op}: {source}{}", .kernel_message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kernel {
        op: String,
        #[source]
        source: io::Error,
        kernel_message: Option<String>,
    },
    #[error("{op}: no answer from the kernel within {deadline:?}")]
    Timeout { op: String, deadline: Duration },
    /// Sending or receiving failed on our side of the socket.
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("{op}: unreadable answer from the kernel: {reason}")]
    Decode { op: String, reason: String },
    #[error("{op}: no link named {name:?}")]
    NoSuchLink { op: String, name: String },
    /// Rejected before anything was sent.
    #[error("{op}: {reason}")]
    Invalid { op: String, reason: String },
    /// VLAN entries on a port of a bridge that does not filter would be
    /// accepted and do nothing: the port would see every VLAN.
    #[error("setting VLANs on bridge port {port}: bridge {bridge} does not filter VLANs (vlan_filtering is off)")]
    NotVlanAware { port: String, bridge: String },
    #[error("joining a network namespace: {0}")]
    Setns(#[source] io::Error),
    #[error("turning transmit checksum offload off on {name}: {source}")]
    Ethtool {
        name: String,
        #[source]
        source: io::Error,
    },
}

impl NetlinkError {
    /// The errno behind the error, if there is one (`EEXIST` for a name
    /// already taken, ...), so callers can tell cases apart.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Socket(e)
            | Self::Kernel { source: e, .. }
            | Self::Io { source: e, .. }
            | Self::Setns(e)
            | Self::Ethtool { source: e, .. } => e.raw_os_error(),
            _ => None,
        }
    }
}
