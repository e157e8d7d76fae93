//! `pve-sim`: a Proxmox VE node stand-in for lxcri's tests (not shipped). See docs/pve-sim.md.

mod acl;
mod api;
mod cli;
mod datacenter;
mod errno_text;
mod faults;
mod log;
mod lxc;
mod quorum;
mod schema;
mod server;
mod storage;
mod storage_cfg;
mod store;
mod tasks;
mod timing;
mod tls;
mod zfs_storage;

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

fn main() -> Result<()> {
    // `pve-sim hook ...`: run by LXC as PVE's hooks (see lxc/hooks.rs).
    if std::env::args_os().nth(1).is_some_and(|a| a == "hook") {
        std::process::exit(lxc::hook_main(std::env::args_os().skip(1)));
    }
    let args = cli::Args::parse();
    let Some((token_id, secret)) = args.token.rsplit_once('=') else {
        bail!("--token must be USER@REALM!ID=SECRET");
    };
    // A token id as pve-access-control's `pve_verify_tokenid` accepts it (ID: a letter,
    // then at least one of [A-Za-z0-9._-]).
    if acl::names::split_tokenid(token_id).is_none() {
        bail!("--token must be USER@REALM!ID=SECRET, a valid PVE token id");
    }
    std::fs::create_dir_all(&args.data_dir).context("creating --data-dir")?;
    let data_dir = args.data_dir.canonicalize()?;
    let schema = schema::Schema::load(args.schema.as_deref())?;
    let identity = tls::self_signed(&args.node)?;
    let lxcpath = args.lxcpath();
    std::fs::create_dir_all(&lxcpath).context("creating lxcpath")?;
    let storage =
        storage::Storage::new(&data_dir, &args.zfs_storage).map_err(anyhow::Error::msg)?;
    let etc_pve = data_dir.join("etc/pve");
    std::fs::create_dir_all(&etc_pve).context("creating etc/pve")?;
    quorum::init(&etc_pve).context("creating etc/pve/local")?;
    storage
        .write_cfg(&etc_pve.join("storage.cfg"))
        .context("writing etc/pve/storage.cfg")?;
    let exe = std::env::current_exe().context("locating pve-sim")?;
    let timing = args.pve_timing.then_some(timing::PveTiming::ESTIMATED);
    let state = Arc::new_cyclic(|this| -> api::State {
        api::State {
            this: this.clone(),
            node: args.node.clone(),
            token_id: token_id.to_string(),
            secret: secret.to_string(),
            access: acl::Access::new(&etc_pve, token_id),
            etc_pve: etc_pve.clone(),
            allow_root_only: args.allow_root_only,
            auth_fail_delay: Duration::from_millis(args.auth_fail_delay_ms),
            schema,
            store: store::Store::new(&data_dir).expect("config dirs under --data-dir"),
            storage,
            tasks: tasks::Tasks::new(&args.node, timing),
            timing,
            lxc: lxc::Lxc::new(lxc::Options {
                lxcpath: lxcpath.canonicalize().unwrap_or(lxcpath.clone()),
                data_dir: data_dir.clone(),
                schema: args
                    .schema
                    .as_ref()
                    .map(|s| s.canonicalize().unwrap_or(s.clone())),
                zfs_storage: args.zfs_storage.clone(),
                lxc_version: args.lxc_version.unwrap_or_else(lxc::installed_version),
                ovsdb: args.ovsdb.clone(),
                exe: exe.clone(),
            }),
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
