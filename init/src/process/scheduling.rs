//! The process's CPU affinity, scheduler, I/O priority and personality,
//! as the shim encoded them (`lxcri::plan` checks them as runc does).

use lxcri_init_spec::{ExecCpuAffinity, MemoryPolicy, SchedAttr, MEMORY_POLICY_MAX_NODES};
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

/// An exec process's `process.execCPUAffinity`: `final` when given, else
/// `initial`. runc sets `initial` before the process joins the cgroup,
/// whose cpuset then masks it (to the cpuset's CPUs when none is left), and
/// `final` after, failing the exec when it cannot; here the process is in
/// the cgroup already, so an `initial` the cpuset leaves nothing of gets
/// the cpuset's CPUs as on runc.
pub(super) fn set_exec_cpu_affinity(a: &ExecCpuAffinity) -> Result<(), SetupError> {
    match (&a.last, &a.initial) {
        (Some(cpus), _) => set_cpu_affinity(cpus, "process.execCPUAffinity.final"),
        (None, Some(cpus)) => match set_cpu_affinity(cpus, "process.execCPUAffinity.initial") {
            Err(SetupError::Sys {
                source: Errno::EINVAL,
                ..
            }) => {
                reset_cpu_affinity();
                Ok(())
            }
            other => other,
        },
        (None, None) => {
            reset_cpu_affinity();
            Ok(())
        }
    }
}

fn set_cpu_affinity(cpus: &[u32], field: &str) -> Result<(), SetupError> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu as usize)
            .map_err(sys(format!("CPU {cpu} in {field}")))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)
        .map_err(sys(format!("set the CPU affinity ({field})")))
}

/// `personality(domain)`.
pub(super) fn set_personality(domain: u32) -> Result<(), SetupError> {
    // SAFETY: an integer argument; the call changes only this process.
    let r = unsafe { libc::personality(libc::c_ulong::from(domain)) };
    Errno::result(r)
        .map(drop)
        .map_err(sys("set the personality (linux.personality)"))
}

/// `set_mempolicy(mode, mask, MEMORY_POLICY_MAX_NODES)`, runc's call
/// (internal/linux `SetMempolicy`): a mask of 1024 bits.
pub(super) fn set_memory_policy(policy: &MemoryPolicy) -> Result<(), SetupError> {
    const WORD: u32 = u64::BITS;
    let mut mask = [0u64; (MEMORY_POLICY_MAX_NODES / WORD) as usize];
    for &node in &policy.nodes {
        let word = mask
            .get_mut((node / WORD) as usize)
            .ok_or(SetupError::Sys {
                what: format!("node {node} of linux.memoryPolicy"),
                source: Errno::EINVAL,
            })?;
        *word |= 1 << (node % WORD);
    }
    // SAFETY: the mask outlives the call and holds `maxnode` bits.
    let r = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            libc::c_ulong::from(policy.mode),
            mask.as_ptr(),
            libc::c_ulong::from(MEMORY_POLICY_MAX_NODES),
        )
    };
    Errno::result(r)
        .map(drop)
        .map_err(sys("set_mempolicy (linux.memoryPolicy)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::tests::in_child;

    /// `get_mempolicy(2)`'s mode for this thread.
    fn memory_policy_mode() -> i64 {
        let mut mode: libc::c_int = -1;
        // SAFETY: reads the mode into an int; no mask asked for.
        let r = unsafe {
            libc::syscall(
                libc::SYS_get_mempolicy,
                &mut mode as *mut libc::c_int,
                std::ptr::null_mut::<u64>(),
                0 as libc::c_ulong,
                std::ptr::null_mut::<libc::c_void>(),
                0 as libc::c_ulong,
            )
        };
        if r < 0 {
            -1
        } else {
            mode.into()
        }
    }

    #[test]
    fn a_child_gets_the_memory_policy() {
        in_child(|| {
            // MPOL_BIND to node 0, which every machine has; then MPOL_LOCAL.
            let bound = set_memory_policy(&MemoryPolicy {
                mode: 2,
                nodes: vec![0],
            })
            .is_ok()
                && memory_policy_mode() == 2;
            let local = set_memory_policy(&MemoryPolicy {
                mode: 4,
                nodes: vec![],
            })
            .is_ok()
                && memory_policy_mode() == 4;
            bound && local
        });
        // A mode the kernel does not know.
        in_child(|| {
            set_memory_policy(&MemoryPolicy {
                mode: 99,
                nodes: vec![],
            })
            .is_err()
        });
    }

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

    fn cpus_of(set: &CpuSet) -> Vec<usize> {
        (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap())
            .collect()
    }

    fn affinity() -> Vec<usize> {
        cpus_of(&nix::sched::sched_getaffinity(Pid::from_raw(0)).unwrap())
    }

    #[test]
    fn final_wins_and_the_reset_widens_a_pinned_process() {
        // Whatever CPUs this test may use (a runner may be pinned itself).
        let allowed = affinity();
        let (first, last) = (allowed[0] as u32, *allowed.last().unwrap() as u32);
        in_child(|| {
            let pinned = set_exec_cpu_affinity(&ExecCpuAffinity {
                initial: Some(vec![first]),
                last: Some(vec![last]),
            })
            .is_ok()
                && affinity() == [last as usize];
            reset_cpu_affinity();
            // At least what it had before it was pinned.
            pinned && allowed.iter().all(|c| affinity().contains(c))
        });
    }

    #[test]
    fn an_initial_outside_the_allowed_cpus_gets_them_all_a_final_fails() {
        let allowed = affinity();
        // Above any CPU this machine has: the kernel leaves nothing of it.
        let none = ExecCpuAffinity {
            initial: Some(vec![1023]),
            last: None,
        };
        in_child(|| set_exec_cpu_affinity(&none).is_ok() && affinity() == allowed);
        let e = set_exec_cpu_affinity(&ExecCpuAffinity {
            initial: None,
            last: Some(vec![1023]),
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("set the CPU affinity (process.execCPUAffinity.final): "),
            "{e}"
        );
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
