//! `linux.timeOffsets` -> `lxc.time.offset.boot` and
//! `lxc.time.offset.monotonic`, checked as runc checks them
//! (libcontainer/configs/validate/validator.go `namespaces`: offsets need a
//! new time namespace, not one joined by path) and as LXC can set them
//! (seconds or nanoseconds, see [`TimeOffset`]).

use oci_spec::runtime::{Linux, LinuxTimeOffset};

use super::{invalid, unsupported, Result};
use crate::lxc::{Namespace, Namespaces, TimeOffset};

const FIELD: &str = "linux.timeOffsets";

/// (boottime, monotonic).
pub(super) fn plan_time_offsets(
    linux: &Linux,
    ns: &Namespaces,
) -> Result<(Option<TimeOffset>, Option<TimeOffset>)> {
    let Some(offsets) = linux.time_offsets() else {
        return Ok((None, None));
    };
    if ns.share.iter().any(|(n, _)| *n == Namespace::Time) {
        return Err(invalid(
            FIELD,
            "a time namespace joined by path keeps its own offsets: give a path or offsets, not both",
        ));
    }
    if !ns.clone.contains(&Namespace::Time) {
        return Err(invalid(
            FIELD,
            "offsets need a new time namespace in linux.namespaces",
        ));
    }
    let (mut boot, mut monotonic) = (None, None);
    for (clock, offset) in offsets {
        let field = format!("{FIELD}.{clock}");
        let slot = match clock.as_str() {
            "boottime" => &mut boot,
            "monotonic" => &mut monotonic,
            _ => {
                return Err(invalid(
                    &field,
                    "unknown clock (boottime and monotonic have offsets)",
                ))
            }
        };
        *slot = lxc_offset(&field, offset)?;
    }
    Ok((boot, monotonic))
}

/// The kernel keeps an offset clock between 0 and half of `KTIME_SEC_MAX`
/// (kernel/time/namespace.c `proc_timens_set_offset`, `ERANGE`): a larger
/// offset fails whatever the clock reads. One that takes the clock below 0
/// depends on the host's uptime and fails at start, as on runc.
const MAX_OFFSET_SECS: i64 = 9_223_372_036 / 2;

fn lxc_offset(field: &str, o: &LinuxTimeOffset) -> Result<Option<TimeOffset>> {
    let (secs, nanos) = (o.secs().unwrap_or(0), o.nanosecs().unwrap_or(0));
    if !(-MAX_OFFSET_SECS..=MAX_OFFSET_SECS).contains(&secs) {
        return Err(invalid(
            &format!("{field}.secs"),
            &format!("{secs} is beyond the kernel's {MAX_OFFSET_SECS} seconds"),
        ));
    }
    if nanos >= 1_000_000_000 {
        return Err(invalid(
            &format!("{field}.nanosecs"),
            &format!("{nanos} is not below one second"),
        ));
    }
    Ok(match (secs, nanos) {
        (0, 0) => None,
        (s, 0) => Some(TimeOffset::Seconds(s)),
        (0, ns) => Some(TimeOffset::Nanoseconds(ns)),
        _ => {
            return Err(unsupported(
                field,
                "LXC sets a clock's offset in seconds or in nanoseconds, not both",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    fn linux(offsets: serde_json::Value) -> Linux {
        serde_json::from_value(json!({ "timeOffsets": offsets })).unwrap()
    }

    fn new_time() -> Namespaces {
        Namespaces {
            clone: vec![Namespace::Mnt, Namespace::Time],
            ..Default::default()
        }
    }

    #[test]
    fn offsets_of_a_new_time_namespace() {
        let l = linux(json!({
            "boottime": {"secs": 86400},
            "monotonic": {"nanosecs": 500},
        }));
        assert_eq!(
            plan_time_offsets(&l, &new_time()).unwrap(),
            (
                Some(TimeOffset::Seconds(86400)),
                Some(TimeOffset::Nanoseconds(500))
            )
        );
        let negative = linux(json!({"monotonic": {"secs": -3600}}));
        assert_eq!(
            plan_time_offsets(&negative, &new_time()).unwrap(),
            (None, Some(TimeOffset::Seconds(-3600)))
        );
        assert_eq!(
            plan_time_offsets(&Linux::default(), &Namespaces::default()).unwrap(),
            (None, None)
        );
    }

    #[test]
    fn offsets_runc_or_lxc_cannot_set_are_refused_naming_the_field() {
        let joined = Namespaces {
            clone: vec![Namespace::Mnt],
            share: vec![(Namespace::Time, PathBuf::from("/proc/1/ns/time"))],
            ..Default::default()
        };
        let one = linux(json!({"boottime": {"secs": 1}}));
        let cases = [
            (
                &one,
                joined,
                "linux.timeOffsets: a time namespace joined by path",
            ),
            (
                &one,
                Namespaces::default(),
                "linux.timeOffsets: offsets need a new time namespace",
            ),
            (
                &linux(json!({"realtime": {"secs": 1}})),
                new_time(),
                "linux.timeOffsets.realtime: unknown clock",
            ),
            (
                &linux(json!({"boottime": {"secs": 1, "nanosecs": 5}})),
                new_time(),
                "linux.timeOffsets.boottime: not supported by lxcri: LXC sets",
            ),
            (
                &linux(json!({"monotonic": {"secs": 4_611_686_019i64}})),
                new_time(),
                "linux.timeOffsets.monotonic.secs: 4611686019 is beyond",
            ),
            (
                &linux(json!({"boottime": {"nanosecs": 1_000_000_000u32}})),
                new_time(),
                "linux.timeOffsets.boottime.nanosecs: 1000000000 is not below one second",
            ),
        ];
        for (l, ns, want) in cases {
            let e = plan_time_offsets(l, &ns).unwrap_err().to_string();
            assert!(e.starts_with(want), "{want}: {e}");
        }
    }
}
