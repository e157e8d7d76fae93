//! Node- and cluster-level endpoints: version, nextid, resources, tasks, permissions,
//! storage and network listings.

use super::{ApiError, ApiResult, State};
use crate::schema::Params;
use serde_json::{json, Value};

pub fn version(_: &State) -> ApiResult {
    Ok(json!({"version": "9.1.3", "release": "9.1", "repoid": "pve-sim", "console": "xtermjs"}))
}

/// First free id >= 100, or 400 when the asked one is taken. Like PVE it answers the id
/// as a string; it only hints, the create call decides.
pub fn nextid(s: &State, p: &Params) -> ApiResult {
    if let Some(want) = p.int("vmid") {
        return match s.store.owner(want as u32) {
            None => Ok(json!(want.to_string())),
            Some(_) => Err(ApiError::param("vmid", format!("VM {want} already exists"))),
        };
    }
    let used = s.store.all_ids();
    let free = (100u32..)
        .find(|id| used.binary_search(id).is_err())
        .unwrap_or(100);
    Ok(json!(free.to_string()))
}

/// `GET /nodes/{node}/lxc`: pve-container src/PVE/API2/LXC.pm `vmlist` lists only the
/// CTs the token may `VM.Audit` on `/vms/VMID`.
pub fn vmlist(s: &State) -> ApiResult {
    let Value::Array(all) = super::power::vmlist(s)? else {
        return Ok(Value::Array(Vec::new()));
    };
    let visible = all
        .into_iter()
        .filter(|ct| s.has(&format!("/vms/{}", ct["vmid"]), "VM.Audit"));
    Ok(Value::Array(visible.collect()))
}

/// pve-manager PVE/API2/Cluster.pm `resources`: pools the token may `Pool.Audit` (only
/// without `type`), guests it may `VM.Audit` (with their `pool` when it may audit that
/// pool), storages it may `Datastore.Audit`, and the node.
pub fn resources(s: &State, p: &Params) -> ApiResult {
    let ty = p.str("type");
    let users = s.access.config();
    let mut out = Vec::new();
    if ty.is_none() {
        for pool in users.pools.keys() {
            if s.has(&format!("/pool/{pool}"), "Pool.Audit") {
                out.push(json!({"id": format!("/pool/{pool}"), "pool": pool, "type": "pool"}));
            }
        }
    }
    if ty.is_none() || ty == Some("vm") {
        for ct in super::power::ct_summaries(s) {
            let mut r = ct;
            let vmid = r["vmid"].as_u64().unwrap_or(0) as u32;
            if !s.has(&format!("/vms/{vmid}"), "VM.Audit") {
                continue;
            }
            if let Some(pool) = users.vms.get(&vmid) {
                if s.has(&format!("/pool/{pool}"), "Pool.Audit") {
                    r["pool"] = json!(pool);
                }
            }
            r["id"] = json!(format!("lxc/{vmid}"));
            r["type"] = json!("lxc");
            r["node"] = json!(s.node);
            out.push(r);
        }
    }
    if ty.is_none() || ty == Some("storage") {
        for st in s.storage.list() {
            let id = st["storage"].as_str().unwrap_or("");
            if !s.has(&format!("/storage/{id}"), "Datastore.Audit") {
                continue;
            }
            out.push(json!({
                "id": format!("storage/{}/{id}", s.node),
                "type": "storage", "node": s.node, "storage": st["storage"],
                "plugintype": st["type"], "content": st["content"], "status": "available",
                "disk": st["used"], "maxdisk": st["total"], "shared": 0,
            }));
        }
    }
    if ty.is_none() || ty == Some("node") {
        out.push(json!({"id": format!("node/{}", s.node), "type": "node", "node": s.node, "status": "online"}));
    }
    Ok(Value::Array(out))
}

pub fn nodes(s: &State) -> ApiResult {
    Ok(
        json!([{"node": s.node, "status": "online", "type": "node", "id": format!("node/{}", s.node)}]),
    )
}

/// pve-access-control src/PVE/API2/AccessControl.pm `permissions`: with `path`, the
/// privileges on that path (`{PATH: {PRIV: propagate}}`, possibly empty); without, every
/// path of `get_effective_permissions`. Another user's or token's (not the caller's own
/// token) needs `Sys.Audit` on `/access`.
pub fn permissions(s: &State, p: &Params) -> ApiResult {
    let me = s.user();
    let who = p.str("userid").unwrap_or(me);
    let owner = crate::acl::names::split_tokenid(who).map(|(u, _)| u);
    if who != me && owner != Some(me) {
        s.require_all("/access", &["Sys.Audit"])?;
    }
    let cfg = s.access.config();
    let show = |privs: crate::acl::Privs| -> Value {
        Value::Object(
            privs
                .into_iter()
                .map(|(k, v)| (k, json!(u8::from(v))))
                .collect(),
        )
    };
    let map: serde_json::Map<String, Value> = match p.str("path") {
        Some(path) => [(
            path.to_string(),
            show(crate::acl::perms::permissions(&cfg, who, path)),
        )]
        .into_iter()
        .collect(),
        None => crate::acl::perms::effective(&cfg, who)
            .into_iter()
            .map(|(path, privs)| (path, show(privs)))
            .collect(),
    };
    Ok(Value::Object(map))
}

/// pve-storage src/PVE/API2/Storage/Status.pm `index`: the storages the token may
/// `Datastore.Audit` or `Datastore.AllocateSpace`; a `storage` that is not there (after
/// the `content` filter) is 400 `No such storage.`.
pub fn storage(s: &State, p: &Params) -> ApiResult {
    let list: Vec<Value> = s
        .storage
        .list()
        .into_iter()
        .filter(|st| {
            p.str("content").is_none_or(|want| {
                let have = st["content"].as_str().unwrap_or("");
                want.split(',').all(|w| have.split(',').any(|h| h == w))
            })
        })
        .collect();
    if let Some(id) = p.str("storage") {
        if !list.iter().any(|st| st["storage"] == id) {
            return Err(ApiError::param("storage", "No such storage."));
        }
    }
    let visible = list.into_iter().filter(|st| {
        let id = st["storage"].as_str().unwrap_or("");
        let id_ok = p.str("storage").is_none_or(|want| want == id);
        id_ok
            && s.require_any(
                &format!("/storage/{id}"),
                &["Datastore.Audit", "Datastore.AllocateSpace"],
            )
            .is_ok()
    });
    Ok(Value::Array(visible.collect()))
}

/// pve-access-control src/PVE/RPCEnvironment.pm `check_sdn_bridge` for the zone
/// `localnetwork`: `SDN.Audit` or `SDN.Use` on the bridge, or on one of its VLANs that
/// has an ACL.
fn may_see_bridge(s: &State, bridge: &str) -> bool {
    let privs = ["SDN.Audit", "SDN.Use"];
    let path = format!("/sdn/zones/localnetwork/{bridge}");
    if s.require_any(&path, &privs).is_ok() {
        return true;
    }
    let cfg = s.access.config();
    let vlans = ["sdn", "zones", "localnetwork", bridge]
        .iter()
        .try_fold(&cfg.acl, |n, part| n.children.get(*part))
        .map(|n| n.children.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    vlans
        .iter()
        .any(|v| s.require_any(&format!("{path}/{v}"), &privs).is_ok())
}

pub fn network(s: &State, p: &Params) -> ApiResult {
    let bridges = matches!(
        p.str("type"),
        None | Some("bridge" | "any_bridge" | "any_local_bridge")
    );
    let list: Vec<Value> = if bridges {
        s.host
            .bridges
            .iter()
            .filter(|b| may_see_bridge(s, b))
            .map(|b| json!({"iface": b, "type": "bridge", "active": 1, "autostart": 1}))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Value::Array(list))
}

fn upid_of(p: &Params) -> Result<&str, ApiError> {
    let upid = p.str("upid").unwrap_or("");
    if upid.starts_with("UPID:") && upid.ends_with(':') && upid.split(':').count() == 9 {
        Ok(upid)
    } else {
        Err(ApiError::param(
            "upid",
            format!("unable to parse worker upid '{upid}'"),
        ))
    }
}

pub fn task_status(s: &State, p: &Params) -> ApiResult {
    s.tasks
        .status(upid_of(p)?)
        .ok_or_else(|| ApiError::fail("no such task"))
}

pub fn task_log(s: &State, p: &Params) -> ApiResult {
    let start = p.int("start").unwrap_or(0).max(0) as usize;
    let limit = p.int("limit").unwrap_or(50).max(0) as usize;
    let (lines, _total) = s
        .tasks
        .log(upid_of(p)?, start, limit)
        .ok_or_else(|| ApiError::fail("no such task"))?;
    Ok(lines)
}

pub fn task_list(s: &State) -> ApiResult {
    Ok(Value::Array(s.tasks.list()))
}
