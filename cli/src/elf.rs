//! Just enough ELF to tell whether an executable is statically linked.
//!
//! `lxcri-init` runs inside arbitrary images (busybox, alpine, distroless),
//! where the host's dynamic loader does not exist; a binary that names a
//! loader (a `PT_INTERP` program header) would fail there with a confusing
//! "no such file or directory". A static-pie has no `PT_INTERP` either, so
//! that one header is the whole test.

use std::path::Path;

const PT_INTERP: u32 = 3;
/// `e_phnum` value meaning "the count is stored elsewhere"; never produced
/// for an executable with a handful of program headers.
const PN_XNUM: u16 = 0xffff;

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not an ELF file")]
    NotElf,
    #[error("unsupported ELF header: {0}")]
    Unsupported(&'static str),
    #[error("ELF file is truncated")]
    Truncated,
}

/// What [`inspect`] learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub bits: u8,
    /// `e_machine` (62 = x86-64, 183 = aarch64).
    pub machine: u16,
    /// Whether a program header names a dynamic loader.
    pub has_interp: bool,
}

impl ElfInfo {
    pub fn is_static(&self) -> bool {
        !self.has_interp
    }
}

pub fn inspect_file(path: &Path) -> Result<ElfInfo, ElfError> {
    let bytes = std::fs::read(path).map_err(|source| ElfError::Read {
        path: path.display().to_string(),
        source,
    })?;
    inspect(&bytes)
}

/// Reads the ELF header and program headers of `bytes`.
pub fn inspect(bytes: &[u8]) -> Result<ElfInfo, ElfError> {
    if bytes.len() < 16 || &bytes[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    let bits = match bytes[4] {
        1 => 32,
        2 => 64,
        _ => return Err(ElfError::Unsupported("EI_CLASS")),
    };
    let little = match bytes[5] {
        1 => true,
        2 => false,
        _ => return Err(ElfError::Unsupported("EI_DATA")),
    };
    let r = Reader { bytes, little };
    let machine = r.u16(18)?;
    // Offsets of e_phoff, e_phentsize and e_phnum differ by class.
    let (phoff, phentsize, phnum) = if bits == 64 {
        (r.u64(32)?, r.u16(54)?, r.u16(56)?)
    } else {
        (u64::from(r.u32(28)?), r.u16(42)?, r.u16(44)?)
    };
    if phnum == PN_XNUM {
        return Err(ElfError::Unsupported("e_phnum = PN_XNUM"));
    }
    if phnum > 0 && phentsize < 4 {
        return Err(ElfError::Unsupported("e_phentsize"));
    }
    let mut has_interp = false;
    for i in 0..u64::from(phnum) {
        let at = phoff
            .checked_add(i * u64::from(phentsize))
            .and_then(|at| usize::try_from(at).ok())
            .ok_or(ElfError::Truncated)?;
        // p_type is the first 32-bit word of a program header in both classes.
        if r.u32(at)? == PT_INTERP {
            has_interp = true;
        }
    }
    Ok(ElfInfo {
        bits,
        machine,
        has_interp,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl Reader<'_> {
    fn take<const N: usize>(&self, at: usize) -> Result<[u8; N], ElfError> {
        let end = at.checked_add(N).ok_or(ElfError::Truncated)?;
        let slice = self.bytes.get(at..end).ok_or(ElfError::Truncated)?;
        Ok(slice.try_into().expect("slice has N bytes"))
    }

    fn u16(&self, at: usize) -> Result<u16, ElfError> {
        let b = self.take::<2>(at)?;
        Ok(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32(&self, at: usize) -> Result<u32, ElfError> {
        let b = self.take::<4>(at)?;
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn u64(&self, at: usize) -> Result<u64, ElfError> {
        let b = self.take::<8>(at)?;
        Ok(if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal little-endian ELF64 image whose program headers have these types.
    pub(crate) fn elf64(types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // ELFCLASS64
        b[5] = 1; // little endian
        b[6] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        b[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        b[56..58].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for t in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            b.extend(ph);
        }
        b
    }

    /// The same for big-endian ELF32.
    fn elf32_be(types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 52];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 1;
        b[5] = 2;
        b[18..20].copy_from_slice(&8u16.to_be_bytes()); // MIPS
        b[28..32].copy_from_slice(&52u32.to_be_bytes());
        b[42..44].copy_from_slice(&32u16.to_be_bytes());
        b[44..46].copy_from_slice(&(types.len() as u16).to_be_bytes());
        for t in types {
            let mut ph = vec![0u8; 32];
            ph[..4].copy_from_slice(&t.to_be_bytes());
            b.extend(ph);
        }
        b
    }

    #[test]
    fn static_and_dynamic() {
        let dynamic = inspect(&elf64(&[6, PT_INTERP, 1, 1, 2])).unwrap();
        assert!(!dynamic.is_static());
        assert_eq!((dynamic.bits, dynamic.machine), (64, 62));
        assert!(inspect(&elf64(&[1, 1, 2, 7])).unwrap().is_static());
        assert!(!inspect(&elf32_be(&[PT_INTERP])).unwrap().is_static());
        assert!(inspect(&elf32_be(&[1])).unwrap().is_static());
    }

    #[test]
    fn bad_input() {
        assert!(matches!(inspect(b"#!/bin/sh\n"), Err(ElfError::NotElf)));
        let mut cut = elf64(&[1, 3]);
        cut.truncate(100);
        assert!(matches!(inspect(&cut), Err(ElfError::Truncated)));
        let mut huge = elf64(&[]);
        huge[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        huge[56..58].copy_from_slice(&2u16.to_le_bytes());
        assert!(matches!(inspect(&huge), Err(ElfError::Truncated)));
    }

    #[test]
    fn this_test_binary_is_dynamic() {
        // cargo test binaries on the gnu target name ld-linux as interpreter.
        let info = inspect_file(Path::new("/proc/self/exe")).unwrap();
        assert!(info.has_interp);
    }
}
