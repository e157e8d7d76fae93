//! The spec's OCI hooks, checked, with the state they read.
//!
//! Where each phase runs (as runc 1.1-1.3; see docs/architecture.md):
//! `prestart` and `createRuntime` on the host once the container's mounts
//! are made, `createContainer` in the container's namespaces (its mount
//! namespace holding the host's tree with the container's own at
//! `root.path`), `startContainer` in the container right before the
//! process's `execve`, `poststart` on the host once it runs (the runtime
//! spec's order; runc before 1.4 ran them at create), `poststop` on the
//! host after delete.

use std::collections::BTreeMap;
use std::path::Path;

use lxcri_init_spec::{Hook, HookState, StartHooks};
use oci_spec::runtime::{Hook as SpecHook, Spec};

use super::{invalid, Result};

/// A hook's `timeout` above this (a day) is taken as this.
pub const MAX_TIMEOUT_SECS: u64 = 24 * 60 * 60;

/// Every phase's hooks, in the spec's order, and the state they read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HookPlan {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
    /// `status` and `pid` are set where a phase runs.
    pub state: Option<HookState>,
}

impl HookPlan {
    /// Hooks to run on the host while the container is created, in runc's
    /// order (`prestart` first).
    pub fn create_host(&self) -> Vec<Hook> {
        self.prestart
            .iter()
            .chain(&self.create_runtime)
            .cloned()
            .collect()
    }

    /// The state with `status` and `pid`.
    pub fn state(&self, status: &str, pid: Option<i32>) -> Option<HookState> {
        self.state.clone().map(|s| HookState {
            status: status.into(),
            pid,
            ..s
        })
    }

    /// The longest the `startContainer` hooks may take: a start waits that
    /// much longer for the process's `execve`.
    pub fn start_container_time(&self) -> std::time::Duration {
        lxcri_init_spec::hooks_time(&self.start_container)
    }

    /// What the init runs before `execve`.
    pub fn start_hooks(&self) -> Option<StartHooks> {
        if self.start_container.is_empty() {
            return None;
        }
        Some(StartHooks {
            hooks: self.start_container.clone(),
            state: self.state("created", None)?,
        })
    }
}

/// Checks the spec's hooks. `id` and `bundle` go into their state.
pub fn plan_hooks(spec: &Spec, id: &str, bundle: &Path) -> Result<HookPlan> {
    let Some(h) = spec.hooks() else {
        return Ok(HookPlan::default());
    };
    let phase = |name: &str, list: &Option<Vec<SpecHook>>| -> Result<Vec<Hook>> {
        list.as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, hook)| check_hook(&format!("hooks.{name}[{i}]"), hook))
            .collect()
    };
    // runc's init has set the process's environment when it runs them.
    let process_env = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default();
    let mut create_container = phase("createContainer", h.create_container())?;
    for hook in &mut create_container {
        hook.env.get_or_insert_with(|| process_env.clone());
    }
    let plan = HookPlan {
        prestart: phase("prestart", h.prestart())?,
        create_runtime: phase("createRuntime", h.create_runtime())?,
        create_container,
        start_container: phase("startContainer", h.start_container())?,
        poststart: phase("poststart", h.poststart())?,
        poststop: phase("poststop", h.poststop())?,
        state: None,
    };
    let any = [
        &plan.prestart,
        &plan.create_runtime,
        &plan.create_container,
        &plan.start_container,
        &plan.poststart,
        &plan.poststop,
    ]
    .iter()
    .any(|l| !l.is_empty());
    if !any {
        return Ok(plan);
    }
    let bundle = bundle
        .to_str()
        .ok_or_else(|| invalid("bundle", "the bundle path is not UTF-8"))?;
    Ok(HookPlan {
        state: Some(HookState {
            oci_version: oci_spec::runtime::VERSION.to_string(),
            id: id.to_string(),
            status: "creating".into(),
            pid: None,
            bundle: bundle.to_string(),
            annotations: spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
        }),
        ..plan
    })
}

fn check_hook(field: &str, hook: &SpecHook) -> Result<Hook> {
    let path = hook.path().to_str().unwrap_or_default();
    if !path.starts_with('/') || path.contains('\0') {
        return Err(invalid(
            &format!("{field}.path"),
            &format!("{:?} must be an absolute path", hook.path()),
        ));
    }
    let args = hook.args().clone().unwrap_or_default();
    if let Some(i) = args.iter().position(|a| a.contains('\0')) {
        return Err(invalid(
            &format!("{field}.args[{i}]"),
            "contains a NUL byte",
        ));
    }
    let env = hook.env().clone();
    if let Some(env) = &env {
        if let Some(i) = env.iter().position(|e| {
            e.contains('\0') || !e.split_once('=').is_some_and(|(k, _)| !k.is_empty())
        }) {
            return Err(invalid(
                &format!("{field}.env[{i}]"),
                &format!("{:?} must be KEY=value", env[i]),
            ));
        }
    }
    let timeout_secs = match hook.timeout() {
        None => None,
        // A longer one is as good as none, and its deadline would not fit
        // a clock.
        Some(t) if t > 0 => Some((t as u64).min(MAX_TIMEOUT_SECS)),
        Some(t) => {
            return Err(invalid(
                &format!("{field}.timeout"),
                &format!("{t} must be greater than zero"),
            ))
        }
    };
    Ok(Hook {
        field: field.to_string(),
        path: path.to_string(),
        args,
        env,
        timeout_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(hooks: serde_json::Value) -> Spec {
        serde_json::from_value(json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
            "annotations": {"k": "v"},
            "hooks": hooks,
        }))
        .unwrap()
    }

    fn field_of(err: super::super::PlanError) -> String {
        match err {
            super::super::PlanError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn phases_keep_their_order_and_the_state_names_the_container() {
        let s = spec(json!({
            "prestart": [{"path": "/p0"}],
            "createRuntime": [{"path": "/r0", "args": ["r", "-x"], "env": ["A=1"], "timeout": 3}],
            "createContainer": [{"path": "/c0"}, {"path": "/c1"}],
            "startContainer": [{"path": "/s0"}],
            "poststart": [{"path": "/ps0"}],
            "poststop": [{"path": "/pt0"}],
        }));
        let plan = plan_hooks(&s, "c1", Path::new("/run/b")).unwrap();
        let names = |l: &[Hook]| l.iter().map(|h| h.field.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&plan.create_host()),
            ["hooks.prestart[0]", "hooks.createRuntime[0]"]
        );
        assert_eq!(
            names(&plan.create_container),
            ["hooks.createContainer[0]", "hooks.createContainer[1]"]
        );
        assert_eq!(
            plan.create_container[0].env,
            Some(vec!["PATH=/bin".to_string()]),
            "the process's, as runc's init has it"
        );
        assert_eq!(plan.prestart[0].env, None, "the runtime's");
        let r = &plan.create_runtime[0];
        assert_eq!(
            (r.args.clone(), r.env.clone(), r.timeout_secs),
            (
                vec!["r".to_string(), "-x".into()],
                Some(vec!["A=1".to_string()]),
                Some(3)
            )
        );
        let state = plan.state("running", Some(9)).unwrap();
        assert_eq!(
            serde_json::to_value(&state).unwrap(),
            json!({"ociVersion": oci_spec::runtime::VERSION, "id": "c1", "status": "running",
                   "pid": 9, "bundle": "/run/b", "annotations": {"k": "v"}})
        );
        let start = plan.start_hooks().unwrap();
        assert_eq!(
            (start.state.status.as_str(), start.hooks[0].path.as_str()),
            ("created", "/s0")
        );
    }

    #[test]
    fn a_timeout_past_a_day_is_a_day() {
        let s = spec(json!({
            "poststop": [{"path": "/x", "timeout": i64::MAX}],
            "startContainer": [{"path": "/x", "timeout": 5}, {"path": "/y"}],
        }));
        let plan = plan_hooks(&s, "c1", Path::new("/b")).unwrap();
        assert_eq!(plan.poststop[0].timeout_secs, Some(MAX_TIMEOUT_SECS));
        assert_eq!(
            plan.start_container_time(),
            std::time::Duration::from_secs(5 + lxcri_init_spec::DEFAULT_HOOK_TIMEOUT_SECS)
        );
    }

    #[test]
    fn no_hooks_no_state() {
        let plan = plan_hooks(&spec(json!({})), "c1", Path::new("/b")).unwrap();
        assert_eq!(plan, HookPlan::default());
        assert!(plan.start_hooks().is_none());
    }

    #[test]
    fn bad_hooks_are_named() {
        let cases = [
            (
                json!({"prestart": [{"path": "relative"}]}),
                "hooks.prestart[0].path",
            ),
            (
                json!({"poststop": [{"path": "/ok"}, {"path": "/x", "timeout": 0}]}),
                "hooks.poststop[1].timeout",
            ),
            (
                json!({"createContainer": [{"path": "/x", "env": ["NOEQUALS"]}]}),
                "hooks.createContainer[0].env[0]",
            ),
            (
                json!({"startContainer": [{"path": "/x", "env": ["=v"]}]}),
                "hooks.startContainer[0].env[0]",
            ),
            (
                json!({"poststart": [{"path": "/x", "args": ["a", "b\u{0}"]}]}),
                "hooks.poststart[0].args[1]",
            ),
        ];
        for (hooks, field) in cases {
            let err = plan_hooks(&spec(hooks.clone()), "c1", Path::new("/b")).unwrap_err();
            assert_eq!(field_of(err), field, "{hooks}");
        }
    }
}
