//! A small synchronous rtnetlink client: what lxcri needs to plug a
//! container's NIC (a veth pair) into a Linux bridge and configure it
//! inside the container's network namespace, without `ip`/`bridge`.
//!
//! Messages are netlink-packet-route's, sent over one netlink-sys
//! `NETLINK_ROUTE` socket. A socket belongs to the network namespace it was
//! created in, whichever thread uses it later: [`in_netns`] opens one inside
//! a container's namespace.
//!
//! - `mod.rs`: the socket, requests with sequence numbers, acks, dumps,
//!   kernel errors (with the extended ack's text) and the deadline.
//! - `link.rs`: links (veth, bridge, up, MTU, MAC, master, alias).
//! - `bridge_vlan.rs`: bridge port VLANs as PVE sets them.
//! - `addr.rs`: addresses and routes.
//! - `netns.rs`, `ethtool.rs`: namespace switching, tx checksum offload.

mod addr;
mod bridge_vlan;
mod error;
mod ethtool;
mod link;
mod netns;
#[cfg(test)]
mod tests;

use std::io;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, NLM_F_ACK,
    NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
use nix::sys::time::TimeVal;

pub use error::NetlinkError;
pub use ethtool::disable_tx_checksum;
pub use link::LinkInfo;
pub use netns::in_netns;

pub type Result<T, E = NetlinkError> = std::result::Result<T, E>;

/// How long one request may wait for the kernel's answer by default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

/// A dump the kernel marks inconsistent (the table changed meanwhile) is
/// asked for again, this many times in all.
const DUMP_ATTEMPTS: usize = 3;

/// `struct nlmsghdr`.
const NLMSG_HDR_LEN: usize = 16;
/// `NLMSGERR_ATTR_MSG`: the extended ack's human-readable text.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// A `NETLINK_ROUTE` socket in the network namespace of the thread that
/// opened it.
pub struct Netlink {
    socket: Socket,
    seq: u32,
    deadline: Duration,
    buf: Vec<u8>,
}

impl Netlink {
    pub fn open() -> Result<Self> {
        Self::with_deadline(DEFAULT_DEADLINE)
    }

    /// Every request waits at most `deadline` for its complete answer.
    /// The kernel handles a request inside `send` (under the rtnl lock),
    /// which no timeout can cut short; the deadline covers the wait for
    /// replies, which is where a lost or never-finished answer would hang.
    pub fn with_deadline(deadline: Duration) -> Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        // Connected to the kernel: nothing but its answers arrive here.
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        // Errors carry the kernel's explanation, and not our whole request.
        socket.set_ext_ack(true).map_err(NetlinkError::Socket)?;
        socket.set_cap_ack(true).map_err(NetlinkError::Socket)?;
        Ok(Self {
            socket,
            seq: 0,
            deadline,
            buf: vec![0; 32 * 1024],
        })
    }

    /// Sends a request and waits for its ack; returns what the kernel
    /// answered before the ack (the link a `RTM_GETLINK` asked for).
    fn request(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let (replies, _) = self.exchange(op, msg, NLM_F_REQUEST | NLM_F_ACK | flags)?;
        Ok(replies)
    }

    /// Sends a dump request and collects every message up to NLMSG_DONE.
    fn dump(&mut self, op: &str, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>> {
        for _ in 0..DUMP_ATTEMPTS {
            let (replies, interrupted) =
                self.exchange(op, msg.clone(), NLM_F_REQUEST | NLM_F_DUMP)?;
            if !interrupted {
                return Ok(replies);
            }
        }
        Err(NetlinkError::Io {
            op: op.to_owned(),
            source: io::Error::new(
                io::ErrorKind::Interrupted,
                format!("the table kept changing during {DUMP_ATTEMPTS} dumps"),
            ),
        })
    }

    /// One request and its answer: messages up to the ack, error or
    /// NLMSG_DONE, and whether the kernel marked the dump interrupted.
    fn exchange(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(Vec<RouteNetlinkMessage>, bool)> {
        // A fresh number per request: a late answer to an earlier request
        // that timed out is recognised and dropped.
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.send(op, &out)?;

        let deadline = Instant::now() + self.deadline;
        let mut replies = Vec::new();
        let mut interrupted = false;
        loop {
            let len = self.recv(op, deadline)?;
            let mut rest = &self.buf[..len];
            while !rest.is_empty() {
                let raw = NetlinkBuffer::new_checked(rest).map_err(|e| decode(op, e))?;
                let msg_len = raw.length() as usize;
                let this = &rest[..msg_len];
                rest = &rest[align(msg_len).min(rest.len())..];
                if raw.sequence_number() != seq {
                    continue;
                }
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(this)
                    .map_err(|e| decode(op, e))?;
                interrupted |= msg.header.flags & NLM_F_DUMP_INTR != 0;
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    NetlinkPayload::Error(e) if e.code.is_none() => {
                        return Ok((replies, interrupted))
                    }
                    NetlinkPayload::Error(e) => {
                        return Err(NetlinkError::Kernel {
                            op: op.to_owned(),
                            source: e.to_io(),
                            kernel_message: extack_message(msg.header.flags, &e.header),
                        })
                    }
                    NetlinkPayload::Done(d) if d.code < 0 => {
                        return Err(NetlinkError::Kernel {
                            op: op.to_owned(),
                            source: io::Error::from_raw_os_error(-d.code),
                            kernel_message: None,
                        })
                    }
                    NetlinkPayload::Done(_) => return Ok((replies, interrupted)),
                    _ => {}
                }
            }
        }
    }

    fn send(&self, op: &str, bytes: &[u8]) -> Result<()> {
        loop {
            match self.socket.send(bytes, 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(op, e)),
            }
        }
    }

    /// Receives one datagram into `self.buf` (grown to fit it) before
    /// `deadline`; returns its length.
    fn recv(&mut self, op: &str, deadline: Instant) -> Result<usize> {
        let timeout = || NetlinkError::Timeout {
            op: op.to_owned(),
            deadline: self.deadline,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // A zero SO_RCVTIMEO means "wait forever", so stop before it.
            if left < Duration::from_micros(1) {
                return Err(timeout());
            }
            let left = TimeVal::new(
                left.as_secs().try_into().unwrap_or(libc::time_t::MAX),
                left.subsec_micros().into(),
            );
            setsockopt(&self.socket, ReceiveTimeout, &left).map_err(|e| io_error(op, e.into()))?;
            // Peek first: a datagram larger than the buffer would be cut.
            let peeked = self
                .socket
                .recv(&mut &mut self.buf[..], libc::MSG_PEEK | libc::MSG_TRUNC);
            match peeked {
                Ok(len) if len > self.buf.len() => self.buf.resize(len, 0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(timeout()),
                Err(e) => return Err(io_error(op, e)),
            }
            match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(len) => return Ok(len),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(timeout()),
                Err(e) => return Err(io_error(op, e)),
            }
        }
    }
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn io_error(op: &str, source: io::Error) -> NetlinkError {
    NetlinkError::Io {
        op: op.to_owned(),
        source,
    }
}

fn decode(op: &str, e: impl std::fmt::Display) -> NetlinkError {
    NetlinkError::Decode {
        op: op.to_owned(),
        reason: e.to_string(),
    }
}

/// The text of an NLMSG_ERROR's extended ack: `after_code` is what follows
/// the error code, the request's header (its payload too unless
/// `NLM_F_CAPPED`), then the ack's attributes when `NLM_F_ACK_TLVS` is set.
fn extack_message(flags: u16, after_code: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDR_LEN
    } else {
        let len = after_code.get(..4)?;
        align(u32::from_ne_bytes(len.try_into().ok()?) as usize)
    };
    let attrs = after_code.get(echoed..)?;
    NlasIterator::new(attrs)
        .map_while(|nla| nla.ok())
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            let text = nla.value();
            let text = text.split(|b| *b == 0).next().unwrap_or(text);
            String::from_utf8_lossy(text).into_owned()
        })
        .filter(|text| !text.is_empty())
}
