//! `containerd-shim-lxcri-v2 -info` as containerd 2.x runs it: stdout must
//! decode as a bare `containerd.types.RuntimeInfo` whose features are the
//! OCI features JSON. Needs no root and no containerd.

use std::process::{Command, Output, Stdio};

use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::types::introspection::RuntimeInfo;
use serde_json::Value;

const FEATURES_TYPE_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

fn run_info(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_containerd-shim-lxcri-v2"))
        .args(args)
        .stdin(Stdio::null())
        // Without it the shim library would fail: -info must not reach it.
        .env_remove("TTRPC_ADDRESS")
        .output()
        .expect("running the shim")
}

fn decode(out: &Output) -> RuntimeInfo {
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    RuntimeInfo::parse_from_bytes(&out.stdout).expect("stdout is a RuntimeInfo")
}

#[test]
fn info_is_a_runtime_info_with_oci_features() {
    let info = decode(&run_info(&["-info"]));
    assert_eq!(info.name, "io.containerd.lxcri.v2");
    assert_eq!(info.version.version, env!("CARGO_PKG_VERSION"));
    assert!(info.options.is_none(), "no options were sent");

    let features = info.features.as_ref().expect("features");
    assert_eq!(features.type_url, FEATURES_TYPE_URL);
    let json: Value = serde_json::from_slice(&features.value).expect("features JSON");
    let linux = &json["linux"];
    let namespaces: Vec<&str> = linux["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(namespaces.contains(&"user"), "{namespaces:?}");
    // What containerd's CRI plugin checks, with user namespaces, to allow
    // `hostUsers: false`: lxcri id-maps binds.
    assert_eq!(linux["mountExtensions"]["idmap"]["enabled"], true);
    assert_eq!(json["ociVersionMin"], "1.0.0");
    // Unset fields are left out, as Go's omitempty does.
    assert!(!features.value.windows(4).any(|w| w == b"null"));
}

#[test]
fn info_ignores_the_other_flags_containerd_may_pass() {
    let info = decode(&run_info(&["-namespace", "k8s.io", "-info"]));
    assert_eq!(info.name, "io.containerd.lxcri.v2");
}

#[test]
fn bad_options_fail_with_a_message() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_containerd-shim-lxcri-v2"))
        .arg("-info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the shim");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"\xff\xff\xff").expect("writing options");
    }
    let out = child.wait_with_output().expect("waiting for the shim");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-info"));
}
