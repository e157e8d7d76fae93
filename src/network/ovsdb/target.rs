//! Where ovsdb-server listens, in the syntax of `ovs-vsctl --db`:
//! `unix:PATH` or `tcp:IP[:PORT]`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::OvsdbError;

/// The port IANA assigned to OVSDB, which `tcp:IP` without a port means.
const DEFAULT_TCP_PORT: u16 = 6640;
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_UNIX_PATH: usize = 107;

/// A validated ovsdb-server address (an active connection method; the
/// passive `punix:`/`ptcp:` are for servers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsdbTarget {
    endpoint: Endpoint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Endpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl OvsdbTarget {
    pub(super) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl FromStr for OvsdbTarget {
    type Err = OvsdbError;

    fn from_str(s: &str) -> Result<Self, OvsdbError> {
        let invalid = |reason| OvsdbError::InvalidTarget {
            target: s.to_string(),
            reason,
        };
        let endpoint = if let Some(path) = s.strip_prefix("unix:") {
            Endpoint::Unix(unix_path(path).map_err(invalid)?)
        } else if let Some(addr) = s.strip_prefix("tcp:") {
            Endpoint::Tcp(tcp_addr(addr).map_err(invalid)?)
        } else if s.starts_with("punix:") || s.starts_with("ptcp:") {
            return Err(invalid(
                "punix:/ptcp: are where a server listens; connect with unix: or tcp:",
            ));
        } else if s.starts_with("ssl:") {
            return Err(invalid("ssl: is not supported; use unix: or tcp:"));
        } else {
            return Err(invalid("expected unix:PATH or tcp:IP[:PORT]"));
        };
        Ok(Self { endpoint })
    }
}

fn unix_path(path: &str) -> Result<PathBuf, &'static str> {
    if path.is_empty() {
        return Err("the socket path is empty");
    }
    // A relative path would depend on the working directory of whichever
    // process (shim, CLI) happens to connect.
    if !Path::new(path).is_absolute() {
        return Err("the socket path must be absolute");
    }
    if path.contains('\0') {
        return Err("the socket path contains a NUL byte");
    }
    if path.len() > MAX_UNIX_PATH {
        return Err("the socket path is longer than a unix socket address holds (107 bytes)");
    }
    Ok(PathBuf::from(path))
}

/// `IP:PORT`, `[IPv6]:PORT`, or an address alone (port 6640). Names are
/// not resolved, so connecting never waits on DNS.
fn tcp_addr(s: &str) -> Result<SocketAddr, &'static str> {
    let addr = match s.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            let host = s
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(s);
            let ip: IpAddr = host.parse().map_err(|_| {
                "expected tcp:IP[:PORT] with an IP address (names are not resolved)"
            })?;
            SocketAddr::new(ip, DEFAULT_TCP_PORT)
        }
    };
    if addr.port() == 0 {
        return Err("port 0");
    }
    Ok(addr)
}

impl fmt::Display for OvsdbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            // SocketAddr brackets an IPv6 address, as OVS writes it.
            Endpoint::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}
