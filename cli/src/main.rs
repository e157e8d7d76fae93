//! `lxcri`: the node-side command line (`ps`, `check`, `gc`, `exporter`).
//!
//! Each subcommand lives in its own file and returns typed results; this
//! file parses flags, loads the configuration and turns errors into exit codes.

mod check;
mod container_gc;
mod elf;
mod exporter;
mod gc;
mod image_gc;
mod nic_gc;
mod ps;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use lxcri::config::{Config, ConfigError};

#[derive(Debug, Parser)]
#[command(
    name = "lxcri",
    version,
    about = "lxcri: OCI containers on LXC, for containerd"
)]
struct Cli {
    /// Config file (default: $LXCRI_CONFIG, else /etc/lxcri/config.toml).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Overrides `runtime_root` from the file and LXCRI_RUNTIME_ROOT.
    #[arg(long, global = true, value_name = "PATH")]
    runtime_root: Option<String>,
    /// Overrides `lxc.lxcpath` from the file and LXCRI_LXC_LXCPATH.
    #[arg(long, global = true, value_name = "PATH")]
    lxcpath: Option<String>,
    /// Overrides `lxc.init_binary` from the file and LXCRI_LXC_INIT_BINARY.
    #[arg(long, global = true, value_name = "PATH")]
    init_binary: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the containers lxcri runs on this node.
    Ps(ps::Args),
    /// Check that this node can run lxcri containers.
    Check(check::Args),
    /// Find (and with --force remove) what containers containerd no longer
    /// has left on this node (state, LXC containers, NICs, PVE CTs), and
    /// ZFS image datasets no container uses any more.
    Gc(gc::Args),
    /// Serve the node's container and lxcri metrics to Prometheus.
    Exporter(exporter::Args),
}

impl Cli {
    /// File < env < these flags.
    fn load_config(&self) -> Result<Config, ConfigError> {
        let mut config = Config::load(self.config.as_deref())?;
        let flags = [
            ("runtime_root", &self.runtime_root),
            ("lxc.lxcpath", &self.lxcpath),
            ("lxc.init_binary", &self.init_binary),
        ];
        for (key, value) in flags {
            if let Some(value) = value {
                config.set(key, value)?;
            }
        }
        Ok(config)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lxcri: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// Logs of a long-running command: to the journal when systemd connected
/// stderr to it (`JOURNAL_STREAM`), else to stderr.
fn logging() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::filter::LevelFilter::INFO;
    let journal = std::env::var_os("JOURNAL_STREAM").and_then(|_| tracing_journald::layer().ok());
    match journal {
        Some(layer) => tracing_subscriber::registry()
            .with(layer.with_filter(filter))
            .init(),
        None => tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .init(),
    }
}

/// The error and its causes, each text once, as the library prints chains.
fn chain(e: &anyhow::Error) -> String {
    lxcri::error_chain(e.as_ref())
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Ps(args) => {
            let config = cli.load_config().context("loading configuration")?;
            let listed = ps::run(&config, args).context("listing containers")?;
            for w in &listed.warnings {
                eprintln!("{w}");
            }
            print!("{}", listed.out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => {
            // A broken config is itself a finding: report it with the other
            // checks (run against the defaults) instead of stopping.
            let report = check::run(cli.load_config(), args);
            print!("{}", report.output);
            Ok(if report.failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Exporter(args) => {
            logging();
            let config = cli.load_config().context("loading configuration")?;
            exporter::run(config, args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gc(args) => {
            let config = cli.load_config().context("loading configuration")?;
            let report = gc::run(config, args)?;
            print!("{}", report.output);
            Ok(if report.failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    #[test]
    fn chain_walks_contexts_and_sources() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Err::<(), _>(io)
            .context("reading x")
            .context("loading configuration")
            .unwrap_err();
        assert_eq!(
            super::chain(&e),
            "loading configuration: reading x: no such file"
        );
    }
}
