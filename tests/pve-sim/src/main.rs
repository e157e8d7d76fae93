//! `pve-sim`: a Proxmox VE node stand-in for lxcri's tests (not shipped). See docs/pve-sim.md.

mod api;
mod cli;
mod faults;
mod log;
mod lxc;
mod schema;
mod server;
mod storage;
mod store;
mod tasks;
mod tls;
mod zfs_storage;

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

fn main() -> Result<()> {
    let args = cli::Args::parse();
    let Some((token_id, secret)) = args.token.rsplit_once('=') else {
        bail!("--token must be USER@REALM!ID=SECRET");
    };
    if !token_id.contains('@') || !token_id.contains('!') {
        bail!("--token must be USER@REALM!ID=SECRET");
    }
    std::fs::create_dir_all(&args.data_dir).context("creating --data-dir")?;
    let data_dir = args.data_dir.canonicalize()?;
    let schema = schema::Schema::load(&args.schema)?;
    let identity = tls::self_signed(&args.node)?;
    let lxcpath = args.lxcpath();
    std::fs::create_dir_all(&lxcpath).context("creating lxcpath")?;
    let storage =
        storage::Storage::new(&data_dir, &args.zfs_storage).map_err(anyhow::Error::msg)?;
    let state = Arc::new_cyclic(|this| -> api::State {
        api::State {
            this: this.clone(),
            node: args.node.clone(),
            token_id: token_id.to_string(),
            secret: secret.to_string(),
            privs: args.privs.clone(),
            allow_root_only: args.allow_root_only,
            auth_fail_delay: Duration::from_millis(args.auth_fail_delay_ms),
            schema,
            store: store::Store::new(&data_dir).expect("config dirs under --data-dir"),
            storage,
            tasks: tasks::Tasks::new(&args.node),
            lxc: lxc::Lxc::new(lxcpath.clone(), data_dir.join("var/log/lxc")),
            host: lxc::Host::detect(),
            faults: faults::Faults::default(),
            log: log::RequestLog::open(&data_dir.join("requests.jsonl"), secret)
                .expect("requests.jsonl"),
        }
    });
    let listener = std::net::TcpListener::bind(args.listen).context("binding --listen")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    // Tests read these two lines: the pin, then where to connect.
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", identity.fingerprint)?;
    writeln!(out, "listening on https://{addr}")?;
    out.flush()?;
    drop(out);
    eprintln!(
        "pve-sim: node {} data {} lxcpath {} host {:?}",
        args.node,
        data_dir.display(),
        lxcpath.display(),
        state.host
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        server::serve(listener, identity.config, state).await
    })
}
