//! The process's session keyring, joined as runc's init and exec join
//! theirs (libcontainer/keys): one of the container's own, never the
//! session keyring of the host processes the init or the exec helper came
//! from, whose keys a process sharing it could read and add to.

use std::ffi::CString;

use libc::c_long;
use lxcri_init_spec::SessionKeyring;
use nix::errno::Errno;

use super::{sys, SetupError};

/// include/uapi/linux/keyctl.h.
const KEYCTL_JOIN_SESSION_KEYRING: c_long = 1;
const KEYCTL_SETPERM: c_long = 5;
const KEYCTL_DESCRIBE: c_long = 6;

/// Joins (or makes) the session keyring `k.name` and adds
/// `k.add_permissions` to its permissions when not 0. A kernel without
/// keyrings, or a filter answering ENOSYS, leaves the keyring the process
/// has, as runc does.
pub(super) fn join(k: &SessionKeyring) -> Result<(), SetupError> {
    let name = CString::new(k.name.as_str()).map_err(|_| SetupError::Sys {
        what: format!("session keyring name {:?}", k.name),
        source: Errno::EINVAL,
    })?;
    // SAFETY: keyctl(2) with a NUL-terminated name that outlives the call.
    let id = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if id < 0 {
        return match Errno::last() {
            Errno::ENOSYS => Ok(()),
            // Every process of a user counts against one quota (200 keys
            // for a user other than the node's root): containers sharing
            // a mapping share it.
            Errno::EDQUOT => Err(sys(
                "unable to join session keyring (the key quota of the container's user is used up: \
                 raise the sysctls kernel.keys.maxkeys and kernel.keys.maxbytes)",
            )(Errno::EDQUOT)),
            e => Err(sys("unable to join session keyring")(e)),
        };
    }
    if k.add_permissions == 0 {
        return Ok(());
    }
    let perm = permissions(id)? | k.add_permissions;
    // SAFETY: keyctl(2) on the keyring just joined, with plain integers.
    let rc = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, id, perm) };
    if rc < 0 {
        return Err(sys("set the session keyring's permissions")(Errno::last()));
    }
    Ok(())
}

/// The permission mask of keyring `id`, from its description.
fn permissions(id: c_long) -> Result<u32, SetupError> {
    let desc = describe(id).map_err(sys("describe the session keyring"))?;
    description_permissions(&desc).ok_or_else(|| SetupError::Sys {
        what: "read the session keyring's permissions".into(),
        source: Errno::EINVAL,
    })
}

/// `KEYCTL_DESCRIBE` of keyring `id`: its description, a long one cut at
/// 256 bytes.
fn describe(id: c_long) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; 256];
    // SAFETY: keyctl(2) writes at most `buf.len()` bytes into `buf`.
    let n = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_DESCRIBE,
            id,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(Errno::last());
    }
    // `n` counts the whole description.
    buf.truncate(usize::try_from(n).unwrap_or(0));
    Ok(buf)
}

/// `KEYCTL_DESCRIBE` gives `type;uid;gid;perm;description`, `perm` in hex.
fn description_permissions(desc: &[u8]) -> Option<u32> {
    let field = desc.split(|b| *b == b';').nth(3)?;
    u32::from_str_radix(std::str::from_utf8(field).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::tests::in_child;

    #[test]
    fn permissions_are_the_descriptions_fourth_field() {
        assert_eq!(
            description_permissions(b"keyring;0;0;3f130000;_ses.c1\0"),
            Some(0x3f13_0000)
        );
        assert_eq!(description_permissions(b"keyring;0;0"), None);
        assert_eq!(description_permissions(b"keyring;0;0;zz;x"), None);
    }

    /// In a child (the test runner's own session keyring stays): the
    /// keyring joined is the named one, with the added permission.
    #[test]
    fn a_named_keyring_is_joined_with_the_added_permission() {
        const KEY_SPEC_SESSION_KEYRING: c_long = -3;
        const KEYCTL_GET_KEYRING_ID: c_long = 0;
        let name = format!("_ses.lxcri-test-{}", std::process::id());
        let k = SessionKeyring {
            name: name.clone(),
            add_permissions: 0x0008_0000,
        };
        in_child(|| {
            if join(&k).is_err() {
                return false;
            }
            // SAFETY: keyctl(2) with integers only.
            let id = unsafe {
                libc::syscall(
                    libc::SYS_keyctl,
                    KEYCTL_GET_KEYRING_ID,
                    KEY_SPEC_SESSION_KEYRING,
                    0,
                )
            };
            let desc = describe(id).unwrap_or_default();
            let perm = description_permissions(&desc).unwrap_or(0);
            desc.ends_with(format!(";{name}\0").as_bytes()) && perm & 0x0008_0000 != 0
        });
    }
}
