//! OCI hooks: what the shim and the init hand `lxcri-init` to run them.
//!
//! The shim runs `lxcri-init hooks <spec.json>` with a [`HookRun`]: on the
//! host for `prestart`, `createRuntime`, `poststart` and `poststop`, and in
//! the container's namespaces and cgroup for `createContainer`. While the
//! create phases run, `lxcri-init host-view <spec.json>` ([`HostView`])
//! gives the container's mount namespace the root runc's has before its
//! `pivot_root`: the host's mount tree with the container's at
//! `root.path`, so a hook that enters it (`nsenter -m -t PID`) finds the
//! container under `root.path` and mounts it makes there stay in the
//! container (and reach the host only under an `rshared` volume, as on
//! runc). The init runs
//! `startContainer` hooks itself, inside the container, right before it
//! becomes the OCI process. Each hook gets the container's state on stdin;
//! the first that fails (or outlives its timeout) ends the run, and the
//! helper exits 1 with the cause on stderr.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A hook without a timeout of its own gets this many seconds: a hung
/// hook must not hang a create (or delete) for ever; runc would wait.
pub const DEFAULT_HOOK_TIMEOUT_SECS: u64 = 120;

/// One hook, as the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// What the runtime spec calls it, with its index:
    /// `hooks.createContainer[0]`, for errors.
    pub field: String,
    /// Absolute path of the program.
    pub path: String,
    /// `argv`, `argv[0]` included; empty runs it with `[path]`, as runc.
    #[serde(default)]
    pub args: Vec<String>,
    /// `KEY=value` entries; `None` inherits the runner's environment (the
    /// shim's on the host, the OCI process's in the container: runc's init
    /// has set the process's environment by then).
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// Seconds before the hook is killed and counts as failed.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

impl Hook {
    /// How long it may run before it is killed and counts as failed.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.unwrap_or(DEFAULT_HOOK_TIMEOUT_SECS))
    }
}

/// The time `hooks` may take one after the other.
pub fn hooks_time(hooks: &[Hook]) -> Duration {
    hooks
        .iter()
        .fold(Duration::ZERO, |sum, h| sum.saturating_add(h.timeout()))
}

/// The container's state as a hook reads it on stdin: the runtime spec's
/// state (runc's `specs.State`, field for field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    /// `creating`, `created`, `running` or `stopped`.
    pub status: String,
    /// The init's pid, as the runner of the hook sees it: runc's own
    /// pid in the container for `createContainer` and `startContainer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Where `createContainer` hooks run: in the container's namespaces
/// (its mount namespace with the [`HostView`] laid) and cgroup, with
/// `root_path` as the cwd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerView {
    /// Host pid of the container's init.
    pub init_pid: i32,
    /// Its start time (`/proc/<pid>/stat` field 22), checked so a reused
    /// pid is not taken for it.
    #[serde(default)]
    pub init_start_time: Option<u64>,
    /// The spec's `root.path` as the host sees it.
    pub root_path: String,
    /// Namespaces to join after the mount namespace and the cwd, in this
    /// order (`user` last when present; never `mnt`).
    pub namespaces: Vec<String>,
    /// `cgroup.procs` files (host paths) the runner moves itself into.
    pub cgroup_procs: Vec<String>,
}

/// The step of `lxcri-init host-view` (see [`HostView`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostViewStep {
    /// The container's mount namespace gets a copy of the host's mount
    /// tree as its root, with its own tree moved to `root_path` in it.
    Lay,
    /// Its own tree is its root again and the copy is gone.
    Lift,
}

/// `lxcri-init host-view <spec.json>`: lays or lifts the host's tree
/// under a created container's mount tree while its create hooks run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostView {
    pub step: HostViewStep,
    /// Host pid of the container's init, paused after its mounts.
    pub init_pid: i32,
    /// Its start time, checked as for [`ContainerView::init_start_time`].
    #[serde(default)]
    pub init_start_time: Option<u64>,
    /// The spec's `root.path` as the host sees it (absolute).
    pub root_path: String,
    /// Whether the container has a user namespace of its own (which owns
    /// its mount namespace): the copy is then taken in a mount namespace
    /// of that user namespace, where the kernel locks the host's mounts.
    pub user_ns: bool,
    /// Whether the container's root mount is shared (`rshared` rootfs
    /// propagation): `pivot_root` takes no shared mount, so it is a slave
    /// while the view is laid and shared again once it is lifted, in a new
    /// peer group whose old peers (LXC's) become its masters.
    #[serde(default)]
    pub root_shared: bool,
}

/// One phase's hooks and the state they read (`lxcri-init hooks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookRun {
    pub hooks: Vec<Hook>,
    pub state: HookState,
    /// `None`: on the host, as the shim runs.
    #[serde(default)]
    pub container: Option<ContainerView>,
}

/// `startContainer` hooks: run by the init, in the container, after the
/// start byte and before `execve`. `state.pid` is filled in by the init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartHooks {
    pub hooks: Vec<Hook>,
    pub state: HookState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_runcs_field_for_field() {
        let state = HookState {
            oci_version: "1.1.0".into(),
            id: "c1".into(),
            status: "creating".into(),
            pid: Some(42),
            bundle: "/b".into(),
            annotations: BTreeMap::from([("a".into(), "b".into())]),
        };
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            r#"{"ociVersion":"1.1.0","id":"c1","status":"creating","pid":42,"bundle":"/b","annotations":{"a":"b"}}"#
        );
        let stopped = HookState {
            pid: None,
            annotations: BTreeMap::new(),
            status: "stopped".into(),
            ..state
        };
        assert_eq!(
            serde_json::to_string(&stopped).unwrap(),
            r#"{"ociVersion":"1.1.0","id":"c1","status":"stopped","bundle":"/b"}"#
        );
    }
}
