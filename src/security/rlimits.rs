//! Rlimit names: `RLIMIT_*` as in `getrlimit(2)`, and LXC's spelling
//! (`lxc.prlimit.nofile`).

use oci_spec::runtime::PosixRlimitType;

const NAMES: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    #[error("{field}: unknown rlimit {name:?} (expected an RLIMIT_* name)")]
    Unknown { field: String, name: String },
}

pub type Result<T> = std::result::Result<T, RlimitError>;

/// The canonical name if `name` is a known `RLIMIT_*` name.
pub fn canonical(name: &str) -> Option<&'static str> {
    NAMES.iter().copied().find(|n| *n == name)
}

/// Canonical name of a parsed OCI rlimit type; `field` is used in errors.
pub fn oci_name(field: &str, typ: PosixRlimitType) -> Result<&'static str> {
    // oci-spec displays the variants as SCREAMING_SNAKE_CASE, i.e. the
    // RLIMIT_* name; the table lookup guards against a future variant.
    let name = typ.to_string();
    canonical(&name).ok_or(RlimitError::Unknown {
        field: field.to_string(),
        name,
    })
}

/// LXC's name for a canonical rlimit: `RLIMIT_NOFILE` -> `nofile`.
pub fn lxc_name(canonical: &str) -> String {
    canonical
        .strip_prefix("RLIMIT_")
        .unwrap_or(canonical)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            oci_name("r", PosixRlimitType::RlimitNofile).unwrap(),
            "RLIMIT_NOFILE"
        );
        assert_eq!(
            oci_name("r", PosixRlimitType::RlimitRttime).unwrap(),
            "RLIMIT_RTTIME"
        );
        assert_eq!(lxc_name("RLIMIT_MSGQUEUE"), "msgqueue");
        assert_eq!(canonical("RLIMIT_FOO"), None);
        assert_eq!(canonical("rlimit_nofile"), None);
    }
}
