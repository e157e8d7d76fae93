//! `process.scheduler`, `process.ioPriority`, `process.execCPUAffinity`
//! and `linux.personality` -> the numbers the init hands to
//! `sched_setattr(2)`, `ioprio_set(2)`, `sched_setaffinity(2)` and
//! `personality(2)`, checked as runc 1.2+ checks them
//! (libcontainer/configs/validate/validator.go `scheduler` and
//! `ioPriority`, configs/config.go `ToSchedAttr` and `toCPUSet`, specconv
//! `getLinuxPersonalityFromStr`). The init applies them where runc's does:
//! the scheduler and I/O priority while it still holds every capability,
//! the personality last before exec; for exec processes as well, and the
//! CPU affinity for exec processes only.

use lxcri_init_spec::{ExecCpuAffinity, SchedAttr};
use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process,
    Spec,
};

use super::{invalid, unsupported, Result};

const SCHEDULER: &str = "process.scheduler";

/// The kernel's `struct sched_attr` for `process.scheduler`.
pub(super) fn sched_attr(process: &Process) -> Result<Option<SchedAttr>> {
    let Some(s) = process.scheduler() else {
        return Ok(None);
    };
    let policy = *s.policy();
    // include/uapi/linux/sched.h
    let number = match policy {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        // Reserved, never implemented: the kernel refuses it (EINVAL).
        LinuxSchedulerPolicy::SchedIso => {
            return Err(unsupported(
                &format!("{SCHEDULER}.policy"),
                "SCHED_ISO is reserved and not implemented by Linux",
            ))
        }
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let name = policy.to_string();
    let nice = s.nice().unwrap_or(0);
    let fair = matches!(
        policy,
        LinuxSchedulerPolicy::SchedOther | LinuxSchedulerPolicy::SchedBatch
    );
    if fair && !(-20..=19).contains(&nice) {
        return Err(invalid(
            &format!("{SCHEDULER}.nice"),
            &format!("{nice} is outside -20..=19 for {name}"),
        ));
    }
    let realtime = matches!(
        policy,
        LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
    );
    let priority = s.priority().unwrap_or(0);
    match (realtime, priority) {
        (true, 1..=99) | (false, 0) => {}
        (true, p) => {
            return Err(invalid(
                &format!("{SCHEDULER}.priority"),
                &format!("{p} is outside 1..=99 for {name}"),
            ))
        }
        (false, _) => {
            return Err(invalid(
                &format!("{SCHEDULER}.priority"),
                &format!("only SCHED_FIFO and SCHED_RR take a priority, not {name}"),
            ))
        }
    }
    let deadline = policy == LinuxSchedulerPolicy::SchedDeadline;
    let (runtime, dl, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if !deadline && (runtime, dl, period) != (0, 0, 0) {
        return Err(invalid(
            SCHEDULER,
            &format!("runtime, deadline and period are for SCHED_DEADLINE only, not {name}"),
        ));
    }
    let flags = s.flags().iter().flatten().fold(0, |acc, f| acc | flag(*f));
    Ok(Some(SchedAttr {
        policy: number,
        flags,
        nice,
        priority: priority as u32,
        runtime,
        deadline: dl,
        period,
    }))
}

/// `SCHED_FLAG_*` of include/uapi/linux/sched.h.
fn flag(f: LinuxSchedulerFlag) -> u64 {
    match f {
        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
    }
}

/// `ioprio_set(2)`'s value: the class in the top three bits, the level
/// below (include/uapi/linux/ioprio.h `IOPRIO_PRIO_VALUE`).
pub(super) fn io_priority(process: &Process) -> Result<Option<u16>> {
    let Some(p) = process.io_priority() else {
        return Ok(None);
    };
    let level = p.priority();
    if !(0..=7).contains(&level) {
        return Err(invalid(
            "process.ioPriority.priority",
            &format!("{level} is outside 0..=7"),
        ));
    }
    let class: u16 = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    Ok(Some(class << 13 | level as u16))
}

/// `process.execCPUAffinity` as CPU numbers, checked as runc's `toCPUSet`
/// (the spec's lists were made canonical before the typed parse, see
/// `spec::validate`, as oci-spec refuses spaces and empty elements).
pub(super) fn exec_cpu_affinity(process: &Process) -> Result<Option<ExecCpuAffinity>> {
    let Some(a) = process.exec_cpu_affinity() else {
        return Ok(None);
    };
    let affinity = ExecCpuAffinity {
        initial: cpu_list("process.execCPUAffinity.initial", a.initial().as_deref())?,
        last: cpu_list(
            "process.execCPUAffinity.final",
            a.cpu_affinity_final().as_deref(),
        )?,
    };
    Ok((affinity != ExecCpuAffinity::default()).then_some(affinity))
}

/// `sched_setaffinity(2)`'s mask holds CPUs below `CPU_SETSIZE`.
const CPU_SETSIZE: u32 = 1024;

/// `0-3,7` -> [0, 1, 2, 3, 7]; absent or empty means none given.
fn cpu_list(field: &str, list: Option<&str>) -> Result<Option<Vec<u32>>> {
    id_list(field, "CPU", CPU_SETSIZE, list)
}

/// A list of `what` ids below `limit` as runc's `toCPUSet` reads one (the
/// CPUs of an affinity, the nodes of a memory policy).
pub(super) fn id_list(
    field: &str,
    what: &str,
    limit: u32,
    list: Option<&str>,
) -> Result<Option<Vec<u32>>> {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let id = |v: &str| match v.parse::<u32>() {
        Ok(n) if n < limit => Ok(n),
        Ok(n) => Err(invalid(
            field,
            &format!("{what} {n} is above {}", limit - 1),
        )),
        Err(_) => Err(invalid(field, &format!("{v:?} is no {what} number"))),
    };
    let mut ids = Vec::new();
    for part in list.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (id(a)?, id(b)?),
            None => (id(part)?, id(part)?),
        };
        if first > last {
            return Err(invalid(field, &format!("{part:?} is a backward range")));
        }
        ids.extend(first..=last);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(ids))
}

/// `personality(2)`'s domain (`PER_LINUX`, `PER_LINUX32`).
pub(super) fn personality(spec: &Spec) -> Result<Option<u32>> {
    let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) else {
        return Ok(None);
    };
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        // runc warns and drops them; lxcri does not pretend.
        return Err(unsupported(
            "linux.personality.flags",
            "personality flags are not implemented",
        ));
    }
    Ok(Some(match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn process(extra: serde_json::Value) -> Process {
        let mut v = json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn sched(s: serde_json::Value) -> Result<Option<SchedAttr>> {
        sched_attr(&process(json!({ "scheduler": s })))
    }

    #[test]
    fn scheduler_policies_and_flags_become_the_kernels_numbers() {
        assert_eq!(sched_attr(&process(json!({}))).unwrap(), None);
        assert_eq!(
            sched(json!({"policy": "SCHED_BATCH", "nice": 5})).unwrap(),
            Some(SchedAttr {
                policy: 3,
                nice: 5,
                ..Default::default()
            })
        );
        assert_eq!(
            sched(json!({"policy": "SCHED_RR", "priority": 10,
                "flags": ["SCHED_RESET_ON_FORK", "SCHED_FLAG_UTIL_CLAMP_MAX"]}))
            .unwrap(),
            Some(SchedAttr {
                policy: 2,
                priority: 10,
                flags: 0x41,
                ..Default::default()
            })
        );
        assert_eq!(
            sched(json!({"policy": "SCHED_DEADLINE", "runtime": 10_000_000u64,
                "deadline": 20_000_000u64, "period": 30_000_000u64}))
            .unwrap(),
            Some(SchedAttr {
                policy: 6,
                runtime: 10_000_000,
                deadline: 20_000_000,
                period: 30_000_000,
                ..Default::default()
            })
        );
        assert_eq!(
            sched(json!({"policy": "SCHED_IDLE"}))
                .unwrap()
                .unwrap()
                .policy,
            5
        );
    }

    #[test]
    fn scheduler_settings_runc_or_the_kernel_refuses_are_refused_naming_the_field() {
        let cases = [
            (json!({"policy": "SCHED_OTHER", "nice": 20}), "process.scheduler.nice: 20 is outside -20..=19 for SCHED_OTHER"),
            (json!({"policy": "SCHED_BATCH", "nice": -21}), "process.scheduler.nice: -21 is outside"),
            (json!({"policy": "SCHED_OTHER", "priority": 1}), "process.scheduler.priority: only SCHED_FIFO and SCHED_RR take a priority, not SCHED_OTHER"),
            (json!({"policy": "SCHED_FIFO"}), "process.scheduler.priority: 0 is outside 1..=99 for SCHED_FIFO"),
            (json!({"policy": "SCHED_RR", "priority": 100}), "process.scheduler.priority: 100 is outside 1..=99"),
            (json!({"policy": "SCHED_OTHER", "runtime": 1}), "process.scheduler: runtime, deadline and period are for SCHED_DEADLINE only, not SCHED_OTHER"),
            (json!({"policy": "SCHED_ISO"}), "process.scheduler.policy: not supported by lxcri: SCHED_ISO"),
        ];
        for (s, want) in cases {
            let e = sched(s.clone()).unwrap_err().to_string();
            assert!(e.starts_with(want), "{s}: {e}");
        }
    }

    #[test]
    fn io_priority_is_class_and_level_in_one_value() {
        let io = |class: &str, priority: i64| {
            io_priority(&process(
                json!({"ioPriority": {"class": class, "priority": priority}}),
            ))
        };
        assert_eq!(io("IOPRIO_CLASS_RT", 0).unwrap(), Some(1 << 13));
        assert_eq!(io("IOPRIO_CLASS_BE", 7).unwrap(), Some(2 << 13 | 7));
        assert_eq!(io("IOPRIO_CLASS_IDLE", 0).unwrap(), Some(3 << 13));
        for bad in [-1, 8] {
            let e = io("IOPRIO_CLASS_BE", bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!(
                    "process.ioPriority.priority: {bad} is outside 0..=7"
                )),
                "{e}"
            );
        }
        assert_eq!(io_priority(&process(json!({}))).unwrap(), None);
    }

    #[test]
    fn exec_cpu_affinity_lists_become_cpu_numbers() {
        let aff = |a: serde_json::Value| exec_cpu_affinity(&process(json!({"execCPUAffinity": a})));
        assert_eq!(
            aff(json!({"initial": "0-2,7,1", "final": "1"})).unwrap(),
            Some(ExecCpuAffinity {
                initial: Some(vec![0, 1, 2, 7]),
                last: Some(vec![1]),
            })
        );
        assert_eq!(
            aff(json!({"initial": "3"})).unwrap(),
            Some(ExecCpuAffinity {
                initial: Some(vec![3]),
                last: None,
            })
        );
        assert_eq!(aff(json!({})).unwrap(), None);
        assert_eq!(exec_cpu_affinity(&process(json!({}))).unwrap(), None);
        let e = aff(json!({"final": "3-1"})).unwrap_err().to_string();
        assert!(
            e.starts_with("process.execCPUAffinity.final: \"3-1\" is a backward range"),
            "{e}"
        );
        let e = aff(json!({"initial": "1024", "final": "0"}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("process.execCPUAffinity.initial: CPU 1024 is above 1023"),
            "{e}"
        );
    }

    #[test]
    fn personality_domains_and_flags() {
        let spec = |p: serde_json::Value| -> Spec {
            serde_json::from_value(json!({"ociVersion": "1.2.0", "linux": {"personality": p}}))
                .unwrap()
        };
        assert_eq!(
            personality(&spec(json!({"domain": "LINUX32"}))).unwrap(),
            Some(8)
        );
        assert_eq!(
            personality(&spec(json!({"domain": "LINUX"}))).unwrap(),
            Some(0)
        );
        let e = personality(&spec(
            json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("linux.personality.flags: not supported by lxcri"),
            "{e}"
        );
        let none: Spec = serde_json::from_value(json!({"ociVersion": "1.2.0"})).unwrap();
        assert_eq!(personality(&none).unwrap(), None);
    }
}
