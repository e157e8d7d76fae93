//! Capability names: the kernel's `CAP_*` set, in canonical upper case.
//!
//! The list ends at `CAP_CHECKPOINT_RESTORE` (40, Linux 5.9). A name the
//! running kernel does not know (above `/proc/sys/kernel/cap_last_cap`) is
//! still accepted here, as runc does; the init skips such capabilities.

use oci_spec::runtime::{Capabilities, Capability};

/// Every capability the kernel defines, indexed by number.
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    /// `field` names the set and, where known, the index:
    /// `process.capabilities.bounding[3]`.
    #[error("{field}: unknown capability {name:?} (expected a canonical CAP_* name)")]
    Unknown { field: String, name: String },
}

pub type Result<T> = std::result::Result<T, CapabilityError>;

/// Every canonical name, by number.
pub fn names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().copied()
}

/// The kernel's number for a canonical capability name.
pub fn number(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// Canonical names of a parsed OCI set, sorted by capability number so the
/// result does not depend on the set's hash order.
pub fn canonical_set(field: &str, caps: Option<&Capabilities>) -> Result<Vec<String>> {
    let mut known = Vec::new();
    for cap in caps.into_iter().flatten() {
        let name = oci_name(*cap);
        match number(&name) {
            Some(n) => known.push((n, name)),
            None => {
                return Err(CapabilityError::Unknown {
                    field: field.to_string(),
                    name,
                })
            }
        }
    }
    known.sort();
    Ok(known.into_iter().map(|(_, name)| name).collect())
}

/// oci-spec displays capabilities without the prefix (`SYS_ADMIN`).
fn oci_name(cap: Capability) -> String {
    format!("CAP_{cap}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_kernel() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_AUDIT_READ"), Some(37));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("cap_chown"), None);
        assert_eq!(number("CHOWN"), None);
    }

    #[test]
    fn every_oci_capability_is_known_and_sorted() {
        let all: Capabilities = [
            Capability::SysAdmin,
            Capability::Chown,
            Capability::CheckpointRestore,
            Capability::Syslog,
            Capability::NetBindService,
            Capability::Bpf,
        ]
        .into_iter()
        .collect();
        let names = canonical_set("x", Some(&all)).unwrap();
        assert_eq!(
            names,
            [
                "CAP_CHOWN",
                "CAP_NET_BIND_SERVICE",
                "CAP_SYS_ADMIN",
                "CAP_SYSLOG",
                "CAP_BPF",
                "CAP_CHECKPOINT_RESTORE"
            ]
        );
        assert!(canonical_set("x", None).unwrap().is_empty());
    }
}
