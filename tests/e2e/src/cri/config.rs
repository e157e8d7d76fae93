//! CRI configs as the kubelet sends them, for the tests.

use std::path::Path;

use super::api;

pub(super) fn image_spec(image: &str) -> api::ImageSpec {
    api::ImageSpec {
        image: image.into(),
        ..Default::default()
    }
}

/// A pod sandbox config as kubelet would send it: metadata (attempt 0),
/// hostname `name`, `log_directory`, `cgroup_parent` (cgroupfs syntax
/// unless containerd runs with `SystemdCgroup`), network namespace NODE when
/// `host_network` else POD, PID namespace CONTAINER, IPC POD.
///
/// With `host_network` the hostname is left empty, as kubelet does: the pod
/// shares the host's UTS namespace and runc refuses to set a hostname
/// without a private one.
pub fn pod_config(
    name: &str,
    namespace: &str,
    uid: &str,
    cgroup_parent: &str,
    log_directory: &Path,
    host_network: bool,
) -> api::PodSandboxConfig {
    let network = if host_network {
        api::NamespaceMode::Node
    } else {
        api::NamespaceMode::Pod
    };
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: namespace.into(),
            attempt: 0,
        }),
        hostname: if host_network {
            String::new()
        } else {
            name.into()
        },
        log_directory: log_directory.to_string_lossy().into_owned(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.into(),
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    network: network as i32,
                    pid: api::NamespaceMode::Container as i32,
                    ipc: api::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container config: metadata `name` (attempt 0), `image` (a reference
/// containerd's CRI namespace knows), `command` (empty: the image's
/// entrypoint) and `log_path`, relative to the pod's log directory.
pub fn container_config(
    name: &str,
    image: &str,
    command: &[&str],
    log_path: &str,
) -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(image_spec(image)),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: log_path.into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_config_namespaces() {
        let pod = pod_config("p", "ns", "u1", "/kubepods", Path::new("/l"), false);
        let opts = pod
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref())
            .unwrap();
        assert_eq!(opts.network(), api::NamespaceMode::Pod);
        assert_eq!(opts.pid(), api::NamespaceMode::Container);
        assert_eq!(opts.ipc(), api::NamespaceMode::Pod);
        assert_eq!(pod.hostname, "p");
        assert_eq!(pod.log_directory, "/l");
        assert_eq!(pod.linux.as_ref().unwrap().cgroup_parent, "/kubepods");
        let meta = pod.metadata.unwrap();
        assert_eq!((meta.name.as_str(), meta.namespace.as_str()), ("p", "ns"));
        assert_eq!(meta.uid, "u1");

        let host = pod_config("p", "ns", "u1", "", Path::new("/l"), true);
        let opts = host.linux.unwrap().security_context.unwrap();
        assert_eq!(
            opts.namespace_options.unwrap().network(),
            api::NamespaceMode::Node
        );
        assert_eq!(host.hostname, "");
    }

    #[test]
    fn container_config_fields() {
        let c = container_config("c", "busybox:latest", &["sleep", "9"], "c/0.log");
        assert_eq!(c.metadata.unwrap().name, "c");
        assert_eq!(c.image.unwrap().image, "busybox:latest");
        assert_eq!(c.command, ["sleep", "9"]);
        assert_eq!(c.log_path, "c/0.log");
    }
}
