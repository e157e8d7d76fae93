//! PVE task ids (UPIDs).
//!
//! `UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{type}:{id}:{user}:`,
//! with a trailing colon. `pstart` (the process start time in clock ticks)
//! outgrows 8 hex digits on long-running nodes, so any width is accepted. The
//! original text is kept: the task endpoints must be called with exactly the
//! string PVE handed out.

use std::fmt;
use std::str::FromStr;

/// The UPID text did not have the expected shape.
#[derive(Debug, thiserror::Error)]
#[error("invalid UPID {upid:?}: {reason}")]
pub struct UpidError {
    pub upid: String,
    pub reason: &'static str,
}

/// A local `Result` for this module.
pub type Result<T> = std::result::Result<T, UpidError>;

/// A parsed task id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Upid {
    /// Node that runs the task; its task endpoints live under this node.
    pub node: String,
    pub pid: u32,
    pub pstart: u64,
    /// Unix time the task started.
    pub starttime: u64,
    /// Task type, e.g. `vzcreate`, `vzstart`, `vzdestroy`.
    pub task_type: String,
    /// Object id, usually the VMID; may be empty.
    pub id: String,
    /// Who started it, e.g. `root@pam!lxcri`.
    pub user: String,
    raw: String,
}

impl Upid {
    /// Builds a UPID from its parts, formatted the way PVE formats them.
    pub fn new(
        node: &str,
        pid: u32,
        pstart: u64,
        starttime: u64,
        task_type: &str,
        id: &str,
        user: &str,
    ) -> Self {
        let raw =
            format!("UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{task_type}:{id}:{user}:");
        Upid {
            node: node.to_string(),
            pid,
            pstart,
            starttime,
            task_type: task_type.to_string(),
            id: id.to_string(),
            user: user.to_string(),
            raw,
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        let err = |reason| UpidError {
            upid: s.to_string(),
            reason,
        };
        let body = s
            .strip_prefix("UPID:")
            .ok_or_else(|| err("missing UPID: prefix"))?;
        // Lenient about the trailing colon: older tools and hand-written ids
        // sometimes drop it, and it carries no information.
        let body = body.strip_suffix(':').unwrap_or(body);
        let parts: Vec<&str> = body.split(':').collect();
        let [node, pid, pstart, starttime, task_type, id, user] = parts[..] else {
            return Err(err("expected 8 colon-separated fields"));
        };
        if node.is_empty() || node.contains(char::is_whitespace) {
            return Err(err("bad node name"));
        }
        if task_type.is_empty() || user.is_empty() {
            return Err(err("empty task type or user"));
        }
        let hex = |field: &str, what| -> Result<u64> {
            if field.is_empty() || field.len() > 16 {
                return Err(err(what));
            }
            u64::from_str_radix(field, 16).map_err(|_| err(what))
        };
        let pid = u32::try_from(hex(pid, "bad pid")?).map_err(|_| err("bad pid"))?;
        Ok(Upid {
            node: node.to_string(),
            pid,
            pstart: hex(pstart, "bad pstart")?,
            starttime: hex(starttime, "bad starttime")?,
            task_type: task_type.to_string(),
            id: id.to_string(),
            user: user.to_string(),
            raw: s.to_string(),
        })
    }

    /// The exact text PVE returned.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl FromStr for Upid {
    type Err = UpidError;

    fn from_str(s: &str) -> Result<Self> {
        Upid::parse(s)
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_format_round_trip() {
        let s = "UPID:pve1:0000A1B2:0012ABCD:6740F00D:vzcreate:105:root@pam:";
        let u = Upid::parse(s).unwrap();
        assert_eq!(u.node, "pve1");
        assert_eq!(u.pid, 0xA1B2);
        assert_eq!(u.pstart, 0x12ABCD);
        assert_eq!(u.starttime, 0x6740F00D);
        assert_eq!(u.task_type, "vzcreate");
        assert_eq!(u.id, "105");
        assert_eq!(u.user, "root@pam");
        assert_eq!(u.to_string(), s);
        let rebuilt = Upid::new(
            "pve1", 0xA1B2, 0x12ABCD, 0x6740F00D, "vzcreate", "105", "root@pam",
        );
        assert_eq!(rebuilt, u);
        assert_eq!(s.parse::<Upid>().unwrap(), u);
    }

    #[test]
    fn token_user_empty_id_and_wide_pstart() {
        let s = "UPID:node-b:003FFFFF:1A2B3C4D5:67410000:vzdestroy::lxcri@pve!shim:";
        let u = Upid::parse(s).unwrap();
        assert_eq!(u.pstart, 0x1A2B3C4D5);
        assert_eq!(u.id, "");
        assert_eq!(u.user, "lxcri@pve!shim");
        assert_eq!(u.to_string(), s);
        let rebuilt = Upid::new(
            "node-b",
            0x3FFFFF,
            0x1A2B3C4D5,
            0x67410000,
            "vzdestroy",
            "",
            "lxcri@pve!shim",
        );
        assert_eq!(rebuilt.as_str(), s);
    }

    #[test]
    fn missing_trailing_colon_is_accepted() {
        let u = Upid::parse("UPID:pve1:0000A1B2:0012ABCD:6740F00D:vzstart:105:root@pam").unwrap();
        assert_eq!(u.task_type, "vzstart");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "UPID:",
            "pve1:0000A1B2:0012ABCD:6740F00D:vzstart:105:root@pam:",
            "UPID:pve1:XYZ:0012ABCD:6740F00D:vzstart:105:root@pam:",
            "UPID:pve1:0000A1B2:0012ABCD:6740F00D:vzstart:105:",
            "UPID:pve1:0000A1B2:0012ABCD:6740F00D:vzstart:105:root@pam:extra:",
            "UPID::0000A1B2:0012ABCD:6740F00D:vzstart:105:root@pam:",
        ] {
            assert!(Upid::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
