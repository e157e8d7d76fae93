//! Loading the seccomp filter the shim compiled with libseccomp.

use super::{sys, SetupError, SpecError};
use nix::errno::Errno;

/// The kernel's limit on classic BPF program length (BPF_MAXINSNS).
const BPF_MAXINSNS: usize = 4096;
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

/// `seccomp_export_bpf` output (native-endian `struct sock_filter`s) back
/// into filter entries.
pub fn bpf_to_filters(bpf: &[u8]) -> Result<Vec<libc::sock_filter>, SpecError> {
    if bpf.is_empty() || !bpf.len().is_multiple_of(8) {
        return Err(SpecError::Seccomp(format!(
            "{} bytes is not a non-empty multiple of 8",
            bpf.len()
        )));
    }
    if bpf.len() / 8 > BPF_MAXINSNS {
        return Err(SpecError::Seccomp(format!(
            "{} instructions, the kernel allows {BPF_MAXINSNS}",
            bpf.len() / 8
        )));
    }
    Ok(bpf
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

pub(super) struct Seccomp {
    pub(super) filters: Vec<libc::sock_filter>,
    pub(super) flags: u32,
}

pub(super) fn load_seccomp(seccomp: &Seccomp) -> Result<(), SetupError> {
    let prog = libc::sock_fprog {
        len: seccomp.filters.len() as libc::c_ushort,
        filter: seccomp.filters.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the kernel copies the program; `prog` and the filters outlive the call.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            seccomp.flags as libc::c_ulong,
            &prog,
        )
    })
    .map(drop)
    .map_err(sys("load seccomp filter"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_bytes_become_sock_filters() {
        // BPF_LD|BPF_W|BPF_ABS k=4 (load arch), then BPF_RET|BPF_K SECCOMP_RET_ALLOW.
        let mut bpf = Vec::new();
        for (code, jt, jf, k) in [(0x20u16, 0u8, 0u8, 4u32), (0x06, 1, 2, 0x7fff_0000)] {
            bpf.extend_from_slice(&code.to_ne_bytes());
            bpf.extend_from_slice(&[jt, jf]);
            bpf.extend_from_slice(&k.to_ne_bytes());
        }
        let f = bpf_to_filters(&bpf).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].code, f[0].jt, f[0].jf, f[0].k), (0x20, 0, 0, 4));
        assert_eq!(
            (f[1].code, f[1].jt, f[1].jf, f[1].k),
            (0x06, 1, 2, 0x7fff_0000)
        );

        assert!(bpf_to_filters(&[]).is_err());
        assert!(bpf_to_filters(&bpf[..7]).is_err());
        assert!(bpf_to_filters(&vec![0u8; 8 * (BPF_MAXINSNS + 1)]).is_err());
    }
}
