//! Capabilities: names to bitmasks, the bounding set, and the exact
//! effective/permitted/inheritable/ambient sets.

use super::{sys, SetupError, SpecError};
use nix::errno::Errno;
use std::str::FromStr;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The five capability sets as bitmasks (bit n = capability number n).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CapMasks {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Parse canonical names (`CAP_CHOWN`) into a bitmask.
pub fn cap_mask(names: &[String]) -> Result<u64, SpecError> {
    names.iter().try_fold(0u64, |mask, name| {
        caps::Capability::from_str(name)
            .map(|cap| mask | cap.bitmask())
            .map_err(|_| SpecError::Capability(name.clone()))
    })
}

pub(super) fn drop_bounding(keep: u64) -> Result<(), SetupError> {
    for cap in 0..64u32 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
        if present < 0 {
            break; // EINVAL: past the kernel's last capability
        }
        if present == 1 {
            // SAFETY: as above.
            Errno::result(unsafe {
                libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0)
            })
            .map_err(sys(format!("drop capability {cap} from the bounding set")))?;
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Effective, permitted and inheritable in one capset (setting them one by
/// one can fail in between, e.g. effective larger than permitted), then the
/// ambient set, which needs the first three in place.
pub(super) fn set_caps(caps: &CapMasks) -> Result<(), SetupError> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |m: u64| [m as u32, (m >> 32) as u32];
    let (e, p, i) = (
        split(caps.effective),
        split(caps.permitted),
        split(caps.inheritable),
    );
    let data = [
        CapData {
            effective: e[0],
            permitted: p[0],
            inheritable: i[0],
        },
        CapData {
            effective: e[1],
            permitted: p[1],
            inheritable: i[1],
        },
    ];
    // SAFETY: capset reads a v3 header and two data structs.
    Errno::result(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) })
        .map_err(sys("set capabilities (capset)"))?;
    // SAFETY: prctl with integer arguments.
    let cleared = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if cleared < 0 && caps.ambient != 0 {
        return Err(SetupError::Sys {
            what: "clear ambient capabilities".into(),
            source: Errno::last(),
        });
    }
    for cap in (0..64u32).filter(|c| caps.ambient & (1 << c) != 0) {
        // SAFETY: as above.
        Errno::result(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
                0,
                0,
            )
        })
        .map_err(sys(format!(
            "raise ambient capability {cap} (it must be permitted and inheritable)"
        )))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn capability_names_become_bits() {
        assert_eq!(cap_mask(&[]).unwrap(), 0);
        assert_eq!(cap_mask(&names(&["CAP_CHOWN"])).unwrap(), 1);
        assert_eq!(
            cap_mask(&names(&["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_KILL"])).unwrap(),
            (1 << 5) | (1 << 10)
        );
        assert_eq!(
            cap_mask(&names(&["CAP_CHECKPOINT_RESTORE"])).unwrap(),
            1 << 40
        );
        assert_eq!(
            cap_mask(&names(&["CAP_CHOWN", "chown"])).unwrap_err(),
            SpecError::Capability("chown".into())
        );
    }
}
