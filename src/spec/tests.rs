use std::path::Path;

use super::*;

const MINIMAL: &str = r#"{
  "ociVersion": "1.1.0",
  "root": {"path": "rootfs"},
  "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
}"#;

fn write_bundle(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CONFIG_FILE), body).unwrap();
    dir
}

fn err_of(body: &str) -> String {
    parse_spec(Path::new("/b/config.json"), body.as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn loads_a_minimal_bundle() {
    let dir = write_bundle(MINIMAL);
    let spec = load_bundle_spec(dir.path()).unwrap();
    assert_eq!(spec.version(), "1.1.0");
}

#[test]
fn missing_config_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_bundle_spec(dir.path()).unwrap_err().to_string();
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn malformed_json_names_file_line_and_column() {
    let err = parse_spec(
        Path::new("/b/config.json"),
        b"{\n  \"ociVersion\": \"1.0.0\",\n  oops\n}",
    )
    .unwrap_err();
    match &err {
        SpecError::Parse { line, column, .. } => assert_eq!((*line, *column), (3, 3)),
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with("/b/config.json: "), "{msg}");
    assert!(msg.contains("line 3"), "{msg}");

    let msg = err_of(&MINIMAL.replace("\"uid\": 0", "\"uid\": \"root\""));
    assert!(msg.contains("line 4"), "{msg}");
}

#[test]
fn process_root_and_version_are_required() {
    let no_process = r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}}"#;
    assert_eq!(
        err_of(no_process),
        "/b/config.json: process: missing (required by lxcri)"
    );
    let no_root =
        r#"{"ociVersion": "1.0.2", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}}}"#;
    assert!(err_of(no_root).contains("root: missing"));
    assert!(err_of(&MINIMAL.replace("1.1.0", "2.0.0")).contains("ociVersion \"2.0.0\""));
    assert!(err_of(&MINIMAL.replace("1.1.0", "")).contains("ociVersion: missing"));
    assert!(parse_spec(
        Path::new("c"),
        MINIMAL.replace("1.1.0", "1.0.2-dev").as_bytes()
    )
    .is_ok());
}

#[test]
fn unknown_capability_is_named_with_set_and_index() {
    let body = MINIMAL.replace(
        "\"cwd\": \"/\"",
        r#""cwd": "/", "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_FOO"]}"#,
    );
    assert_eq!(
        err_of(&body),
        "/b/config.json: process.capabilities.bounding[3]: unknown capability \"CAP_FOO\" \
         (expected a canonical CAP_* name)"
    );
    // oci-spec would accept these; lxcri wants canonical names.
    let body = MINIMAL.replace(
        "\"cwd\": \"/\"",
        r#""cwd": "/", "capabilities": {"ambient": ["sys_admin"]}"#,
    );
    assert!(err_of(&body).contains("process.capabilities.ambient[0]"));
}

#[test]
fn unknown_enum_values_are_named() {
    let with_linux =
        |linux: &str| MINIMAL.replace("\"root\"", &format!("\"linux\": {linux}, \"root\""));
    let cases = [
        (
            with_linux(
                r#"{"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}}"#,
            ),
            "linux.seccomp.flags[0]: unknown seccomp flag \"SECCOMP_FILTER_FLAG_BOGUS\"",
        ),
        (
            with_linux(
                r#"{"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_BAD"}]}}"#,
            ),
            "linux.seccomp.syscalls[0].action: unknown seccomp action \"SCMP_ACT_BAD\"",
        ),
        (
            with_linux(r#"{"seccomp": {"defaultAction": "KILL"}}"#),
            "linux.seccomp.defaultAction: unknown seccomp action \"KILL\"",
        ),
        (
            with_linux(
                r#"{"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]}}"#,
            ),
            "linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator",
        ),
        (
            with_linux(r#"{"namespaces": [{"type": "pid"}, {"type": "netns"}]}"#),
            "linux.namespaces[1].type: unknown namespace type \"netns\"",
        ),
        (
            MINIMAL.replace(
                "\"cwd\": \"/\"",
                r#""cwd": "/", "rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]"#,
            ),
            "process.rlimits[0].type: unknown rlimit \"RLIMIT_BOGUS\"",
        ),
        (
            MINIMAL.replace(
                "\"cwd\": \"/\"",
                r#""cwd": "/", "scheduler": {"policy": "SCHED_LOW"}"#,
            ),
            "process.scheduler.policy: unknown scheduler policy \"SCHED_LOW\"",
        ),
        (
            // oci-spec's own spelling is not the runtime-spec's.
            MINIMAL.replace(
                "\"cwd\": \"/\"",
                r#""cwd": "/", "scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_RESET_ON_FORK"]}"#,
            ),
            "process.scheduler.flags[0]: unknown scheduler flag \"SCHED_RESET_ON_FORK\"",
        ),
        (
            MINIMAL.replace(
                "\"cwd\": \"/\"",
                r#""cwd": "/", "ioPriority": {"class": "IOPRIO_CLASS_NONE", "priority": 0}"#,
            ),
            "process.ioPriority.class: unknown I/O priority class \"IOPRIO_CLASS_NONE\"",
        ),
        (
            with_linux(r#"{"personality": {"domain": "LINUX64"}}"#),
            "linux.personality.domain: unknown personality domain \"LINUX64\"",
        ),
    ];
    for (body, want) in cases {
        let err = err_of(&body);
        assert!(err.contains(want), "want {want:?}, got {err:?}");
    }
}

/// runc reads a missing `user` as Go's zero value: root.
#[test]
fn a_process_without_user_runs_as_root_as_on_runc() {
    let exec = parse_process("exec e1", br#"{"args": ["id"], "cwd": "/"}"#).unwrap();
    assert_eq!((exec.user().uid(), exec.user().gid()), (0, 0));
    let body = MINIMAL.replace(r#", "user": {"uid": 0, "gid": 0}"#, "");
    assert!(!body.contains("user"));
    let spec = parse_spec(Path::new("c"), body.as_bytes()).unwrap();
    let user = spec.process().as_ref().unwrap().user();
    assert_eq!(
        (user.uid(), user.gid(), user.additional_gids()),
        (0, 0, &None)
    );
}

#[test]
fn exec_process_gets_the_same_checks() {
    let ok = r#"{"args": ["ls"], "cwd": "/", "user": {"uid": 1, "gid": 1}}"#;
    assert_eq!(
        parse_process("exec e1", ok.as_bytes())
            .unwrap()
            .args()
            .as_ref()
            .unwrap()[0],
        "ls"
    );
    let bad = r#"{"args": ["ls"], "cwd": "/", "user": {"uid": 1, "gid": 1},
                  "capabilities": {"effective": ["CAP_NOPE"]}}"#;
    let err = parse_process("exec e1", bad.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("exec e1: process.capabilities.effective[0]"),
        "{err}"
    );
}

#[test]
fn cri_annotations() {
    let body = MINIMAL.replace(
        "\"root\"",
        r#""annotations": {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-id": "0123abcd",
            "io.kubernetes.cri.sandbox-name": "web-0",
            "io.kubernetes.cri.sandbox-namespace": "default",
            "io.kubernetes.cri.container-name": "nginx",
            "other": "x"
        }, "root""#,
    );
    let spec = parse_spec(Path::new("c"), body.as_bytes()).unwrap();
    let cri = CriAnnotations::from_spec(&spec).unwrap();
    assert_eq!(
        cri,
        CriAnnotations {
            container_type: Some(CriContainerType::Container),
            sandbox_id: Some("0123abcd".into()),
            sandbox_name: Some("web-0".into()),
            sandbox_namespace: Some("default".into()),
            sandbox_uid: None,
            container_name: Some("nginx".into()),
            image_name: None,
        }
    );

    let plain = parse_spec(Path::new("c"), MINIMAL.as_bytes()).unwrap();
    assert_eq!(
        CriAnnotations::from_spec(&plain).unwrap(),
        CriAnnotations::default()
    );

    for (key, value) in [
        ("io.kubernetes.cri.container-type", "podsandbox"),
        ("io.kubernetes.cri.sandbox-name", "web\nlxc.x = y"),
        ("io.kubernetes.cri.sandbox-id", "../x"),
    ] {
        let body = MINIMAL.replace(
            "\"root\"",
            &format!("\"annotations\": {{{key:?}: {value:?}}}, \"root\""),
        );
        let spec = parse_spec(Path::new("c"), body.as_bytes()).unwrap();
        let err = CriAnnotations::from_spec(&spec).unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }
}

#[test]
fn the_sandbox_id_of_a_bundle_comes_from_its_annotations_alone() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(bundle_sandbox_id(tmp.path()), None);
    let write = |body: &str| std::fs::write(tmp.path().join(CONFIG_FILE), body).unwrap();
    // Broken elsewhere: create reports that; start still groups the pod.
    write(r#"{"process": 7, "annotations":{"io.kubernetes.cri.sandbox-id":"abc"}}"#);
    assert_eq!(bundle_sandbox_id(tmp.path()).as_deref(), Some("abc"));
    write(r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"../abc"}}"#);
    assert_eq!(bundle_sandbox_id(tmp.path()), None);
    write("{");
    assert_eq!(bundle_sandbox_id(tmp.path()), None);
}

#[test]
fn scheduler_flags_are_read_by_the_runtime_specs_names() {
    let flags =
        r#"["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_KEEP_POLICY"]"#;
    let process = format!(
        r#"{{"args": ["ls"], "cwd": "/", "user": {{"uid": 0, "gid": 0}},
            "scheduler": {{"policy": "SCHED_DEADLINE", "flags": {flags}}}}}"#
    );
    use oci_spec::runtime::LinuxSchedulerFlag as F;
    let want = vec![
        F::SchedResetOnFork,
        F::SchedFlagDLOverrun,
        F::SchedFlagKeepPolicy,
    ];
    let p = parse_process("exec e1", process.as_bytes()).unwrap();
    assert_eq!(
        p.scheduler().as_ref().unwrap().flags().as_ref(),
        Some(&want)
    );
    let body = MINIMAL.replace(
        "\"cwd\": \"/\"",
        &format!(r#""cwd": "/", "scheduler": {{"policy": "SCHED_DEADLINE", "flags": {flags}}}"#),
    );
    let spec = parse_spec(Path::new("/b/config.json"), body.as_bytes()).unwrap();
    let got = spec
        .process()
        .as_ref()
        .unwrap()
        .scheduler()
        .clone()
        .unwrap();
    assert_eq!(got.flags().as_ref(), Some(&want));
}

#[test]
fn exec_cpu_affinity_lists_are_read_as_runc_reads_them() {
    // Spaces around elements and empty elements are skipped, an empty
    // list is none (runc's toCPUSet); oci-spec's pattern alone refuses them.
    let process = r#"{"args": ["ls"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "execCPUAffinity": {"initial": " 0, 2-3,,", "final": ""}}"#;
    let p = parse_process("exec e1", process.as_bytes()).unwrap();
    let a = p.exec_cpu_affinity().clone().unwrap();
    assert_eq!(a.initial().as_deref(), Some("0,2-3"));
    assert_eq!(a.cpu_affinity_final().as_deref(), None);
    let bad = r#"{"args": ["ls"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "execCPUAffinity": {"initial": "0 - 3"}}"#;
    assert!(parse_process("exec e1", bad.as_bytes()).is_err());
}
