//! A private `lxcri exporter` and a private Prometheus (Debian's
//! `prometheus` package) scraping it, for the metrics tests. Both listen on
//! 127.0.0.1 only, keep their files in a temporary directory and are killed
//! on drop, also after a panic.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cmd;

/// A process the test started, killed and reaped on drop.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound and released: the caller binds it next).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// `lxcri exporter` on a free loopback port.
pub struct Exporter {
    _process: Owned,
    pub address: String,
}

impl Exporter {
    /// Starts it with `env` (the shims' `LXCRI_*` settings) and waits until
    /// it answers.
    pub fn start(bin_dir: &Path, env: &[(String, String)], log: &Path) -> Self {
        let address = format!("127.0.0.1:{}", free_port());
        let log_file = fs::File::create(log).expect("exporter log");
        let child = Command::new(bin_dir.join("lxcri"))
            .args(["exporter", "--web.listen-address", &address])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("starting lxcri exporter");
        let e = Exporter {
            _process: Owned(child),
            address,
        };
        let up = cmd::poll(Duration::from_secs(10), || e.try_scrape());
        assert!(
            up.is_some(),
            "lxcri exporter never answered: {}",
            fs::read_to_string(log).unwrap_or_default()
        );
        e
    }

    fn try_scrape(&self) -> Option<String> {
        let out = cmd::run(
            Command::new("curl").args(["-sf", &format!("http://{}/metrics", self.address)]),
            Duration::from_secs(10),
        );
        out.success().then_some(out.stdout)
    }

    pub fn scrape(&self) -> String {
        self.try_scrape().expect("scraping lxcri exporter")
    }
}

/// The value of the first sample of `name` whose labels contain every one
/// of `labels` (`key="value"` strings), from a scrape.
pub fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Sum of every sample of `name` with all of `labels`.
pub fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A Prometheus scraping one target every second.
pub struct Prometheus {
    _process: Owned,
    pub url: String,
    dir: PathBuf,
}

impl Prometheus {
    pub fn start(dir: &Path, target: &str) -> Self {
        fs::create_dir_all(dir).unwrap();
        let config = dir.join("prometheus.yml");
        let mut f = fs::File::create(&config).unwrap();
        write!(
            f,
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: lxcri\n    static_configs:\n      - targets: [\"{target}\"]\n"
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let log = fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting prometheus (apt install prometheus; scripts/install-deps does)");
        let p = Prometheus {
            _process: Owned(child),
            url: format!("http://{address}"),
            dir: dir.to_path_buf(),
        };
        let up = cmd::poll(Duration::from_secs(60), || {
            (p.query("up{job=\"lxcri\"} == 1").unwrap_or_default() > 0).then_some(())
        });
        assert!(
            up.is_some(),
            "prometheus never scraped {target}:\n{}",
            p.log()
        );
        p
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// How many series `expr` returns now (`promtool query instant`), or
    /// the error Prometheus gave.
    pub fn query(&self, expr: &str) -> Result<usize, String> {
        let out = cmd::run(
            Command::new("promtool")
                .args(["query", "instant", "-o", "json", "--", &self.url, expr]),
            Duration::from_secs(20),
        );
        if !out.success() {
            return Err(format!("{}{}", out.stdout, out.stderr));
        }
        let v: serde_json::Value =
            serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: {}", out.stdout))?;
        Ok(v.as_array().map(Vec::len).unwrap_or(0))
    }
}
