//! `containerd-shim-lxcri-v2`: containerd runtime v2 shim for lxcri
//! (`runtime_type = "io.containerd.lxcri.v2"`).

mod error;
mod events;
mod exec;
mod exits;
mod footprint;
mod info;
mod io;
mod listen_socket;
mod log_binary;
mod logging;
mod metrics;
mod oom;
mod op_metrics;
mod options;
mod output_copier;
mod process;
mod service;
mod shim;
mod stdio_uri;
mod task;
mod task_service;

// One thread: the shim mostly waits; blocking work goes to spawn_blocking.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    footprint::single_malloc_arena();
    // containerd 2.x introspection; the shim library would need
    // TTRPC_ADDRESS and a `runc` binary for it.
    if info::requested(std::env::args_os()) {
        if let Err(e) = info::run() {
            eprintln!("containerd-shim-lxcri-v2 -info: {}", error::chain(&e));
            std::process::exit(1);
        }
        return;
    }
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
    containerd_shim::asynchronous::run::<shim::LxcriShim>(info::RUNTIME_NAME, Some(config)).await;
    // Served and shut down (its socket gone): a refill of the pve warm
    // pool this shim started ends first, bounded (the pod may have been
    // removed right after its start).
    let _ = tokio::task::spawn_blocking(|| {
        lxcri::runtime::pve::finish_refills(REFILL_WAIT);
    })
    .await;
}

/// How long a shim that is done lets a warm pool refill it started finish.
const REFILL_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
