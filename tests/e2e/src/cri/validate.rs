//! The pieces shared by the tests that mirror cri-tools' validation suite
//! (`pkg/validate`) through CRI: a pod as its framework makes one, the
//! container security settings its scenarios vary, start-and-wait, ExecSync
//! and pod removal that fail the test with containerd's log.

use std::time::Duration;

use super::api::{self, ContainerState, NamespaceMode};
use super::pod::{base_pod_config, stream_text, Pod};
use crate::containerd::Containerd;
use crate::{unique_name, Runtime};

/// How long a container gets to reach the state a test waits for.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(60);

/// cri-tools' `pauseCmd`.
pub const PAUSE: &[&str] = &["sh", "-c", "top"];

/// What an ExecSync gave: exit code, stdout, stderr.
pub type Exec = (i32, String, String);

/// A pod as cri-tools' framework makes one: no namespace options (every
/// namespace the pod's own, PID included) unless `security` has some.
pub fn run_pod<'a>(
    ctd: &'a Containerd,
    rt: Runtime,
    prefix: &str,
    security: api::LinuxSandboxSecurityContext,
    sysctls: &[(&str, &str)],
) -> Pod<'a> {
    let mut config = base_pod_config(ctd, &unique_name(prefix), false);
    let linux = config.linux.as_mut().expect("linux pod config");
    linux.security_context = Some(security);
    linux.sysctls = sysctls
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Pod::run(ctd, rt, config)
        .unwrap_or_else(|e| panic!("{rt}: RunPodSandbox {prefix}: {e}\n{}", ctd.log_tail(40)))
}

/// The namespace options of a pod's security context, the three modes
/// cri-tools varies (network, PID, IPC) in one call.
pub fn namespaces(
    network: NamespaceMode,
    pid: NamespaceMode,
    ipc: NamespaceMode,
) -> api::NamespaceOption {
    api::NamespaceOption {
        network: network as i32,
        pid: pid as i32,
        ipc: ipc as i32,
        ..Default::default()
    }
}

/// The container's security context (`Pod::container` always sets one).
pub fn security(c: &mut api::ContainerConfig) -> &mut api::LinuxContainerSecurityContext {
    c.linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .expect("security context")
}

/// A container's capabilities to add and drop, from their names.
pub fn capabilities(add: &[&str], drop: &[&str]) -> Option<api::Capability> {
    Some(api::Capability {
        add_capabilities: add.iter().map(|s| s.to_string()).collect(),
        drop_capabilities: drop.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

/// A security profile (seccomp) of `kind`; `path` is the file of a
/// localhost one ("" otherwise).
pub fn profile(
    kind: api::security_profile::ProfileType,
    path: &str,
) -> Option<api::SecurityProfile> {
    Some(api::SecurityProfile {
        profile_type: kind as i32,
        localhost_ref: path.to_string(),
    })
}

/// Starts `config` and waits until it runs; returns its id.
pub fn running(pod: &Pod, config: api::ContainerConfig) -> String {
    let id = pod.start(config);
    pod.wait_state(&id, ContainerState::ContainerRunning, STATE_TIMEOUT);
    id
}

/// Starts `config` and waits until it exits; returns its logged stdout and
/// stderr.
pub fn exited(pod: &Pod, config: api::ContainerConfig) -> (String, String) {
    let name = config.metadata.as_ref().expect("metadata").name.clone();
    let id = pod.start(config);
    pod.wait_state(&id, ContainerState::ContainerExited, STATE_TIMEOUT);
    let log = pod.log(&name);
    (stream_text(&log, "stdout"), stream_text(&log, "stderr"))
}

/// ExecSync of `cmd` in container `id` (30 s); a failed call, not a failed
/// command, fails the test.
pub fn exec(ctd: &Containerd, rt: Runtime, id: &str, cmd: &[&str]) -> Exec {
    let r = ctd
        .cri()
        .exec_sync(id, cmd, 30)
        .unwrap_or_else(|e| panic!("{rt}: ExecSync {cmd:?}: {e}\n{}", ctd.log_tail(40)));
    (
        r.exit_code,
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    )
}

/// Removes `pod` and its containers; a failure fails the test.
pub fn remove(ctd: &Containerd, rt: Runtime, pod: Pod) {
    pod.remove()
        .unwrap_or_else(|e| panic!("{rt}: removing the pod: {e}\n{}", ctd.log_tail(40)));
}

/// The line of `/proc/self/status` that starts with `field`.
pub fn status_line(status: &str, field: &str) -> String {
    status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or("")
        .to_string()
}
