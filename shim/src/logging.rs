//! Shim logs: tracing to containerd's `log` FIFO in the bundle (containerd
//! forwards it to its own log), falling back to stderr of the daemonized
//! process, which containerd discards.

use std::fs::OpenOptions;
use std::sync::Mutex;

use lxcri::config::LogLevel;
use tracing_subscriber::EnvFilter;

pub fn init(level: LogLevel, namespace: &str, id: &str) {
    let filter = EnvFilter::new(level.as_str());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false);
    let result = match OpenOptions::new().write(true).open("log") {
        Ok(fifo) => builder.with_writer(Mutex::new(fifo)).try_init(),
        Err(_) => builder.with_writer(std::io::stderr).try_init(),
    };
    if result.is_ok() {
        tracing::info!(namespace, id, "lxcri shim serving");
    }
}
