//! CT lifecycle endpoints that change configs: create, config read/update, destroy.

use super::{ApiError, ApiResult, State};
use crate::schema::{formats, validate, Params};
use crate::storage::Storage;
use crate::store::{self, CtConfig};
use crate::tasks::{TaskFault, TaskLog};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

/// Create parameters that steer the create task and are not stored in the config.
const CREATE_ONLY: &[&str] = &[
    "node",
    "vmid",
    "ostemplate",
    "storage",
    "password",
    "ssh-public-keys",
    "start",
    "restore",
    "force",
    "unique",
    "pool",
    "ha-managed",
    "ignore-unpack-errors",
    "bwlimit",
];

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

/// What PVE reserves for root@pam even when root's own token asks.
fn root_only(s: &State, p: &Params) -> Result<(), ApiError> {
    if s.allow_root_only {
        return Ok(());
    }
    let deny = |why: String| Err(ApiError::forbidden(why));
    for (k, v) in &p.0 {
        let v = v.as_str().unwrap_or("");
        let first = v.split(',').next().unwrap_or("");
        let volume = first.strip_prefix("volume=").unwrap_or(first);
        if (k == "rootfs" || k.starts_with("mp")) && volume.starts_with('/') {
            return deny(format!(
                "/, {k}: directory or bind mount points are only allowed for root@pam"
            ));
        }
        if k.starts_with("dev") {
            return deny(format!("/, {k}: only root@pam can pass through devices"));
        }
        if k == "hookscript" {
            return deny("/, hookscript: only root@pam can set a hookscript".into());
        }
        if k == "features"
            && v.split(',')
                .any(|f| !f.is_empty() && !f.starts_with("nesting="))
        {
            return deny(
                "/, changing feature flags (except nesting) is only allowed for root@pam".into(),
            );
        }
    }
    Ok(())
}

fn text(v: &Value) -> String {
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
fn apply(cfg: &mut CtConfig, p: &Params, skip: &[&str]) {
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
fn allocate(
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

fn detect_ostype(root: &Path) -> &'static str {
    if root.join("etc/alpine-release").exists() {
        "alpine"
    } else if root.join("etc/debian_version").exists() {
        "debian"
    } else {
        "unmanaged"
    }
}

pub fn create(s: &State, p: &Params, tf: TaskFault) -> ApiResult {
    let id = vmid(p);
    s.require(&format!("/vms/{id}"), "VM.Allocate")?;
    root_only(s, p)?;
    if let Some(kind) = s.store.owner(id) {
        return Err(ApiError::fail(format!(
            "{kind} {id} already exists on node '{}'",
            s.node
        )));
    }
    // Before the lock and the config: a missing template leaves nothing behind.
    let template = p.str("ostemplate").unwrap_or("");
    if template.starts_with('/') && !s.allow_root_only {
        return Err(ApiError::fail(
            "only root can access arbitrary filesystem paths",
        ));
    }
    let archive = s.storage.template(template).map_err(ApiError::fail)?;
    let mut cfg = CtConfig::default();
    cfg.options.insert("arch".into(), "amd64".into());
    cfg.options.insert("unprivileged".into(), "1".into());
    let storage = p.str("storage").unwrap_or("local").to_string();
    cfg.options.insert("rootfs".into(), format!("{storage}:8"));
    apply(&mut cfg, p, CREATE_ONLY);
    cfg.options.insert("lock".into(), "create".into());
    {
        let _lock = s
            .store
            .lock(id)
            .map_err(|e| ApiError::fail(e.to_string()))?;
        s.store
            .create_exclusive(id, &cfg)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    ApiError::fail(format!("CT {id} already exists on node '{}'", s.node))
                }
                _ => ApiError::fail(format!("unable to create CT {id} - {e}")),
            })?;
    }
    let state = s.me();
    let fail_state = Arc::clone(&state);
    let start = p.flag("start");
    let work = move |log: &TaskLog| create_task(&state, id, cfg, &archive, start, log);
    let on_fail = move |_: &TaskLog| {
        let _ = fail_state.store.remove(id);
    };
    Ok(json!(s.tasks.spawn(
        "vzcreate",
        &id.to_string(),
        s.user(),
        tf,
        work,
        on_fail
    )))
}

fn create_task(
    s: &State,
    id: u32,
    mut cfg: CtConfig,
    archive: &Path,
    start: bool,
    log: &TaskLog,
) -> Result<(), String> {
    let mut made = Vec::new();
    let result = (|| {
        allocate(&s.storage, id, &mut cfg, &mut made)?;
        let root_vol = cfg
            .options
            .get("rootfs")
            .and_then(|r| r.split(',').next())
            .unwrap_or("")
            .to_string();
        let root_vol = root_vol
            .strip_prefix("volume=")
            .unwrap_or(&root_vol)
            .to_string();
        let root = s.storage.resolve(&root_vol)?;
        log.line(format!("extracting archive '{}'", archive.display()));
        let out = std::process::Command::new("tar")
            .arg("-xpf")
            .arg(archive)
            .arg("-C")
            .arg(&root)
            .output()
            .map_err(|e| format!("tar: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "unable to extract template: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        if !cfg.options.contains_key("ostype") {
            cfg.options
                .insert("ostype".into(), detect_ostype(&root).into());
        }
        cfg.options.remove("lock");
        let _lock = s.store.lock(id).map_err(|e| e.to_string())?;
        s.store.write(id, &cfg).map_err(|e| e.to_string())
    })();
    if let Err(e) = result {
        // PVE's create worker destroys what it made when any step fails.
        for v in &made {
            s.storage.free_owned(id, v);
        }
        let _ = s.store.remove(id);
        return Err(format!("unable to create CT {id} - {e}"));
    }
    log.line(format!("CT {id} created"));
    if start {
        super::power::start_now(s, id, log)?;
    }
    Ok(())
}

pub fn get_config(s: &State, p: &Params) -> ApiResult {
    let id = vmid(p);
    s.require(&format!("/vms/{id}"), "VM.Audit")?;
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

/// The privileges of `PUT /nodes/{node}/lxc/{vmid}/config`, as PVE checks
/// them: any one of the VM.Config privileges to call it at all
/// (pve-container src/PVE/API2/LXC/Config.pm, `update_vm`'s `permissions`,
/// `$vm_config_perm_list`; the refusal reads as pve-access-control's
/// `check_any` words it, src/PVE/RPCEnvironment.pm), then one per key set
/// or deleted (src/PVE/LXC.pm, `check_ct_modify_config_perm`).
fn check_config_perms(s: &State, id: u32, p: &Params) -> Result<(), ApiError> {
    let path = format!("/vms/{id}");
    const ANY: [&str; 5] = [
        "VM.Config.Disk",
        "VM.Config.CPU",
        "VM.Config.Memory",
        "VM.Config.Network",
        "VM.Config.Options",
    ];
    if !ANY
        .iter()
        .any(|privilege| s.privs.iter().any(|h| h == privilege))
    {
        return Err(ApiError::forbidden(format!("{path}, {}", ANY.join("|"))));
    }
    let deleted = p.str("delete").map(formats::split_list).unwrap_or_default();
    let set =
        p.0.keys()
            .map(String::as_str)
            .filter(|k| !["node", "vmid", "delete", "digest", "revert"].contains(k));
    for key in set.chain(deleted.iter().copied()) {
        let privilege = match key {
            "cores" | "cpuunits" | "cpulimit" => "VM.Config.CPU",
            "memory" | "swap" => "VM.Config.Memory",
            "rootfs" => "VM.Config.Disk",
            "nameserver" | "searchdomain" | "hostname" => "VM.Config.Network",
            k if k.starts_with("mp") && k[2..].parse::<u32>().is_ok() => "VM.Config.Disk",
            k if k.starts_with("net") && k[3..].parse::<u32>().is_ok() => "VM.Config.Network",
            _ => "VM.Config.Options",
        };
        s.require(&path, privilege)?;
    }
    Ok(())
}

pub fn put_config(s: &State, p: &Params) -> ApiResult {
    let id = vmid(p);
    check_config_perms(s, id, p)?;
    root_only(s, p)?;
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
    if let Some(list) = p.str("delete") {
        for key in formats::split_list(list) {
            if p.0.contains_key(key) {
                return Err(ApiError::param(
                    "delete",
                    format!("can't set and delete '{key}' at the same time"),
                ));
            }
            match key {
                "description" => cfg.description = None,
                "env" => cfg.lxc.retain(|(k, _)| k != "lxc.environment.runtime"),
                _ => {
                    cfg.options.remove(key);
                }
            }
        }
    }
    let mut made = Vec::new();
    apply(&mut cfg, p, &["node", "vmid", "delete", "digest", "revert"]);
    allocate(&s.storage, id, &mut cfg, &mut made).map_err(ApiError::fail)?;
    s.store
        .write(id, &cfg)
        .map_err(|e| ApiError::fail(e.to_string()))?;
    Ok(Value::Null)
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

pub fn destroy(s: &State, p: &Params, tf: TaskFault) -> ApiResult {
    let id = vmid(p);
    s.require(&format!("/vms/{id}"), "VM.Allocate")?;
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
        s.lxc.stop(id, None)?;
    }
    // A CT that stopped by itself may still have its lxc-start tearing down: wait for it,
    // so nothing of the CT (cgroups, the LXC directory) outlives the destroy.
    s.lxc.wait_exited(id)?;
    for (k, v) in &cfg.options {
        if k == "rootfs" || k.starts_with("mp") || k.starts_with("unused") {
            let first = v.split(',').next().unwrap_or("");
            let vol = first.strip_prefix("volume=").unwrap_or(first);
            log.line(format!("destroying volume '{vol}'"));
            s.storage.free_owned(id, vol);
        }
    }
    if unreferenced {
        for vol in s.storage.owned_by(id) {
            log.line(format!("destroying unreferenced volume '{vol}'"));
            s.storage.free_owned(id, &vol);
        }
    }
    s.store.remove(id).map_err(|e| e.to_string())?;
    s.lxc.remove(id);
    Ok(())
}
