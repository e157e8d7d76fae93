//! A test containerd with its CRI plugin on: the plugin's config, the pod
//! network and cgroup parent of the test, the client, and removing pods
//! through CRI before the containerd goes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::{CriClient, PodNetwork};
use crate::containerd::Containerd;
use crate::image;

/// The containerd namespace of everything CRI makes (fixed in containerd).
pub const CRI_NAMESPACE: &str = "k8s.io";

/// The CRI plugin's part of a test containerd's config: runtime handlers
/// `runc`, `lxcri` (with a ConfigPath option naming the test's file, as
/// the 1.x snippet has one) and `lxcri-plain` (without options, as the 2.x
/// snippet, reading the same file through `LXCRI_CONFIG` in containerd's
/// environment: containerd 2.x starts a user-namespaced pod's containers
/// only on a handler whose options, if any, are runc's), the test's CNI
/// network, the streaming server on loopback.
pub(crate) fn cri_config(network: &PodNetwork, lxcri_config: &Path) -> String {
    let conf_dir = network.conf_dir.display();
    let lxcri_config = lxcri_config.display();
    let pause = image::PAUSE_REF;
    format!(
        r#"[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # root here lacks CAP_SYS_RESOURCE: clamp CRI's -998 for sandboxes
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lxcri]
      runtime_type = "io.containerd.lxcri.v2"
      # Pod annotations lxcri reads (its NICs) reach the spec.
      pod_annotations = ["io.lxcri.*"]
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lxcri.options]
        ConfigPath = "{lxcri_config}"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{PLAIN_HANDLER}]
      runtime_type = "io.containerd.lxcri.v2"
      pod_annotations = ["io.lxcri.*"]
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{conf_dir}"
    max_conf_num = 1
"#
    )
}

/// The lxcri handler without runtime options.
pub const PLAIN_HANDLER: &str = "lxcri-plain";

/// What a containerd with its CRI plugin has besides: the pod network, the
/// pods' cgroup parent, the client.
pub(crate) struct CriNode {
    pub(crate) network: PodNetwork,
    pub(crate) cgroup_parent: String,
    pub(crate) client: OnceLock<CriClient>,
    /// The pods' network namespaces, removed at the end if still there
    /// (a containerd that died takes no RemovePodSandbox).
    pub(crate) netns: Mutex<Vec<PathBuf>>,
}

impl CriNode {
    /// The pod network (a bridge and subnet of its own under `dir`) and
    /// `/name` as the pods' cgroup parent (absolute, as the kubelet's).
    pub(crate) fn new(dir: &Path, name: String) -> Self {
        Self {
            network: PodNetwork::create(dir, &name),
            cgroup_parent: format!("/{name}"),
            client: OnceLock::new(),
            netns: Mutex::new(Vec::new()),
        }
    }
}

impl Containerd {
    fn cri_node(&self) -> &CriNode {
        self.cri
            .as_ref()
            .expect("a containerd started with Containerd::start_cri")
    }

    /// The CRI client (connected on first use).
    pub fn cri(&self) -> &CriClient {
        let node = self.cri_node();
        node.client.get_or_init(|| {
            CriClient::connect(&self.socket())
                .unwrap_or_else(|e| panic!("CRI connect: {e}\n{}", self.log_tail(30)))
        })
    }

    /// The pod network of a CRI containerd.
    pub fn pod_network(&self) -> &PodNetwork {
        &self.cri_node().network
    }

    /// The cgroup parent to give this test's pods (unique to the test).
    pub fn pod_cgroup_parent(&self) -> &str {
        &self.cri_node().cgroup_parent
    }

    /// Every container id this containerd had, as far as can be told:
    /// tracked ones, bundles, 64-hex ids its log (with the shims' logs)
    /// names, and, while it runs, what it lists. CRI picks the ids, and a
    /// failed RunPodSandbox reports none.
    pub fn known_ids(&self, running: bool) -> Vec<String> {
        let mut ids = self.ids();
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        ids.extend(
            log.split(|c: char| !c.is_ascii_hexdigit())
                .filter(|w| w.len() == 64)
                .map(str::to_owned),
        );
        let tasks = self
            .state()
            .join("io.containerd.runtime.v2.task")
            .join(&self.namespace);
        ids.extend(
            fs::read_dir(tasks)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned)),
        );
        if running {
            let listed = self.ctr_timeout(&["containers", "ls", "-q"], Duration::from_secs(20));
            ids.extend(listed.stdout.split_whitespace().map(str::to_owned));
        }
        ids.sort();
        ids.dedup();
        ids
    }

    /// Records a container id made through CRI, so cleanup covers it even
    /// when containerd is gone by then.
    pub fn track(&self, id: &str) {
        let mut ids = self.ids.lock().unwrap();
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }

    /// Stops and removes every pod through CRI (which tears its network
    /// down), removing a network namespace CRI left behind.
    pub(crate) fn remove_pods(&self) {
        let Some(client) = self.cri.as_ref().and_then(|n| n.client.get()) else {
            return;
        };
        let Ok(pods) = client.list_pod_sandbox() else {
            return;
        };
        for pod in pods {
            self.track(&pod.id);
            let netns = client
                .pod_sandbox_status(&pod.id)
                .ok()
                .and_then(|st| crate::cri::netns_path(&st));
            if let Err(e) = client.stop_pod_sandbox(&pod.id) {
                eprintln!("cleanup: StopPodSandbox {}: {e}", pod.id);
            }
            if let Err(e) = client.remove_pod_sandbox(&pod.id) {
                eprintln!("cleanup: RemovePodSandbox {}: {e}", pod.id);
            }
            if let Some(ns) = netns {
                remove_netns(&ns);
            }
        }
    }

    /// Records a pod's network namespace, so cleanup covers it even when
    /// containerd is gone by then.
    pub fn track_netns(&self, path: PathBuf) {
        if let Some(node) = &self.cri {
            node.netns.lock().unwrap().push(path);
        }
    }

    /// Removes the tracked network namespaces CRI left.
    pub(crate) fn remove_tracked_netns(&self) {
        if let Some(node) = &self.cri {
            for ns in node.netns.lock().unwrap().drain(..) {
                remove_netns(&ns);
            }
        }
    }
}

/// Unmounts and removes a pod's network namespace file, if it is there.
fn remove_netns(ns: &Path) {
    if ns.exists() {
        eprintln!("cleanup: removing leftover netns {}", ns.display());
        let _ = nix::mount::umount2(ns, nix::mount::MntFlags::MNT_DETACH);
        let _ = fs::remove_file(ns);
    }
}
