use std::path::Path;

use super::*;
use crate::pve::config::PveConfigFile;

#[test]
fn node_local_edit_sets_the_rootfs_keeps_the_volume_and_includes_the_fragment() {
    let text = "# Managed by lxcri\narch: amd64\nhostname: web\nrootfs: local-zfs:subvol-10001-disk-0,size=0T\n";
    let mut f = PveConfigFile::parse(text).unwrap();
    let changed = attach_node_local(
        &mut f,
        Path::new("/run/containerd/b/rootfs"),
        Path::new("/run/lxcri/k8s.io/c0ffee/pve-lxc.conf"),
        Path::new("/run/lxcri"),
    )
    .unwrap();
    assert!(changed);
    assert_eq!(f.get("rootfs"), Some("/run/containerd/b/rootfs"));
    assert_eq!(f.get("unused0"), Some("local-zfs:subvol-10001-disk-0"));
    assert_eq!(
        f.raw_lines(),
        [("lxc.include", "/run/lxcri/k8s.io/c0ffee/pve-lxc.conf")]
    );
    // Again: nothing changes, no second unused volume.
    let again = attach_node_local(
        &mut f,
        Path::new("/run/containerd/b/rootfs"),
        Path::new("/run/lxcri/k8s.io/c0ffee/pve-lxc.conf"),
        Path::new("/run/lxcri"),
    )
    .unwrap();
    assert!(!again);
    assert_eq!(f.get("unused1"), None);
    // A fragment outside lxcri's directory, or a rootfs with a newline, is refused.
    let err = attach_node_local(
        &mut f,
        Path::new("/b/rootfs"),
        Path::new("/etc/evil.conf"),
        Path::new("/run/lxcri"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("lxc.include"), "{err}");
    let err = attach_node_local(
        &mut f,
        Path::new("/b/root\nfs"),
        Path::new("/run/lxcri/a/b/pve-lxc.conf"),
        Path::new("/run/lxcri"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("rootfs"), "{err}");
}
