//! Power state and listing: start, stop, shutdown, status/current, the node's CT list.

use super::ct::{check_lock, load, missing, vmid};
use super::{ApiError, ApiResult, State};
use crate::lxc::Stop;
use crate::schema::Params;
use crate::store::CtConfig;
use crate::tasks::{TaskFault, TaskLog};
use serde_json::{json, Value};
use std::fs;

/// Renders the LXC config and starts the CT (also used by create with `start=1`).
pub fn start_now(s: &State, id: u32, log: &TaskLog) -> Result<(), String> {
    start_with(s, id, log, false)
}

/// The start worker of pve-container src/PVE/API2/LXC/Status.pm `vm_start`: under the
/// config lock, the lock check (only the worker makes it: the API call answers a UPID for
/// a locked CT too), then `PVE::LXC::vm_start` (see lxc/start.rs); `debug` is the API's
/// `debug`.
pub fn start_with(s: &State, id: u32, log: &TaskLog, debug: bool) -> Result<(), String> {
    let (_lock, cfg) = locked_unless_mounted(s, id)?;
    let props = s
        .schema
        .config_properties()
        .ok_or("schema has no config properties")?;
    let host = s.host.at_start();
    s.lxc
        .start(id, &cfg, props, &host, debug, &|l| log.line(l))?;
    log.post_work();
    Ok(())
}

fn existing(s: &State, p: &Params, privilege: &str) -> Result<u32, ApiError> {
    let id = vmid(p);
    s.require(&format!("/vms/{id}"), privilege)?;
    // pve-container src/PVE/API2/LXC/Status.pm, vm_start/vm_stop/vm_shutdown:
    // skiplock is root@pam's, and the stand-in's token is never root@pam.
    if p.flag("skiplock") {
        return Err(ApiError::param(
            "skiplock",
            "Only root may use this option.",
        ));
    }
    if s.store.owner(id) != Some("CT") {
        return Err(missing(s, id));
    }
    Ok(id)
}

pub fn start(s: &State, p: &Params, tf: TaskFault) -> ApiResult {
    let id = existing(s, p, "VM.PowerMgmt")?;
    if s.lxc.running(id) {
        return Err(ApiError::fail(format!("CT {id} already running")));
    }
    // pve-container src/PVE/API2/LXC/Status.pm `vm_start`, right after that check.
    crate::quorum::check(&s.etc_pve).map_err(ApiError::fail)?;
    let state = s.me();
    let debug = p.flag("debug");
    let work = move |log: &TaskLog| start_with(&state, id, log, debug);
    Ok(json!(s.tasks.spawn(
        "vzstart",
        &id.to_string(),
        s.user(),
        tf,
        work,
        |_| {}
    )))
}

pub fn stop(s: &State, p: &Params, tf: TaskFault) -> ApiResult {
    let id = existing(s, p, "VM.PowerMgmt")?;
    if !s.lxc.running(id) {
        return Err(ApiError::fail(format!("CT {id} not running")));
    }
    let state = s.me();
    let work = move |log: &TaskLog| {
        let _lock = locked_unless_mounted(&state, id)?;
        state.lxc.stop(id, Stop::Kill, &|l| log.line(l))
    };
    Ok(json!(s.tasks.spawn(
        "vzstop",
        &id.to_string(),
        s.user(),
        tf,
        work,
        |_| {}
    )))
}

/// The start, stop and shutdown workers take the config lock and refuse a CT
/// locked by anything but `mounted` (pve-container
/// src/PVE/API2/LXC/Status.pm, vm_start/vm_stop/vm_shutdown: `check_lock` unless
/// `has_lock($conf, 'mounted')`); a backup's lock holds a start or a stop back.
fn locked_unless_mounted(s: &State, id: u32) -> Result<(impl Drop, CtConfig), String> {
    let lock = s.store.lock(id).map_err(|e| e.to_string())?;
    let (cfg, _) = load(s, id).map_err(|e| e.message)?;
    if cfg.options.get("lock").map(String::as_str) != Some("mounted") {
        check_lock(&cfg, false).map_err(|e| e.message)?;
    }
    Ok((lock, cfg))
}

pub fn shutdown(s: &State, p: &Params, tf: TaskFault) -> ApiResult {
    let id = existing(s, p, "VM.PowerMgmt")?;
    if !s.lxc.running(id) {
        return Err(ApiError::fail(format!("CT {id} not running")));
    }
    let timeout = p.int("timeout").unwrap_or(60).max(0) as u64;
    let force = p.flag("forceStop");
    let state = s.me();
    let work = move |log: &TaskLog| {
        let _lock = locked_unless_mounted(&state, id)?;
        // Status.pm `vm_shutdown`: `vm_stop($vmid, 0, $timeout, $param->{forceStop})`.
        state.lxc.stop(
            id,
            Stop::Shutdown {
                timeout,
                kill_after: force,
            },
            &|l| log.line(l),
        )
    };
    Ok(json!(s.tasks.spawn(
        "vzshutdown",
        &id.to_string(),
        s.user(),
        tf,
        work,
        |_| {}
    )))
}

/// Memory use of the CT's cgroup (v2 `memory.current` or v1 `memory.usage_in_bytes`).
fn memory_of(pid: u32) -> u64 {
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    for l in cgroups.lines() {
        let mut parts = l.splitn(3, ':');
        let (_, ctrl, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let file = match ctrl {
            "" => format!("/sys/fs/cgroup{path}/memory.current"),
            c if c.split(',').any(|c| c == "memory") => {
                format!("/sys/fs/cgroup/memory{path}/memory.usage_in_bytes")
            }
            _ => continue,
        };
        if let Some(v) = fs::read_to_string(file)
            .ok()
            .and_then(|v| v.trim().parse().ok())
        {
            return v;
        }
    }
    0
}

/// Bytes through the CT's interfaces other than lo (`/proc/PID/net/dev` is its netns).
fn net_of(pid: u32) -> (u64, u64) {
    let dev = fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    dev.lines().skip(2).fold((0, 0), |(rx, tx), l| {
        let Some((name, rest)) = l.split_once(':') else {
            return (rx, tx);
        };
        if name.trim() == "lo" {
            return (rx, tx);
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        (
            rx + f.first().copied().unwrap_or(0),
            tx + f.get(8).copied().unwrap_or(0),
        )
    })
}

fn uptime_of(pid: u32) -> u64 {
    fs::metadata(format!("/proc/{pid}"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn summary(s: &State, id: u32) -> Option<Value> {
    let raw = s.store.read_raw(id)?;
    let cfg = CtConfig::parse(id, &raw, &s.schema).ok()?.0;
    let opt = |k: &str| cfg.options.get(k);
    let mib = |k: &str, d: u64| opt(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d) << 20;
    // PVE's check_running: the CT runs while its lxc-start (the monitor) is there.
    let running = s.lxc.running(id);
    let pid = if running { s.lxc.info(id).pid } else { None };
    let (netin, netout) = pid.map(net_of).unwrap_or((0, 0));
    let mut v = json!({
        "vmid": id,
        "name": opt("hostname").cloned().unwrap_or(format!("CT{id}")),
        "status": if running { "running" } else { "stopped" },
        "uptime": pid.map(uptime_of).unwrap_or(0),
        "cpu": 0, "cpus": opt("cores").and_then(|c| c.parse::<u64>().ok()).unwrap_or(2),
        "mem": pid.map(memory_of).unwrap_or(0), "maxmem": mib("memory", 512),
        "swap": 0, "maxswap": mib("swap", 512),
        "disk": 0, "maxdisk": 8u64 << 30,
        "netin": netin, "netout": netout, "diskread": 0, "diskwrite": 0,
        "template": if opt("template").map(String::as_str) == Some("1") { 1 } else { 0 },
        "type": "lxc",
    });
    if let Some(t) = opt("tags") {
        v["tags"] = json!(t);
    }
    if let Some(l) = opt("lock") {
        v["lock"] = json!(l);
    }
    if let Some(p) = pid {
        v["pid"] = json!(p);
    }
    Some(v)
}

pub fn ct_summaries(s: &State) -> Vec<Value> {
    s.store
        .list()
        .into_iter()
        .filter_map(|id| summary(s, id))
        .collect()
}

pub fn vmlist(s: &State) -> ApiResult {
    Ok(Value::Array(ct_summaries(s)))
}

pub fn current(s: &State, p: &Params) -> ApiResult {
    let id = existing(s, p, "VM.Audit")?;
    let mut v = summary(s, id).ok_or_else(|| missing(s, id))?;
    v["ha"] = json!({"managed": 0});
    Ok(v)
}
