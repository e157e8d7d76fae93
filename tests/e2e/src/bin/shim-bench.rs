//! The time each shim itself spends on a container, lxcri vs runc, in the
//! same run (benches/shim.sh runs it on release binaries, lxc backend):
//!
//!   shim-bench [N]    N interleaved rounds per shim (default 15)
//!
//! This program plays containerd's part towards the shim, over the shim's
//! own ttrpc socket, so containerd's work (snapshots, its database, event
//! handling, `ctr`) is not in the figures: per round, a fresh bundle (the
//! busybox rootfs and `ctr oci spec`'s default spec running `true`), then
//! `SHIM start` (the binary containerd runs to get a socket), `Create`,
//! `Start`, `Wait` (until the exit is reported), `Delete` and `Shutdown`,
//! each timed from the request to its answer. A private containerd is
//! running only to receive the shims' events. One warm-up round per shim
//! is discarded, the order alternates every round; medians are printed as a
//! Markdown table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use containerd_shim_protos::api;
use lxcri_e2e::bench::median;
use lxcri_e2e::shim_task::{ctx, ShimTask};
use lxcri_e2e::{image, Containerd, Runtime};

/// The timed steps of one round, in order.
const STEPS: [&str; 6] = [
    "shim start",
    "Create",
    "Start",
    "Wait",
    "Delete",
    "Shutdown",
];

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map(|a| a.parse().expect("a number"))
        .unwrap_or(default)
}

/// `ctr oci spec`'s default spec, running `true` in `rootfs`, in its own
/// cgroup `/NAMESPACE/ID` as `ctr run` would put it.
fn bundle(dir: &Path, namespace: &str, id: &str) -> PathBuf {
    let bundle = dir.join(id);
    std::fs::create_dir_all(&bundle).expect("bundle dir");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&image::busybox().rootfs)
        .arg(bundle.join("rootfs"))
        .status()
        .expect("cp");
    assert!(copied.success(), "copying the busybox rootfs");
    let out = Command::new("ctr")
        .args(["oci", "spec"])
        .output()
        .expect("ctr oci spec");
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).expect("spec JSON");
    spec["process"]["args"] = serde_json::json!(["/bin/true"]);
    spec["process"]["env"] = serde_json::json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]);
    spec["process"]["terminal"] = serde_json::json!(false);
    spec["root"] = serde_json::json!({"path": "rootfs"});
    spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{namespace}/{id}"));
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .expect("write config.json");
    bundle
}

/// One container through `rt`'s shim; the duration of each of [`STEPS`].
fn round(ctd: &Containerd, rt: Runtime, dir: &Path, namespace: &str, id: &str) -> Vec<Duration> {
    let bundle = bundle(dir, namespace, id);
    let mut took = Vec::new();
    let t = Instant::now();
    let shim = ShimTask::start(ctd, rt, id, &bundle).unwrap_or_else(|e| panic!("{e}"));
    took.push(t.elapsed());
    let client = &shim.client;
    let timed = |took: &mut Vec<Duration>, f: &dyn Fn() -> Result<(), String>| {
        let t = Instant::now();
        f().unwrap_or_else(|e| panic!("{rt} {id}: {e}"));
        took.push(t.elapsed());
    };
    timed(&mut took, &|| {
        let req = api::CreateTaskRequest {
            id: id.into(),
            bundle: bundle.display().to_string(),
            ..Default::default()
        };
        client
            .create(ctx(), &req)
            .map(|_| ())
            .map_err(|e| format!("Create: {e}"))
    });
    timed(&mut took, &|| {
        let req = api::StartRequest {
            id: id.into(),
            ..Default::default()
        };
        client
            .start(ctx(), &req)
            .map(|_| ())
            .map_err(|e| format!("Start: {e}"))
    });
    timed(&mut took, &|| {
        let req = api::WaitRequest {
            id: id.into(),
            ..Default::default()
        };
        let status = client.wait(ctx(), &req).map_err(|e| format!("Wait: {e}"))?;
        match status.exit_status {
            0 => Ok(()),
            s => Err(format!("`true` exited {s}")),
        }
    });
    timed(&mut took, &|| {
        let req = api::DeleteRequest {
            id: id.into(),
            ..Default::default()
        };
        client
            .delete(ctx(), &req)
            .map(|_| ())
            .map_err(|e| format!("Delete: {e}"))
    });
    let mut shim = shim;
    let t = Instant::now();
    shim.shutdown();
    took.push(t.elapsed());
    let log = shim.stop_log();
    if log.contains("level=error") || log.contains(" ERROR ") {
        eprintln!("{rt} {id}: the shim logged errors:\n{log}");
    }
    let _ = std::fs::remove_dir_all(&bundle);
    took
}

/// Removes the cgroup `/namespace` the containers were put under, in
/// every hierarchy (the shims remove the containers' own).
fn remove_namespace_cgroups(namespace: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let dir = h.path().join(namespace);
        if dir.is_dir() {
            let _ = std::fs::remove_dir(&dir);
        }
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(namespace));
}

fn main() {
    let rounds = arg(1, 15);
    let ctd = Containerd::start();
    let namespace = ctd.namespace().to_string();
    let dir = ctd.dir().join("shim-bench");
    let runtimes = [Runtime::Runc, Runtime::Lxcri];
    let mut samples: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); STEPS.len()]; runtimes.len()];
    for round_no in 0..=rounds {
        let mut order: Vec<usize> = (0..runtimes.len()).collect();
        if round_no % 2 == 0 {
            order.reverse();
        }
        for i in order {
            let rt = runtimes[i];
            let id = format!("sb-{rt}-{round_no}");
            let took = round(&ctd, rt, &dir, &namespace, &id);
            if round_no == 0 {
                continue; // warm-up
            }
            for (step, d) in took.iter().enumerate() {
                samples[i][step].push(d.as_secs_f64() * 1000.0);
            }
        }
    }
    remove_namespace_cgroups(&namespace);

    println!("| step, median ms | runc shim | lxcri shim | lxcri/runc |");
    println!("|---|---|---|---|");
    let med = |i: usize, step: usize| median(&samples[i][step]);
    for (step, name) in STEPS.iter().enumerate() {
        let (r, l) = (med(0, step), med(1, step));
        println!("| {name} | {r:.1} | {l:.1} | {:.2} |", l / r);
    }
    // Create + Start + Delete per round, then the median of those sums.
    let csd = |i: usize| -> Vec<f64> {
        (0..rounds)
            .map(|n| samples[i][1][n] + samples[i][2][n] + samples[i][4][n])
            .collect()
    };
    let all = |i: usize| -> Vec<f64> {
        (0..rounds)
            .map(|n| (0..STEPS.len()).map(|s| samples[i][s][n]).sum())
            .collect()
    };
    let (r, l) = (median(&csd(0)), median(&csd(1)));
    println!(
        "| **Create + Start + Delete** | {r:.1} | {l:.1} | **{:.2}** |",
        l / r
    );
    let (r, l) = (median(&all(0)), median(&all(1)));
    println!("| all steps | {r:.1} | {l:.1} | {:.2} |", l / r);
    println!();
    for (i, rt) in runtimes.iter().enumerate() {
        let list: Vec<String> = csd(i).iter().map(|v| format!("{v:.0}")).collect();
        println!(
            "Create + Start + Delete samples (ms), {rt}: {}",
            list.join(" ")
        );
    }
}
