//! OCI `process` -> the init's [`ProcessSpec`], for the container's own
//! process and for exec processes alike.

use lxcri_init_spec::{CapabilitySets, ConsoleSize, ProcessSpec, Rlimit};
use oci_spec::runtime::{LinuxCapabilities, Process, Spec};

use super::{invalid, scheduling, unsupported, PlanError, Result};
use crate::security::lsm::{HostLsm, LsmError};
use crate::security::{capabilities, compile_seccomp, rlimits};

/// Translates `process` (the spec's, or an exec request's) with the
/// container-wide settings from `spec` (seccomp), checking its AppArmor
/// profile and SELinux label against what `lsm` can apply. What an exec
/// leaves out of capabilities, rlimits, SELinux label, scheduler, I/O
/// priority and CPU affinity is the container's process's, as runc's
/// `newInitConfig` takes them from the container's config.
pub fn plan_process(process: &Process, spec: &Spec, lsm: &HostLsm) -> Result<ProcessSpec> {
    unsupported_fields(process)?;
    let base = spec.process().as_ref().unwrap_or(process);
    let or_base = |stated: bool| if stated { process } else { base };
    let caps_from = or_base(process.capabilities().is_some());
    let rlimits_from = or_base(process.rlimits().as_ref().is_some_and(|r| !r.is_empty()));
    let label_from = or_base(
        process
            .selinux_label()
            .as_deref()
            .is_some_and(|l| !l.is_empty()),
    );
    let scheduler_from = or_base(process.scheduler().is_some());
    let io_priority_from = or_base(process.io_priority().is_some());
    let affinity_from = or_base(process.exec_cpu_affinity().is_some());
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        // runc's words (validateProcessSpec).
        return Err(invalid("process.args", "args must not be empty"));
    }
    for (i, a) in args.iter().enumerate() {
        if a.contains('\0') {
            return Err(invalid(
                &format!("process.args[{i}]"),
                "contains a NUL byte",
            ));
        }
    }
    let env = process.env().clone().unwrap_or_default();
    for (i, e) in env.iter().enumerate() {
        if e.contains('\0') || !matches!(e.split_once('='), Some((k, _)) if !k.is_empty()) {
            return Err(invalid(
                &format!("process.env[{i}]"),
                &format!("{e:?} is not KEY=VALUE"),
            ));
        }
    }
    let cwd = process
        .cwd()
        .to_str()
        .filter(|c| c.starts_with('/') && !c.contains('\0'))
        .ok_or_else(|| invalid("process.cwd", "must be an absolute path"))?
        .to_string();

    let user = process.user();
    let console_size = match process.console_size() {
        Some(b) => {
            let dim = |v: u64, name: &str| {
                u16::try_from(v).map_err(|_| {
                    invalid(
                        &format!("process.consoleSize.{name}"),
                        "does not fit in 16 bits",
                    )
                })
            };
            Some(ConsoleSize {
                rows: dim(b.height(), "height")?,
                cols: dim(b.width(), "width")?,
            })
        }
        None => None,
    };
    if let Some(umask) = user.umask() {
        if umask > 0o777 {
            return Err(invalid(
                "process.user.umask",
                &format!("{umask:#o} is above 0777"),
            ));
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(invalid(
                "process.oomScoreAdj",
                &format!("{adj} is outside -1000..=1000"),
            ));
        }
    }
    let apparmor_profile = apparmor_profile(process, lsm)?;
    let selinux_label = selinux_label(label_from, lsm)?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(compile_seccomp(s)?),
        None => None,
    };

    Ok(ProcessSpec {
        args,
        env,
        cwd,
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        terminal: process.terminal().unwrap_or(false),
        console_size,
        capabilities: capability_sets(caps_from.capabilities().as_ref())?,
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        rlimits: plan_rlimits(rlimits_from)?,
        seccomp,
        apparmor_profile,
        selinux_label,
        oom_score_adj: process.oom_score_adj(),
        scheduler: scheduling::sched_attr(scheduler_from)?,
        io_priority: scheduling::io_priority(io_priority_from)?,
        personality: scheduling::personality(spec)?,
        memory_policy: super::memory_policy::memory_policy(spec)?,
        exec_cpu_affinity: scheduling::exec_cpu_affinity(affinity_from)?,
        // Named after the container, which the caller knows.
        session_keyring: None,
    })
}

/// As runc: empty means the process keeps the container's profile (lxcri
/// runs containers `unconfined` unless the node chose otherwise); a name
/// must be loaded on this host.
fn apparmor_profile(process: &Process, lsm: &HostLsm) -> Result<Option<String>> {
    const FIELD: &str = "process.apparmorProfile";
    let profile = match process.apparmor_profile().as_deref() {
        None | Some("") => return Ok(None),
        Some(p) => p,
    };
    if !profile.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(FIELD, "must be printable ASCII without spaces"));
    }
    lsm.check_apparmor_profile(profile)
        .map_err(|e| lsm_error(FIELD, e))?;
    Ok(Some(profile.to_string()))
}

/// As runc: the init writes the label to `/proc/self/attr/exec` right
/// before exec, so lxcri's own setup runs in the runtime's domain.
fn selinux_label(process: &Process, lsm: &HostLsm) -> Result<Option<String>> {
    const FIELD: &str = "process.selinuxLabel";
    let label = match process.selinux_label().as_deref() {
        None | Some("") => return Ok(None),
        Some(l) => l,
    };
    check_selinux_label(FIELD, label)?;
    lsm.check_selinux().map_err(|e| lsm_error(FIELD, e))?;
    Ok(Some(label.to_string()))
}

/// `user:role:type[:level]`, printable ASCII without spaces or quotes.
pub(super) fn check_selinux_label(field: &str, label: &str) -> Result<()> {
    let printable = label
        .chars()
        .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if !printable || label.splitn(4, ':').count() < 3 || label.split(':').any(str::is_empty) {
        return Err(invalid(
            field,
            &format!("{label:?} is not an SELinux context like system_u:system_r:container_t:s0"),
        ));
    }
    Ok(())
}

/// A check of the host's security modules as an error naming the field.
/// The node, not lxcri, lacks what was asked for.
pub(super) fn lsm_error(field: &str, e: LsmError) -> PlanError {
    invalid(field, &e.to_string())
}

fn unsupported_fields(process: &Process) -> Result<()> {
    if process.command_line().is_some() {
        return Err(unsupported("process.commandLine", "Windows only"));
    }
    if process.user().username().is_some() {
        return Err(unsupported("process.user.username", "Windows only"));
    }
    Ok(())
}

fn capability_sets(caps: Option<&LinuxCapabilities>) -> Result<CapabilitySets> {
    let Some(caps) = caps else {
        // No capabilities object: the process gets none at all.
        return Ok(CapabilitySets::default());
    };
    let set =
        |name: &str, s| capabilities::canonical_set(&format!("process.capabilities.{name}"), s);
    Ok(CapabilitySets {
        bounding: set("bounding", caps.bounding().as_ref())?,
        effective: set("effective", caps.effective().as_ref())?,
        inheritable: set("inheritable", caps.inheritable().as_ref())?,
        permitted: set("permitted", caps.permitted().as_ref())?,
        ambient: set("ambient", caps.ambient().as_ref())?,
    })
}

/// Rlimits in spec order with canonical names; each type at most once.
pub(super) fn plan_rlimits(process: &Process) -> Result<Vec<Rlimit>> {
    let mut out: Vec<Rlimit> = Vec::new();
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        let field = format!("process.rlimits[{i}]");
        let resource = rlimits::oci_name(&format!("{field}.type"), r.typ())?;
        if out.iter().any(|o| o.resource == resource) {
            return Err(invalid(
                &format!("{field}.type"),
                &format!("{resource} listed twice"),
            ));
        }
        if r.soft() > r.hard() {
            return Err(invalid(
                &format!("{field}.soft"),
                &format!("{} is above the hard limit {}", r.soft(), r.hard()),
            ));
        }
        out.push(Rlimit {
            resource: resource.to_string(),
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    Ok(out)
}
