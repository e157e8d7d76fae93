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

pub fn resources(s: &State, p: &Params) -> ApiResult {
    let ty = p.str("type");
    let mut out = Vec::new();
    if ty.is_none() || ty == Some("vm") {
        for ct in super::power::ct_summaries(s) {
            let mut r = ct;
            r["id"] = json!(format!("lxc/{}", r["vmid"]));
            r["type"] = json!("lxc");
            r["node"] = json!(s.node);
            out.push(r);
        }
    }
    if ty.is_none() || ty == Some("storage") {
        for st in s.storage.list() {
            out.push(json!({
                "id": format!("storage/{}/{}", s.node, st["storage"].as_str().unwrap_or("")),
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

/// The token's privileges; the stand-in grants them on every path alike.
pub fn permissions(s: &State, p: &Params) -> ApiResult {
    let privs: serde_json::Map<String, Value> =
        s.privs.iter().map(|p| (p.clone(), json!(1))).collect();
    let paths: Vec<String> = match p.str("path") {
        Some(path) => vec![path.to_string()],
        None => vec![
            "/".into(),
            "/vms".into(),
            "/storage".into(),
            format!("/nodes/{}", s.node),
        ],
    };
    Ok(Value::Object(
        paths
            .into_iter()
            .map(|path| (path, Value::Object(privs.clone())))
            .collect(),
    ))
}

pub fn storage(s: &State, p: &Params) -> ApiResult {
    let list = s.storage.list().into_iter().filter(|st| {
        let content_ok = p.str("content").is_none_or(|want| {
            let have = st["content"].as_str().unwrap_or("");
            want.split(',').all(|w| have.split(',').any(|h| h == w))
        });
        let id_ok = p.str("storage").is_none_or(|id| st["storage"] == id);
        content_ok && id_ok
    });
    Ok(Value::Array(list.collect()))
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
