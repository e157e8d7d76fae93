//! The permission model read from user.cfg, one rule per test, through the API as a
//! client sees it: pve-container's `create_vm` order and `check_ct_modify_config_perm`,
//! pools, NoAccess, propagation, privilege separation, listings, `/access/permissions`.

mod common;

use common::Sim;
use serde_json::Value;

const TOKEN: &str = "lxcri@pve!sim=5ecret-perm-0042";

/// user.cfg for the test token's user `lxcri@pve` (token `sim`, no privilege
/// separation) with more lines.
fn users(more: &str) -> String {
    format!("user:lxcri@pve:1:0::::::\ntoken:lxcri@pve!sim:0:0::\n{more}")
}

/// What lxcri needs for a privileged CT (docs/pve-sim.md): Sys.Modify on `/` only,
/// the VM, datastore and audit roles on their subtrees.
const LXCRI_ACLS: &str = "role:LxcriPrivileged:Sys.Modify:\n\
    acl:0:/:lxcri@pve:LxcriPrivileged:\n\
    acl:1:/vms:lxcri@pve:PVEVMAdmin:\n\
    acl:1:/storage:lxcri@pve:PVEDatastoreUser:\n\
    acl:1:/nodes:lxcri@pve:PVEAuditor:\n";

/// The parameters lxcri creates its CTs with.
const LXCRI_CREATE: &str = "ostemplate=local%3Avztmpl%2Fe.tar.gz&rootfs=local-zfs%3A0\
    &hostname=c1&tags=lxcri%3Bns-default&description=pod&memory=256&swap=0&cores=1\
    &cpulimit=1&cpuunits=100&entrypoint=%2Finit&env=A%3D1&arch=amd64&console=0&tty=0\
    &ostype=unmanaged";

fn sim_with(user_cfg: &str) -> Sim {
    let sim = Sim::start_as(TOKEN, &[]);
    sim.put_template("local", "e.tar.gz");
    sim.write_etc("user.cfg", &users(user_cfg));
    sim
}

fn create(sim: &Sim, vmid: u32, form: &str) -> common::Answer {
    sim.call(
        "POST",
        &format!("/nodes/{}/lxc", sim.node),
        &format!("vmid={vmid}&{form}"),
    )
}

/// Creates and waits for the task; panics unless it worked.
fn create_ok(sim: &Sim, vmid: u32, form: &str) {
    let a = create(sim, vmid, form);
    assert_eq!(a.status, 200, "create {vmid}: {} {:?}", a.reason, a.body);
    let upid = a.body["data"].as_str().unwrap().to_string();
    assert_eq!(sim.wait_task(&upid), "OK");
}

fn refused(a: &common::Answer, reason: &str) {
    assert_eq!(a.status, 403, "{:?}", a.body);
    assert_eq!(a.reason, reason);
}

fn conf(sim: &Sim, vmid: u32) -> String {
    std::fs::read_to_string(sim.dir.path().join(format!("etc/pve/lxc/{vmid}.conf")))
        .unwrap_or_default()
}

fn left_nothing(sim: &Sim, before: &[String]) {
    assert_eq!(sim.tree(), before, "a refused create leaves nothing");
}

#[test]
fn a_privileged_ct_needs_sys_modify_on_root_checked_first() {
    let sim = sim_with(&LXCRI_ACLS.replace("acl:0:/:lxcri@pve:LxcriPrivileged:\n", ""));
    let before = sim.tree();
    let privileged = format!("{LXCRI_CREATE}&unprivileged=0");
    refused(
        &create(&sim, 100, &privileged),
        "Permission check failed (/, Sys.Modify)",
    );
    left_nothing(&sim, &before);
    // Before even the VMID check: a taken VMID still gets the 403.
    std::fs::write(sim.dir.path().join("etc/pve/qemu-server/100.conf"), "").unwrap();
    refused(
        &create(&sim, 100, &privileged),
        "Permission check failed (/, Sys.Modify)",
    );
    std::fs::remove_file(sim.dir.path().join("etc/pve/qemu-server/100.conf")).unwrap();
    // The default is unprivileged: that needs no Sys.Modify, and PVE stores it.
    create_ok(&sim, 101, LXCRI_CREATE);
    assert!(
        conf(&sim, 101).contains("\nunprivileged: 1\n"),
        "{}",
        conf(&sim, 101)
    );

    sim.write_etc("user.cfg", &users(LXCRI_ACLS));
    create_ok(&sim, 100, &privileged);
    let c = conf(&sim, 100);
    assert!(
        !c.contains("unprivileged"),
        "PVE stores nothing for privileged: {c}"
    );
    assert!(
        c.contains("rootfs: local-zfs:subvol-100-disk-0,size=0T\n"),
        "{c}"
    );
}

#[test]
fn each_config_privilege_is_needed_by_its_keys() {
    let all = [
        "VM.Config.CPU",
        "VM.Config.Memory",
        "VM.Config.Network",
        "VM.Config.Options",
        "VM.Config.Disk",
    ];
    let sim = sim_with("");
    let before = sim.tree();
    for missing in all {
        let privs: Vec<&str> = all.iter().copied().filter(|p| *p != missing).collect();
        sim.write_etc(
            "user.cfg",
            &users(&format!(
                "role:Most:VM.Allocate,VM.Audit,{}:\nacl:1:/vms:lxcri@pve:Most:\n\
                 acl:1:/storage:lxcri@pve:PVEDatastoreUser:\n",
                privs.join(",")
            )),
        );
        let a = create(&sim, 100, LXCRI_CREATE);
        refused(
            &a,
            &format!("Permission check failed (/vms/100, {missing})"),
        );
        left_nothing(&sim, &before);
    }
}

#[test]
fn storages_need_allocate_space_and_templates_audit() {
    let vms = "acl:1:/vms:lxcri@pve:PVEVMAdmin:\n";
    let sim = sim_with(&format!("{vms}acl:1:/storage:lxcri@pve:PVEAuditor:\n"));
    let before = sim.tree();
    refused(
        &create(&sim, 100, LXCRI_CREATE),
        "Permission check failed (/storage/local-zfs, Datastore.AllocateSpace)",
    );
    // Without rootfs the default storage (`storage`, else local) is checked too.
    refused(
        &create(
            &sim,
            100,
            "ostemplate=local%3Avztmpl%2Fe.tar.gz&storage=local-zfs",
        ),
        "Permission check failed (/storage/local-zfs, Datastore.AllocateSpace)",
    );
    // The template: nothing on its storage is refused...
    sim.write_etc(
        "user.cfg",
        &users(&format!(
            "{vms}acl:1:/storage/local-zfs:lxcri@pve:PVEDatastoreUser:\n"
        )),
    );
    refused(
        &create(&sim, 100, LXCRI_CREATE),
        "Permission check failed (/storage/local, Datastore.AllocateSpace|Datastore.Audit)",
    );
    left_nothing(&sim, &before);
    // ... Datastore.Audit alone is enough (no AllocateTemplate needed).
    sim.write_etc(
        "user.cfg",
        &users(&format!(
            "{vms}role:Look:Datastore.Audit:\nacl:1:/storage/local-zfs:lxcri@pve:PVEDatastoreUser:\n\
             acl:1:/storage/local:lxcri@pve:Look:\n"
        )),
    );
    create_ok(&sim, 100, LXCRI_CREATE);
}

#[test]
fn pools_must_exist_and_can_grant_vm_allocate() {
    let sim = sim_with(
        "pool:lxcri:::\nacl:1:/pool/lxcri:lxcri@pve:PVEVMAdmin,PVEPoolUser:\n\
         acl:1:/storage:lxcri@pve:PVEDatastoreUser:\n",
    );
    let before = sim.tree();
    let form = "ostemplate=local%3Avztmpl%2Fe.tar.gz&rootfs=local-zfs%3A0&memory=256&hostname=a";
    refused(
        &create(&sim, 100, &format!("{form}&pool=nope")),
        "Permission check failed (pool 'nope' does not exist)",
    );
    // Without the pool, nothing grants VM.Allocate on /vms/100: a bare refusal.
    refused(&create(&sim, 100, form), "Permission check failed");
    // Tags are checked on /vms/VMID alone (pve-guest-common assert_tag_permissions),
    // and the CT is no pool member yet: the pool's privileges do not count.
    refused(
        &create(&sim, 100, &format!("{form}&pool=lxcri&tags=a")),
        "Permission check failed (/vms/100, VM.Config.Options)",
    );
    left_nothing(&sim, &before);
    create_ok(&sim, 100, &format!("{form}&pool=lxcri"));
    let user_cfg = sim.read_etc("user.cfg");
    assert!(user_cfg.contains("\npool:lxcri::100::\n"), "{user_cfg}");
    let res = sim.call("GET", "/cluster/resources", "");
    let list = res.body["data"].as_array().unwrap().clone();
    let ct = list.iter().find(|r| r["id"] == "lxc/100").expect("lxc/100");
    assert_eq!(ct["pool"], "lxcri");
    assert!(list
        .iter()
        .any(|r| r["id"] == "/pool/lxcri" && r["type"] == "pool"));
    // As a member it gets the pool's roles on /vms/100 (tags now pass), ...
    let put = sim.call(
        "PUT",
        &format!("/nodes/{}/lxc/100/config", sim.node),
        "tags=a",
    );
    assert_eq!(put.status, 200, "{:?}", put.body);
    // ... and an ACL of its own, which destroy removes with the membership.
    let acl = format!("{user_cfg}acl:1:/vms/100:lxcri@pve:PVEAuditor:\n");
    sim.write_etc("user.cfg", &acl);
    let task = sim.call("DELETE", &format!("/nodes/{}/lxc/100", sim.node), "");
    assert_eq!(task.status, 200, "{:?}", task.body);
    assert_eq!(sim.wait_task(task.body["data"].as_str().unwrap()), "OK");
    let after = sim.read_etc("user.cfg");
    assert!(after.contains("\npool:lxcri::::\n"), "{after}");
    assert!(!after.contains("/vms/100"), "{after}");
}

/// pve-container src/PVE/API2/LXC.pm `destroy_vm`: once the volumes are gone the config is
/// replaced by `lock: destroyed` alone, and removed only after the CT's access entries; a
/// failure in between leaves that locked zombie, which a later destroy refuses.
#[test]
fn a_destroy_failing_after_its_volumes_leaves_a_locked_zombie() {
    let sim = sim_with("pool:lxcri:::\nacl:1:/:lxcri@pve:Administrator:\n");
    create_ok(&sim, 100, &format!("{LXCRI_CREATE}&pool=lxcri"));
    // The pool membership must go, and user.cfg cannot be written: its temporary file
    // (pve-common File.pm style, `user.cfg.tmp.PID`) is in the way.
    let blocker = sim
        .dir
        .path()
        .join(format!("etc/pve/user.cfg.tmp.{}", sim.pid()));
    std::fs::create_dir(&blocker).unwrap();
    let path = format!("/nodes/{}/lxc/100", sim.node);
    let task = sim.call("DELETE", &path, "");
    assert_eq!(task.status, 200, "{:?}", task.body);
    let exit = sim.wait_task(task.body["data"].as_str().unwrap());
    assert!(
        exit.starts_with("access permissions cleanup for VM 100 failed"),
        "{exit}"
    );
    assert_eq!(conf(&sim, 100), "lock: destroyed\n");
    assert!(!sim
        .dir
        .path()
        .join("storage/local-zfs/subvol-100-disk-0")
        .exists());
    let again = sim.call("DELETE", &path, "");
    assert_eq!(
        (again.status, again.reason.as_str()),
        (500, "CT is locked (destroyed)")
    );
    std::fs::remove_dir(&blocker).unwrap();
}

#[test]
fn no_access_hides_a_ct_and_blocks_every_call() {
    let sim =
        sim_with("acl:1:/vms:lxcri@pve:PVEVMAdmin:\nacl:1:/storage:lxcri@pve:PVEDatastoreUser:\n");
    create_ok(&sim, 100, LXCRI_CREATE);
    create_ok(&sim, 101, LXCRI_CREATE);
    sim.write_etc(
        "user.cfg",
        &users(
            "acl:1:/vms:lxcri@pve:PVEVMAdmin:\nacl:1:/storage:lxcri@pve:PVEDatastoreUser:\n\
             acl:1:/vms/100:lxcri@pve:NoAccess,PVEVMAdmin:\n",
        ),
    );
    let n = &sim.node;
    refused(
        &sim.call("GET", &format!("/nodes/{n}/lxc/100/status/current"), ""),
        "Permission check failed (/vms/100, VM.Audit)",
    );
    refused(
        &sim.call("GET", &format!("/nodes/{n}/lxc/100/config"), ""),
        "Permission check failed (/vms/100, VM.Audit)",
    );
    refused(
        &sim.call("POST", &format!("/nodes/{n}/lxc/100/status/start"), ""),
        "Permission check failed (/vms/100, VM.PowerMgmt)",
    );
    refused(
        &sim.call("DELETE", &format!("/nodes/{n}/lxc/100"), ""),
        "Permission check failed (/vms/100, VM.Allocate)",
    );
    let ids = |a: common::Answer| -> Vec<Value> {
        a.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["vmid"].clone())
            .collect()
    };
    assert_eq!(ids(sim.call("GET", &format!("/nodes/{n}/lxc"), "")), [101]);
    assert_eq!(ids(sim.call("GET", "/cluster/resources", "type=vm")), [101]);
}

#[test]
fn no_propagate_on_root_does_not_reach_vms() {
    let sim = sim_with("acl:0:/:lxcri@pve:Administrator:\n");
    refused(&create(&sim, 100, LXCRI_CREATE), "Permission check failed");
    let p = |path: &str| sim.call("GET", "/access/permissions", &format!("path={path}"));
    assert_eq!(p("/").body["data"]["/"]["Sys.Modify"], 0);
    assert_eq!(p("/vms").body["data"], serde_json::json!({"/vms": {}}));
}

#[test]
fn privilege_separated_tokens_hold_the_intersection() {
    let sim = sim_with("");
    sim.write_etc(
        "user.cfg",
        "user:lxcri@pve:1:0::::::\ntoken:lxcri@pve!sim:0:1::\n\
         acl:1:/vms:lxcri@pve:PVEVMUser:\nacl:1:/vms:lxcri@pve!sim:PVEVMAdmin:\n\
         acl:1:/storage:lxcri@pve!sim,lxcri@pve:PVEDatastoreUser:\n",
    );
    // VM.Allocate: the token has it, its user not.
    refused(&create(&sim, 100, LXCRI_CREATE), "Permission check failed");
    let p = sim.call("GET", "/access/permissions", "path=/vms/100");
    let privs = &p.body["data"]["/vms/100"];
    assert_eq!(privs["VM.PowerMgmt"], 1, "{privs}");
    assert!(privs.get("VM.Allocate").is_none(), "{privs}");
}

#[test]
fn the_token_must_be_in_user_cfg_and_enabled() {
    let sim = sim_with("");
    sim.write_etc("user.cfg", "user:lxcri@pve:1:0::::::\n");
    let a = sim.call("GET", "/version", "");
    assert_eq!(
        (a.status, a.reason.as_str()),
        (401, "no such token 'sim' for user 'lxcri@pve'")
    );
    sim.write_etc(
        "user.cfg",
        "user:lxcri@pve:0:0::::::\ntoken:lxcri@pve!sim:0:0::\n",
    );
    let a = sim.call("GET", "/version", "");
    assert_eq!(
        (a.status, a.reason.as_str()),
        (401, "user 'lxcri@pve' is disabled")
    );
    sim.write_etc("user.cfg", &users(""));
    assert_eq!(sim.call("GET", "/version", "").status, 200);
    // Allowed in, but holding nothing: listings are empty, not refused.
    let storages = sim.call("GET", &format!("/nodes/{}/storage", sim.node), "");
    assert_eq!(storages.body["data"], serde_json::json!([]));
}

#[test]
fn storage_listings_follow_datastore_privileges() {
    let sim = sim_with(
        "role:Space:Datastore.AllocateSpace:\nacl:1:/storage/local-zfs:lxcri@pve:Space:\n\
         acl:1:/storage/local:lxcri@pve:PVEAuditor:\n",
    );
    let names = |a: common::Answer| -> Vec<Value> {
        a.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["storage"].clone())
            .collect()
    };
    // The node's list: Datastore.Audit or Datastore.AllocateSpace.
    let node = names(sim.call("GET", &format!("/nodes/{}/storage", sim.node), ""));
    assert_eq!(node, ["local", "local-zfs"]);
    // The cluster's resources: Datastore.Audit only.
    let cluster = names(sim.call("GET", "/cluster/resources", "type=storage"));
    assert_eq!(cluster, ["local"]);
    let bad = sim.call(
        "GET",
        &format!("/nodes/{}/storage", sim.node),
        "storage=nfs1",
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["errors"]["storage"], "No such storage.");
}

#[test]
fn bridges_need_sdn_use_and_bind_mounts_root() {
    let sim = sim_with(LXCRI_ACLS);
    let net = format!("{LXCRI_CREATE}&net0=name%3Deth0%2Cbridge%3Dvmbr0");
    refused(
        &create(&sim, 100, &net),
        "Permission check failed (/sdn/zones/localnetwork/vmbr0, SDN.Use)",
    );
    let tagged = format!("{net}%2Ctag%3D5");
    refused(
        &create(&sim, 100, &tagged),
        "Permission check failed (/sdn/zones/localnetwork/vmbr0/5, SDN.Use)",
    );
    sim.write_etc(
        "user.cfg",
        &users(&format!(
            "{LXCRI_ACLS}acl:1:/sdn/zones/localnetwork/vmbr0:lxcri@pve:PVESDNUser:\n"
        )),
    );
    create_ok(&sim, 100, &tagged);
    let bind = LXCRI_CREATE.replace("rootfs=local-zfs%3A0", "rootfs=%2Fsrv%2Froot");
    refused(
        &create(&sim, 101, &bind),
        "Permission check failed (mount point type bind is only allowed for root@pam)",
    );
    refused(
        &create(&sim, 101, &format!("{LXCRI_CREATE}&features=keyctl%3D1")),
        "Permission check failed (changing feature flags (except nesting) is only allowed for root@pam)",
    );
}

#[test]
fn access_permissions_answers_like_pve() {
    let sim = sim_with(&format!(
        "{LXCRI_ACLS}pool:p1::100::\nacl:1:/pool/p1:lxcri@pve:PVEVMUser:\n"
    ));
    let a = sim.call("GET", "/access/permissions", "path=/vms/100");
    let vm = &a.body["data"]["/vms/100"];
    // Inherited from /vms (propagated: 1), from the pool (never propagated: 0).
    assert_eq!(vm["VM.Allocate"], 1, "{vm}");
    assert_eq!(vm["VM.Audit"], 1, "{vm}");
    assert_eq!(vm["Sys.Modify"], Value::Null, "{vm}");
    let all = sim.call("GET", "/access/permissions", "").body["data"].clone();
    let paths: Vec<&str> = all
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        paths,
        ["/", "/nodes", "/pool/p1", "/storage", "/vms", "/vms/100"],
        "{all}"
    );
    assert_eq!(all["/"], serde_json::json!({"Sys.Modify": 0}));
    // Another user's needs Sys.Audit on /access.
    refused(
        &sim.call("GET", "/access/permissions", "userid=root%40pam"),
        "Permission check failed (/access, Sys.Audit)",
    );
    assert!(sim.requests().iter().all(|l| l["valid"] == true));
}

#[test]
fn storage_cfg_describes_the_storages() {
    let sim = Sim::start_as(TOKEN, &[]);
    let text = sim.read_etc("storage.cfg");
    let local = sim.dir.path().canonicalize().unwrap().join("storage/local");
    assert_eq!(
        text,
        format!(
            "dir: local\n\tpath {}\n\tcontent backup,images,iso,rootdir,snippets,vztmpl\n\n\
             zfspool: local-zfs\n\tpool rpool/data\n\tcontent images,rootdir\n\tsparse 1\n\n",
            local.display()
        )
    );
}
