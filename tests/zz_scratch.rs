use std::time::Instant;
fn spawn_many(n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        std::process::Command::new("/bin/true").status().unwrap();
    }
    t.elapsed().as_secs_f64() * 1000.0 / n as f64
}
#[test]
#[ignore = "scratch"]
fn connector_fanout() {
    spawn_many(100);
    let base = spawn_many(500);
    let mut mons = Vec::new();
    for _ in 0..300 {
        let m = lxcri::proc_events::ExitMonitor::open().unwrap();
        m.watch(1).unwrap();
        mons.push(m);
    }
    let with = spawn_many(500);
    drop(mons);
    let after = spawn_many(500);
    eprintln!(
        "spawn+wait /bin/true ms: none {base:.3}, 300 listeners {with:.3}, none again {after:.3}"
    );
}
#[test]
#[ignore = "scratch"]
fn hold_listeners() {
    let n: usize = std::env::var("N").unwrap().parse().unwrap();
    let secs: u64 = std::env::var("SECS").unwrap().parse().unwrap();
    let mut mons = Vec::new();
    for _ in 0..n {
        let m = lxcri::proc_events::ExitMonitor::open().unwrap();
        m.watch(1).unwrap();
        mons.push(m);
    }
    eprintln!("holding {n}");
    std::thread::sleep(std::time::Duration::from_secs(secs));
}
