//! `POST /nodes/{node}/lxc`: a CT made in the order pve-container src/PVE/API2/LXC.pm
//! `create_vm` checks and does things.

use super::ct::{allocate, apply, vmid};
use super::ct_perms::{check_volume_access, mount_type, storage_of, volume_of, Change};
use super::perms::denied;
use super::{ApiError, ApiResult, State};
use crate::schema::Params;
use crate::store::CtConfig;
use crate::tasks::{TaskFault, TaskLog};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

/// The parameters `create_vm` takes out before `check_ct_modify_config_perm`: they steer
/// the create and are not config keys (`unprivileged` is stored by the create itself).
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
    "unprivileged",
];

fn is_volume_key(k: &str) -> bool {
    k == "rootfs"
        || k.strip_prefix("mp")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `create_vm`'s `$check_and_activate_storage`: the storage exists, holds container
/// directories, and the token may allocate space on it.
fn check_storage(s: &State, sid: &str) -> Result<(), ApiError> {
    if !s.storage.exists(sid) {
        return Err(ApiError::fail(format!("storage '{sid}' does not exist")));
    }
    if !s.storage.kind(sid).1.split(',').any(|c| c == "rootdir") {
        return Err(ApiError::param(
            "storage",
            format!("storage '{sid}' does not support container directories"),
        ));
    }
    s.require_all(&format!("/storage/{sid}"), &["Datastore.AllocateSpace"])
}

pub fn create(s: &State, p: &Params, tf: TaskFault) -> ApiResult {
    // pve-container src/PVE/API2/LXC.pm `create_vm`: the first thing its code does.
    crate::quorum::check(&s.etc_pve).map_err(ApiError::fail)?;
    // API2/LXC.pm `create_vm`: "clamp value depending on cgroup version".
    let p = &super::ct::clamp_cpuunits(s, p);
    let id = vmid(p);
    // PVE 9 creates unprivileged CTs unless told otherwise; a privileged one needs
    // Sys.Modify on `/`, checked before anything else.
    let unprivileged = !p.0.contains_key("unprivileged") || p.flag("unprivileged");
    if !unprivileged {
        s.require_all("/", &["Sys.Modify"])?;
    }
    if p.flag("ha-managed") {
        s.require_all("/", &["Sys.Console"])?;
    }
    if let Some(kind) = s.store.owner(id) {
        return Err(ApiError::fail(format!(
            "{kind} {id} already exists on node '{}'",
            s.node
        )));
    }
    let pool = p.str("pool");
    if let Some(pool) = pool {
        s.check_pool_exist(pool)?;
    }
    let may_allocate = s.has(&format!("/vms/{id}"), "VM.Allocate")
        || pool.is_some_and(|pl| s.has(&format!("/pool/{pl}"), "VM.Allocate"));
    if !may_allocate {
        return Err(denied());
    }
    let mut cfg = CtConfig::default();
    apply(&mut cfg, p, CREATE_ONLY);
    let mut keys = cfg.options.clone();
    if let Some(d) = &cfg.description {
        keys.insert("description".into(), d.clone());
    }
    if p.0.contains_key("env") {
        keys.insert("env".into(), String::new());
    }
    Change {
        vmid: id,
        pool,
        old: None,
        unprivileged,
    }
    .check(s, &keys, &[])?;
    // Before the lock and the config: a template refused or missing leaves nothing.
    let template = p.str("ostemplate").unwrap_or("");
    check_volume_access(s, id, template, "vztmpl")?;
    let archive = s.storage.template(template).map_err(ApiError::fail)?;
    let storage = p.str("storage").unwrap_or("local").to_string();
    let volume_keys: Vec<String> = cfg
        .options
        .keys()
        .filter(|k| is_volume_key(k))
        .cloned()
        .collect();
    for k in &volume_keys {
        // A plain number is a size on the default storage.
        let v = cfg.options[k].clone();
        if v.parse::<f64>().is_ok() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            cfg.options.insert(k.clone(), format!("{storage}:{v}"));
        }
    }
    if !volume_keys.is_empty() && !cfg.options.contains_key("rootfs") {
        return Err(ApiError::fail(
            "mount points configured, but 'rootfs' not set - aborting",
        ));
    }
    for k in &volume_keys {
        let v = &cfg.options[k];
        if mount_type(v) != "volume" {
            if !s.allow_root_only {
                return Err(ApiError::fail(
                    "Only root can pass arbitrary filesystem paths.",
                ));
            }
            continue;
        }
        let volid = volume_of(v);
        let (sid, _) = storage_of(volid)
            .ok_or_else(|| ApiError::fail(format!("unable to parse volume ID '{volid}'")))?;
        check_storage(s, sid)?;
    }
    if !cfg.options.contains_key("rootfs") {
        check_storage(s, &storage)?;
        // pve-container: without rootfs the CT gets 4 GiB on the default storage.
        cfg.options.insert("rootfs".into(), format!("{storage}:4"));
    }
    // API2/LXC.pm `create_vm`: `update_pct_config` once the storages are checked.
    super::ct::check_nets(s, p, &s.host.at_start())?;
    cfg.options.entry("arch".into()).or_insert("amd64".into());
    if unprivileged {
        // PVE stores `unprivileged: 1`, and nothing for a privileged CT.
        cfg.options.insert("unprivileged".into(), "1".into());
    }
    cfg.options.insert("lock".into(), "create".into());
    {
        let _lock = s
            .store
            .lock(id)
            .map_err(|e| ApiError::fail(e.to_string()))?;
        // The API writes only the lock (pve-guest-common
        // src/PVE/AbstractConfig.pm `create_and_lock_config`, called by
        // pve-container src/PVE/API2/LXC.pm before it forks the worker); the
        // worker writes the whole config when it is done.
        let mut locked = CtConfig::default();
        locked.options.insert("lock".into(), "create".into());
        s.store
            .create_exclusive(id, &locked)
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
    let pool = pool.map(String::from);
    let work = move |log: &TaskLog| create_task(&state, id, cfg, &archive, pool, start, log);
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

fn detect_ostype(root: &Path) -> &'static str {
    if root.join("etc/alpine-release").exists() {
        "alpine"
    } else if root.join("etc/debian_version").exists() {
        "debian"
    } else {
        "unmanaged"
    }
}

fn create_task(
    s: &State,
    id: u32,
    mut cfg: CtConfig,
    archive: &Path,
    pool: Option<String>,
    start: bool,
    log: &TaskLog,
) -> Result<(), String> {
    let mut made = Vec::new();
    // The worker holds the config lock from before it allocates until the CT is in its pool
    // (pve-container src/PVE/API2/LXC.pm: `$realcmd` runs `$code` under `lock_config`), so a
    // node-local edit of the CT waits for the whole create, as on a node.
    let lock = s.store.lock(id).map_err(|e| e.to_string())?;
    let result = (|| {
        allocate(&s.storage, id, &mut cfg, &mut made)?;
        let root_vol = cfg
            .options
            .get("rootfs")
            .map(|r| volume_of(r).to_string())
            .unwrap_or_default();
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
        // API2/LXC.pm "set some defaults", once the template is in: `hostname ||= CT$vmid`,
        // `memory ||= 512`, `swap //= 512`.
        if cfg.options.get("hostname").is_none_or(String::is_empty) {
            cfg.options.insert("hostname".into(), format!("CT{id}"));
        }
        if cfg.options.get("memory").is_none_or(|m| m == "0") {
            cfg.options.insert("memory".into(), "512".into());
        }
        cfg.options
            .entry("swap".into())
            .or_insert_with(|| "512".into());
        s.store.write(id, &cfg).map_err(|e| e.to_string())
    })();
    if let Err(e) = result {
        // PVE's create worker destroys what it made when any step fails.
        // pve-container src/PVE/LXC.pm `destroy_disks`: a volume it cannot free is a
        // warning.
        for v in &made {
            if let Err(e) = s.storage.free_owned(id, v) {
                log.line(format!("WARN: {e}"));
            }
        }
        let _ = s.store.remove(id);
        return Err(format!("unable to create CT {id} - {e}"));
    }
    log.line(format!("CT {id} created"));
    // pve-access-control src/PVE/AccessControl.pm `add_vm_to_pool`, once the CT is made.
    if let Some(pool) = pool {
        s.access
            .update(|c| c.add_vm_to_pool(id, &pool))
            .map_err(|e| format!("can't add VM {id} to pool '{pool}': {e}"))?;
    }
    // `start` runs after `lock_config` returned: the start worker takes the lock itself.
    drop(lock);
    if start {
        super::power::start_now(s, id, log)?;
    }
    Ok(())
}
