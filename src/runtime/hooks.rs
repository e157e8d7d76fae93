//! Running a container's OCI hooks ([`crate::plan::HookPlan`]) with the
//! host's `lxcri-init hooks`: the create phases while the init waits
//! between its mounts and the rest of its setup (with the host's tree
//! laid under the container's, `lxcri-init host-view`), `poststart` once the
//! process runs, `poststop` after delete. `startContainer` hooks are the
//! init's own (see `lxcri_init_spec::StartHooks`).

use std::path::Path;
use std::time::Duration;

use lxcri_init_spec::{
    hooks_time, ContainerView, Hook, HookRun, HookState, HostView, HostViewStep,
};

use super::error::{Result, RuntimeError};
use super::init_helper::run_init_helper;
use crate::cgroup::ContainerCgroup;
use crate::plan::HookPlan;

/// What a hook's own timeout does not cover: the helper's start, the
/// namespaces it joins; also the host view's whole time.
const HELPER_SLACK: Duration = Duration::from_secs(10);

/// The container whose create hooks run.
pub struct HookTarget<'a> {
    /// Where the helper's spec files go (the state directory, not the part
    /// the container sees).
    pub dir: &'a Path,
    pub init_binary: &'a Path,
    pub init_pid: i32,
    pub init_start_time: Option<u64>,
    /// The spec's `root.path` on the host.
    pub root_path: &'a Path,
    pub cgroup: Option<&'a ContainerCgroup>,
}

/// `prestart` and `createRuntime` on the host, then `createContainer` in
/// the container's namespaces, as runc runs them between its mounts and
/// its masked paths: with the host's tree as the root of the container's
/// mount namespace and the container's own at `root.path` (see
/// `lxcri_init_spec::HostView`), as runc's is before its `pivot_root`.
pub fn run_create_hooks(plan: &HookPlan, t: &HookTarget<'_>) -> Result<()> {
    let host = plan.create_host();
    if host.is_empty() && plan.create_container.is_empty() {
        return Ok(());
    }
    // Real, no symlink on the way (checked at create, as runc does): in
    // the host view it is looked up below the copy of the host's root.
    let root_path = t.root_path.to_str().ok_or_else(|| RuntimeError::Hook {
        detail: format!("root.path {} is not UTF-8", t.root_path.display()),
    })?;
    let namespaces = super::control::namespaces_to_join(t.init_pid);
    let root_shared = root_is_shared(t.init_pid)?;
    let host_view = |step| HostView {
        step,
        init_pid: t.init_pid,
        init_start_time: t.init_start_time,
        root_path: root_path.to_string(),
        user_ns: namespaces.iter().any(|n| n == "user"),
        root_shared,
    };
    host_view_step(t, &host_view(HostViewStep::Lay))?;
    let ran = (|| {
        if !host.is_empty() {
            let state = plan.state("creating", Some(t.init_pid));
            run_phase(t.init_binary, t.dir, "create-runtime", host, state, None)?;
        }
        if !plan.create_container.is_empty() {
            run_create_container(plan, t, root_path, &namespaces)?;
        }
        Ok(())
    })();
    // Lifted also when a hook failed: the init wakes up to the closed
    // socket and must not do so in the host's tree (it would refuse to go
    // on in it, but its error path would run there).
    let lifted = host_view_step(t, &host_view(HostViewStep::Lift));
    ran.and(lifted)
}

fn run_create_container(
    plan: &HookPlan,
    t: &HookTarget<'_>,
    root_path: &str,
    namespaces: &[String],
) -> Result<()> {
    let Some(cgroup) = t.cgroup else {
        return Err(RuntimeError::Hook {
            detail: "createContainer hooks run in the container's cgroup, which was not found"
                .into(),
        });
    };
    let view = ContainerView {
        init_pid: t.init_pid,
        init_start_time: t.init_start_time,
        root_path: root_path.to_string(),
        namespaces: namespaces.iter().filter(|n| *n != "mnt").cloned().collect(),
        cgroup_procs: cgroup
            .procs_files()
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
    };
    // runc's init reports its own pid: the one in the container's pid
    // namespace.
    let pid = pid_in_own_namespace(t.init_pid).unwrap_or(t.init_pid);
    let state = plan.state("creating", Some(pid));
    run_phase(
        t.init_binary,
        t.dir,
        "create-container",
        plan.create_container.clone(),
        state,
        Some(view),
    )
}

/// One step of `lxcri-init host-view`.
fn host_view_step(t: &HookTarget<'_>, view: &HostView) -> Result<()> {
    let name = match view.step {
        HostViewStep::Lay => "lay",
        HostViewStep::Lift => "lift",
    };
    run_init_helper(
        t.init_binary,
        "host-view",
        &t.dir.join(format!("host-view-{name}.json")),
        view,
        HELPER_SLACK,
    )?
    .map_err(|detail| RuntimeError::Hook {
        detail: format!("the hooks' view of the host ({name}): {detail}"),
    })
}

/// `poststart`, on the host once the process runs.
pub fn run_poststart(plan: &HookPlan, init_binary: &Path, dir: &Path, pid: i32) -> Result<()> {
    if plan.poststart.is_empty() {
        return Ok(());
    }
    let state = plan.state("running", Some(pid));
    run_phase(
        init_binary,
        dir,
        "poststart",
        plan.poststart.clone(),
        state,
        None,
    )
}

/// `poststop`, on the host once the container is gone.
pub fn run_poststop(plan: &HookPlan, init_binary: &Path, dir: &Path) -> Result<()> {
    if plan.poststop.is_empty() {
        return Ok(());
    }
    let state = plan.state("stopped", None);
    run_phase(
        init_binary,
        dir,
        "poststop",
        plan.poststop.clone(),
        state,
        None,
    )
}

fn run_phase(
    init_binary: &Path,
    dir: &Path,
    name: &str,
    hooks: Vec<Hook>,
    state: Option<HookState>,
    container: Option<ContainerView>,
) -> Result<()> {
    let state = state.ok_or_else(|| RuntimeError::Hook {
        detail: "hooks without a state (a bug)".into(),
    })?;
    let mut hooks = hooks;
    if container.is_none() {
        // Those without `env` get the runtime's, as runc's (not the
        // helper's, which has `LC_ALL=C` set for it).
        let ours: Vec<String> = std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect();
        for h in &mut hooks {
            h.env.get_or_insert_with(|| ours.clone());
        }
    }
    let timeout = hooks_time(&hooks).saturating_add(HELPER_SLACK);
    let run = HookRun {
        hooks,
        state,
        container,
    };
    run_init_helper(
        init_binary,
        "hooks",
        &dir.join(format!("hooks-{name}.json")),
        &run,
        timeout,
    )?
    .map_err(|detail| RuntimeError::Hook { detail })
}

/// Whether the root mount `pid` sees is shared (a `shared:N` tag on the
/// last `/` line of its mountinfo, the mount on top).
fn root_is_shared(pid: i32) -> Result<bool> {
    let path = format!("/proc/{pid}/mountinfo");
    let text = std::fs::read_to_string(&path).map_err(|e| RuntimeError::Hook {
        detail: format!("read {path}: {e}"),
    })?;
    Ok(mountinfo_root_shared(&text))
}

fn mountinfo_root_shared(mountinfo: &str) -> bool {
    mountinfo
        .lines()
        .rev()
        .find_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            // 5th: the mount point; then options, tags until "-".
            (fields.get(4) == Some(&"/")).then(|| {
                fields[6..]
                    .iter()
                    .take_while(|f| **f != "-")
                    .any(|f| f.starts_with("shared:"))
            })
        })
        .unwrap_or(false)
}

/// The last `NSpid` entry of `pid`: its pid in its own pid namespace.
fn pid_in_own_namespace(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_shared_when_its_top_mount_is() {
        let slave = "2093 2092 0:52 / / rw,relatime master:1 - overlay overlay rw\n\
                     2094 2093 0:53 / /proc rw shared:7 - proc proc rw\n";
        assert!(!mountinfo_root_shared(slave));
        let shared = "2093 2092 0:52 / / rw,relatime shared:3 master:1 - overlay overlay rw\n";
        assert!(mountinfo_root_shared(shared));
        let stacked = format!("{shared}2099 2093 0:60 / / rw - tmpfs t rw\n");
        assert!(!mountinfo_root_shared(&stacked), "the top one counts");
        assert!(!mountinfo_root_shared(""));
    }

    #[test]
    fn our_own_pid_in_our_namespace_is_ours() {
        let me = std::process::id() as i32;
        assert_eq!(pid_in_own_namespace(me), Some(me));
        assert_eq!(pid_in_own_namespace(-1), None);
    }
}
