//! A kubelet's view of a pod for the tests: run the sandbox, create and
//! start containers, wait for them, read their CRI logs.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::api;
use super::client::CriError;
use super::config::{container_config, pod_config};
use crate::cmd;
use crate::containerd::Containerd;
use crate::Runtime;

/// The CRI runtime handler of a runtime: the test config names its
/// runtimes tables after the runtimes' short names.
pub fn handler(rt: Runtime) -> &'static str {
    rt.short()
}

/// A running pod sandbox of a test.
pub struct Pod<'a> {
    pub ctd: &'a Containerd,
    pub id: String,
    pub config: api::PodSandboxConfig,
    pub log_dir: PathBuf,
}

/// One line of a CRI log file: `<time> <stream> <P|F> <content>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: String,
    /// `P`artial (the line continues in the next entry) or `F`ull.
    pub tag: String,
    pub content: String,
}

/// Parses a CRI log file's text.
pub fn parse_log(text: &str) -> Vec<LogLine> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(4, ' ');
            let _time = parts.next()?;
            Some(LogLine {
                stream: parts.next()?.to_string(),
                tag: parts.next()?.to_string(),
                content: parts.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// The text of one stream of a log, partial entries joined, one `\n`
/// after every full line.
pub fn stream_text(log: &[LogLine], stream: &str) -> String {
    let mut out = String::new();
    for l in log.iter().filter(|l| l.stream == stream) {
        out.push_str(&l.content);
        if l.tag == "F" {
            out.push('\n');
        }
    }
    out
}

/// The base pod config of the tests: pod `name` in Kubernetes namespace
/// `e2e`, the test's cgroup parent, logs under the test's dir.
pub fn base_pod_config(ctd: &Containerd, name: &str, host_network: bool) -> api::PodSandboxConfig {
    let log_dir = ctd.dir().join("pods").join(name);
    let uid = crate::unique_name("uid");
    pod_config(
        name,
        "e2e",
        &uid,
        ctd.pod_cgroup_parent(),
        &log_dir,
        host_network,
    )
}

impl<'a> Pod<'a> {
    /// RunPodSandbox with `config` on `rt`'s handler.
    pub fn run(
        ctd: &'a Containerd,
        rt: Runtime,
        config: api::PodSandboxConfig,
    ) -> Result<Self, CriError> {
        Self::run_on(ctd, handler(rt), config)
    }

    /// RunPodSandbox with `config` on runtime handler `handler`.
    pub fn run_on(
        ctd: &'a Containerd,
        handler: &str,
        config: api::PodSandboxConfig,
    ) -> Result<Self, CriError> {
        let log_dir = PathBuf::from(&config.log_directory);
        fs::create_dir_all(&log_dir).expect("pod log dir");
        let id = ctd.cri().run_pod_sandbox(config.clone(), handler)?;
        ctd.track(&id);
        let pod = Self {
            ctd,
            id,
            config,
            log_dir,
        };
        if let Some(ns) = pod.netns() {
            ctd.track_netns(ns);
        }
        Ok(pod)
    }

    /// A container config for this pod logging to `<name>.log`, with the
    /// pod's namespace options (the kubelet copies them into every
    /// container's security context).
    pub fn container(&self, name: &str, command: &[&str]) -> api::ContainerConfig {
        let mut c = container_config(
            name,
            crate::image::BUSYBOX_REF,
            command,
            &format!("{name}.log"),
        );
        let namespaces = self
            .config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone());
        c.linux = Some(api::LinuxContainerConfig {
            security_context: Some(api::LinuxContainerSecurityContext {
                namespace_options: namespaces,
                ..Default::default()
            }),
            ..Default::default()
        });
        c
    }

    /// CreateContainer.
    pub fn create(&self, config: api::ContainerConfig) -> Result<String, CriError> {
        let id = self
            .ctd
            .cri()
            .create_container(&self.id, config, self.config.clone())?;
        self.ctd.track(&id);
        Ok(id)
    }

    /// CreateContainer + StartContainer; panics on failure.
    pub fn start(&self, config: api::ContainerConfig) -> String {
        let name = config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let id = self
            .create(config)
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}\n{}", self.ctd.log_tail(40)));
        if let Err(e) = self.ctd.cri().start_container(&id) {
            panic!("StartContainer {name}: {e}\n{}", self.ctd.log_tail(40));
        }
        id
    }

    /// Waits (up to `timeout`) until container `id` has `state`; returns
    /// its status.
    #[track_caller]
    pub fn wait_state(
        &self,
        id: &str,
        state: api::ContainerState,
        timeout: Duration,
    ) -> api::ContainerStatus {
        let got = cmd::poll(timeout, || {
            self.ctd
                .cri()
                .container_status(id)
                .ok()
                .filter(|s| s.state == state as i32)
        });
        got.unwrap_or_else(|| {
            panic!(
                "container {id} never reached {state:?}: {:?}\n{}",
                self.ctd.cri().container_status(id),
                self.ctd.log_tail(40)
            )
        })
    }

    /// The CRI log of container `name`, parsed.
    pub fn log(&self, name: &str) -> Vec<LogLine> {
        parse_log(&fs::read_to_string(self.log_path(name)).unwrap_or_default())
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    /// Waits until container `name`'s log has `text` in `stream`.
    #[track_caller]
    pub fn wait_log(&self, name: &str, stream: &str, text: &str) -> Vec<LogLine> {
        let found = cmd::poll(Duration::from_secs(30), || {
            let log = self.log(name);
            stream_text(&log, stream).contains(text).then_some(log)
        });
        found.unwrap_or_else(|| {
            panic!(
                "log of {name} never had {text:?} on {stream}: {:?}\n{}",
                self.log(name),
                self.describe(name)
            )
        })
    }

    /// Container `name`'s CRI status and, on lxcri's lxc backend, the tail
    /// of its LXC log: for failure messages.
    pub fn describe(&self, name: &str) -> String {
        let cri = self.ctd.cri();
        let Some(c) = cri.list_containers().ok().and_then(|cs| {
            cs.into_iter().find(|c| {
                c.pod_sandbox_id == self.id && c.metadata.as_ref().is_some_and(|m| m.name == name)
            })
        }) else {
            return format!("no container {name} in the pod");
        };
        let status = cri.container_status(&c.id);
        let lxc_log = std::path::Path::new(crate::LXCRI_LXC_PATH)
            .join(format!("{}_{}", self.ctd.namespace(), c.id))
            .join("lxc.log");
        let log = fs::read_to_string(&lxc_log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        format!(
            "status: {status:?}\n{}:\n{}",
            lxc_log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// The pod's IP as CRI reports it ("" for hostNetwork pods).
    pub fn ip(&self) -> String {
        self.ctd
            .cri()
            .pod_sandbox_status(&self.id)
            .ok()
            .and_then(|s| s.status)
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default()
    }

    /// The pod's network namespace path (`None` with hostNetwork).
    pub fn netns(&self) -> Option<PathBuf> {
        let st = self.ctd.cri().pod_sandbox_status(&self.id).ok()?;
        super::netns_path(&st)
    }

    /// StopContainer (with `grace_secs`), RemoveContainer of every
    /// container of the pod, StopPodSandbox, RemovePodSandbox.
    pub fn remove(self) -> Result<(), CriError> {
        let cri = self.ctd.cri();
        for c in cri.list_containers()? {
            if c.pod_sandbox_id == self.id {
                cri.stop_container(&c.id, 0)?;
                cri.remove_container(&c.id)?;
            }
        }
        cri.stop_pod_sandbox(&self.id)?;
        cri.remove_pod_sandbox(&self.id)
    }
}

/// Processes of this containerd's shims (serving ones, not `start`), by
/// runtime.
pub fn shim_processes(ctd: &Containerd, rt: Runtime) -> Vec<i32> {
    let binary = rt.shim_binary();
    let socket = ctd.socket().display().to_string();
    crate::cleanup::processes()
        .into_iter()
        .filter(|(_, c)| c.contains(binary) && c.contains(&socket))
        .filter(|(_, c)| !c.ends_with(" start") && !c.ends_with(" delete"))
        .map(|(pid, _)| pid)
        .collect()
}

/// `curl` from the host to `url` (pod IPs are on the test's bridge).
pub fn host_fetch(url: &str) -> cmd::CmdOutput {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = cmd::run(
            std::process::Command::new("curl").args(["-sS", "--noproxy", "*", "-m", "5", url]),
            Duration::from_secs(10),
        );
        if out.success() || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A host directory for a pod volume under the test's dir.
pub fn volume_dir(ctd: &Containerd, name: &str) -> PathBuf {
    let dir = ctd.dir().join("volumes").join(name);
    fs::create_dir_all(&dir).expect("volume dir");
    dir
}

/// A bind mount as kubelet asks for one.
pub fn mount(host: &Path, container: &str, readonly: bool) -> api::Mount {
    api::Mount {
        container_path: container.to_string(),
        host_path: host.display().to_string(),
        readonly,
        ..Default::default()
    }
}
