//! Command line of the stand-in.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A Proxmox VE node stand-in for tests: the PVE API over HTTPS, checked against the real
/// schema, backed by real LXC containers.
#[derive(Parser, Debug, Clone)]
#[command(name = "pve-sim")]
pub struct Args {
    /// Address to listen on; port 0 picks a free one (printed on stdout's second line).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Root of the simulated node: etc/pve, run/lock, storage, requests.jsonl live here.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// This node's name (`{node}` in paths).
    #[arg(long, default_value = "pve-sim")]
    pub node: String,
    /// The one accepted API token, `USER@REALM!ID=SECRET`.
    #[arg(long)]
    pub token: String,
    /// PVE API schema (pve-docs apidata as JSON); default: the PVE 9.1
    /// schema built in (tests/data/pve-api).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// LXC path for generated container configs; default DATA_DIR/var/lib/lxc.
    #[arg(long)]
    pub lxcpath: Option<PathBuf>,
    /// Delay before answering 401, like PVE's ~3 s (default 0 to keep tests fast).
    #[arg(long, default_value_t = 0)]
    pub auth_fail_delay_ms: u64,
    /// PVE-like latencies (forked task workers, storage allocation, start hooks, config
    /// writes; see timing.rs). Off by default to keep tests fast; on for benchmarks.
    #[arg(long)]
    pub pve_timing: bool,
    /// Accept from the token what real PVE reserves for root@pam (directory rootfs, bind
    /// mount points, devN, hookscript, features other than nesting). Off by default: the
    /// stand-in answers 403 like PVE.
    #[arg(long)]
    pub allow_root_only: bool,
    /// A real ZFS pool storage `ID` (type zfspool) whose volumes are datasets
    /// `DATASET/subvol-VMID-disk-N`, made with `zfs`; repeatable. DATASET must exist.
    #[arg(long, value_name = "ID=DATASET", value_parser = crate::zfs_storage::parse_arg)]
    pub zfs_storage: Vec<crate::zfs_storage::ZfsStorageArg>,
    /// The LXC version whose config loader a start models, `MAJOR[.MINOR]`; default what
    /// `lxc-start --version` says. From 7 on, a config LXC v7.0.0 cannot load (any cgroup
    /// v1 `lxc.cgroup.*` key, set or reset) fails the start as it would there, without
    /// running lxc-start.
    #[arg(long, value_name = "MAJOR[.MINOR]", value_parser = crate::lxc::parse_version)]
    pub lxc_version: Option<(u32, u32)>,
    /// The Open vSwitch database PVE's `ovs-vsctl` calls use (`--db=`): where a NIC's
    /// bridge is looked up when it is no Linux bridge, and its port is added and removed.
    #[arg(long, value_name = "unix:PATH", default_value = DEFAULT_OVSDB)]
    pub ovsdb: String,
}

/// Open vSwitch's own default database socket, which `ovs-vsctl` uses on a node.
pub const DEFAULT_OVSDB: &str = "unix:/var/run/openvswitch/db.sock";

impl Args {
    pub fn lxcpath(&self) -> PathBuf {
        self.lxcpath
            .clone()
            .unwrap_or_else(|| self.data_dir.join("var/lib/lxc"))
    }
}
