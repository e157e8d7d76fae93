//! The pve backend's warm pool as tests and benchmarks see it in pve-sim:
//! its members, draining it, and the requests of a CT's create.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::containerd::bin_dir;
use crate::pve::{description, PveSim};
use crate::{cmd, CmdOutput};

/// The first line of a member's description (lxcri's `Description::pool_member`).
pub const MEMBER_HEADER: &str = "Managed by lxcri: a warm pool member, no container's yet.";

/// The pool members of the stand-in, with their fingerprints.
pub fn members(sim: &PveSim) -> Vec<(u32, String)> {
    sim.vmids()
        .into_iter()
        .filter_map(|vmid| {
            let text = std::fs::read_to_string(sim.config_file(vmid)).ok()?;
            let notes = description(&text);
            if !notes.starts_with(MEMBER_HEADER) {
                return None;
            }
            let fp = notes
                .lines()
                .find_map(|l| l.strip_prefix("- pool member: "))?;
            Some((vmid, fp.to_string()))
        })
        .collect()
}

/// Waits up to `timeout` until the stand-in has `n` members, none of them
/// still locked by its create task and no refill still at work (a member
/// in PVE's create, or not yet in the pool's state, cannot be claimed yet:
/// a container created then makes a CT of its own).
pub fn wait_members(sim: &PveSim, n: usize, timeout: Duration) -> Option<Vec<(u32, String)>> {
    cmd::poll(timeout, || {
        let m = members(sim);
        let settled = m.iter().all(|(vmid, _)| lock_of(sim, *vmid).is_none())
            && !lxcri::runtime::pve::is_refilling(&sim.warm_pool_dir());
        (m.len() == n && settled).then_some(m)
    })
}

/// The `lock` of CT `vmid`'s config (before any snapshot section).
fn lock_of(sim: &PveSim, vmid: u32) -> Option<String> {
    let text = std::fs::read_to_string(sim.config_file(vmid)).ok()?;
    text.lines()
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| l.strip_prefix("lock:"))
        .map(|v| v.trim().to_string())
}

/// Waits until no refill can add a member any more: every lxcri shim of
/// containerd `socket` gone (a refill runs in a shim) and no CT of the
/// stand-in in PVE's create (`lock: create`, its task still running).
pub fn wait_refills_over(sim: &PveSim, socket: &std::path::Path, timeout: Duration) -> bool {
    let socket = socket.to_string_lossy().into_owned();
    cmd::poll(timeout, || {
        let shims = crate::cleanup::processes()
            .into_iter()
            .any(|(_, cmdline)| cmdline.contains(crate::LXCRI_SHIM) && cmdline.contains(&socket));
        let creating = sim
            .vmids()
            .into_iter()
            .any(|vmid| lock_of(sim, vmid).as_deref() == Some("create"));
        (!shims && !creating).then_some(())
    })
    .is_some()
}

/// `lxcri gc --force` with the shims' settings and `pve.warm_pool_size =
/// size` (0 drains the pool and removes its node-local state).
pub fn gc_force(sim: &PveSim, size: u32) -> CmdOutput {
    let mut c = Command::new(bin_dir().join("lxcri"));
    c.args(["gc", "--force"]).envs(sim.env());
    c.env("LXCRI_PVE_WARM_POOL_SIZE", size.to_string());
    cmd::run(&mut c, Duration::from_secs(120))
}

/// The VMID a request is about: its path's `/lxc/VMID`, its `vmid`
/// parameter, or the id of the task it polls.
pub fn request_vmid(r: &Value) -> Option<u32> {
    let path = r["path"].as_str().unwrap_or("");
    if let Some(upid) = path.split("/tasks/").nth(1) {
        return upid.split(':').nth(6)?.parse().ok();
    }
    if let Some(rest) = path.split("/lxc/").nth(1) {
        return rest.split('/').next()?.parse().ok();
    }
    r["params"]["vmid"].as_str()?.parse().ok()
}

/// Whether a request polls a task's status.
pub fn is_poll(r: &Value) -> bool {
    r["path"].as_str().unwrap_or("").contains("/tasks/")
}

/// `METHOD template` of a request.
pub fn call_name(r: &Value) -> String {
    format!(
        "{} {}",
        r["method"].as_str().unwrap_or(""),
        r["template"].as_str().unwrap_or("?")
    )
}
