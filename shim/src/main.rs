//! `containerd-shim-lxcri-v2`: containerd runtime v2 shim for lxcri
//! (`runtime_type = "io.containerd.lxcri.v2"`).

mod error;
mod events;
mod exec;
mod exits;
mod io;
mod logging;
mod metrics;
mod options;
mod process;
mod service;
mod shim;
mod task;
mod task_service;

// One thread: the shim mostly waits; blocking work goes to spawn_blocking.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    // Set before the crate installs its signal handlers: its SIGCHLD reaper
    // would race tokio and std for our children (ECHILD), and as a
    // subreaper we would inherit LXC's daemonized monitors. Tracing goes to
    // the log FIFO instead of the crate's logger.
    let config = containerd_shim::Config {
        no_setup_logger: true,
        no_reaper: true,
        no_sub_reaper: true,
        ..Default::default()
    };
    containerd_shim::asynchronous::run::<shim::LxcriShim>("io.containerd.lxcri.v2", Some(config))
        .await;
}
