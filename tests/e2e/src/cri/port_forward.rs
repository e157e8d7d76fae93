//! Port forwarding over containerd's streaming server (see
//! [`super::websocket`] for the connection).
//!
//! The URL of a `PortForward` names the ports; for the n-th port channel
//! 2n carries data both ways and 2n+1 errors from the server. The server
//! opens each channel with the port, two bytes little-endian. containerd
//! dials `localhost:PORT` inside the pod's network namespace (the host's
//! for a hostNetwork pod) and copies both ways; when the pod's side ends,
//! it closes the connection.

use std::time::{Duration, Instant};

use super::websocket::{Channels, Received};

/// Sends `request` to the first port of the forward behind `url` (`port`
/// is that port) and returns everything the pod's side answered until it
/// closed. An error message from the server fails.
pub fn exchange(
    url: &str,
    port: u16,
    request: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    const DATA: u8 = 0;
    const ERROR: u8 = 1;
    let deadline = Instant::now() + timeout;
    let mut channels = Channels::open(url, timeout)?;
    let mut data = Prefixed::new(port);
    let mut error = Prefixed::new(port);
    channels.send(DATA, request)?;
    loop {
        match channels.recv(deadline)? {
            Received::Message(DATA, payload) => data.feed(&payload)?,
            Received::Message(ERROR, payload) => error.feed(&payload)?,
            Received::Message(other, _) => {
                return Err(format!("port forward {url}: message on channel {other}"))
            }
            Received::Closed => break,
            Received::Nothing => {
                return Err(format!(
                    "port forward {url}: no end within {timeout:?} (data so far {:?})",
                    String::from_utf8_lossy(&data.bytes)
                ))
            }
        }
    }
    if !error.bytes.is_empty() {
        return Err(format!(
            "port forward {url}: {}",
            String::from_utf8_lossy(&error.bytes)
        ));
    }
    Ok(data.bytes)
}

/// One channel's bytes after the port the server opens it with.
struct Prefixed {
    port: u16,
    prefix: Vec<u8>,
    bytes: Vec<u8>,
}

impl Prefixed {
    fn new(port: u16) -> Self {
        Prefixed {
            port,
            prefix: Vec::with_capacity(2),
            bytes: Vec::new(),
        }
    }

    fn feed(&mut self, mut payload: &[u8]) -> Result<(), String> {
        while self.prefix.len() < 2 {
            let Some((first, rest)) = payload.split_first() else {
                return Ok(());
            };
            self.prefix.push(*first);
            payload = rest;
            if self.prefix.len() == 2 {
                let got = u16::from_le_bytes([self.prefix[0], self.prefix[1]]);
                if got != self.port {
                    return Err(format!("channel opened for port {got}, not {}", self.port));
                }
            }
        }
        self.bytes.extend_from_slice(payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_prefix_is_checked_and_dropped() {
        let mut p = Prefixed::new(80);
        p.feed(&[80]).unwrap();
        p.feed(&[0, b'H']).unwrap();
        p.feed(b"TTP").unwrap();
        assert_eq!(p.bytes, b"HTTP");

        let mut p = Prefixed::new(80);
        p.feed(&[80, 0]).unwrap();
        assert!(p.bytes.is_empty());

        let mut wrong = Prefixed::new(80);
        assert!(wrong.feed(&[81, 0, b'x']).unwrap_err().contains("port 81"));
    }
}
