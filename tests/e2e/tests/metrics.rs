//! `lxcri exporter` under a real Prometheus, on both backends: the output
//! passes `promtool check metrics`; containerd's own `/v1/metrics` reads
//! the shim's `Stats` of the same containers; the figures match what the containers
//! did (a process holding 64 MiB, a busy loop, a create that fails); and
//! every query of the shipped Grafana dashboard, its variables filled in,
//! returns series from that Prometheus (the PVE panels on the pve backend).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use lxcri_e2e::containerd::bin_dir;
use lxcri_e2e::prometheus::{sample, sum, Exporter, Prometheus};
use lxcri_e2e::pve::{backend, BackendKind, PveSim};
use lxcri_e2e::zfs::ZfsPool;
use lxcri_e2e::{cmd, require, unique_name, Containerd, Runtime};

const MIB: f64 = 1024.0 * 1024.0;

/// The dashboard's queries, `(panel title, expr)`.
fn dashboard_queries() -> Vec<(String, String)> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/lxcri-dashboard.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap().to_string(),
                t["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// Queries with series only when `rootfs.mode = "zfs"`.
fn zfs_only(title: &str, expr: &str) -> bool {
    title.contains("ZFS") || expr.contains("container_fs_limit_bytes")
}

/// The panel's query as Grafana sends it with every variable at "All".
fn filled(expr: &str) -> String {
    expr.replace("$__rate_interval", "15s")
        .replace("$__range", "5m")
        .replace("$node", ".*")
        .replace("$namespace", ".*")
        .replace("$pod", ".*")
}

/// Every dashboard query `wanted(title, expr)` picks returns series from `prom`.
#[track_caller]
fn assert_queries_return_series(prom: &Prometheus, wanted: impl Fn(&str, &str) -> bool) {
    let mut empty = Vec::new();
    for (title, expr) in dashboard_queries() {
        if !wanted(&title, &expr) {
            continue;
        }
        match prom.query(&filled(&expr)) {
            Ok(n) if n > 0 => {}
            Ok(_) => empty.push(format!("{title}: {expr}")),
            Err(e) => empty.push(format!("{title}: {expr}: {e}")),
        }
    }
    assert!(
        empty.is_empty(),
        "dashboard queries without series:\n{}",
        empty.join("\n")
    );
}

fn promtool_check(text: &str) -> cmd::CmdOutput {
    cmd::run_with_stdin(
        Command::new("promtool").args(["check", "metrics"]),
        Some(text.as_bytes()),
        Duration::from_secs(20),
    )
}

#[test]
#[ignore = "needs root, containerd, LXC and Debian's prometheus: run by scripts/test"]
fn prometheus_sees_what_the_containers_do() {
    if !require(Runtime::Lxcri, "metrics") {
        return;
    }
    let ctd = Containerd::start_with_metrics(&[]);
    ctd.import_busybox();
    let env = ctd.pve().map(|sim| sim.env()).unwrap_or_default();
    let exporter = Exporter::start(&bin_dir(), &env, &ctd.dir().join("exporter.log"));
    let prom = Prometheus::start(&ctd.dir().join("prometheus"), &exporter.address);
    let before = exporter.scrape();
    let failed_before = sum(
        &before,
        "lxcri_operation_failures_total",
        &["operation=\"create\""],
    );

    if let Some(sim) = ctd.pve() {
        // One failing API call (it only costs the VMID hint): the PVE
        // error panels have something to show.
        sim.fault(r#"{"path_regex": "^/cluster/nextid$", "status": 500, "message": "hint down"}"#);
    }
    // dd fills a 64 MiB buffer from /dev/zero, then blocks writing it to a
    // pipe nobody reads: 64 MiB of anonymous memory held.
    let mem = ctd.new_id("mem");
    ctd.run_detached(
        Runtime::Lxcri,
        &mem,
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/written bs=1M count=8 && dd if=/dev/zero bs=64M count=1 | sleep 100000",
        ],
        &["--memory-limit", &(256u64 << 20).to_string()],
    );
    let busy = ctd.new_id("busy");
    ctd.run_detached(
        Runtime::Lxcri,
        &busy,
        &["sh", "-c", "while :; do :; done"],
        &[],
    );
    let bad = ctd.new_id("bad");
    let missing = format!("/nonexistent-{}", unique_name("src"));
    let out = ctd.run(
        Runtime::Lxcri,
        &bad,
        &["true"],
        &[
            "--mount",
            &format!("type=bind,src={missing},dst=/x,options=rbind"),
        ],
    );
    assert!(
        !out.success(),
        "a bind of a missing source must fail: {out}"
    );

    let id = |c: &str| format!("container_id=\"{c}\"");
    let held = cmd::poll(Duration::from_secs(30), || {
        let text = exporter.scrape();
        sample(&text, "container_memory_working_set_bytes", &[&id(&mem)])
            .filter(|v| *v >= 64.0 * MIB)
            .map(|_| text)
    });
    let text = held.unwrap_or_else(|| {
        panic!(
            "the 64 MiB the container holds never showed:\n{}",
            exporter.scrape()
        )
    });
    let check = promtool_check(&text);
    assert!(check.success(), "promtool check metrics: {check}\n{text}");
    // containerd's own view of the same task, from the shim's Stats.
    let ctd_metrics = ctd
        .scrape_metrics()
        .unwrap_or_else(|e| panic!("containerd /v1/metrics: {e}"));
    assert!(
        ctd_metrics
            .lines()
            .any(|l| l.starts_with("container_memory_usage") && l.contains(&id(&mem))),
        "containerd's /v1/metrics has no memory of {mem}:\n{ctd_metrics}"
    );
    let written = cmd::poll(Duration::from_secs(30), || {
        sample(&exporter.scrape(), "container_fs_usage_bytes", &[&id(&mem)])
            .filter(|v| *v >= 8.0 * MIB)
    });
    assert!(
        written.is_some(),
        "the 8 MiB written to the rootfs never showed:\n{}",
        exporter.scrape()
    );
    let limit = sample(&text, "container_spec_memory_limit_bytes", &[&id(&mem)]);
    assert_eq!(limit, Some((256u64 << 20) as f64), "{text}");
    let backend = if ctd.pve().is_some() { "pve" } else { "lxc" };
    assert!(
        text.contains(&format!("backend=\"{backend}\"")),
        "labels name the backend: {text}"
    );
    if ctd.pve().is_some() {
        let line = text
            .lines()
            .find(|l| l.starts_with("container_memory_usage_bytes") && l.contains(&id(&mem)))
            .unwrap();
        assert!(
            line.contains("id=\"lxc/") && line.contains("vmid=\""),
            "{line}"
        );
    }

    // A busy loop burns about a core: over 3 s at least one second of CPU.
    let cpu =
        |text: &str| sample(text, "container_cpu_usage_seconds_total", &[&id(&busy)]).unwrap();
    let first = cpu(&exporter.scrape());
    std::thread::sleep(Duration::from_secs(3));
    let burnt = cpu(&exporter.scrape()) - first;
    assert!(burnt >= 1.0, "busy loop: {burnt} s of CPU in 3 s");

    let text = exporter.scrape();
    let failed = sum(
        &text,
        "lxcri_operation_failures_total",
        &["operation=\"create\"", "cause=\"spec\""],
    );
    assert!(
        sum(
            &text,
            "lxcri_operation_failures_total",
            &["operation=\"create\""]
        ) >= failed_before + 1.0
            && failed >= 1.0,
        "the failed create is counted: {text}"
    );
    assert!(
        sum(
            &text,
            "lxcri_operation_duration_seconds_count",
            &["operation=\"create\"", &format!("backend=\"{backend}\"")]
        ) >= 2.0,
        "{text}"
    );
    if backend == "pve" {
        assert!(
            sum(&text, "lxcri_pve_api_requests_total", &["outcome=\"ok\""]) > 0.0,
            "{text}"
        );
        assert!(
            sample(&text, "lxcri_pve_vmids_used", &[]).unwrap_or(0.0) >= 2.0,
            "{text}"
        );
        let failed_calls = sum(&text, "lxcri_pve_api_requests_total", &["outcome=\"5xx\""]);
        assert!(failed_calls >= 1.0, "the injected 500 is counted: {text}");
        let waits = sum(&text, "lxcri_pve_task_wait_seconds_count", &[]);
        assert!(waits >= 2.0, "PVE tasks waited for: {text}");
    }

    // Some scrapes after the containers started, so rates have two points.
    std::thread::sleep(Duration::from_secs(5));
    // ZFS figures are tested by the zfs-mode test below.
    assert_queries_return_series(&prom, |title, expr| {
        let pve_panel = title.contains("PVE") || title.contains("VMID");
        (backend == "pve" || !pve_panel) && !zfs_only(title, expr)
    });

    for c in [&mem, &busy] {
        ctd.remove(c);
    }
    for c in [&mem, &busy, &bad] {
        assert!(ctd.leftovers(c).is_empty(), "{c}: {:?}", ctd.leftovers(c));
    }
}

/// The shipped alert rules load and fire as their unit tests say
/// (deploy/prometheus/lxcri-rules.test.yml), and the scrape snippet is a
/// valid scrape config.
#[test]
#[ignore = "needs Debian's prometheus (promtool): run by scripts/test"]
fn alert_rules_and_scrape_config_pass_promtool() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus");
    for args in [
        vec!["check", "rules", "lxcri-rules.yml"],
        vec!["test", "rules", "lxcri-rules.test.yml"],
    ] {
        let out = cmd::run(
            Command::new("promtool").args(&args).current_dir(&deploy),
            Duration::from_secs(60),
        );
        assert!(out.success(), "promtool {args:?}: {out}");
    }
    let dir = tempfile::tempdir().unwrap();
    let snippet = std::fs::read_to_string(deploy.join("lxcri-scrape.yml")).unwrap();
    let indented: String = snippet.lines().map(|l| format!("  {l}\n")).collect();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "scrape_configs:\n{indented}rule_files:\n  - {}\n",
            deploy.join("lxcri-rules.yml").display()
        ),
    )
    .unwrap();
    let out = cmd::run(
        Command::new("promtool")
            .args(["check", "config"])
            .arg(&config),
        Duration::from_secs(60),
    );
    assert!(out.success(), "promtool check config: {out}");
}

/// `rootfs.mode = "zfs"`: a container's volume shows with its `used` and
/// `refquota`, the image dataset and clone are counted, and the dashboard's
/// ZFS and root filesystem queries return series.
#[test]
#[ignore = "needs root, containerd, LXC, zfs-fuse and Debian's prometheus: run by scripts/test"]
fn zfs_volumes_and_datasets_show() {
    if !require(Runtime::Lxcri, "metrics on zfs") {
        return;
    }
    let pool = ZfsPool::create();
    pool.create("data", &[]);
    let data = pool.dataset("data");
    let settings = [
        ("LXCRI_ROOTFS_MODE", "zfs"),
        ("LXCRI_ZFS_POOL", data.as_str()),
        ("LXCRI_ZFS_SIZE", "256M"),
    ];
    let ctd = if backend() == BackendKind::Pve {
        let mut sim = PveSim::start_with(&["--zfs-storage", &format!("lxcri-zfs={data}")]);
        sim.set_env("LXCRI_PVE_STORAGE", "lxcri-zfs");
        for (k, v) in &settings {
            sim.set_env(k, v);
        }
        Containerd::start_pve(sim)
    } else {
        Containerd::start_with_env(&settings)
    };
    ctd.import_busybox();
    let mut env: Vec<(String, String)> = ctd.pve().map(|sim| sim.env()).unwrap_or_default();
    env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let exporter = Exporter::start(&bin_dir(), &env, &ctd.dir().join("exporter.log"));
    let prom = Prometheus::start(&ctd.dir().join("prometheus"), &exporter.address);

    let c = ctd.new_id("zfsm");
    ctd.run_detached(
        Runtime::Lxcri,
        &c,
        &[
            "sh",
            "-c",
            "dd if=/dev/urandom of=/written bs=1M count=16 && sync && sleep 100000",
        ],
        &[],
    );
    let label = format!("container_id=\"{c}\"");
    let text = cmd::poll(Duration::from_secs(60), || {
        let text = exporter.scrape();
        sample(&text, "container_fs_usage_bytes", &[&label])
            .filter(|v| *v >= 16.0 * MIB)
            .map(|_| text)
    })
    .unwrap_or_else(|| panic!("the 16 MiB written never showed:\n{}", exporter.scrape()));
    assert_eq!(
        sample(&text, "container_fs_limit_bytes", &[&label]),
        Some((256u64 << 20) as f64),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("container_fs_usage_bytes") && l.contains(&label))
        .unwrap();
    assert!(line.contains(&format!("device=\"{data}/")), "{line}");
    assert!(
        sample(&text, "lxcri_zfs_image_datasets", &[]).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "lxcri_zfs_container_clones", &[]).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    let check = promtool_check(&text);
    assert!(check.success(), "promtool check metrics: {check}");

    std::thread::sleep(Duration::from_secs(3));
    assert_queries_return_series(&prom, zfs_only);
    ctd.remove(&c);
    assert!(ctd.leftovers(&c).is_empty(), "{:?}", ctd.leftovers(&c));
}
