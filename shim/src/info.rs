//! `containerd-shim-lxcri-v2 -info`: containerd 2.x's runtime introspection.
//!
//! containerd runs the binary with `-info`, writes the runtime options (a
//! serialized `google.protobuf.Any`, possibly nothing) to its stdin and
//! reads a bare `containerd.types.RuntimeInfo` from its stdout. The
//! `features` field carries the OCI features document as JSON, under the
//! type URL containerd registers for runtime-spec's `features.Features`.
//! This runs before the shim library, which would want `TTRPC_ADDRESS` and
//! a `runc` binary for the same flag.

use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::types::introspection::{RuntimeInfo, RuntimeVersion};
use nix::poll::{poll, PollFd, PollFlags};
use serde_json::Value;

/// The name containerd knows the runtime by (`runtime_type`).
pub const RUNTIME_NAME: &str = "io.containerd.lxcri.v2";
/// The type URL containerd's typeurl registry maps to runtime-spec's
/// `features.Features`, decoded as JSON.
pub const FEATURES_TYPE_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/features/Features";
/// How long stdin may stay silent before it counts as ended: containerd
/// writes its options at once and closes the pipe, a caller that never
/// closes it must not hang the shim.
const STDIN_IDLE_MS: u16 = 5000;

#[derive(Debug, thiserror::Error)]
pub enum InfoError {
    #[error("reading the runtime options from stdin: {0}")]
    Stdin(#[source] nix::Error),
    #[error("waiting for stdin: {0}")]
    Poll(#[source] nix::Error),
    #[error("the runtime options on stdin are not a protobuf Any: {0}")]
    OptionsAny(#[source] containerd_shim_protos::protobuf::Error),
    #[error("runtime options: {0}")]
    Options(#[source] crate::error::ShimError),
    #[error("encoding the features as JSON: {0}")]
    Features(#[source] serde_json::Error),
    #[error("encoding RuntimeInfo: {0}")]
    Encode(#[source] containerd_shim_protos::protobuf::Error),
    #[error("writing RuntimeInfo to stdout: {0}")]
    Stdout(#[source] std::io::Error),
}

pub type Result<T> = std::result::Result<T, InfoError>;

/// Whether argv asks for `-info`, spelled as Go's flag package accepts it.
pub fn requested<I, S>(args: I) -> bool
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    args.into_iter().skip(1).any(|a| {
        let a = a.as_ref();
        ["-info", "--info", "-info=true", "--info=true"]
            .iter()
            .any(|f| a == OsStr::new(f))
    })
}

/// Answers `-info` on stdin/stdout.
pub fn run() -> Result<()> {
    let stdin = std::io::stdin();
    // A person at a terminal has no options to type.
    let options = if stdin.is_terminal() {
        Vec::new()
    } else {
        read_options(&stdin, STDIN_IDLE_MS)?
    };
    let bytes = runtime_info(&options)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&bytes)
        .and_then(|()| stdout.flush())
        .map_err(InfoError::Stdout)
}

/// Reads until end of input, or until nothing has come for `idle_ms`.
/// Reads the fd itself: data buffered in `Stdin` would be invisible to poll.
fn read_options(fd: impl AsFd, idle_ms: u16) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, idle_ms) {
            Ok(0) => return Ok(data),
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(InfoError::Poll(e)),
        }
        // Stdin closed by the caller: no options.
        if fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLNVAL))
        {
            return Ok(data);
        }
        match nix::unistd::read(fd.as_fd(), &mut buf) {
            Ok(0) => return Ok(data),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(InfoError::Stdin(e)),
        }
    }
}

/// The serialized `RuntimeInfo` for the options containerd sent.
pub fn runtime_info(options: &[u8]) -> Result<Vec<u8>> {
    let mut info = RuntimeInfo {
        name: RUNTIME_NAME.to_string(),
        version: MessageField::some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        }),
        features: MessageField::some(Any {
            type_url: FEATURES_TYPE_URL.to_string(),
            value: features_json()?,
            ..Default::default()
        }),
        ..Default::default()
    };
    if !options.is_empty() {
        let any = Any::parse_from_bytes(options).map_err(InfoError::OptionsAny)?;
        // Options the shim would refuse at create are refused here too.
        crate::options::config_path(Some(&any)).map_err(InfoError::Options)?;
        // Echoed back, as containerd's own shims do.
        info.options = MessageField::some(any);
    }
    info.write_to_bytes().map_err(InfoError::Encode)
}

/// The features document without its `null`s: Go's struct omits unset
/// fields, and `null` would read as "unknown" all the same.
fn features_json() -> Result<Vec<u8>> {
    let mut value =
        serde_json::to_value(lxcri::plan::runtime_features()).map_err(InfoError::Features)?;
    drop_nulls(&mut value);
    serde_json::to_vec(&value).map_err(InfoError::Features)
}

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Write;

    use super::*;

    #[test]
    fn info_flag_is_found_among_others() {
        assert!(requested(["shim", "-info"]));
        assert!(requested(["shim", "-namespace", "k8s.io", "--info"]));
        assert!(requested(["shim", "-info=true"]));
        assert!(!requested(["shim", "-namespace", "k8s.io", "start"]));
        // argv[0] is the program, whatever it is called.
        assert!(!requested(["-info"]));
    }

    #[test]
    fn nulls_are_dropped_at_every_depth() {
        let mut v = serde_json::json!({"a": null, "b": {"c": null, "d": 1}, "e": [{"f": null}]});
        drop_nulls(&mut v);
        assert_eq!(v, serde_json::json!({"b": {"d": 1}, "e": [{}]}));
    }

    fn pipe() -> (File, File) {
        let (r, w) = nix::unistd::pipe().unwrap();
        (File::from(r), File::from(w))
    }

    #[test]
    fn options_are_read_to_the_end_of_a_pipe() {
        let (r, mut w) = pipe();
        let big = vec![7u8; 100_000];
        let writer = std::thread::spawn(move || w.write_all(&big).unwrap());
        assert_eq!(read_options(&r, 5000).unwrap(), vec![7u8; 100_000]);
        writer.join().unwrap();
    }

    #[test]
    fn a_pipe_left_open_does_not_hang() {
        let (r, mut w) = pipe();
        w.write_all(b"abc").unwrap();
        assert_eq!(read_options(&r, 50).unwrap(), b"abc");
        drop(w);
    }

    #[test]
    fn runtime_options_are_echoed_and_bad_ones_refused() {
        let any = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            // Field 2 (config_path) = "/etc/lxcri/x.toml".
            value: [&[0x12, 17][..], b"/etc/lxcri/x.toml"].concat(),
            ..Default::default()
        };
        let bytes = runtime_info(&any.write_to_bytes().unwrap()).unwrap();
        let info = RuntimeInfo::parse_from_bytes(&bytes).unwrap();
        assert_eq!(info.options.type_url, "runtimeoptions.v1.Options");
        assert!(runtime_info(b"\xff\xff").is_err());
    }
}
