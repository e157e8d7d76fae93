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
        ("GET", "/nodes/pve1/lxc/105/config") => Reply::data(json!({
            "hostname": "web-0", "memory": 512, "digest": "0123abcd",
            "lxc": [["lxc.include", "/var/lib/lxcri/105.conf"]]
        })),
        ("PUT", "/nodes/pve1/lxc/105/config") => Reply::data(json!(null)),
        ("POST", p) if p.starts_with("/nodes/pve1/lxc/") && p.contains("/status/") => {
            let verb = p.rsplit('/').next().unwrap();
            let vmid = p.split('/').nth(4).unwrap();
            Reply::data(json!(upid_for(&format!("vz{verb}"), vmid)))
        }
        ("GET", "/nodes/pve1/lxc/105/status/current") => Reply::data(json!({
            "status": "running", "pid": "31337", "cpu": 0.02, "cpus": "2", "mem": "52428800",
            "maxmem": 536870912, "netin": "1000", "netout": 2000, "diskread": "3", "diskwrite": 4,
            "uptime": 12, "tags": "lxcri;k8s-ns-default", "lock": "", "vmid": 105, "name": "web-0"
        })),
        ("DELETE", "/nodes/pve1/lxc/105") => Reply::data(json!(upid_for("vzdestroy", "105"))),
        ("GET", "/cluster/resources") => match query.first().map(|(_, v)| v.as_str()) {
            Some("vm") => Reply::data(json!([
                {"id": "lxc/105", "type": "lxc", "vmid": 105, "node": "pve1", "status": "running",
                 "tags": "lxcri", "name": "web-0"},
                {"id": "qemu/200", "type": "qemu", "vmid": "200", "node": "pve2", "status": "stopped",
                 "name": 200, "template": 1}
            ])),
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
fn config_read_and_update() {
    let (server, client) = pinned(fake_pve);
    let config = client.lxc_config("pve1", 105).unwrap();
    assert_eq!(config["digest"], "0123abcd");
    assert_eq!(config["lxc"][0][0], "lxc.include");
    client
        .update_lxc_config("pve1", 105, &[p("memory", "1024"), p("digest", "0123abcd")])
        .unwrap();
    let req = &server.requests()[1];
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
    assert_eq!(
        client
            .shutdown("pve1", 105, Some(30), true)
            .unwrap()
            .task_type,
        "vzshutdown"
    );
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
    assert_eq!(
        pairs(&reqs[2].body),
        [p("timeout", "30"), p("forceStop", "1")]
    );
    assert_eq!(reqs[3].method, "DELETE");
    assert_eq!(
        pairs(reqs[3].query()),
        [
            p("purge", "1"),
            p("force", "1"),
            p("destroy-unreferenced-disks", "1")
        ]
    );
    client
        .delete_lxc("pve1", 105, &DeleteOptions::default())
        .unwrap();
    assert_eq!(server.requests()[4].target, "/api2/json/nodes/pve1/lxc/105");
}

#[test]
fn status_current_is_lenient() {
    let (_server, client) = pinned(fake_pve);
    let s = client.status_current("pve1", 105).unwrap();
    assert!(s.is_running());
    assert_eq!(s.pid, Some(31337));
    assert_eq!(
        (s.mem, s.maxmem, s.cpus),
        (Some(52_428_800), Some(536_870_912), Some(2.0))
    );
    assert_eq!(
        (s.netin, s.netout, s.diskread, s.diskwrite),
        (Some(1000), Some(2000), Some(3), Some(4))
    );
    assert_eq!(s.tag_list(), ["lxcri", "k8s-ns-default"]);
    assert_eq!(s.lock.as_deref(), Some(""));
}

#[test]
fn listings() {
    let (_server, client) = pinned(fake_pve);
    let vms = client.cluster_resources_vms().unwrap();
    assert_eq!(vms.len(), 2);
    assert!(vms[0].is_lxc() && !vms[1].is_lxc());
    assert_eq!(
        (vms[0].vmid, vms[0].node.as_deref()),
        (Some(105), Some("pve1"))
    );
    assert_eq!(
        (vms[1].vmid, vms[1].name.as_deref(), vms[1].template),
        (Some(200), Some("200"), Some(true))
    );
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
    let err = client.status_current("pve1", 999).unwrap_err();
    assert!(matches!(err, PveError::NotImplemented { .. }));
    let stats = client.stats();
    let start = stats
        .get("POST", "/nodes/{node}/lxc/{vmid}/status/start")
        .unwrap();
    assert_eq!((start.calls, start.error_count()), (3, 0));
    assert_eq!(start.latency_buckets.iter().sum::<u64>(), 3);
    assert!(start.latency_sum > std::time::Duration::ZERO);
    let current = stats
        .get("GET", "/nodes/{node}/lxc/{vmid}/status/current")
        .unwrap();
    assert_eq!(current.errors[&crate::pve::client::ErrorClass::Server], 1);
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
