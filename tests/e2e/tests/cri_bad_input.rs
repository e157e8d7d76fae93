//! Bad input through containerd's CRI plugin on lxcri: a clear error naming
//! the cause, nothing left behind, and the pod stays usable.

use std::time::Duration;

use lxcri_e2e::cri::api::{self, ContainerState};
use lxcri_e2e::cri::inspect::{assert_nothing_left, assert_pod_gone};
use lxcri_e2e::cri::pod::{base_pod_config, Pod};
use lxcri_e2e::{require, Containerd, Runtime};

const LONG: Duration = Duration::from_secs(60);

/// Bad input through CRI fails with an error naming the cause and leaves
/// nothing behind.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn bad_pods_fail_cleanly() {
    if !require(Runtime::Lxcri, "bad_pods_fail_cleanly") {
        return;
    }
    let ctd = Containerd::start_cri();
    let cri = ctd.cri();

    // A pod name with a newline (the kubelet would not send one; a CRI
    // client can): lxcri refuses the annotation carrying it. On the host
    // network, as the CNI bridge plugin refuses such a name first.
    let bad = base_pod_config(&ctd, "evil\nlxc.cap.keep = sys_admin", true);
    let err = match Pod::run(&ctd, Runtime::Lxcri, bad) {
        Ok(pod) => panic!(
            "RunPodSandbox with a newline in the name succeeded: {}",
            pod.id
        ),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("io.kubernetes.cri.sandbox-name") && err.contains("control character"),
        "{err}"
    );
    assert_eq!(cri.list_pod_sandbox().unwrap().len(), 0, "a pod is listed");
    assert_nothing_left(&ctd);

    // A missing image: CreateContainer fails, the pod stays usable.
    let pod = Pod::run(
        &ctd,
        Runtime::Lxcri,
        base_pod_config(&ctd, "noimage", false),
    )
    .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", ctd.log_tail(40)));
    let mut missing = pod.container("missing", &["true"]);
    missing.image = Some(api::ImageSpec {
        image: "localhost/lxcri-test/no-such-image:1".into(),
        ..Default::default()
    });
    let err = pod
        .create(missing)
        .expect_err("CreateContainer of a missing image")
        .to_string();
    assert!(err.contains("no-such-image"), "{err}");

    // An unknown capability: StartContainer fails naming it.
    let mut caps = pod.container("caps", &["true"]);
    if let Some(sc) = caps
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
    {
        sc.capabilities = Some(api::Capability {
            add_capabilities: vec!["BOGUS_CAP".into()],
            ..Default::default()
        });
    }
    let id = pod
        .create(caps)
        .expect("CreateContainer (the task comes at start)");
    let err = cri
        .start_container(&id)
        .expect_err("StartContainer with CAP_BOGUS_CAP")
        .to_string();
    assert!(err.contains("CAP_BOGUS_CAP"), "{err}");
    cri.remove_container(&id).unwrap();
    let c = pod.start(pod.container("ok", &["sh", "-c", "echo still-fine"]));
    pod.wait_state(&c, ContainerState::ContainerExited, LONG);
    pod.wait_log("ok", "stdout", "still-fine");
    let pod_id = pod.id.clone();
    let netns = pod.netns();
    pod.remove().unwrap();
    assert_pod_gone(&ctd, Runtime::Lxcri, &pod_id, &[id, c], netns);
    assert_nothing_left(&ctd);
}
