//! A prefix to the compiled filter that answers syscalls newer than the
//! profile with `ENOSYS`, as runc does (its `patchbpf`).
//!
//! A profile with a denying default action lists the syscalls its author
//! knew. A syscall added to the kernel later would get the default errno
//! (usually `EPERM`), and libcs fall back to an older syscall only on
//! `ENOSYS`: glibc 2.39's `fchmodat(AT_SYMLINK_NOFOLLOW)` tries `fchmodat2`
//! first, for instance. So for each architecture of the filter, a syscall
//! numbered above the highest one the profile names gets `ENOSYS`; the
//! rest goes on to libseccomp's program unchanged.

use libseccomp::{ScmpAction, ScmpArch, ScmpSyscall};

/// `AUDIT_ARCH_*` (`<linux/audit.h>`): the `arch` word of `seccomp_data`.
fn audit_arch(arch: ScmpArch) -> Option<u32> {
    const BITS64: u32 = 0x8000_0000;
    const LE: u32 = 0x4000_0000;
    const MIPS64_N32: u32 = 0x2000_0000;
    // ELF machine numbers (`<linux/elf-em.h>`).
    const EM_386: u32 = 3;
    const EM_MIPS: u32 = 8;
    const EM_PPC: u32 = 20;
    const EM_PPC64: u32 = 21;
    const EM_S390: u32 = 22;
    const EM_ARM: u32 = 40;
    const EM_X86_64: u32 = 62;
    const EM_AARCH64: u32 = 183;
    const EM_RISCV: u32 = 243;
    Some(match arch {
        ScmpArch::Native => return audit_arch(ScmpArch::native()),
        ScmpArch::X86 => EM_386 | LE,
        // x32 shares x86_64's arch word; its syscalls carry X32_SYSCALL_BIT.
        ScmpArch::X8664 | ScmpArch::X32 => EM_X86_64 | BITS64 | LE,
        ScmpArch::Arm => EM_ARM | LE,
        ScmpArch::Aarch64 => EM_AARCH64 | BITS64 | LE,
        ScmpArch::Mips => EM_MIPS,
        ScmpArch::Mipsel => EM_MIPS | LE,
        ScmpArch::Mips64 => EM_MIPS | BITS64,
        ScmpArch::Mipsel64 => EM_MIPS | BITS64 | LE,
        ScmpArch::Mips64N32 => EM_MIPS | BITS64 | MIPS64_N32,
        ScmpArch::Mipsel64N32 => EM_MIPS | BITS64 | LE | MIPS64_N32,
        ScmpArch::Ppc => EM_PPC,
        ScmpArch::Ppc64 => EM_PPC64 | BITS64,
        ScmpArch::Ppc64Le => EM_PPC64 | BITS64 | LE,
        ScmpArch::S390 => EM_S390,
        ScmpArch::S390X => EM_S390 | BITS64,
        ScmpArch::Riscv64 => EM_RISCV | BITS64 | LE,
        _ => return None,
    })
}

const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// `SECCOMP_RET_ERRNO | ENOSYS`.
const RET_ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;

/// Whether a filter with `default` as its default action needs the prefix:
/// not when unlisted syscalls are allowed (a tracer, too, should see new
/// syscalls) or already get `ENOSYS`.
pub(super) fn needed(default: ScmpAction) -> bool {
    !matches!(
        default,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_)
    ) && default != ScmpAction::Errno(libc::ENOSYS)
}

/// The highest syscall number among `names` on each architecture of the
/// filter; architectures where none resolves are left out (runc alike: a
/// prefix for them would deny everything with `ENOSYS`).
pub(super) fn highest_numbers<'a>(
    arches: &[ScmpArch],
    names: impl Iterator<Item = &'a str> + Clone,
) -> Vec<(ScmpArch, u32)> {
    let mut out: Vec<(ScmpArch, u32)> = Vec::new();
    for &arch in arches {
        let arch = if arch == ScmpArch::Native {
            ScmpArch::native()
        } else {
            arch
        };
        if out.iter().any(|(a, _)| *a == arch) {
            continue;
        }
        // Names not on this architecture resolve to negative pseudo numbers.
        let highest = names
            .clone()
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
            .map(i32::from)
            .filter(|&nr| nr >= 0)
            .max();
        if let Some(nr) = highest {
            out.push((arch, nr as u32));
        }
    }
    out
}

/// One classic BPF instruction, jumps by label until laid out.
#[derive(Clone, Copy)]
enum Insn {
    LoadWord(u32),
    JumpIf {
        op: u16,
        k: u32,
        yes: Label,
        no: Label,
    },
    Jump(Label),
    Return(u32),
}

#[derive(Clone, Copy, PartialEq)]
enum Label {
    Next,
    /// Where this architecture's x32 check starts.
    X32,
    /// The start of the next architecture's section.
    NextArch,
    Enosys,
    Filter,
}

const LD_W_ABS: u16 = 0x20;
const JEQ: u16 = 0x15;
const JGT: u16 = 0x25;
const JSET: u16 = 0x45;
const JA: u16 = 0x05;
const RET_K: u16 = 0x06;
/// `offsetof(struct seccomp_data, nr)` and `arch`.
const NR: u32 = 0;
const ARCH: u32 = 4;

/// The prefix for `highest` (from [`highest_numbers`]), as bytes of
/// `struct sock_filter` to put before libseccomp's program (which starts by
/// loading the arch word itself).
pub(super) fn prefix(highest: &[(ScmpArch, u32)]) -> Result<Vec<u8>, String> {
    let mut words: Vec<u32> = Vec::new();
    for (arch, _) in highest {
        let word = audit_arch(*arch).ok_or_else(|| format!("no AUDIT_ARCH for {arch:?}"))?;
        if !words.contains(&word) {
            words.push(word);
        }
    }
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let max_of = |wanted: ScmpArch| {
        highest
            .iter()
            .find(|(a, _)| *a == wanted)
            .map(|(_, nr)| *nr)
    };
    let above = |max: Option<u32>| match max {
        Some(k) => Insn::JumpIf {
            op: JGT,
            k,
            yes: Label::Enosys,
            no: Label::Filter,
        },
        None => Insn::Jump(Label::Filter),
    };
    // Sections, each ending where the next architecture's starts.
    let mut sections: Vec<Vec<Insn>> = Vec::new();
    for word in words {
        let mut s = vec![
            Insn::JumpIf {
                op: JEQ,
                k: word,
                yes: Label::Next,
                no: Label::NextArch,
            },
            Insn::LoadWord(NR),
        ];
        let arches: Vec<ScmpArch> = highest
            .iter()
            .map(|(a, _)| *a)
            .filter(|a| audit_arch(*a) == Some(word))
            .collect();
        if arches.contains(&ScmpArch::X8664) || arches.contains(&ScmpArch::X32) {
            s.push(Insn::JumpIf {
                op: JSET,
                k: X32_SYSCALL_BIT,
                yes: Label::X32,
                no: Label::Next,
            });
            s.push(above(max_of(ScmpArch::X8664)));
            // Label::X32 is the instruction after the x86_64 check.
            s.push(above(max_of(ScmpArch::X32)));
        } else {
            if arches
                .iter()
                .any(|a| matches!(a, ScmpArch::S390 | ScmpArch::S390X))
            {
                // Syscall 0 (setup) multiplexes large syscall numbers there:
                // one the kernel does not know arrives as 0.
                s.push(Insn::JumpIf {
                    op: JEQ,
                    k: 0,
                    yes: Label::Enosys,
                    no: Label::Next,
                });
            }
            s.push(above(max_of(arches[0])));
        }
        sections.push(s);
    }
    let mut program = vec![Insn::LoadWord(ARCH)];
    let mut section_starts = Vec::new();
    for s in &sections {
        section_starts.push(program.len());
        program.extend_from_slice(s);
    }
    // No architecture of ours: on to libseccomp's program.
    let no_arch = program.len();
    program.push(Insn::Jump(Label::Filter));
    let enosys = program.len();
    program.push(Insn::Return(RET_ENOSYS));
    let filter = program.len();

    let mut bytes = Vec::with_capacity(program.len() * 8);
    for (i, insn) in program.iter().enumerate() {
        let section = section_starts.iter().rposition(|&start| start <= i);
        let next_arch = section
            .and_then(|s| section_starts.get(s + 1).copied())
            .unwrap_or(no_arch);
        // The x32 check is a section's last instruction.
        let x32 = section
            .map(|s| section_starts[s] + sections[s].len() - 1)
            .unwrap_or(i + 1);
        let target = |l: Label| -> usize {
            match l {
                Label::Next => i + 1,
                Label::X32 => x32,
                Label::NextArch => next_arch,
                Label::Enosys => enosys,
                Label::Filter => filter,
            }
        };
        let offset = |l: Label| -> Result<u8, String> {
            u8::try_from(target(l) - i - 1).map_err(|_| "a jump of over 255 instructions".into())
        };
        let (code, jt, jf, k) = match *insn {
            Insn::LoadWord(at) => (LD_W_ABS, 0, 0, at),
            Insn::JumpIf { op, k, yes, no } => (op, offset(yes)?, offset(no)?, k),
            Insn::Jump(l) => (JA, 0, 0, (target(l) - i - 1) as u32),
            Insn::Return(v) => (RET_K, 0, 0, v),
        };
        bytes.extend_from_slice(&code.to_ne_bytes());
        bytes.push(jt);
        bytes.push(jf);
        bytes.extend_from_slice(&k.to_ne_bytes());
    }
    Ok(bytes)
}
