//! JSON-RPC 1.0 over a stream socket, as RFC 7047 section 4 uses it: each
//! message is one JSON object, written back to back with no delimiter, so
//! the reader splits the byte stream at the end of each complete value.
//!
//! One request is in flight at a time, and each must be answered within
//! the deadline: every read and write waits at most for what is left of
//! it, so a stopped or dead ovsdb-server cannot hang the caller. After a
//! timeout or a broken stream the connection is not used again (a late
//! answer would be taken for the next request's).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use serde_json::{json, Value};

use super::target::Endpoint;
use super::{OvsdbError, OvsdbTarget, Result};

/// A message larger than this is refused rather than buffered.
const MAX_MESSAGE: usize = 64 << 20;
const READ_CHUNK: usize = 64 << 10;

/// The connection to one ovsdb-server.
pub(super) struct Rpc {
    stream: Stream,
    /// The target as written, for messages.
    target: String,
    deadline: Duration,
    /// Bytes received but not yet parsed into a message.
    buf: Vec<u8>,
    next_id: u64,
    broken: bool,
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.read(buf)
            }
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.read(buf)
            }
        }
    }

    fn write_all(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        match self {
            Stream::Unix(s) => {
                s.set_write_timeout(Some(timeout))?;
                s.write_all(bytes)
            }
            Stream::Tcp(s) => {
                s.set_write_timeout(Some(timeout))?;
                s.write_all(bytes)
            }
        }
    }
}

impl Rpc {
    /// Connects to `target`, waiting at most `deadline`.
    pub(super) fn connect(target: &OvsdbTarget, deadline: Duration) -> Result<Self> {
        let connect_error = |source| OvsdbError::Connect {
            target: target.to_string(),
            source,
        };
        let stream = match target.endpoint() {
            Endpoint::Unix(path) => {
                Stream::Unix(connect_unix(path, deadline).map_err(connect_error)?)
            }
            Endpoint::Tcp(addr) => {
                let tcp = TcpStream::connect_timeout(addr, deadline).map_err(connect_error)?;
                // Requests are small and each waits for its answer.
                tcp.set_nodelay(true).map_err(connect_error)?;
                Stream::Tcp(tcp)
            }
        };
        Ok(Self {
            stream,
            target: target.to_string(),
            deadline,
            buf: Vec::new(),
            next_id: 0,
            broken: false,
        })
    }

    /// Whether a request failed mid-way, so this connection is not used
    /// again.
    pub(super) fn is_broken(&self) -> bool {
        self.broken
    }

    /// The target as written.
    pub(super) fn target(&self) -> &str {
        &self.target
    }

    /// Sends request `method` with `params` and returns its `result`,
    /// answering the server's `echo` requests (its liveness probe) while
    /// waiting.
    pub(super) fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        if self.broken {
            return Err(OvsdbError::Broken {
                target: self.target.clone(),
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        let until = Instant::now() + self.deadline;
        let answer = self.exchange(method, params, id, until);
        if matches!(&answer, Err(e) if !matches!(e, OvsdbError::Rpc { .. })) {
            self.broken = true;
        }
        answer
    }

    fn exchange(&mut self, method: &str, params: Value, id: u64, until: Instant) -> Result<Value> {
        self.send(
            &json!({"method": method, "params": params, "id": id}),
            method,
            until,
        )?;
        loop {
            let msg = self.receive(method, until)?;
            if let Some(request) = msg.get("method") {
                if request == "echo" {
                    let reply =
                        json!({"result": msg.get("params"), "error": null, "id": msg.get("id")});
                    self.send(&reply, method, until)?;
                }
                // Notifications (`update`, `locked`, ...) belong to
                // monitors and locks this client never asks for.
                continue;
            }
            if msg.get("id") != Some(&json!(id)) {
                return Err(self.protocol(method, format!("an answer to another request: {msg}")));
            }
            return match msg.get("error") {
                None | Some(Value::Null) => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
                Some(error) => Err(OvsdbError::Rpc {
                    target: self.target.clone(),
                    method: method.to_string(),
                    error: error
                        .as_str()
                        .map_or_else(|| error.to_string(), str::to_string),
                }),
            };
        }
    }

    fn send(&mut self, msg: &Value, method: &str, until: Instant) -> Result<()> {
        let bytes = msg.to_string();
        let remaining = self.remaining(method, until)?;
        self.stream
            .write_all(bytes.as_bytes(), remaining)
            .map_err(|e| self.io_error(method, e))
    }

    /// The next complete message.
    fn receive(&mut self, method: &str, until: Instant) -> Result<Value> {
        let mut chunk = vec![0; READ_CHUNK];
        loop {
            match take_message(&mut self.buf) {
                Ok(Some(msg)) if msg.is_object() => return Ok(msg),
                Ok(Some(other)) => {
                    return Err(self.protocol(method, format!("not a JSON-RPC message: {other}")))
                }
                Ok(None) => {}
                Err(e) => return Err(self.protocol(method, format!("invalid JSON: {e}"))),
            }
            if self.buf.len() > MAX_MESSAGE {
                return Err(self.protocol(method, format!("a message over {MAX_MESSAGE} bytes")));
            }
            let remaining = self.remaining(method, until)?;
            match self.stream.read(&mut chunk, remaining) {
                Ok(0) => {
                    return Err(OvsdbError::Closed {
                        target: self.target.clone(),
                        method: method.to_string(),
                    })
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(method, e)),
            }
        }
    }

    /// What is left until `until`; a zero timeout would mean "none".
    fn remaining(&self, method: &str, until: Instant) -> Result<Duration> {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.timed_out(method));
        }
        Ok(left)
    }

    fn io_error(&self, method: &str, e: io::Error) -> OvsdbError {
        // A socket timeout reads as EAGAIN.
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            return self.timed_out(method);
        }
        OvsdbError::Io {
            target: self.target.clone(),
            method: method.to_string(),
            source: e,
        }
    }

    fn timed_out(&self, method: &str) -> OvsdbError {
        OvsdbError::TimedOut {
            target: self.target.clone(),
            method: method.to_string(),
            deadline: self.deadline,
        }
    }

    fn protocol(&self, method: &str, detail: String) -> OvsdbError {
        OvsdbError::Protocol {
            context: format!("{}: {method}", self.target),
            detail,
        }
    }
}

/// Removes the first complete JSON value from `buf` and returns it; `None`
/// while it is still incomplete.
pub(super) fn take_message(
    buf: &mut Vec<u8>,
) -> std::result::Result<Option<Value>, serde_json::Error> {
    let mut values = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    match values.next() {
        Some(Ok(value)) => {
            let used = values.byte_offset();
            buf.drain(..used);
            Ok(Some(value))
        }
        Some(Err(e)) if e.is_eof() => Ok(None),
        Some(Err(e)) => Err(e),
        // Only whitespace so far.
        None => {
            buf.clear();
            Ok(None)
        }
    }
}

/// A unix socket connect that gives up at the deadline: a blocking
/// connect waits for as long as the server's listen backlog stays full,
/// which it does when the server is stopped. A non-blocking one answers
/// EAGAIN instead (unix sockets have no EINPROGRESS), so retry until then.
fn connect_unix(path: &Path, deadline: Duration) -> io::Result<UnixStream> {
    let until = Instant::now() + deadline;
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    loop {
        match socket::connect(fd.as_raw_fd(), &addr) {
            Ok(()) => break,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(Errno::EAGAIN) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the server accepted no connection within {deadline:?}"),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}
