//! Load and soak on one node, with lxcri (benches/load.sh runs it on
//! release binaries; the backend follows `LXCRI_E2E_BACKEND`):
//!
//!   load-bench [RUNS] [PODS] [LIFECYCLES]     defaults 50, 30, 1000
//!
//! 1. RUNS concurrent `ctr run -d` of busybox `sleep`, all running at
//!    once, then killed and deleted concurrently;
//! 2. PODS concurrent CRI pods (sandbox + 2 containers until RUNNING, then
//!    removed);
//! 3. a soak: LIFECYCLES sequential containers (create, start, exit,
//!    remove) in one long-lived pod, sampling its shim's RSS, open fds and
//!    threads along the way.
//!
//! Counts failures, checks that every container left nothing (and, on
//! pve, that no two containers had the same VMID and no CT is left), and
//! prints Markdown tables. Exits non-zero on any failure or leftover.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lxcri_e2e::cri::api::ContainerState;
use lxcri_e2e::cri::pod::{base_pod_config, Pod};
use lxcri_e2e::{cleanup, Containerd, Runtime, LXCRI_SHIM};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map(|a| a.parse().expect("a number"))
        .unwrap_or(default)
}

/// RSS (KiB), open fds and threads of process `pid`.
fn footprint(pid: i32) -> (u64, usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (field("VmRSS:"), fds, field("Threads:") as usize)
}

/// Containers of `ctd` that left something behind.
fn leftovers(ctd: &Containerd, ids: &[String]) -> Vec<String> {
    ids.iter().flat_map(|id| ctd.leftovers(id)).collect()
}

/// RUNS concurrent `ctr run -d` of a `sleep`, all running at once (on pve:
/// the CTs' VMIDs), then concurrent kills and deletes.
fn concurrent_runs(ctd: &Containerd, runs: usize) -> (usize, Duration, Vec<String>, Vec<u32>) {
    let ids: Vec<String> = (0..runs).map(|_| ctd.new_id("load")).collect();
    let failed = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for id in &ids {
            let failed = &failed;
            s.spawn(move || {
                let out = ctd.ctr(&[
                    "run",
                    "-d",
                    "--runtime",
                    "io.containerd.lxcri.v2",
                    lxcri_e2e::image::BUSYBOX_REF,
                    id,
                    "sleep",
                    "1000",
                ]);
                if !out.success() {
                    eprintln!("ctr run {id}: {out}");
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let vmids: Vec<u32> = ctd
        .pve()
        .map(|sim| {
            ids.iter()
                .filter_map(|id| sim.ct_of(ctd.namespace(), id).map(|c| c.0))
                .collect()
        })
        .unwrap_or_default();
    std::thread::scope(|s| {
        for id in &ids {
            s.spawn(move || {
                ctd.kill(id, "SIGKILL").ok();
                ctd.wait_status(id, "STOPPED");
                ctd.remove(id);
            });
        }
    });
    (failed.into_inner(), started.elapsed(), ids, vmids)
}

fn concurrent_pods(ctd: &Containerd, pods: usize) -> (usize, Duration) {
    let failed = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for n in 0..pods {
            let failed = &failed;
            s.spawn(move || {
                let config = base_pod_config(ctd, &format!("load-{n}"), false);
                let result = Pod::run(ctd, Runtime::Lxcri, config).and_then(|pod| {
                    for name in ["a", "b"] {
                        let id = pod.create(pod.container(name, &["sleep", "1000"]))?;
                        ctd.cri().start_container(&id)?;
                        pod.wait_state(
                            &id,
                            ContainerState::ContainerRunning,
                            Duration::from_secs(120),
                        );
                    }
                    pod.remove()
                });
                if let Err(e) = result {
                    eprintln!("pod load-{n}: {e}");
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    (failed.into_inner(), started.elapsed())
}

/// (lifecycles done, failures, samples of (done, rss KiB, fds, threads)).
fn soak(ctd: &Containerd, lifecycles: usize) -> (usize, Vec<(usize, u64, usize, usize)>) {
    let config = base_pod_config(ctd, "soak", false);
    let pod = Pod::run(ctd, Runtime::Lxcri, config).expect("RunPodSandbox");
    let shim = cleanup::processes()
        .into_iter()
        .find(|(_, c)| c.contains(LXCRI_SHIM) && c.contains(&pod.id) && !c.ends_with(" start"))
        .map(|(p, _)| p)
        .expect("the pod's shim");
    let mut samples = vec![];
    let mut failed = 0;
    let every = (lifecycles / 10).max(1);
    for n in 0..lifecycles {
        if n % every == 0 {
            let (rss, fds, threads) = footprint(shim);
            samples.push((n, rss, fds, threads));
        }
        let name = format!("c{n}");
        let result = pod.create(pod.container(&name, &["true"])).and_then(|id| {
            ctd.cri().start_container(&id)?;
            pod.wait_state(
                &id,
                ContainerState::ContainerExited,
                Duration::from_secs(60),
            );
            ctd.cri().remove_container(&id)
        });
        if let Err(e) = result {
            eprintln!("soak lifecycle {n}: {e}");
            failed += 1;
        }
    }
    let (rss, fds, threads) = footprint(shim);
    samples.push((lifecycles, rss, fds, threads));
    pod.remove().expect("removing the soak pod");
    (failed, samples)
}

fn main() {
    let (runs, pods, lifecycles) = (arg(1, 50), arg(2, 30), arg(3, 1000));
    let backend = std::env::var("LXCRI_E2E_BACKEND").unwrap_or_else(|_| "lxc".into());
    let mut bad = false;

    let ctd = Containerd::start();
    ctd.import_busybox();
    let (failed, took, ids, vmids) = concurrent_runs(&ctd, runs);
    let left = leftovers(&ctd, &ids);
    let distinct: BTreeSet<&u32> = vmids.iter().collect();
    let ct_left = ctd.pve().map(|sim| sim.leftovers()).unwrap_or_default();
    println!("| load ({backend}) | count | failures | wall s | left behind | CTs running at once (distinct VMIDs) |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| concurrent `ctr run -d` until all run, then concurrent kill + delete | {runs} | {failed} | {:.1} | {} | {} ({}) |",
        took.as_secs_f64(),
        left.len() + ct_left.len(),
        vmids.len(),
        distinct.len()
    );
    bad |= failed > 0 || !left.is_empty() || !ct_left.is_empty() || distinct.len() != vmids.len();
    for l in left.iter().chain(&ct_left) {
        eprintln!("left behind: {l}");
    }
    drop(ctd);

    let ctd = Containerd::start_cri();
    let (failed, took) = concurrent_pods(&ctd, pods);
    let ct_left = ctd.pve().map(|sim| sim.leftovers()).unwrap_or_default();
    println!(
        "| concurrent CRI pods (sandbox + 2 containers) | {pods} | {failed} | {:.1} | {} | |",
        took.as_secs_f64(),
        ct_left.len()
    );
    bad |= failed > 0 || !ct_left.is_empty();

    let started = Instant::now();
    let (failed, samples) = soak(&ctd, lifecycles);
    let ct_left = ctd.pve().map(|sim| sim.leftovers()).unwrap_or_default();
    println!(
        "| sequential lifecycles in one pod | {lifecycles} | {failed} | {:.1} | {} | |",
        started.elapsed().as_secs_f64(),
        ct_left.len()
    );
    bad |= failed > 0 || !ct_left.is_empty();
    println!();
    println!("| soak: lifecycles done | pod shim RSS KiB | open fds | threads |");
    println!("|---|---|---|---|");
    for (n, rss, fds, threads) in &samples {
        println!("| {n} | {rss} | {fds} | {threads} |");
    }
    // Flat: the end within 2 MiB, 4 fds and 2 threads of the first sample
    // after warm-up (the second).
    if let (Some(base), Some(end)) = (samples.get(1), samples.last()) {
        let grew = end.1 > base.1 + 2048 || end.2 > base.2 + 4 || end.3 > base.3 + 2;
        if grew {
            eprintln!("the pod's shim grew during the soak: {base:?} -> {end:?}");
            bad = true;
        }
    }
    drop(ctd);
    if bad {
        std::process::exit(1);
    }
}
