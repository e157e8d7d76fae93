//! Shim logs: tracing to containerd's `log` FIFO in the bundle (containerd
//! copies it into its own log), and to journald as well when the node runs
//! it, so logs outlive the containerd that read the FIFO.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use lxcri::config::LogLevel;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, Layer};

const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";

pub fn init(level: LogLevel, namespace: &str, id: &str) {
    let fifo = OpenOptions::new().write(true).open("log").ok().map(|f| {
        fmt::layer()
            .with_ansi(false)
            .with_target(false)
            .with_writer(Mutex::new(f))
            .boxed()
    });
    let journald = Path::new(JOURNALD_SOCKET)
        .exists()
        .then(|| tracing_journald::layer().ok())
        .flatten()
        .map(|l| {
            l.with_syslog_identifier("containerd-shim-lxcri-v2".into())
                .boxed()
        });
    let result = tracing_subscriber::registry()
        .with(LevelFilter::from_level(level.into()))
        .with(fifo)
        .with(journald)
        .try_init();
    if result.is_ok() {
        tracing::info!(namespace, id, "lxcri shim serving");
    }
}
