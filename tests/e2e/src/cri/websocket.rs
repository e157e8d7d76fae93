//! A blocking WebSocket connection to containerd's streaming server, as
//! its exec, attach and port-forward URLs take it.
//!
//! containerd 1.6 vendors kubelet's streaming server: each CRI streaming
//! call answers with a plain `http://127.0.0.1:PORT/<kind>/TOKEN` URL, which
//! accepts a WebSocket upgrade with subprotocol `v4.channel.k8s.io`. Every
//! binary message in either direction starts with one channel byte; which
//! channel means what is the kind's ([`super::stream`] for exec and attach,
//! [`super::port_forward`]). v4 cannot half-close a channel: the client
//! ends its input only by closing the whole connection.

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::HeaderValue;
use tungstenite::{Error as WsError, Message, WebSocket};

/// The channel protocol spoken (binary frames).
pub const PROTOCOL: &str = "v4.channel.k8s.io";

/// What one read gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A binary message: channel byte and payload (possibly empty).
    Message(u8, Vec<u8>),
    /// Nothing came before the deadline.
    Nothing,
    /// The server closed the connection.
    Closed,
}

/// An upgraded connection to one streaming URL.
pub struct Channels {
    socket: WebSocket<TcpStream>,
    url: String,
}

impl Channels {
    /// Dials the URL's host and upgrades the connection, within `timeout`.
    /// Errors name the URL; a refused upgrade (an expired or used token, a
    /// bad query) carries the server's status and body.
    pub fn open(url: &str, timeout: Duration) -> Result<Self, String> {
        let deadline = Instant::now() + timeout;
        let (ws, authority) = ws_url(url)?;
        let stream = dial(&authority, deadline)?;
        let _ = stream.set_nodelay(true);
        set_deadline(&stream, deadline).map_err(|e| format!("stream {url}: {e}"))?;
        let mut request = ws
            .as_str()
            .into_client_request()
            .map_err(|e| format!("stream request for {url}: {e}"))?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(PROTOCOL));
        let (socket, _response) = match tungstenite::client(request, stream) {
            Ok(ok) => ok,
            Err(HandshakeError::Interrupted(_)) => {
                return Err(format!("stream {url}: no upgrade within {timeout:?}"))
            }
            Err(HandshakeError::Failure(WsError::Http(resp))) => {
                let body = resp
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                return Err(format!(
                    "stream {url}: upgrade refused: {}: {}",
                    resp.status(),
                    body.trim()
                ));
            }
            Err(HandshakeError::Failure(e)) => return Err(format!("stream {url}: upgrade: {e}")),
        };
        Ok(Channels {
            socket,
            url: url.to_string(),
        })
    }

    /// Sends `data` on `channel` as one message.
    pub fn send(&mut self, channel: u8, data: &[u8]) -> Result<(), String> {
        let mut msg = Vec::with_capacity(data.len() + 1);
        msg.push(channel);
        msg.extend_from_slice(data);
        let deadline = Instant::now() + Duration::from_secs(30);
        set_deadline(self.socket.get_ref(), deadline)
            .and_then(|()| {
                self.socket
                    .send(Message::binary(msg))
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| format!("stream {}: send on channel {channel}: {e}", self.url))
    }

    /// Reads the next message, waiting until `deadline` at most.
    pub fn recv(&mut self, deadline: Instant) -> Result<Received, String> {
        loop {
            if Instant::now() >= deadline {
                return Ok(Received::Nothing);
            }
            set_deadline(self.socket.get_ref(), deadline)
                .map_err(|e| format!("stream {}: {e}", self.url))?;
            match self.socket.read() {
                Ok(Message::Binary(data)) => {
                    return Ok(match data.split_first() {
                        Some((channel, rest)) => Received::Message(*channel, rest.to_vec()),
                        None => Received::Message(0, Vec::new()),
                    })
                }
                Ok(Message::Text(text)) => {
                    return Err(format!(
                        "stream {}: unexpected text message {:?}",
                        self.url,
                        text.as_str()
                    ))
                }
                // tungstenite answers a Close by itself; the next read
                // reports the end.
                Ok(Message::Close(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {
                }
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                    return Ok(Received::Closed)
                }
                // The server's close came first: what it sent after it is
                // not part of the stream (containerd's streaming server
                // does this now and then, on runc's execs as on lxcri's).
                Err(WsError::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake
                    | tungstenite::error::ProtocolError::ReceivedAfterClosing,
                )) => return Ok(Received::Closed),
                Err(WsError::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(WsError::Io(e))
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset
                            | ErrorKind::UnexpectedEof
                            | ErrorKind::BrokenPipe
                    ) =>
                {
                    return Ok(Received::Closed)
                }
                Err(e) => return Err(format!("stream {}: {e}", self.url)),
            }
        }
    }

    /// Starts closing the connection (the only end of input v4 has); what
    /// the server still sends comes through [`Channels::recv`] until it
    /// reports [`Received::Closed`].
    pub fn close(&mut self) -> Result<(), String> {
        match self.socket.close(None) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Ok(()),
            Err(e) => Err(format!("stream {}: close: {e}", self.url)),
        }
    }
}

fn set_deadline(stream: &TcpStream, deadline: Instant) -> Result<(), String> {
    // A zero timeout means "none" to the socket: keep a millisecond.
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(left))
        .and_then(|()| stream.set_write_timeout(Some(left)))
        .map_err(|e| format!("socket timeouts: {e}"))
}

/// `http://host:port/path` to the WebSocket URL and the `host:port` to
/// dial. TLS (`https`) is not supported: containerd's streaming server is
/// plain HTTP unless `enable_tls_streaming`.
pub fn ws_url(url: &str) -> Result<(String, String), String> {
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if let Some(rest) = url.strip_prefix("ws://") {
        rest
    } else {
        return Err(format!(
            "unsupported streaming URL (plain http only): {url}"
        ));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("streaming URL without host: {url}"));
    }
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'))
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((format!("ws://{rest}"), authority))
}

fn dial(authority: &str, deadline: Instant) -> Result<TcpStream, String> {
    let addrs = authority
        .to_socket_addrs()
        .map_err(|e| format!("resolve {authority}: {e}"))?;
    let mut last = format!("{authority}: no address");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("connect {addr}: {e}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_conversion() {
        assert_eq!(
            ws_url("http://127.0.0.1:39113/exec/AbC-12").unwrap(),
            (
                "ws://127.0.0.1:39113/exec/AbC-12".to_string(),
                "127.0.0.1:39113".to_string()
            )
        );
        assert_eq!(
            ws_url("http://[::1]:8080/exec/t").unwrap().1,
            "[::1]:8080".to_string()
        );
        assert_eq!(ws_url("http://localhost/exec/t").unwrap().1, "localhost:80");
        assert_eq!(ws_url("http://[::1]/exec/t").unwrap().1, "[::1]:80");
        assert!(ws_url("https://127.0.0.1:1/exec/t").is_err());
        assert!(ws_url("http:///exec/t").is_err());
    }
}
