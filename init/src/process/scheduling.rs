//! The process's CPU affinity, scheduler, I/O priority and personality,
//! as the shim encoded them (`lxcri::plan` checks them as runc does).

use lxcri_init_spec::SchedAttr;
use nix::errno::Errno;
use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use super::{sys, SetupError};

/// The kernel's `struct sched_attr` up to `sched_util_max`
/// (`SCHED_ATTR_SIZE_VER1`, which the utilization clamp flags need).
#[repr(C)]
struct KernelSchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

/// `sched_setattr(0, attr, 0)`: this process (and what it execs).
pub(super) fn set_scheduler(attr: &SchedAttr) -> Result<(), SetupError> {
    let k = KernelSchedAttr {
        size: std::mem::size_of::<KernelSchedAttr>() as u32,
        sched_policy: attr.policy,
        sched_flags: attr.flags,
        sched_nice: attr.nice,
        sched_priority: attr.priority,
        sched_runtime: attr.runtime,
        sched_deadline: attr.deadline,
        sched_period: attr.period,
        sched_util_min: 0,
        sched_util_max: 0,
    };
    // SAFETY: a pointer to a live, fully initialized struct of the size it
    // states; the kernel only reads it.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &k as *const KernelSchedAttr, 0) };
    Errno::result(r)
        .map(drop)
        .map_err(sys("set the scheduler (process.scheduler)"))
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, value)`.
pub(super) fn set_io_priority(value: u16) -> Result<(), SetupError> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: integer arguments only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            libc::c_long::from(value),
        )
    };
    Errno::result(r)
        .map(drop)
        .map_err(sys("set the I/O priority (process.ioPriority)"))
}

/// Every CPU: the kernel masks the set with the cgroup's cpuset, so the
/// process runs where its container may, not where whatever started LXC
/// was pinned (a containerd under systemd's `CPUAffinity=`). Since Linux
/// 6.2 a cpuset no longer widens an affinity inherited from the starter
/// (kernel commit da019032819a); runc resets it so from 1.2.7 and 1.3.1
/// (libcontainer/process_linux.go `tryResetCPUAffinity`). Best effort, as
/// there: a failure leaves the inherited one.
pub(super) fn reset_cpu_affinity() {
    let mut all = CpuSet::new();
    for cpu in 0..CpuSet::count() {
        let _ = all.set(cpu);
    }
    let _ = sched_setaffinity(Pid::from_raw(0), &all);
}

/// An exec process's `process.execCPUAffinity`.
pub(super) fn set_cpu_affinity(cpus: &[u32]) -> Result<(), SetupError> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu as usize)
            .map_err(sys(format!("CPU {cpu} in process.execCPUAffinity")))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)
        .map_err(sys("set the CPU affinity (process.execCPUAffinity)"))
}

/// `personality(domain)`.
pub(super) fn set_personality(domain: u32) -> Result<(), SetupError> {
    // SAFETY: an integer argument; the call changes only this process.
    let r = unsafe { libc::personality(libc::c_ulong::from(domain)) };
    Errno::result(r)
        .map(drop)
        .map_err(sys("set the personality (linux.personality)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_struct_is_the_kernels_ver1_size() {
        assert_eq!(std::mem::size_of::<KernelSchedAttr>(), 56);
    }

    #[test]
    fn a_child_gets_the_settings() {
        // In a forked child, so this test process keeps its own.
        // SAFETY: the child only makes syscalls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let batch = SchedAttr {
                    policy: 3,
                    nice: 7,
                    ..Default::default()
                };
                let ok = set_scheduler(&batch).is_ok()
                    && set_io_priority(3 << 13).is_ok()
                    && set_personality(8).is_ok()
                    // SAFETY: reading, not changing.
                    && unsafe { libc::sched_getscheduler(0) } == 3
                    && unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) } == 7
                    && unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) } == 3 << 13
                    && unsafe { libc::personality(0xffff_ffff) } == 8;
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }

    #[test]
    fn the_affinity_is_set_and_reset() {
        // SAFETY: the child only makes syscalls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let me = Pid::from_raw(0);
                let before = nix::sched::sched_getaffinity(me).unwrap();
                let ok = set_cpu_affinity(&[0]).is_ok()
                    && {
                        let one = nix::sched::sched_getaffinity(me).unwrap();
                        (0..CpuSet::count()).all(|c| one.is_set(c).unwrap() == (c == 0))
                    }
                    && {
                        reset_cpu_affinity();
                        let all = nix::sched::sched_getaffinity(me).unwrap();
                        (0..CpuSet::count()).all(|c| all.is_set(c) == before.is_set(c))
                    }
                    && set_cpu_affinity(&[1023]).is_err();
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }

    #[test]
    fn a_refusal_names_the_field() {
        let bad = SchedAttr {
            policy: 4, // SCHED_ISO: reserved
            ..Default::default()
        };
        let e = set_scheduler(&bad).unwrap_err().to_string();
        assert!(
            e.starts_with("set the scheduler (process.scheduler): "),
            "{e}"
        );
    }
}
