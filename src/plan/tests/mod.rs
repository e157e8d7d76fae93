//! Tests of the translation: golden fixtures (`golden.rs`), error paths
//! (`errors.rs`) and cgroup resources (`resources.rs`).

mod bind_flags;
mod cgroup;
mod errors;
mod golden;
mod idmap_mounts;
mod lsm;
mod nested_mounts;
mod network;
mod node_userns;
mod pve;
mod recursive_attrs;
mod resources;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::*;

const RUN_DIR: &str = "/run/lxcri/default/golden/run";
const INIT_LINK: &str = "/run/lxcri/default/golden/lxcri-init";

/// A tempdir holding a small rootfs (with symlinks) and a host tree for
/// bind sources.
pub(super) struct Env {
    _tmp: tempfile::TempDir,
    pub(super) rootfs: PathBuf,
    pub(super) host: PathBuf,
}

pub(super) fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    let host = tmp.path().join("host");
    for d in [
        "bin", "etc", "proc", "sys", "dev", "run", "tmp", "root", "app", "usr/lib",
    ] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
        // An image's modes, whatever the umask: a tmpfs there gets them.
        let mode = match d {
            "tmp" => 0o1777,
            "root" => 0o700,
            _ => 0o755,
        };
        fs::set_permissions(rootfs.join(d), fs::Permissions::from_mode(mode)).unwrap();
    }
    for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        fs::write(rootfs.join(f), "").unwrap();
    }
    std::os::unix::fs::symlink("/usr/lib", rootfs.join("lib")).unwrap();
    fs::create_dir_all(rootfs.join("var")).unwrap();
    std::os::unix::fs::symlink("../run", rootfs.join("var/run")).unwrap();
    std::os::unix::fs::symlink("../../../..", rootfs.join("etc/escape")).unwrap();
    fs::create_dir_all(&host).unwrap();
    // An AppArmor host with the profiles the fixtures name loaded.
    let aa = tmp.path().join("lsm/sys/kernel/security/apparmor");
    fs::create_dir_all(&aa).unwrap();
    fs::write(
        aa.join("profiles"),
        "cri-containerd.apparmor.d (enforce)\nlxcri-default (enforce)\n",
    )
    .unwrap();
    let module = tmp.path().join("lsm/sys/module/apparmor/parameters");
    fs::create_dir_all(&module).unwrap();
    fs::write(module.join("enabled"), "Y\n").unwrap();
    Env {
        _tmp: tmp,
        rootfs,
        host,
    }
}

impl Env {
    pub(super) fn ctx(&self, cgroup: CgroupVersion) -> PlanContext {
        PlanContext {
            id: "c1".into(),
            bundle: "/run/bundle".into(),
            rootfs: self.rootfs.clone(),
            rootfs_mounted: false,
            run_dir: RUN_DIR.into(),
            init_binary: INIT_LINK.into(),
            cgroup,
            cri: None,
            default_nics: Vec::new(),
            lsm: crate::security::lsm::HostLsm::at(&self._tmp.path().join("lsm")),
            apparmor: crate::lxc::LxcAppArmor::Unconfined,
            userns: None,
            nested_userns: false,
            lxc_monitor_cgroup: Some(crate::lxc::monitor_cgroup("default_c1").unwrap()),
            own_cgroup: crate::cgroup::OwnCgroup::Uniform(String::new()),
            cgroup_v1_hierarchies: Vec::new(),
        }
    }

    /// Parses a fixture with `/HOST/` pointing into the host tree, creating
    /// its bind sources (directories under `/HOST/dir/`, files elsewhere).
    pub(super) fn spec_from(&self, json: &str) -> Spec {
        let json = json.replace("\"/HOST/", &format!("\"{}/", self.host.display()));
        let spec = crate::spec::parse_spec(Path::new("fixture"), json.as_bytes()).unwrap();
        for m in spec.mounts().iter().flatten() {
            let Some(src) = m.source() else { continue };
            if !src.starts_with(&self.host) {
                continue;
            }
            if src.starts_with(self.host.join("dir")) {
                fs::create_dir_all(src).unwrap();
            } else {
                fs::create_dir_all(src.parent().unwrap()).unwrap();
                fs::write(src, "").unwrap();
            }
        }
        spec
    }

    pub(super) fn scrub(&self, s: &str) -> String {
        s.replace(&self.rootfs.display().to_string(), "/ROOTFS")
            .replace(&self.host.display().to_string(), "/HOST")
    }

    pub(super) fn plan(&self, spec: &Value) -> Result<ContainerPlan> {
        let spec: Spec = serde_json::from_value(spec.clone()).unwrap();
        plan_container(&spec, &self.ctx(CgroupVersion::V2))
    }

    pub(super) fn err(&self, spec: &Value) -> String {
        match self.plan(spec) {
            Ok(_) => panic!("planned without error: {spec:#}"),
            Err(e) => e.to_string(),
        }
    }
}

/// A valid spec to break one field at a time.
pub(super) fn base() -> Value {
    json!({
        "ociVersion": "1.1.0",
        "root": {"path": "rootfs"},
        "process": {
            "args": ["sh"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0}
        },
        "hostname": "box",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}
        ],
        "linux": {
            "namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "uts"},
                           {"type": "network"}, {"type": "ipc"}]
        }
    })
}

pub(super) fn with(f: impl FnOnce(&mut Value)) -> Value {
    let mut v = base();
    f(&mut v);
    v
}

pub(super) fn mount(v: &mut Value, m: Value) {
    v["mounts"].as_array_mut().unwrap().push(m);
}
