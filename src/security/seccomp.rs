//! OCI `linux.seccomp` -> a classic BPF program, compiled with libseccomp.
//!
//! The shim compiles; the init only calls `seccomp(SECCOMP_SET_MODE_FILTER,
//! flags, prog)` right before exec, so the init needs no libseccomp and the
//! container's own libc/arch quirks do not matter.
//!
//! Semantics follow runc: syscall names libseccomp does not know on this
//! architecture are skipped (containerd's default profile lists syscalls
//! newer than some kernels and libseccomp versions); rules whose action is
//! the default action are skipped (libseccomp refuses them, and they change
//! nothing); several conditions on the same argument become one rule each
//! (libseccomp cannot AND two comparisons of one argument); a syscall
//! newer than every one the profile names gets `ENOSYS`, not the default
//! errno (see `enosys`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use lxcri_init_spec::SeccompProgram;
use nix::sys::memfd::{memfd_create, MFdFlags};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

/// `SECCOMP_FILTER_FLAG_*` from `<linux/seccomp.h>`.
pub const FLAG_TSYNC: u32 = 1;
pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;

/// `EPERM`: the errno of `SCMP_ACT_ERRNO`/`SCMP_ACT_TRACE` without `errnoRet`.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{field}: not supported by lxcri: {reason}")]
    Unsupported { field: String, reason: String },
    #[error("{field}: libseccomp rejected it: {source}")]
    Libseccomp {
        field: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("exporting the seccomp filter as BPF: {0}")]
    Export(String),
}

pub type Result<T> = std::result::Result<T, SeccompError>;

fn lib_err(
    field: impl Into<String>,
) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    let field = field.into();
    move |source| SeccompError::Libseccomp { field, source }
}

/// Compiles an OCI seccomp profile to BPF plus `seccomp(2)` flags.
pub fn compile_seccomp(seccomp: &LinuxSeccomp) -> Result<SeccompProgram> {
    if seccomp.listener_path().is_some() {
        return Err(SeccompError::Unsupported {
            field: "linux.seccomp.listenerPath".into(),
            reason: "seccomp user notification (SCMP_ACT_NOTIFY) is not implemented".into(),
        });
    }
    if seccomp.listener_metadata().is_some() {
        return Err(SeccompError::Unsupported {
            field: "linux.seccomp.listenerMetadata".into(),
            reason: "seccomp user notification (SCMP_ACT_NOTIFY) is not implemented".into(),
        });
    }
    let flags = filter_flags(seccomp.flags().as_deref().unwrap_or_default())?;
    let default = action(
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
        seccomp.default_action(),
        seccomp.default_errno_ret(),
    )?;

    let mut ctx =
        ScmpFilterContext::new_filter(default).map_err(lib_err("linux.seccomp.defaultAction"))?;
    // The no_new_privs attribute only matters when libseccomp loads the
    // filter itself; the init decides about no_new_privs from the spec.
    ctx.set_ctl_nnp(false).map_err(lib_err("linux.seccomp"))?;
    // The filter always holds the native architecture.
    let mut arches = vec![ScmpArch::Native];
    for (i, arch) in seccomp.architectures().iter().flatten().enumerate() {
        ctx.add_arch(scmp_arch(*arch))
            .map_err(lib_err(format!("linux.seccomp.architectures[{i}]")))?;
        arches.push(scmp_arch(*arch));
    }

    for (i, rule) in seccomp.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(
            &format!("{field}.action"),
            &format!("{field}.errnoRet"),
            rule.action(),
            rule.errno_ret(),
        )?;
        let conditions = rule
            .args()
            .iter()
            .flatten()
            .enumerate()
            .map(|(k, arg)| compare(&format!("{field}.args[{k}]"), arg))
            .collect::<Result<Vec<_>>>()?;
        if act == default {
            continue;
        }
        for (j, name) in rule.names().iter().enumerate() {
            let name_field = format!("{field}.names[{j}]");
            if name.is_empty() {
                return Err(SeccompError::Invalid {
                    field: name_field,
                    reason: "empty syscall name".into(),
                });
            }
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                tracing::debug!(syscall = %name, "seccomp: syscall unknown on this architecture, skipped");
                continue;
            };
            add_rule(
                &mut ctx,
                act,
                syscall,
                rule.args().as_deref().unwrap_or_default(),
                &conditions,
            )
            .map_err(lib_err(format!("{name_field} ({name})")))?;
        }
    }

    let mut bpf = Vec::new();
    if enosys::needed(default) {
        let names = seccomp
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|rule| rule.names().iter().map(String::as_str));
        let highest = enosys::highest_numbers(&arches, names);
        bpf = enosys::prefix(&highest).map_err(SeccompError::Export)?;
    }
    bpf.extend(export(&ctx)?);
    Ok(SeccompProgram { bpf, flags })
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    act: ScmpAction,
    syscall: ScmpSyscall,
    args: &[LinuxSeccompArg],
    conditions: &[ScmpArgCompare],
) -> std::result::Result<(), libseccomp::error::SeccompError> {
    if conditions.is_empty() {
        return ctx.add_rule(act, syscall);
    }
    let mut indexes: Vec<usize> = args.iter().map(|a| a.index()).collect();
    indexes.sort_unstable();
    indexes.dedup();
    if indexes.len() == args.len() {
        ctx.add_rule_conditional(act, syscall, conditions)
    } else {
        for c in conditions {
            ctx.add_rule_conditional(act, syscall, std::slice::from_ref(c))?;
        }
        Ok(())
    }
}

fn action(
    field: &str,
    errno_field: &str,
    act: LinuxSeccompAction,
    errno_ret: Option<u32>,
) -> Result<ScmpAction> {
    let errno = |default: u32| -> Result<u32> {
        let v = errno_ret.unwrap_or(default);
        // SECCOMP_RET_DATA is 16 bits wide.
        if v > u32::from(u16::MAX) {
            return Err(SeccompError::Invalid {
                field: errno_field.to_string(),
                reason: format!("{v} does not fit in 16 bits"),
            });
        }
        Ok(v)
    };
    let only_errno_and_trace = || -> Result<()> {
        match errno_ret {
            Some(_) => Err(SeccompError::Invalid {
                field: errno_field.to_string(),
                reason: "only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE".into(),
            }),
            None => Ok(()),
        }
    };
    Ok(match act {
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno(DEFAULT_ERRNO)? as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno(DEFAULT_ERRNO)? as u16),
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::Unsupported {
                field: field.to_string(),
                reason: "SCMP_ACT_NOTIFY (seccomp user notification) is not implemented".into(),
            })
        }
        other => {
            only_errno_and_trace()?;
            match other {
                LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
                    ScmpAction::KillThread
                }
                LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
                LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
                LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
                LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
                LinuxSeccompAction::ScmpActErrno
                | LinuxSeccompAction::ScmpActTrace
                | LinuxSeccompAction::ScmpActNotify => unreachable!("handled above"),
            }
        }
    })
}

fn compare(field: &str, arg: &LinuxSeccompArg) -> Result<ScmpArgCompare> {
    // Syscalls have at most six arguments.
    if arg.index() > 5 {
        return Err(SeccompError::Invalid {
            field: format!("{field}.index"),
            reason: format!("{} is not a syscall argument index (0..=5)", arg.index()),
        });
    }
    let value = arg.value();
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // OCI: `value` is the mask, `valueTwo` what the masked argument must equal.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(value),
            arg.value_two().unwrap_or(0),
        ),
    };
    Ok(ScmpArgCompare::new(arg.index() as u32, op, datum))
}

fn filter_flags(flags: &[LinuxSeccompFilterFlag]) -> Result<u32> {
    let mut bits = 0;
    for (i, flag) in flags.iter().enumerate() {
        bits |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            // The kernel accepts it only together with NEW_LISTENER, i.e.
            // for SCMP_ACT_NOTIFY.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::Unsupported {
                    field: format!("linux.seccomp.flags[{i}]"),
                    reason: "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs seccomp user \
                             notification, which is not implemented"
                        .into(),
                })
            }
        };
    }
    Ok(bits)
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
    }
}

/// `seccomp_export_bpf` writes to an fd; a memfd avoids both temp files
/// and pipe-buffer deadlocks for large filters.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>> {
    let fd = memfd_create("lxcri-seccomp", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| SeccompError::Export(format!("memfd_create: {e}")))?;
    let mut file = File::from(fd);
    ctx.export_bpf(&mut file)
        .map_err(|e| SeccompError::Export(e.to_string()))?;
    let mut bpf = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bpf))
        .map_err(|e| SeccompError::Export(e.to_string()))?;
    // struct sock_filter is 8 bytes.
    if bpf.is_empty() || bpf.len() % 8 != 0 {
        return Err(SeccompError::Export(format!(
            "libseccomp produced {} bytes, not a whole number of BPF instructions",
            bpf.len()
        )));
    }
    Ok(bpf)
}

mod enosys;
#[cfg(test)]
mod tests;
