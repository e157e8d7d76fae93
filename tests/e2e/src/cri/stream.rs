//! Exec and attach over containerd's streaming server (see
//! [`super::websocket`] for the connection).
//!
//! Channels of both: 0 stdin, 1 stdout, 2 stderr, 3 error (the final
//! `metav1.Status` as JSON), 4 resize. The server first sends an empty
//! message on the lowest output channel (channel byte only), then the
//! output, then the status, then closes. v4 has no way to close stdin but
//! closing the connection: an exec's command reading it must stop by itself
//! (e.g. `head -c N`); an attach ends its stdin when the client closes.

use std::time::{Duration, Instant};

use super::websocket::{Channels, Received};

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
        match split_message(msg) {
            Some((channel, data)) => self.feed_channel(channel, data),
            None => Ok(()),
        }
    }

    /// Takes one message's payload on `channel` (empty ones are the
    /// server's "channel ready").
    fn feed_channel(&mut self, channel: u8, data: &[u8]) -> Result<(), String> {
        if data.is_empty() {
            return Ok(());
        }
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
    let mut channels = Channels::open(url, timeout)?;
    if let Some(data) = stdin.filter(|d| !d.is_empty()) {
        channels.send(STDIN, data)?;
    }
    let mut out = Collector::default();
    loop {
        match channels.recv(deadline)? {
            Received::Message(channel, data) => out.feed_channel(channel, &data)?,
            Received::Closed => break,
            Received::Nothing => {
                return Err(format!(
                    "exec stream {url}: no end within {timeout:?} ({})",
                    out.partial()
                ))
            }
        }
    }
    out.finish()
}

/// An attach to a container's process (from [`super::CriClient::attach`]),
/// or an exec driven as a terminal user drives it (from
/// [`super::CriClient::exec`]): what its stdout and stderr carried since
/// it began.
pub struct Attach {
    channels: Channels,
    out: Collector,
}

impl Attach {
    pub fn open(url: &str, timeout: Duration) -> Result<Self, String> {
        Ok(Attach {
            channels: Channels::open(url, timeout)?,
            out: Collector::default(),
        })
    }

    /// Writes `data` to the process's stdin.
    pub fn write_stdin(&mut self, data: &[u8]) -> Result<(), String> {
        self.channels.send(STDIN, data)
    }

    /// Resizes the process's terminal, as a client's window change does.
    pub fn resize(&mut self, width: u16, height: u16) -> Result<(), String> {
        let size = format!(r#"{{"Width":{width},"Height":{height}}}"#);
        self.channels.send(RESIZE, size.as_bytes())
    }

    /// Reads what comes until `until` is true of (stdout, stderr) or `wait`
    /// passed; returns whether it became true. A closed connection ends the
    /// wait as well.
    pub fn read_until(
        &mut self,
        wait: Duration,
        until: impl Fn(&[u8], &[u8]) -> bool,
    ) -> Result<bool, String> {
        let deadline = Instant::now() + wait;
        loop {
            if until(&self.out.stdout, &self.out.stderr) {
                return Ok(true);
            }
            match self.channels.recv(deadline)? {
                Received::Message(channel, data) => self.out.feed_channel(channel, &data)?,
                Received::Closed | Received::Nothing => {
                    return Ok(until(&self.out.stdout, &self.out.stderr))
                }
            }
        }
    }

    /// stdout and stderr so far.
    pub fn output(&self) -> (String, String) {
        (
            String::from_utf8_lossy(&self.out.stdout).into_owned(),
            String::from_utf8_lossy(&self.out.stderr).into_owned(),
        )
    }

    /// Ends the attach (closing the connection ends its stdin), reads what
    /// is left and returns the whole stdout and stderr, and the status the
    /// server sent when it sent one.
    pub fn close(mut self, timeout: Duration) -> Result<(String, String, Option<i32>), String> {
        let deadline = Instant::now() + timeout;
        self.channels.close()?;
        loop {
            match self.channels.recv(deadline)? {
                Received::Message(channel, data) => self.out.feed_channel(channel, &data)?,
                Received::Closed => break,
                Received::Nothing => {
                    return Err(format!(
                        "attach: not closed within {timeout:?} ({})",
                        self.out.partial()
                    ))
                }
            }
        }
        let (stdout, stderr) = self.output();
        let status = if self.out.status.is_empty() {
            None
        } else {
            Some(exit_code_from_status(&self.out.status)?)
        };
        Ok((stdout, stderr, status))
    }
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
}
