//! Full OCI specs for `ctr run --config`, for what ctr 1.6 has no flag for
//! (process user, rlimits, hand-made invalid fields). Based on `ctr oci
//! spec` (containerd's defaults, as `ctr run` uses them), with the rootfs a
//! private copy of the busybox image's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{cmd, image, Containerd};

/// containerd's default spec for container `id`, running `args` in a copy
/// of the busybox rootfs (made under the containerd's temp dir).
pub fn busybox_spec(ctd: &Containerd, id: &str, args: &[&str]) -> Value {
    let out = ctd.ctr(&["oci", "spec"]).ok();
    let mut spec: Value = serde_json::from_str(&out.stdout).expect("ctr oci spec prints JSON");
    let rootfs = ctd.dir().join(format!("rootfs-{id}"));
    cmd::run(
        Command::new("cp")
            .arg("-a")
            .arg(&image::busybox().rootfs)
            .arg(&rootfs),
        Duration::from_secs(60),
    )
    .ok();
    spec["root"] = json!({ "path": rootfs, "readonly": false });
    spec["process"]["args"] = json!(args);
    spec["process"]["env"] =
        json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);
    // `ctr oci spec` knows no id: give the container its own cgroup, as
    // `ctr run IMAGE ID` would.
    spec["linux"]["cgroupsPath"] = json!(format!("/{}/{id}", ctd.namespace()));
    spec
}

/// The options of `spec`'s mount at `destination` (one `ctr oci spec` has).
pub fn mount_options<'a>(spec: &'a mut Value, destination: &str) -> &'a mut Vec<Value> {
    spec["mounts"]
        .as_array_mut()
        .expect("mounts")
        .iter_mut()
        .find(|m| m["destination"] == destination)
        .unwrap_or_else(|| panic!("no mount at {destination}"))["options"]
        .as_array_mut()
        .expect("mount options")
}

/// Writes `spec` next to the containerd's files; returns its path.
pub fn write(ctd: &Containerd, id: &str, spec: &Value) -> PathBuf {
    let path = ctd.dir().join(format!("spec-{id}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(spec).unwrap()).expect("write spec");
    path
}

/// Gives spec `s` a user namespace mapping its ids 0..65536 to `host` on
/// the host, and hands `dirs` (its rootfs, and what the test has it write
/// to) to the mapped root.
pub fn in_user_namespace(s: &mut Value, host: u32, dirs: &[&Path]) {
    let owner = format!("{host}:{host}");
    let chown = Command::new("chown")
        .args(["-R", &owner])
        .args(dirs)
        .status()
        .expect("run chown");
    assert!(chown.success(), "chown -R {owner} {dirs:?}");
    let map = json!([{"containerID": 0, "hostID": host, "size": 65536}]);
    s["linux"]["uidMappings"] = map.clone();
    s["linux"]["gidMappings"] = map;
    s["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "user"}));
}
