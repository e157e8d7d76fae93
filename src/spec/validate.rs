//! Field checks on the raw JSON, before oci-spec's typed parse, so a bad
//! enum value is reported by its path instead of as a bare serde error.
//! Errors are `(field, message)`.

use oci_spec::runtime::{
    Arch, IOPriorityClass, LinuxDeviceType, LinuxNamespaceType, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, LinuxSeccompAction, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::security::{capabilities, rlimits};

type Check = std::result::Result<(), (String, String)>;

const CAPABILITY_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

pub(super) fn spec(raw: &Value) -> Check {
    if let Some(process) = raw.get("process") {
        self::process("process", process)?;
    }
    let Some(linux) = raw.get("linux") else {
        return Ok(());
    };
    for (i, ns) in items(linux.get("namespaces")) {
        enum_value::<LinuxNamespaceType>(
            &format!("linux.namespaces[{i}].type"),
            ns.get("type"),
            "namespace type",
        )?;
    }
    for (i, dev) in items(linux.get("devices")) {
        enum_value::<LinuxDeviceType>(
            &format!("linux.devices[{i}].type"),
            dev.get("type"),
            "device type",
        )?;
    }
    if let Some(res) = linux.get("resources") {
        for (i, dev) in items(res.get("devices")) {
            enum_value::<LinuxDeviceType>(
                &format!("linux.resources.devices[{i}].type"),
                dev.get("type"),
                "device type",
            )?;
        }
    }
    if let Some(seccomp) = linux.get("seccomp") {
        self::seccomp(seccomp)?;
    }
    if let Some(p) = linux.get("personality") {
        enum_value::<LinuxPersonalityDomain>(
            "linux.personality.domain",
            p.get("domain"),
            "personality domain",
        )?;
    }
    Ok(())
}

/// runtime-spec's scheduler flag names (config.md `scheduler`), which
/// oci-spec 0.9's serde spells otherwise for two of them
/// (`SCHED_RESET_ON_FORK`, `SCHED_FLAG_D_L_OVERRUN`).
const SCHED_FLAGS: [(&str, LinuxSchedulerFlag); 7] = [
    (
        "SCHED_FLAG_RESET_ON_FORK",
        LinuxSchedulerFlag::SchedResetOnFork,
    ),
    ("SCHED_FLAG_RECLAIM", LinuxSchedulerFlag::SchedFlagReclaim),
    (
        "SCHED_FLAG_DL_OVERRUN",
        LinuxSchedulerFlag::SchedFlagDLOverrun,
    ),
    (
        "SCHED_FLAG_KEEP_POLICY",
        LinuxSchedulerFlag::SchedFlagKeepPolicy,
    ),
    (
        "SCHED_FLAG_KEEP_PARAMS",
        LinuxSchedulerFlag::SchedFlagKeepParams,
    ),
    (
        "SCHED_FLAG_UTIL_CLAMP_MIN",
        LinuxSchedulerFlag::SchedFlagUtilClampMin,
    ),
    (
        "SCHED_FLAG_UTIL_CLAMP_MAX",
        LinuxSchedulerFlag::SchedFlagUtilClampMax,
    ),
];

/// Rewrites what oci-spec 0.9 would parse otherwise than runc into the
/// form it parses as runc does: `process.scheduler.flags` (checked by
/// [`process`]) from the runtime-spec's names to oci-spec's, and the CPU
/// lists of `process.execCPUAffinity` without the spaces around elements
/// and the empty elements runc's `toCPUSet` skips (an empty list is none),
/// which oci-spec's pattern refuses; a process without `user` gets Go's
/// zero value, uid and gid 0, as runc's (its `specs.User` is no pointer;
/// oci-spec requires the field). Whether anything changed: only then
/// does the typed parse need the rewritten value.
pub(super) fn to_oci_spec_forms(process: &mut Value) -> bool {
    let mut changed = false;
    if let Some(fields) = process.as_object_mut() {
        if !fields.contains_key("user") {
            fields.insert("user".into(), serde_json::json!({"uid": 0, "gid": 0}));
            changed = true;
        }
    }
    if let Some(flags) = process
        .get_mut("scheduler")
        .and_then(|s| s.get_mut("flags"))
        .and_then(Value::as_array_mut)
    {
        for flag in flags {
            let known = SCHED_FLAGS
                .iter()
                .find(|(name, _)| flag.as_str() == Some(name));
            if let Some((name, variant)) = known {
                let oci = serde_json::to_value(variant).expect("an enum serializes");
                changed |= oci.as_str() != Some(name);
                *flag = oci;
            }
        }
    }
    if let Some(affinity) = process
        .get_mut("execCPUAffinity")
        .and_then(Value::as_object_mut)
    {
        for key in ["initial", "final"] {
            let Some(list) = affinity.get(key).and_then(Value::as_str) else {
                continue;
            };
            let canonical: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            let canonical = canonical.join(",");
            if canonical.is_empty() {
                affinity.remove(key);
                changed = true;
            } else if canonical != list {
                affinity.insert(key.into(), Value::String(canonical));
                changed = true;
            }
        }
    }
    changed
}

pub(super) fn process(prefix: &str, process: &Value) -> Check {
    if let Some(s) = process.get("scheduler") {
        enum_value::<LinuxSchedulerPolicy>(
            &format!("{prefix}.scheduler.policy"),
            s.get("policy"),
            "scheduler policy",
        )?;
        for (i, flag) in items(s.get("flags")) {
            let field = format!("{prefix}.scheduler.flags[{i}]");
            match flag.as_str() {
                Some(f) if SCHED_FLAGS.iter().any(|(name, _)| *name == f) => {}
                Some(f) => return Err((field, format!("unknown scheduler flag {f:?}"))),
                None => return Err((field, "must be a string".into())),
            }
        }
    }
    if let Some(io) = process.get("ioPriority") {
        enum_value::<IOPriorityClass>(
            &format!("{prefix}.ioPriority.class"),
            io.get("class"),
            "I/O priority class",
        )?;
    }
    if let Some(caps) = process.get("capabilities") {
        for set in CAPABILITY_SETS {
            for (i, name) in items(caps.get(set)) {
                let field = format!("{prefix}.capabilities.{set}[{i}]");
                let name = name
                    .as_str()
                    .ok_or_else(|| (field.clone(), "must be a string".to_string()))?;
                if capabilities::number(name).is_none() {
                    return Err((
                        field,
                        format!("unknown capability {name:?} (expected a canonical CAP_* name)"),
                    ));
                }
            }
        }
    }
    for (i, rlimit) in items(process.get("rlimits")) {
        let field = format!("{prefix}.rlimits[{i}].type");
        match rlimit.get("type").and_then(Value::as_str) {
            Some(name) if rlimits::canonical(name).is_some() => {}
            Some(name) => return Err((field, format!("unknown rlimit {name:?}"))),
            None => return Err((field, "missing or not a string".into())),
        }
    }
    Ok(())
}

fn seccomp(seccomp: &Value) -> Check {
    enum_value::<LinuxSeccompAction>(
        "linux.seccomp.defaultAction",
        seccomp.get("defaultAction"),
        "seccomp action",
    )?;
    for (i, arch) in items(seccomp.get("architectures")) {
        enum_value::<Arch>(
            &format!("linux.seccomp.architectures[{i}]"),
            Some(arch),
            "seccomp architecture",
        )?;
    }
    for (i, flag) in items(seccomp.get("flags")) {
        enum_value::<LinuxSeccompFilterFlag>(
            &format!("linux.seccomp.flags[{i}]"),
            Some(flag),
            "seccomp flag",
        )?;
    }
    for (i, rule) in items(seccomp.get("syscalls")) {
        enum_value::<LinuxSeccompAction>(
            &format!("linux.seccomp.syscalls[{i}].action"),
            rule.get("action"),
            "seccomp action",
        )?;
        for (k, arg) in items(rule.get("args")) {
            enum_value::<LinuxSeccompOperator>(
                &format!("linux.seccomp.syscalls[{i}].args[{k}].op"),
                arg.get("op"),
                "seccomp operator",
            )?;
        }
    }
    Ok(())
}

/// The elements of an optional JSON array (anything else yields nothing:
/// the typed parse reports wrong types with line and column).
fn items(v: Option<&Value>) -> impl Iterator<Item = (usize, &Value)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// Checks that a present string value is a valid `T`; absent values are
/// left to the typed parse (which knows the defaults).
fn enum_value<T: DeserializeOwned>(field: &str, v: Option<&Value>, what: &str) -> Check {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => match serde_json::from_value::<T>(Value::String(s.clone())) {
            Ok(_) => Ok(()),
            Err(_) => Err((field.to_string(), format!("unknown {what} {s:?}"))),
        },
        Some(_) => Err((field.to_string(), "must be a string".into())),
    }
}
