//! `containerd-shim-lxcri-v2`: containerd runtime v2 shim for lxcri
//! (`runtime_type = "io.containerd.lxcri.v2"`).

mod container;
mod error;
mod events;
mod exec;
mod io;
mod logging;
mod metrics;
mod options;
mod process;
mod service;
mod shim;
mod task;

#[tokio::main]
async fn main() {
    containerd_shim::asynchronous::run::<shim::LxcriShim>("io.containerd.lxcri.v2", None).await;
}
