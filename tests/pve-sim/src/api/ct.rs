//! CT lifecycle endpoints that change configs: config read/update, destroy, and the
//! helpers create (`super::create`) shares.

use super::ct_perms::Change;
use super::{ApiError, ApiResult, State};
use crate::lxc::hotplug::{CGroup, Pending, SysFiles};
use crate::lxc::{Host, Stop};
use crate::schema::{formats, validate, Params};
use crate::storage::Storage;
use crate::store::{self, CtConfig};
use crate::tasks::{TaskFault, TaskLog};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn vmid(p: &Params) -> u32 {
    p.int("vmid").unwrap_or(0) as u32
}

pub fn missing(s: &State, vmid: u32) -> ApiError {
    ApiError::fail(format!(
        "Configuration file 'nodes/{}/lxc/{vmid}.conf' does not exist",
        s.node
    ))
}

/// Reads and parses a CT config; a parse failure is the 500 PVE gives for a bad raw key.
pub fn load(s: &State, vmid: u32) -> Result<(CtConfig, String), ApiError> {
    let raw = s.store.read_raw(vmid).ok_or_else(|| missing(s, vmid))?;
    let (cfg, warnings) = CtConfig::parse(vmid, &raw, &s.schema).map_err(ApiError::fail)?;
    for w in warnings {
        eprintln!("pve-sim: {w}");
    }
    Ok((cfg, raw))
}

pub fn check_lock(cfg: &CtConfig, skiplock: bool) -> Result<(), ApiError> {
    match cfg.options.get("lock") {
        Some(l) if !skiplock => Err(ApiError::fail(format!("CT is locked ({l})"))),
        _ => Ok(()),
    }
}

pub(super) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// PVE gives every NIC a MAC (its BC:24:11 prefix) and `type=veth` when they are absent.
fn normalise_net(value: &str) -> String {
    let mut v = value.to_string();
    if !v.split(',').any(|kv| kv.starts_with("hwaddr=")) {
        let mut b = [0u8; 3];
        let _ = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
        v.push_str(&format!(
            ",hwaddr=BC:24:11:{:02X}:{:02X}:{:02X}",
            b[0], b[1], b[2]
        ));
    }
    if !v.split(',').any(|kv| kv.starts_with("type=")) {
        v.push_str(",type=veth");
    }
    v
}

/// Writes API parameters into a config: `description` into the comment, `env` into
/// `lxc.environment.runtime` lines (as PVE 9.1 stores it), the rest as options.
pub(super) fn apply(cfg: &mut CtConfig, p: &Params, skip: &[&str]) {
    for (k, v) in &p.0 {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let v = text(v);
        match k.as_str() {
            "description" => cfg.description = Some(v),
            "env" => {
                cfg.lxc.retain(|(k, _)| k != "lxc.environment.runtime");
                for kv in v.split('\0').filter(|kv| !kv.is_empty()) {
                    cfg.lxc.push(("lxc.environment.runtime".into(), kv.into()));
                }
            }
            k if k.starts_with("net") => {
                cfg.options.insert(k.to_string(), normalise_net(&v));
            }
            _ => {
                cfg.options.insert(k.to_string(), v);
            }
        }
    }
}

/// Replaces `STORAGE:SIZE` in rootfs/mpN by a freshly allocated volume.
pub(super) fn allocate(
    storage: &Storage,
    vmid: u32,
    cfg: &mut CtConfig,
    made: &mut Vec<String>,
) -> Result<(), String> {
    let mut keys: Vec<String> = cfg
        .options
        .keys()
        .filter(|k| *k == "rootfs" || k.starts_with("mp"))
        .cloned()
        .collect();
    // PVE allocates in its volume order: rootfs (disk-0), then mp0, mp1, ..., mp10.
    keys.sort_by_key(|k| (k != "rootfs", k[2..].parse::<u32>().unwrap_or(u32::MAX)));
    for k in keys {
        let value = cfg.options[&k].clone();
        let (first, rest) = value.split_once(',').unwrap_or((&value, ""));
        let volume = first.strip_prefix("volume=").unwrap_or(first);
        if !Storage::is_allocation(volume) {
            continue;
        }
        let size = volume.split_once(':').map(|(_, s)| s).unwrap_or("0");
        let volid = storage.allocate(vmid, volume)?;
        made.push(volid.clone());
        let mut new = format!("{volid},size={}", Storage::size_text(size));
        if !rest.is_empty() {
            new = format!("{new},{rest}");
        }
        cfg.options.insert(k, new);
    }
    Ok(())
}

/// `VM.Audit` on `/vms/{vmid}` is checked from the schema's `permissions`.
pub fn get_config(s: &State, p: &Params) -> ApiResult {
    let id = vmid(p);
    let (cfg, raw) = load(s, id)?;
    let props = s.schema.config_properties();
    let mut out = serde_json::Map::new();
    for (k, v) in &cfg.options {
        let ty = props
            .and_then(|pr| validate::property(pr, k))
            .and_then(|pr| pr.get("type"))
            .and_then(Value::as_str);
        let value = match ty {
            Some("integer" | "boolean") => v.parse::<i64>().map(Value::from).unwrap_or(json!(v)),
            Some("number") => v.parse::<f64>().map(Value::from).unwrap_or(json!(v)),
            _ => json!(v),
        };
        out.insert(k.clone(), value);
    }
    if let Some(d) = &cfg.description {
        out.insert("description".into(), json!(format!("{d}\n")));
    }
    if !cfg.lxc.is_empty() {
        out.insert(
            "lxc".into(),
            json!(cfg.lxc.iter().map(|(k, v)| [k, v]).collect::<Vec<_>>()),
        );
    }
    out.insert("digest".into(), json!(store::digest(&raw)));
    Ok(Value::Object(out))
}

/// Parameters of a config update that are not config keys.
const NOT_KEYS: &[&str] = &["node", "vmid", "delete", "digest", "revert"];

/// `PUT /nodes/{node}/lxc/{vmid}/config`, as pve-container src/PVE/API2/LXC/Config.pm
/// `update_vm` does it. One of the VM.Config privileges on `/vms/{vmid}` is checked from
/// the schema's `permissions` (`check_any`). Then, with the config loaded under its lock,
/// every key deleted, reverted and set goes through `check_ct_modify_config_perm` with
/// no pool (a pool member's privileges reach it through `/vms/{vmid}`) and the CT's
/// `unprivileged`; tags are checked against the old ones.
pub fn put_config(s: &State, p: &Params) -> ApiResult {
    let id = vmid(p);
    let p = &clamp_cpuunits(s, p);
    if !p
        .0
        .keys()
        .any(|k| !["node", "vmid", "digest"].contains(&k.as_str()))
    {
        return Err(ApiError::fail("no options specified"));
    }
    let _lock = s
        .store
        .lock(id)
        .map_err(|e| ApiError::fail(e.to_string()))?;
    let (mut cfg, raw) = load(s, id)?;
    if let Some(d) = p.str("digest") {
        if !store::digest(&raw).starts_with(&d.to_lowercase()) {
            return Err(ApiError::fail(
                "detected modified configuration - file changed by other user? Try again.",
            ));
        }
    }
    if p.str("lock").is_none() {
        check_lock(&cfg, false)?;
    }
    {
        let change = Change {
            vmid: id,
            pool: None,
            old: Some(&cfg),
            unprivileged: cfg.options.get("unprivileged").is_some_and(|v| v == "1"),
        };
        let list = |k: &str| p.str(k).map(formats::split_list).unwrap_or_default();
        change.check(s, &BTreeMap::new(), &list("delete"))?;
        change.check(s, &BTreeMap::new(), &list("revert"))?;
        let set: BTreeMap<String, String> =
            p.0.iter()
                .filter(|(k, _)| !NOT_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), text(v)))
                .collect();
        change.check(s, &set, &[])?;
    }
    check_read_only(p)?;
    let deletes: Vec<&str> = p.str("delete").map(formats::split_list).unwrap_or_default();
    if let Some(key) = deletes.iter().find(|k| p.0.contains_key(**k)) {
        return Err(ApiError::param(
            "delete",
            format!("can't set and delete '{key}' at the same time"),
        ));
    }
    let host = s.host.at_start();
    check_nets(s, p, &host)?;
    if s.lxc.running(id) {
        hotplug(s, id, &cfg, p, &deletes)?;
    }
    for key in deletes {
        match key {
            "description" => cfg.description = None,
            "env" => cfg.lxc.retain(|(k, _)| k != "lxc.environment.runtime"),
            _ => {
                cfg.options.remove(key);
            }
        }
    }
    let mut made = Vec::new();
    apply(&mut cfg, p, NOT_KEYS);
    allocate(&s.storage, id, &mut cfg, &mut made).map_err(ApiError::fail)?;
    crate::timing::pause(s.timing, |t| t.config_write);
    // A stopped CT takes every change at once (update_pct_config ->
    // vmconfig_apply_pending); so does a running one whose changes `hotplug` took.
    s.store
        .write(id, &cfg)
        .map_err(|e| ApiError::fail(e.to_string()))?;
    // `update_vm` then regenerates the LXC config, and what fails there fails the call
    // with the new config already written (a NIC whose bridge is gone, ...).
    s.lxc
        .update_config(id, &cfg, config_properties(s)?, &host)
        .map_err(ApiError::fail)?;
    Ok(Value::Null)
}

/// pve-container src/PVE/LXC/Config.pm `update_pct_config`'s checks of each `netN` a
/// create or a config update sets (see `crate::lxc::check_net_update`).
/// `host` is the node as it is now (its links' MTUs).
pub(super) fn check_nets(s: &State, p: &Params, host: &Host) -> Result<(), ApiError> {
    let is_net = |k: &str| {
        k.strip_prefix("net")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let props = config_properties(s)?;
    for (key, value) in p.0.iter().filter(|(k, _)| is_net(k)) {
        crate::lxc::check_net_update(props, key, &text(value), &host.mtus)
            .map_err(ApiError::fail)?;
    }
    Ok(())
}

fn config_properties(s: &State) -> Result<&serde_json::Map<String, Value>, ApiError> {
    s.schema
        .config_properties()
        .ok_or_else(|| ApiError::fail("schema has no config properties"))
}

/// `update_vm` and `create_vm` clamp `cpuunits` to what the booted cgroup version takes
/// (pve-common src/PVE/CGroup.pm `clamp_cpu_shares`: at most 10000 on cgroup v2, at least
/// 2 on v1) before anything else sees it.
pub(super) fn clamp_cpuunits(s: &State, p: &Params) -> Params {
    let mut p = Params(p.0.clone());
    if let Some(units) = p.0.get("cpuunits").map(text) {
        let units = units.parse::<f64>().ok();
        let clamped = crate::lxc::clamp_cpu_shares(units, s.host.unified);
        p.0.insert("cpuunits".into(), Value::String(clamped.to_string()));
    }
    p
}

/// A running CT (pve-container src/PVE/API2/LXC/Config.pm `update_vm`: `check_running`,
/// then `update_pct_config` -> `vmconfig_hotplug_pending`): the changes that differ from
/// the config are hotplugged into its cgroup (`crate::lxc::hotplug`). Any hotplug error
/// is raised as a parameter error before the config is written; what PVE would keep
/// pending, pve-sim refuses.
fn hotplug(
    s: &State,
    id: u32,
    cfg: &CtConfig,
    p: &Params,
    deletes: &[&str],
) -> Result<(), ApiError> {
    let sets: BTreeMap<String, String> =
        p.0.iter()
            .filter(|(k, _)| !NOT_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), text(v)))
            .collect();
    let pending = Pending::new(|k| current(cfg, k), &sets, deletes);
    pending.check_modelled().map_err(ApiError::fail)?;
    // LXC.pm `find_lxc_pid`, which vmconfig_hotplug_pending calls first.
    let pid =
        s.lxc.info(id).pid.ok_or_else(|| {
            ApiError::fail(format!("unable to get PID for CT {id} (not running?)"))
        })?;
    let proc_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let errors = pending.hotplug(&CGroup::new(&s.host, &proc_cgroup, &SysFiles));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::params(errors))
    }
}

/// A key's value in the config as PVE's `$conf` holds it: the description, `env` as the
/// NUL-joined `lxc.environment.runtime` lines (Config.pm `parse_pct_config`), an option.
fn current(cfg: &CtConfig, key: &str) -> Option<String> {
    match key {
        "description" => cfg.description.clone(),
        "env" => {
            let vars: Vec<&str> = cfg
                .lxc
                .iter()
                .filter(|(k, _)| k == "lxc.environment.runtime")
                .map(|(_, v)| v.as_str())
                .collect();
            (!vars.is_empty()).then(|| vars.join("\0"))
        }
        _ => cfg.options.get(key).cloned(),
    }
}

/// pve-container src/PVE/LXC/Config.pm `update_pct_config`: `unprivileged` is fixed at
/// create, and `memory`, `rootfs` and `ostype` may change but not go.
fn check_read_only(p: &Params) -> Result<(), ApiError> {
    if p.0.contains_key("unprivileged") {
        return Err(ApiError::fail(
            "unable to modify read-only option: 'unprivileged'",
        ));
    }
    for key in p.str("delete").map(formats::split_list).unwrap_or_default() {
        match key {
            "memory" | "rootfs" | "ostype" => {
                return Err(ApiError::fail(format!(
                    "unable to delete required option '{key}'"
                )))
            }
            "unprivileged" => {
                return Err(ApiError::fail(format!(
                    "unable to delete read-only option: '{key}'"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// PVE's answer to destroying a running CT without `force`.
fn running_error(id: u32) -> String {
    format!("unable to destroy CT {id} - container is running")
}

fn check_protection(cfg: &CtConfig, id: u32) -> Result<(), String> {
    if cfg.options.get("protection").map(String::as_str) == Some("1") {
        return Err(format!("can't remove CT {id} - protection mode enabled"));
    }
    Ok(())
}

/// `VM.Allocate` on `/vms/{vmid}` is checked from the schema's `permissions`.
pub fn destroy(s: &State, p: &Params, tf: TaskFault) -> ApiResult {
    let id = vmid(p);
    let (cfg, _) = load(s, id)?;
    check_protection(&cfg, id).map_err(ApiError::fail)?;
    check_lock(&cfg, false)?;
    let force = p.flag("force");
    if !force && s.lxc.running(id) {
        return Err(ApiError::fail(running_error(id)));
    }
    let unreferenced = p.flag("destroy-unreferenced-disks");
    let state = s.me();
    let work = move |log: &TaskLog| destroy_task(&state, id, force, unreferenced, log);
    Ok(json!(s.tasks.spawn(
        "vzdestroy",
        &id.to_string(),
        s.user(),
        tf,
        work,
        |_| {}
    )))
}

fn destroy_task(
    s: &State,
    id: u32,
    force: bool,
    unreferenced: bool,
    log: &TaskLog,
) -> Result<(), String> {
    let _lock = s.store.lock(id).map_err(|e| e.to_string())?;
    let (cfg, _) = load(s, id).map_err(|e| e.message)?;
    check_protection(&cfg, id)?;
    check_lock(&cfg, false).map_err(|e| e.message)?;
    if s.lxc.running(id) {
        if !force {
            return Err(running_error(id));
        }
        log.line(format!("stopping CT {id} (force)"));
        s.lxc.stop(id, Stop::Kill, &|l| log.line(l))?;
    }
    // A CT that stopped by itself may still have its lxc-start tearing down: wait for it,
    // so nothing of the CT (cgroups, the LXC directory) outlives the destroy.
    s.lxc.wait_exited(id)?;
    for (k, v) in &cfg.options {
        if k == "rootfs" || k.starts_with("mp") || k.starts_with("unused") {
            let first = v.split(',').next().unwrap_or("");
            let vol = first.strip_prefix("volume=").unwrap_or(first);
            log.line(format!("destroying volume '{vol}'"));
            // LXC.pm `delete_mountpoint_volume`: a volume that cannot be freed fails the
            // task here, before the config is touched: the CT stays as it was.
            s.storage.free_owned(id, vol)?;
        }
    }
    if unreferenced {
        for vol in s.storage.owned_by(id) {
            log.line(format!("destroying unreferenced volume '{vol}'"));
            // `destroy_lxc_container`: "eval { vdisk_free }; warn $@ if $@".
            if let Err(e) = s.storage.free_owned(id, &vol) {
                log.line(format!("WARN: {e}"));
            }
        }
    }
    // pve-container src/PVE/LXC.pm `destroy_lxc_container`: the LXC directory goes, and the
    // config becomes the replacement API2/LXC.pm hands it, `lock: destroyed` alone, which
    // stays (a locked zombie) if what follows fails.
    s.lxc.remove(id);
    let mut zombie = CtConfig::default();
    zombie.options.insert("lock".into(), "destroyed".into());
    s.store.write(id, &zombie).map_err(|e| e.to_string())?;
    // pve-access-control src/PVE/AccessControl.pm `remove_vm_access`, with or without
    // `purge`: the CT's ACLs and its pool membership go before the config does.
    s.access
        .update(|c| c.remove_vm_access(id))
        .map_err(|e| format!("access permissions cleanup for VM {id} failed: {e}"))?;
    // "only now remove the zombie config, else we can have reuse race"
    s.store.remove(id).map_err(|e| e.to_string())?;
    Ok(())
}
