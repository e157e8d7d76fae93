use std::path::Path;

use oci_spec::runtime::Spec;

use super::*;
use crate::pve::config::PveConfigFile;

fn spec(json: &str) -> Spec {
    serde_json::from_str(json).unwrap()
}

fn inputs<'a>(spec: &'a Spec, cri: &'a CriAnnotations, version: PveVersion) -> CtInputs<'a> {
    CtInputs {
        version,
        namespace: "k8s.io",
        id: "c0ffee",
        spec,
        cri,
        init_cmd: "/.lxcri/lxcri-init",
        template: "local:vztmpl/lxcri-empty.tar.gz",
        storage: "local-zfs",
        rootfs_size: None,
    }
}

const POD_SPEC: &str = r#"{
  "ociVersion": "1.0.2",
  "hostname": "web-0",
  "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["sh"], "env": ["PATH=/bin", "A.B=x", "MULTI=a\nb", "OK=1"]},
  "root": {"path": "rootfs"},
  "annotations": {
    "io.kubernetes.cri.sandbox-name": "web-0",
    "io.kubernetes.cri.sandbox-namespace": "shop",
    "io.kubernetes.cri.container-name": "nginx",
    "io.kubernetes.cri.image-name": "docker.io/library/nginx:1.27"
  },
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}],
    "resources": {"memory": {"limit": 268435456}, "cpu": {"quota": 50000, "period": 100000}}
  }
}"#;

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn ct_keys_tags_description_and_resources_come_from_the_spec() {
    let s = spec(POD_SPEC);
    let cri = CriAnnotations::from_spec(&s).unwrap();
    let ct = ct_config(&inputs(&s, &cri, PveVersion::new(9, 1))).unwrap();
    let p = ct.to_create_params(10001).unwrap();
    assert_eq!(param(&p, "vmid"), Some("10001"));
    assert_eq!(param(&p, "hostname"), Some("web-0"));
    assert_eq!(param(&p, "tags"), Some("lxcri;ns-shop;pod-web-0"));
    assert_eq!(
        param(&p, "ostemplate"),
        Some("local:vztmpl/lxcri-empty.tar.gz")
    );
    assert_eq!(param(&p, "rootfs"), Some("local-zfs:0"));
    assert_eq!(param(&p, "unprivileged"), Some("1"));
    assert_eq!(param(&p, "ostype"), Some("unmanaged"));
    assert_eq!(param(&p, "memory"), Some("256"));
    assert_eq!(param(&p, "cpulimit"), Some("0.5"));
    assert_eq!(param(&p, "console"), Some("0"));
    assert_eq!(param(&p, "tty"), Some("0"));
    assert_eq!(param(&p, "entrypoint"), Some("/.lxcri/lxcri-init"));
    // Only what PVE can store; the process still gets all of it from the init.
    assert_eq!(param(&p, "env"), Some("PATH=/bin\0OK=1"));
    let d = param(&p, "description").unwrap();
    for line in [
        "- container: c0ffee",
        "- containerd namespace: k8s.io",
        "- pod: shop/web-0",
        "- name: nginx",
        "- image: docker.io/library/nginx:1.27",
    ] {
        assert!(d.contains(line), "{line:?} missing in {d}");
    }
    // Before 9.1 the init command and env are lxcri's fragment's.
    let ct = ct_config(&inputs(&s, &cri, PveVersion::new(8, 4))).unwrap();
    let p = ct.to_create_params(10001).unwrap();
    assert_eq!(param(&p, "entrypoint"), None);
    assert_eq!(param(&p, "env"), None);
    let lines = ct.fragment_lines().unwrap();
    assert_eq!(
        lines[0],
        ("lxc.init.cmd".into(), "/.lxcri/lxcri-init".into())
    );
    assert!(lines.contains(&("lxc.environment".into(), "OK=1".into())));
}

#[test]
fn a_plain_container_is_privileged_and_named_by_its_id() {
    let s = spec(
        r#"{"ociVersion": "1.0.2", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["true"]}, "root": {"path": "rootfs"}}"#,
    );
    let cri = CriAnnotations::default();
    let ct = ct_config(&inputs(&s, &cri, PveVersion::new(9, 1))).unwrap();
    let p = ct.to_create_params(100).unwrap();
    assert_eq!(param(&p, "unprivileged"), Some("0"));
    assert_eq!(param(&p, "hostname"), Some("c0ffee"));
    assert_eq!(param(&p, "tags"), Some("lxcri"));
    assert_eq!(param(&p, "memory"), None, "no OCI limit: PVE's default");
}

#[test]
fn pod_names_with_newlines_or_colons_cannot_inject_keys() {
    for evil in [
        "web\nrootfs: /",
        "a:b",
        "x\r\nlxc.apparmor.profile: unconfined",
        "pod;tag",
    ] {
        let json = POD_SPEC.replace("\"hostname\": \"web-0\",", "").replace(
            "\"io.kubernetes.cri.sandbox-name\": \"web-0\"",
            &format!(
                "\"io.kubernetes.cri.sandbox-name\": {}",
                serde_json::to_string(evil).unwrap()
            ),
        );
        let s = spec(&json);
        // Control characters in CRI annotations are refused up front.
        let Ok(cri) = CriAnnotations::from_spec(&s) else {
            assert!(evil.chars().any(char::is_control), "{evil:?}");
            continue;
        };
        let ct = ct_config(&inputs(&s, &cri, PveVersion::new(9, 1))).unwrap();
        let p = ct.to_create_params(10001).unwrap();
        let mut file = PveConfigFile::parse("arch: amd64\n").unwrap();
        for (k, v) in &p {
            match k.as_str() {
                "description" => file.set_description(v),
                "vmid" | "ostemplate" | "env" | "entrypoint" => {}
                _ => {
                    file.set_key(k, v).unwrap();
                }
            }
        }
        let text = file.render();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(':').map(|(k, _)| k))
            .collect();
        for k in &keys {
            assert!(
                [
                    "arch",
                    "hostname",
                    "tags",
                    "ostype",
                    "unprivileged",
                    "memory",
                    "cpulimit",
                    "console",
                    "tty",
                    "rootfs"
                ]
                .contains(k),
                "{evil:?} made key {k:?}:\n{text}"
            );
        }
        assert!(param(&p, "hostname")
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
}

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
