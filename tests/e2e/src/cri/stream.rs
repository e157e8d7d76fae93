//! A blocking client for the exec URLs of containerd's streaming server.
//!
//! containerd 1.6 vendors kubelet's streaming server: `Exec` answers with a
//! plain `http://127.0.0.1:PORT/exec/TOKEN` URL, which accepts a WebSocket
//! upgrade with subprotocol `v4.channel.k8s.io`. Every binary message in
//! either direction starts with one channel byte: 0 stdin, 1 stdout,
//! 2 stderr, 3 error (the exec's final `metav1.Status` as JSON), 4 resize.
//! The server first sends an empty message on the lowest output channel
//! (channel byte only), then the output, then the status, then closes.
//! v4 has no way to close stdin: a command reading it must stop by itself
//! (e.g. `head -c N`).

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::HeaderValue;
use tungstenite::{Error as WsError, Message};

/// The channel protocol spoken (binary frames, status as JSON).
pub const PROTOCOL: &str = "v4.channel.k8s.io";

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;

/// What a streamed exec produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamResult {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

impl StreamResult {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Splits a message into its channel and payload. `None` for messages
/// without payload (the server's initial "channel ready" ones).
pub fn split_message(msg: &[u8]) -> Option<(u8, &[u8])> {
    match msg {
        [channel, data @ ..] if !data.is_empty() => Some((*channel, data)),
        _ => None,
    }
}

/// The exit code in the error channel's `metav1.Status`: 0 for `Success`,
/// the `ExitCode` cause for a `NonZeroExitCode` failure, an error (with the
/// status' message) for anything else, e.g. a command that could not start.
pub fn exit_code_from_status(json: &[u8]) -> Result<i32, String> {
    let status: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
        format!(
            "exec status is not JSON ({e}): {}",
            String::from_utf8_lossy(json)
        )
    })?;
    let text = || String::from_utf8_lossy(json).into_owned();
    match status["status"].as_str() {
        Some("Success") => Ok(0),
        Some("Failure") if status["reason"] == "NonZeroExitCode" => status["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["reason"] == "ExitCode")
            .and_then(|c| c["message"].as_str())
            .and_then(|m| m.trim().parse().ok())
            .ok_or_else(|| format!("exec status has no exit code: {}", text())),
        _ => Err(format!(
            "exec failed: {}",
            status["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(text)
        )),
    }
}

/// Collects the server's messages.
#[derive(Debug, Default)]
pub struct Collector {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Vec<u8>,
}

impl Collector {
    /// Takes one binary message from the server.
    pub fn feed(&mut self, msg: &[u8]) -> Result<(), String> {
        let Some((channel, data)) = split_message(msg) else {
            return Ok(());
        };
        match channel {
            STDOUT => self.stdout.extend_from_slice(data),
            STDERR => self.stderr.extend_from_slice(data),
            ERROR => self.status.extend_from_slice(data),
            other => return Err(format!("message on unexpected channel {other}")),
        }
        Ok(())
    }

    /// The result once the server closed the connection.
    pub fn finish(self) -> Result<StreamResult, String> {
        if self.status.is_empty() {
            return Err(format!(
                "connection closed without an exec status (stdout {:?}, stderr {:?})",
                String::from_utf8_lossy(&self.stdout),
                String::from_utf8_lossy(&self.stderr)
            ));
        }
        let exit_code = exit_code_from_status(&self.status)?;
        Ok(StreamResult {
            stdout: self.stdout,
            stderr: self.stderr,
            exit_code,
        })
    }

    fn partial(&self) -> String {
        format!(
            "stdout so far {:?}, stderr so far {:?}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }
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

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Runs the exec behind `url` (from [`super::CriClient::exec`]) to its end:
/// sends `stdin` (if any) as one message right after connecting, reads
/// stdout and stderr until the server closes the connection, and returns
/// them with the exit code. Errors: the upgrade failed (e.g. the URL's
/// token expired or was used), the exec failed without an exit code, no
/// status came, or `timeout` passed.
pub fn exec_stream(
    url: &str,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<StreamResult, String> {
    let deadline = Instant::now() + timeout;
    let (ws, authority) = ws_url(url)?;
    let stream = dial(&authority, deadline)?;
    let _ = stream.set_nodelay(true);
    let set_timeouts = |stream: &TcpStream| -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("exec stream {url}: no end within {timeout:?}"));
        }
        stream
            .set_read_timeout(Some(left))
            .and_then(|()| stream.set_write_timeout(Some(left)))
            .map_err(|e| format!("socket timeouts: {e}"))
    };
    set_timeouts(&stream)?;

    let mut request = ws
        .as_str()
        .into_client_request()
        .map_err(|e| format!("exec stream request for {url}: {e}"))?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(PROTOCOL));
    let (mut socket, _response) = match tungstenite::client(request, stream) {
        Ok(ok) => ok,
        Err(HandshakeError::Interrupted(_)) => {
            return Err(format!("exec stream {url}: no upgrade within {timeout:?}"))
        }
        Err(HandshakeError::Failure(WsError::Http(resp))) => {
            let body = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            return Err(format!(
                "exec stream {url}: upgrade refused: {}: {}",
                resp.status(),
                body.trim()
            ));
        }
        Err(HandshakeError::Failure(e)) => return Err(format!("exec stream {url}: upgrade: {e}")),
    };

    if let Some(data) = stdin.filter(|d| !d.is_empty()) {
        let mut msg = Vec::with_capacity(data.len() + 1);
        msg.push(STDIN);
        msg.extend_from_slice(data);
        socket
            .send(Message::binary(msg))
            .map_err(|e| format!("exec stream {url}: send stdin: {e}"))?;
    }

    let mut out = Collector::default();
    loop {
        if let Err(e) = set_timeouts(socket.get_ref()) {
            return Err(format!("{e} ({})", out.partial()));
        }
        match socket.read() {
            Ok(Message::Binary(data)) => out.feed(&data)?,
            Ok(Message::Text(text)) => {
                return Err(format!(
                    "exec stream {url}: unexpected text message {:?}",
                    text.as_str()
                ))
            }
            // tungstenite answers a Close by itself; the next read reports
            // the end.
            Ok(Message::Close(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => break,
            Err(WsError::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => break,
            Err(WsError::Io(e)) if timed_out(&e) => {} // the deadline check above decides
            Err(WsError::Io(e))
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe
                ) =>
            {
                break
            }
            Err(e) => return Err(format!("exec stream {url}: {e} ({})", out.partial())),
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAIL_7: &str = r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}"#;

    fn msg(channel: u8, data: &[u8]) -> Vec<u8> {
        let mut m = vec![channel];
        m.extend_from_slice(data);
        m
    }

    #[test]
    fn split_skips_empty_messages() {
        assert_eq!(split_message(&[]), None);
        assert_eq!(split_message(&[STDOUT]), None);
        assert_eq!(split_message(&msg(STDERR, b"x")), Some((STDERR, &b"x"[..])));
        assert_eq!(split_message(&msg(ERROR, b"{}")), Some((ERROR, &b"{}"[..])));
    }

    #[test]
    fn status_success_is_zero() {
        assert_eq!(exit_code_from_status(br#"{"status":"Success"}"#), Ok(0));
        assert_eq!(
            exit_code_from_status(br#"{"metadata":{},"status":"Success"}"#),
            Ok(0)
        );
    }

    #[test]
    fn status_non_zero_exit_code() {
        assert_eq!(exit_code_from_status(FAIL_7.as_bytes()), Ok(7));
        let minimal = br#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"137"}]}}"#;
        assert_eq!(exit_code_from_status(minimal), Ok(137));
    }

    #[test]
    fn status_other_failures_are_errors() {
        let internal = br#"{"status":"Failure","message":"Internal error occurred: error executing command in container: failed to exec in container: starting container process caused: exec: \"nope\": executable file not found in $PATH","reason":"InternalError","code":500}"#;
        let err = exit_code_from_status(internal).unwrap_err();
        assert!(err.contains("executable file not found"), "{err}");
        // NonZeroExitCode without a usable cause.
        let no_cause = br#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"Other","message":"1"}]}}"#;
        assert!(exit_code_from_status(no_cause).is_err());
        let bad_number = br#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"x"}]}}"#;
        assert!(exit_code_from_status(bad_number).is_err());
        assert!(exit_code_from_status(b"not json").is_err());
        assert!(exit_code_from_status(b"{}").is_err());
    }

    #[test]
    fn collector_sorts_channels() {
        let mut c = Collector::default();
        for m in [
            msg(STDOUT, b""),
            msg(STDOUT, b"hello "),
            msg(STDERR, b"warn\n"),
            msg(STDOUT, b"world\n"),
            msg(ERROR, FAIL_7.as_bytes()),
        ] {
            c.feed(&m).unwrap();
        }
        let r = c.finish().unwrap();
        assert_eq!(r.stdout, b"hello world\n");
        assert_eq!(r.stderr, b"warn\n");
        assert_eq!(r.exit_code, 7);
    }

    #[test]
    fn collector_status_in_pieces() {
        let mut c = Collector::default();
        c.feed(&msg(ERROR, br#"{"status":"#)).unwrap();
        c.feed(&msg(ERROR, br#""Success"}"#)).unwrap();
        assert_eq!(c.finish().unwrap().exit_code, 0);
    }

    #[test]
    fn collector_without_status_fails() {
        let mut c = Collector::default();
        c.feed(&msg(STDOUT, b"partial")).unwrap();
        let err = c.finish().unwrap_err();
        assert!(
            err.contains("without an exec status") && err.contains("partial"),
            "{err}"
        );
    }

    #[test]
    fn collector_rejects_unknown_channel() {
        let mut c = Collector::default();
        assert!(c.feed(&msg(RESIZE, b"{}")).is_err());
        assert!(c.feed(&msg(9, b"x")).is_err());
        // Empty ones on any channel are ignored.
        assert!(c.feed(&[9]).is_ok());
    }

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
