//! Pod start latency through containerd's CRI plugin, lxcri vs runc, in
//! the same run (benches/pod.sh runs it on release binaries).
//!
//!   pod-bench [N]    N interleaved rounds (default 15)
//!
//! One round per variant: RunPodSandbox + CreateContainer + StartContainer
//! until ContainerStatus says RUNNING (what the kubelet waits for), timed
//! from the client; then the pod is removed (not timed). One warm-up round
//! per variant is discarded and the order alternates every round. Prints a
//! Markdown table with medians and the lxcri/runc ratios. lxcri's backend
//! follows `LXCRI_E2E_BACKEND`, its binaries `LXCRI_E2E_BIN_DIR`.
//!
//! On pve (`LXCRI_E2E_BACKEND=pve`) pve-sim runs with `--pve-timing` (PVE's
//! latencies, see docs/pve-sim.md; `LXCRI_BENCH_PVE_TIMING=0` leaves them
//! out), and lxcri runs twice per round: without
//! and with the warm pool (`pve.warm_pool_size`, written into the CRI
//! handler's lxcri.toml before each pod; each of its rounds waits for two
//! members, as on a node whose pods arrive slower than refills). The
//! PVE requests about each pod's two CTs are counted from the stand-in's
//! log: API round trips (with a `GET /version` made before the sandbox's
//! first call) and task polls apart.

use std::time::{Duration, Instant};

use lxcri_e2e::bench::median;
use lxcri_e2e::cri::api::ContainerState;
use lxcri_e2e::cri::pod::{base_pod_config, Pod};
use lxcri_e2e::pve::{backend, BackendKind, PveSim};
use lxcri_e2e::pve_pool::{self as pool, is_poll, request_vmid};
use lxcri_e2e::{cmd, Containerd, Runtime};

/// Members kept by the pool variant: two pods' worth.
const POOL_SIZE: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Runc,
    Lxcri,
    /// lxcri on pve with the warm pool.
    LxcriPool,
}

impl Variant {
    fn runtime(self) -> Runtime {
        match self {
            Variant::Runc => Runtime::Runc,
            _ => Runtime::Lxcri,
        }
    }

    fn label(self, backend: &str) -> String {
        match self {
            Variant::Runc => "runc".into(),
            Variant::Lxcri => format!("lxcri ({backend})"),
            Variant::LxcriPool => format!("lxcri ({backend}, warm pool {POOL_SIZE})"),
        }
    }
}

/// PVE requests about one pod's CTs.
#[derive(Debug, Default, Clone, Copy)]
struct Requests {
    calls: usize,
    polls: usize,
}

fn set_pool(ctd: &Containerd, size: u32) {
    let text = match size {
        0 => String::new(),
        n => format!("[pve]\nwarm_pool_size = {n}\n"),
    };
    std::fs::write(ctd.lxcri_config_path(), text).expect("lxcri.toml");
}

/// The requests of the log from `from` on about `vmids`, and a `GET
/// /version` before the first of them (a shim's, on its critical path).
fn requests_of(sim: &PveSim, from: usize, vmids: &[u32]) -> Requests {
    let log = sim.requests();
    let log = log.get(from..).unwrap_or_default();
    let ours = |r: &serde_json::Value| request_vmid(r).is_some_and(|v| vmids.contains(&v));
    let first = log.iter().position(ours).unwrap_or(log.len());
    let version = log[..first]
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/version")))
        .count();
    let (polls, calls): (Vec<_>, Vec<_>) = log.iter().filter(|r| ours(r)).partition(|r| is_poll(r));
    Requests {
        calls: calls.len() + version.min(1),
        polls: polls.len(),
    }
}

fn pod_start(ctd: &Containerd, variant: Variant, round: usize) -> (Duration, Option<Requests>) {
    let rt = variant.runtime();
    let sim = ctd.pve().filter(|_| rt == Runtime::Lxcri);
    if let Some(sim) = sim {
        let size = if variant == Variant::LxcriPool {
            POOL_SIZE
        } else {
            0
        };
        set_pool(ctd, size);
        // The warm-up round fills the pool; a timed one waits for a pod's
        // worth of members (a refill may still be running, or have been
        // cut short, see docs/pve.md).
        let refilled = round == 0
            || size == 0
            || cmd::poll(Duration::from_secs(120), || {
                (pool::members(sim).len() >= 2).then_some(())
            })
            .is_some();
        if !refilled {
            eprintln!("round {round}: no 2 pool members after 120 s");
        }
    }
    let from = sim.map_or(0, |s| s.requests().len());
    let name = format!(
        "bench-{}-{round}",
        variant.label("x").replace([' ', '(', ')', ','], "")
    );
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
    let requests = sim.map(|sim| {
        let vmids: Vec<u32> = [pod.id.as_str(), id.as_str()]
            .iter()
            .filter_map(|c| sim.ct_of(ctd.namespace(), c).map(|(v, _)| v))
            .collect();
        requests_of(sim, from, &vmids)
    });
    pod.remove()
        .unwrap_or_else(|e| panic!("{rt}: removing the pod: {e}"));
    (elapsed, requests)
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("N: a number of rounds"))
        .unwrap_or(15);
    let on_pve = backend() == BackendKind::Pve;
    let (ctd, variants) = if on_pve {
        // LXCRI_BENCH_PVE_TIMING=0: the stand-in's own speed, to compare
        // with runs before it had PVE's latencies.
        let timing = std::env::var("LXCRI_BENCH_PVE_TIMING").map_or(true, |v| v != "0");
        let sim = PveSim::start_with(if timing { &["--pve-timing"] } else { &[] });
        let variants = vec![Variant::Runc, Variant::Lxcri, Variant::LxcriPool];
        (Containerd::start_cri_pve(sim), variants)
    } else {
        (Containerd::start_cri(), vec![Variant::Runc, Variant::Lxcri])
    };
    for v in &variants {
        pod_start(&ctd, *v, 0);
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut requests: Vec<Vec<Requests>> = vec![Vec::new(); variants.len()];
    for round in 1..=rounds {
        let mut order: Vec<usize> = (0..variants.len()).collect();
        if round % 2 == 0 {
            order.reverse();
        }
        for i in order {
            let (d, r) = pod_start(&ctd, variants[i], round);
            samples[i].push(d.as_secs_f64() * 1000.0);
            requests[i].extend(r);
        }
    }
    if let Some(sim) = ctd.pve() {
        if !pool::wait_refills_over(sim, &ctd.socket(), Duration::from_secs(120)) {
            eprintln!("refills still running after 120 s; draining anyway");
        }
        let out = pool::gc_force(sim, 0);
        if !out.success() {
            eprintln!("draining the pool: {out}");
        }
    }
    let backend = std::env::var("LXCRI_E2E_BACKEND").unwrap_or_else(|_| "lxc".into());
    let runc = median(&samples[0]);
    println!(
        "| pod start (RunPodSandbox + CreateContainer + StartContainer) | median ms | /runc |"
    );
    println!("|---|---|---|");
    for (v, s) in variants.iter().zip(&samples) {
        let m = median(s);
        println!("| {} | {m:.0} | **{:.2}** |", v.label(&backend), m / runc);
    }
    if on_pve {
        println!();
        println!("| PVE requests per CT start (sandbox and container), mean | API round trips | task polls |");
        println!("|---|---|---|");
        for (v, r) in variants.iter().zip(&requests).skip(1) {
            let cts = (2 * r.len()).max(1) as f64;
            let calls: usize = r.iter().map(|r| r.calls).sum();
            let polls: usize = r.iter().map(|r| r.polls).sum();
            println!(
                "| {} | {:.1} | {:.1} |",
                v.label(&backend),
                calls as f64 / cts,
                polls as f64 / cts
            );
        }
    }
    println!();
    for (v, s) in variants.iter().zip(&samples) {
        let list: Vec<String> = s.iter().map(|v| format!("{v:.0}")).collect();
        println!("Samples (ms), {}: {}", v.label(&backend), list.join(" "));
    }
}
