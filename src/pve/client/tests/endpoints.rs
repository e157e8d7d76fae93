//! Typed endpoints: methods, paths, parameters, lenient answers, and the
//! statistics keyed by path template.

use serde_json::json;

use super::server::{Reply, Request};
use super::{pairs, pinned, upid_for};
use crate::pve::client::{DeleteOptions, PveError};

fn p(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// A miniature PVE for the endpoints below.
fn fake_pve(req: &Request) -> Reply {
    let path = req.path().to_string();
    let query = pairs(req.query());
    match (req.method.as_str(), path.as_str()) {
        ("GET", "/cluster/nextid") => match query.first() {
            // PVE returns the id as a string.
            None => Reply::data(json!("100")),
            Some((_, v)) if v == "101" => Reply::data(json!(101)),
            Some(_) => Reply::json(
                400,
                "Parameter verification failed.",
                json!({"data": null, "errors": {"vmid": "VM 100 already exists\n"}}),
            ),
        },
        ("POST", "/nodes/pve1/lxc") => Reply::data(json!(upid_for("vzcreate", "105"))),
        ("PUT", "/nodes/pve1/lxc/105/config") => Reply::data(json!(null)),
        ("POST", p) if p.starts_with("/nodes/pve1/lxc/") && p.contains("/status/") => {
            let verb = p.rsplit('/').next().unwrap();
            let vmid = p.split('/').nth(4).unwrap();
            Reply::data(json!(upid_for(&format!("vz{verb}"), vmid)))
        }
        ("DELETE", "/nodes/pve1/lxc/105") => Reply::data(json!(upid_for("vzdestroy", "105"))),
        ("GET", "/cluster/resources") => match query.first().map(|(_, v)| v.as_str()) {
            Some("storage") => Reply::data(json!([
                {"id": "storage/pve1/local-zfs", "storage": "local-zfs", "node": "pve1",
                 "content": "images,rootdir", "plugintype": "zfspool", "status": "available", "shared": 0},
                {"id": "storage/pve2/local-zfs", "storage": "local-zfs", "node": "pve2",
                 "content": "images,rootdir", "status": "available"},
                {"id": "storage/pve1/local", "storage": "local", "node": "pve1",
                 "content": "iso,vztmpl,backup", "status": "available"}
            ])),
            _ => Reply::json(400, "Parameter verification failed.", json!({"data": null})),
        },
        ("GET", "/access/permissions") => match query.first() {
            Some((k, v)) if k == "path" => {
                Reply::data(json!({ v.clone(): {"VM.Audit": 1, "VM.Allocate": 0} }))
            }
            _ => Reply::data(json!({"/": {"Sys.Audit": 1}, "/vms": {"VM.Audit": 1}})),
        },
        ("GET", "/nodes/pve1/network") => Reply::data(json!([
            {"iface": "vmbr0", "type": "bridge", "active": 1},
            {"iface": "eno1", "type": "eth", "active": "1"},
            {"iface": "vmbr1", "type": "OVSBridge"}
        ])),
        ("GET", "/nodes/pve1/lxc") => Reply::data(json!([
            {"vmid": "105", "status": "running", "name": "web-0", "tags": "lxcri", "maxmem": "536870912"},
            {"vmid": 106, "status": "stopped", "lock": "create"}
        ])),
        _ => Reply::json(
            501,
            &format!("Method '{} {path}' not implemented", req.method),
            json!({"data": null}),
        ),
    }
}

#[test]
fn next_id_free_taken_and_first() {
    let (server, client) = pinned(fake_pve);
    assert_eq!(client.next_id(None).unwrap(), Some(100));
    assert_eq!(client.next_id(Some(101)).unwrap(), Some(101));
    assert_eq!(client.next_id(Some(100)).unwrap(), None);
    let targets: Vec<_> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [
            "/api2/json/cluster/nextid",
            "/api2/json/cluster/nextid?vmid=101",
            "/api2/json/cluster/nextid?vmid=100"
        ]
    );
}

#[test]
fn create_sends_form_params_and_returns_upid() {
    let (server, client) = pinned(fake_pve);
    let params = vec![
        p("vmid", "105"),
        p(
            "ostemplate",
            "local:vztmpl/debian-13-standard_13.1-1_amd64.tar.zst",
        ),
        p("net0", "name=eth0,bridge=vmbr0,ip=dhcp"),
        p("description", "container abc\npod web-0 & co"),
    ];
    let upid = client.create_lxc("pve1", &params).unwrap();
    assert_eq!(
        (
            upid.task_type.as_str(),
            upid.id.as_str(),
            upid.node.as_str()
        ),
        ("vzcreate", "105", "pve1")
    );
    let req = &server.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(pairs(&req.body), params);
}

#[test]
fn config_update() {
    let (server, client) = pinned(fake_pve);
    client
        .update_lxc_config("pve1", 105, &[p("memory", "1024"), p("digest", "0123abcd")])
        .unwrap();
    let req = &server.requests()[0];
    assert_eq!(req.method, "PUT");
    assert_eq!(
        pairs(&req.body),
        [p("memory", "1024"), p("digest", "0123abcd")]
    );
}

#[test]
fn lifecycle_calls_return_upids() {
    let (server, client) = pinned(fake_pve);
    assert_eq!(client.start("pve1", 105).unwrap().task_type, "vzstart");
    assert_eq!(client.stop("pve1", 105).unwrap().task_type, "vzstop");
    let opts = DeleteOptions {
        purge: true,
        force: true,
        destroy_unreferenced_disks: true,
    };
    assert_eq!(
        client.delete_lxc("pve1", 105, &opts).unwrap().task_type,
        "vzdestroy"
    );
    let reqs = server.requests();
    assert_eq!(reqs[2].method, "DELETE");
    assert_eq!(
        pairs(reqs[2].query()),
        [
            p("purge", "1"),
            p("force", "1"),
            p("destroy-unreferenced-disks", "1")
        ]
    );
    client
        .delete_lxc("pve1", 105, &DeleteOptions::default())
        .unwrap();
    assert_eq!(server.requests()[3].target, "/api2/json/nodes/pve1/lxc/105");
}

#[test]
fn listings() {
    let (_server, client) = pinned(fake_pve);
    let cts = client.node_lxc_list("pve1").unwrap();
    assert_eq!(cts.iter().map(|c| c.vmid).collect::<Vec<_>>(), [105, 106]);
    assert_eq!(cts[1].lock.as_deref(), Some("create"));
    let storages = client.storage_list("pve1").unwrap();
    let names: Vec<_> = storages
        .iter()
        .map(|s| s.storage.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["local-zfs", "local"]);
    assert!(storages[0].allows_rootdir() && !storages[1].allows_rootdir());
}

#[test]
fn permissions_of_one_path_or_all() {
    let (server, client) = pinned(fake_pve);
    let perms = client.permissions(Some("/vms")).unwrap();
    // A privilege held without propagation (0) is still held.
    assert!(perms.has("/vms", "VM.Audit") && perms.has("/vms", "VM.Allocate"));
    assert_eq!(
        perms.missing("/vms", &["VM.Allocate", "VM.PowerMgmt", "VM.Audit"]),
        ["VM.PowerMgmt"]
    );
    let all = client.permissions(None).unwrap();
    assert!(all.has("/", "Sys.Audit") && !all.has("/", "VM.Audit"));
    assert!(!all.has("/storage", "Datastore.AllocateSpace"));
    let targets: Vec<_> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [
            "/api2/json/access/permissions?path=%2Fvms",
            "/api2/json/access/permissions"
        ]
    );
}

#[test]
fn network_list_marks_bridges() {
    let (_server, client) = pinned(fake_pve);
    let ifaces = client.network_list("pve1").unwrap();
    let bridges: Vec<_> = ifaces
        .iter()
        .filter(|i| i.is_bridge())
        .map(|i| i.iface.as_str())
        .collect();
    assert_eq!(bridges, ["vmbr0", "vmbr1"]);
    assert_eq!(ifaces[1].active, Some(true));
}

#[test]
fn stats_are_keyed_by_template_not_ids() {
    let (_server, client) = pinned(fake_pve);
    client.start("pve1", 105).unwrap();
    client.start("pve1", 106).unwrap();
    client.start("pve1", 107).unwrap();
    let err = client
        .delete_lxc("pve1", 999, &DeleteOptions::default())
        .unwrap_err();
    assert!(matches!(err, PveError::NotImplemented { .. }));
    let stats = client.stats();
    let start = stats
        .get("POST", "/nodes/{node}/lxc/{vmid}/status/start")
        .unwrap();
    assert_eq!((start.calls, start.error_count()), (3, 0));
    assert_eq!(start.latency_buckets.iter().sum::<u64>(), 3);
    assert!(start.latency_sum > std::time::Duration::ZERO);
    let delete = stats.get("DELETE", "/nodes/{node}/lxc/{vmid}").unwrap();
    assert_eq!(delete.errors[&crate::pve::client::ErrorClass::Server], 1);
    let keys: Vec<_> = stats
        .snapshot()
        .into_iter()
        .map(|(k, _)| k.template)
        .collect();
    assert!(
        keys.iter()
            .all(|t| !t.contains("105") && !t.contains("999")),
        "{keys:?}"
    );
    assert_eq!(stats.total_calls(), 4);
}
