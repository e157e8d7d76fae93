//! Pod start latency through containerd's CRI plugin, lxcri vs runc, in
//! the same run (benches/pod.sh runs it on release binaries).
//!
//!   pod-bench [N]    N interleaved rounds (default 15)
//!
//! One round per runtime: RunPodSandbox + CreateContainer + StartContainer
//! until ContainerStatus says RUNNING (what the kubelet waits for), timed
//! from the client; then the pod is removed (not timed). One warm-up round
//! per runtime is discarded and the order alternates every round. Prints a
//! Markdown table with medians and the lxcri/runc ratio. lxcri's backend
//! follows `LXCRI_E2E_BACKEND`, its binaries `LXCRI_E2E_BIN_DIR`.

use std::time::{Duration, Instant};

use lxcri_e2e::cri::api::ContainerState;
use lxcri_e2e::cri::pod::{base_pod_config, Pod};
use lxcri_e2e::{Containerd, Runtime};

fn pod_start(ctd: &Containerd, rt: Runtime, round: usize) -> Duration {
    let name = format!("bench-{rt}-{round}");
    let config = base_pod_config(ctd, &name, false);
    let started = Instant::now();
    let pod = Pod::run(ctd, rt, config).unwrap_or_else(|e| panic!("{rt}: RunPodSandbox: {e}"));
    let id = pod.start(pod.container("app", &["sleep", "1000"]));
    pod.wait_state(
        &id,
        ContainerState::ContainerRunning,
        Duration::from_secs(60),
    );
    let elapsed = started.elapsed();
    pod.remove()
        .unwrap_or_else(|e| panic!("{rt}: removing the pod: {e}"));
    elapsed
}

fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("N: a number of rounds"))
        .unwrap_or(15);
    let ctd = Containerd::start_cri();
    let runtimes = [Runtime::Runc, Runtime::Lxcri];
    for rt in runtimes {
        pod_start(&ctd, rt, 0);
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); runtimes.len()];
    for round in 1..=rounds {
        let mut order: Vec<usize> = (0..runtimes.len()).collect();
        if round % 2 == 0 {
            order.reverse();
        }
        for i in order {
            let d = pod_start(&ctd, runtimes[i], round);
            samples[i].push(d.as_secs_f64() * 1000.0);
        }
    }
    let (runc, lxcri) = (median(&samples[0]), median(&samples[1]));
    let backend = std::env::var("LXCRI_E2E_BACKEND").unwrap_or_else(|_| "lxc".into());
    println!("| metric | runc | lxcri ({backend}) | lxcri/runc |");
    println!("|---|---|---|---|");
    println!(
        "| pod start (RunPodSandbox + CreateContainer + StartContainer), median ms | {runc:.0} | {lxcri:.0} | **{:.2}** |",
        lxcri / runc
    );
    println!();
    for (rt, s) in runtimes.iter().zip(&samples) {
        let list: Vec<String> = s.iter().map(|v| format!("{v:.0}")).collect();
        println!("Samples (ms), {rt}: {}", list.join(" "));
    }
}
