//! Create latency on a busy node (benches/scale.sh runs it on release
//! binaries; the backend follows `LXCRI_E2E_BACKEND`):
//!
//!   scale-bench [N] [LEVEL...]
//!
//! For each LEVEL (lxc default 0 100 300: lxcri containers running
//! `sleep` on the node; pve default 0 1000: CTs in the cluster, other
//! guests' stopped CTs whose configs are written into the stand-in's
//! `/etc/pve/lxc`), N timed `ctr run --rm IMG ID true` of lxcri (create,
//! start, exit, delete) after one warm-up; median, spread (min-max) and the
//! ratio to the first level. Nothing lxcri does per create may scan all
//! containers or CTs, so the ratio should stay near 1. Beside it, what
//! lxcri's shims themselves spent per run (create + start + delete, from
//! lxcri's metrics journal) and, as the control for what containerd and
//! the kernel add on a busy node, runc's `ctr run --rm` in the same rounds.
//! `LXCRI_SCALE_BACKGROUND=runc` runs the lxc levels' `sleep` containers on
//! runc instead: what the node's load costs whoever runs it, apart from
//! what lxcri's running containers cost others. Everything made is removed
//! at the end.

use std::time::Instant;

use lxcri_e2e::bench::median;
use lxcri_e2e::pve::BackendKind;
use lxcri_e2e::{image, on_each, pve, Containerd, Runtime};

/// The runtime of the busy node's `sleep` containers.
fn background() -> Runtime {
    match std::env::var("LXCRI_SCALE_BACKGROUND").as_deref() {
        Ok("runc") => Runtime::Runc,
        Ok("lxcri") | Err(_) => Runtime::Lxcri,
        Ok(other) => panic!("LXCRI_SCALE_BACKGROUND={other}: runc or lxcri"),
    }
}

/// Starts `count` more `sleep` containers of `rt`; returns their ids.
fn start_sleepers(ctd: &Containerd, rt: Runtime, count: usize) -> Vec<String> {
    let ids: Vec<String> = (0..count).map(|_| ctd.new_id("busy")).collect();
    on_each(&ids, 8, |id| {
        let out = ctd.ctr(&[
            "run",
            "-d",
            "--runtime",
            rt.containerd_name(),
            image::BUSYBOX_REF,
            id,
            "sleep",
            "100000",
        ]);
        assert!(out.success(), "ctr run -d {id}: {out}");
    });
    ids
}

/// Kills and removes `ids`.
fn remove_all(ctd: &Containerd, ids: &[String]) {
    on_each(ids, 8, |id| {
        let _ = ctd.kill(id, "SIGKILL");
        ctd.remove(id);
    });
}

/// Other guests' stopped CTs: `count` configs written into the stand-in's
/// config dir from `first` on (as pmxcfs shows a cluster's CTs).
fn seed_cts(sim: &pve::PveSim, first: u32, count: u32) -> Vec<std::path::PathBuf> {
    (first..first + count)
        .map(|vmid| {
            let path = sim.config_file(vmid);
            let text = format!(
                "arch: amd64\nhostname: guest{vmid}\nmemory: 512\nostype: debian\n\
                 rootfs: local-zfs:subvol-{vmid}-disk-0,size=8G\nswap: 512\n"
            );
            std::fs::write(&path, text).expect("write a CT config");
            path
        })
        .collect()
}

/// Seconds and count of each operation lxcri's shims timed (create, start,
/// delete), from its metrics journal (`RUN_ROOT/.metrics/ops.json`).
fn shim_time(backend: &str) -> (f64, u64) {
    let path = std::path::Path::new(lxcri_e2e::LXCRI_RUN_ROOT).join(".metrics/ops.json");
    let journal: serde_json::Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let op = |name: &str| {
        let d = &journal["durations"][format!("{name}/{backend}")];
        let count: u64 = d["counts"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c.as_u64()).sum())
            .unwrap_or(0);
        (d["sum"].as_f64().unwrap_or(0.0), count)
    };
    let (create, n) = op("create");
    let (start, _) = op("start");
    let (delete, _) = op("delete");
    (create + start + delete, n)
}

/// One level's figures: `ctr run --rm` of lxcri, lxcri's shim-side time
/// per run (create + start + delete, ms), and `ctr run --rm` of runc.
struct Level {
    lxcri: Vec<f64>,
    shim_ms: f64,
    runc: Vec<f64>,
}

fn timed(ctd: &Containerd, rt: Runtime) -> f64 {
    let id = ctd.new_id("timed");
    let t = Instant::now();
    let out = ctd.run(rt, &id, &["true"], &[]);
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(out.success(), "ctr run --rm {id} ({rt}): {out}");
    ms
}

/// N rounds of one lxcri and one runc run (order alternating), after a
/// warm-up of each.
fn timed_runs(ctd: &Containerd, n: usize, backend: &str) -> Level {
    timed(ctd, Runtime::Lxcri);
    timed(ctd, Runtime::Runc);
    let (before, count_before) = shim_time(backend);
    let mut level = Level {
        lxcri: Vec::new(),
        shim_ms: 0.0,
        runc: Vec::new(),
    };
    for round in 0..n {
        if round % 2 == 0 {
            level.lxcri.push(timed(ctd, Runtime::Lxcri));
            level.runc.push(timed(ctd, Runtime::Runc));
        } else {
            level.runc.push(timed(ctd, Runtime::Runc));
            level.lxcri.push(timed(ctd, Runtime::Lxcri));
        }
    }
    let (after, count_after) = shim_time(backend);
    level.shim_ms = (after - before) * 1000.0 / (count_after - count_before).max(1) as f64;
    level
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse().expect("N: a number"))
        .unwrap_or(9);
    let on_pve = pve::backend() == BackendKind::Pve;
    let mut levels: Vec<usize> = args.map(|a| a.parse().expect("LEVEL: a number")).collect();
    if levels.is_empty() {
        levels = if on_pve {
            vec![0, 1000]
        } else {
            vec![0, 100, 300]
        };
    }
    let ctd = Containerd::start();
    ctd.import_busybox();
    let mut running: Vec<String> = Vec::new();
    let mut seeded: Vec<std::path::PathBuf> = Vec::new();
    let mut rows = Vec::new();
    for &level in &levels {
        if on_pve {
            let sim = ctd.pve().expect("the pve backend runs on pve-sim");
            let have = seeded.len() as u32;
            // Other guests' VMIDs, outside the range lxcri allocates from
            // (which they would otherwise use up).
            let first = sim.vmid_range.1 + 1 + have;
            seeded.extend(seed_cts(sim, first, level as u32 - have.min(level as u32)));
        } else {
            running.extend(start_sleepers(
                &ctd,
                background(),
                level.saturating_sub(running.len()),
            ));
        }
        let backend = if on_pve { "pve" } else { "lxc" };
        rows.push((level, timed_runs(&ctd, n, backend)));
    }
    remove_all(&ctd, &running);
    for path in &seeded {
        let _ = std::fs::remove_file(path);
    }

    let what = if on_pve {
        "CTs in the cluster (pve-sim)".to_string()
    } else {
        format!("{} containers running (lxc)", background())
    };
    let first = &rows[0].1;
    let (base, shim_base, runc_base) = (median(&first.lxcri), first.shim_ms, median(&first.runc));
    println!(
        "| {what} | lxcri `ctr run --rm IMG true`, median ms | min-max | / first level \
         | lxcri shim-side ms | / first level | runc, median ms | / first level |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (level, l) in &rows {
        let m = median(&l.lxcri);
        let min = l.lxcri.iter().copied().fold(f64::INFINITY, f64::min);
        let max = l.lxcri.iter().copied().fold(0.0, f64::max);
        let r = median(&l.runc);
        println!(
            "| {level} | {m:.0} | {min:.0}-{max:.0} | **{:.2}** | {:.1} | **{:.2}** | {r:.0} | {:.2} |",
            m / base,
            l.shim_ms,
            l.shim_ms / shim_base,
            r / runc_base
        );
    }
    println!();
    for (level, l) in &rows {
        let list = |v: &[f64]| {
            v.iter()
                .map(|v| format!("{v:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "Samples (ms) at {level}: lxcri {}; runc {}",
            list(&l.lxcri),
            list(&l.runc)
        );
    }
}
