//! Which cgroup driver the node's kubelet uses, and whether lxcri follows
//! it: lxcri places a container's cgroup at a cgroupfs `linux.cgroupsPath`
//! as runc does, but makes no systemd units for systemd's
//! `slice:prefix:name` (docs/kubernetes.md, "cgroup driver").

use std::fs;
use std::path::Path;

use super::{finding, Finding, Status};

const NAME: &str = "cgroup driver";

/// `run`: the node's `/run` (systemd marks itself as running with
/// `/run/systemd/system`, which is what containerd looks at); `kubelet`:
/// the kubelet's config file, if the node has one.
pub fn cgroup_driver(run: &Path, kubelet: &Path) -> Finding {
    let systemd = run.join("systemd/system").is_dir();
    match fs::read_to_string(kubelet).ok().and_then(|c| kubelet_driver(&c)) {
        Some(driver) if driver == "cgroupfs" => finding(
            NAME,
            Status::Ok,
            format!(
                "the kubelet ({}) uses cgroupfs: pods go below kubepods, as on runc",
                kubelet.display()
            ),
        ),
        Some(driver) => finding(
            NAME,
            Status::Warn,
            format!(
                "the kubelet ({}) uses {driver:?}: containerd then gives pods systemd's slice:prefix:name, which lxcri does not follow, so pods on lxcri run outside kubepods (no pod-level limits); set cgroupDriver: cgroupfs",
                kubelet.display()
            ),
        ),
        None if systemd => finding(
            NAME,
            Status::Warn,
            "systemd runs this node, so containerd reports the systemd cgroup driver to a kubelet that asks (unless a runc handler sets SystemdCgroup = false); lxcri does not follow systemd's slice:prefix:name: give the kubelet cgroupDriver: cgroupfs",
        ),
        None => finding(
            NAME,
            Status::Ok,
            "cgroupfs paths are followed (no kubelet config found; systemd does not run this node)",
        ),
    }
}

/// The kubelet config's top-level `cgroupDriver` (YAML or JSON).
fn kubelet_driver(config: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let line = line.trim_end();
        let rest = line
            .strip_prefix("cgroupDriver:")
            .or_else(|| line.trim_start().strip_prefix("\"cgroupDriver\":"))?;
        let value = rest.trim().trim_end_matches(',').trim_matches(['"', '\'']);
        (!value.is_empty()).then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelets_driver_decides_else_whether_systemd_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let (run, kubelet) = (tmp.path().join("run"), tmp.path().join("config.yaml"));
        assert_eq!(cgroup_driver(&run, &kubelet).status, Status::Ok);
        fs::create_dir_all(run.join("systemd/system")).unwrap();
        let f = cgroup_driver(&run, &kubelet);
        assert_eq!(f.status, Status::Warn);
        assert!(f.detail.contains("cgroupDriver: cgroupfs"), "{}", f.detail);

        fs::write(
            &kubelet,
            "kind: KubeletConfiguration\ncgroupDriver: cgroupfs\n",
        )
        .unwrap();
        assert_eq!(cgroup_driver(&run, &kubelet).status, Status::Ok);
        fs::write(
            &kubelet,
            "kind: KubeletConfiguration\ncgroupDriver: systemd\n",
        )
        .unwrap();
        let f = cgroup_driver(&run, &kubelet);
        assert_eq!(f.status, Status::Warn);
        assert!(f.detail.contains("\"systemd\""), "{}", f.detail);
    }

    #[test]
    fn the_driver_is_read_at_the_top_level_only() {
        assert_eq!(
            kubelet_driver("cgroupDriver: 'systemd'\n").as_deref(),
            Some("systemd")
        );
        assert_eq!(
            kubelet_driver("{\n  \"cgroupDriver\": \"cgroupfs\",\n}").as_deref(),
            Some("cgroupfs")
        );
        assert_eq!(kubelet_driver("nested:\n  cgroupDriver: systemd\n"), None);
        assert_eq!(kubelet_driver("cgroupDriver:\n"), None);
    }
}
