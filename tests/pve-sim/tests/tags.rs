//! Who may set which guest tags: datacenter.cfg's `user-tag-access` and
//! `registered-tags` (pve-guest-common src/PVE/GuestHelpers.pm
//! `assert_tag_permissions`), on create and on a config update.

mod common;

use common::Sim;

const TOKEN: &str = "tagger@pve!sim=5ecret-tags-0042";
const USERS: &str = "user:tagger@pve:1:0::::::\ntoken:tagger@pve!sim:0:0::\n\
    acl:1:/vms:tagger@pve:PVEVMAdmin:\nacl:1:/storage:tagger@pve:PVEDatastoreUser:\n";
/// Sys.Modify on `/` lifts every tag restriction.
const SYS_MODIFY: &str = "role:Sys:Sys.Modify:\nacl:0:/:tagger@pve:Sys:\n";
const FORM: &str = "ostemplate=local%3Avztmpl%2Fe.tar.gz&rootfs=local-zfs%3A0";

fn sim() -> Sim {
    let sim = Sim::start_as(TOKEN, &[]);
    sim.put_template("local", "e.tar.gz");
    sim.write_etc("user.cfg", USERS);
    sim
}

/// Creates `vmid` with `tags`: `Ok` when the task ran, else the 403's reason.
fn create(sim: &Sim, vmid: u32, tags: &str) -> Result<(), String> {
    let a = sim.call(
        "POST",
        &format!("/nodes/{}/lxc", sim.node),
        &format!("vmid={vmid}&{FORM}&tags={tags}"),
    );
    if a.status == 403 {
        return Err(a.reason);
    }
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(sim.wait_task(a.body["data"].as_str().unwrap()), "OK");
    Ok(())
}

fn put_tags(sim: &Sim, vmid: u32, form: &str) -> Result<(), String> {
    let a = sim.call(
        "PUT",
        &format!("/nodes/{}/lxc/{vmid}/config", sim.node),
        form,
    );
    match a.status {
        200 => Ok(()),
        403 => Err(a.reason),
        _ => panic!("{:?}", a.body),
    }
}

fn denied(tag: &str) -> Result<(), String> {
    Err(format!(
        "Permission check failed (/, Sys.Modify for modifying tag '{tag}')"
    ))
}

#[test]
fn free_is_the_default_and_none_allows_no_tag() {
    let sim = sim();
    assert_eq!(create(&sim, 100, "lxcri%3Bns-a"), Ok(()));
    sim.write_etc("datacenter.cfg", "user-tag-access: user-allow=none\n");
    assert_eq!(create(&sim, 101, "lxcri"), denied("lxcri"));
    // Removing a tag is a change too; keeping one is not.
    assert_eq!(put_tags(&sim, 100, "tags=lxcri"), denied("ns-a"));
    assert_eq!(put_tags(&sim, 100, "tags=ns-a%3Blxcri"), Ok(()));
    assert_eq!(put_tags(&sim, 100, "delete=tags"), denied("lxcri"));
    sim.write_etc("user.cfg", &format!("{USERS}{SYS_MODIFY}"));
    assert_eq!(create(&sim, 101, "lxcri"), Ok(()));
}

#[test]
fn list_allows_the_listed_tags_and_existing_also_those_in_use() {
    let sim = sim();
    assert_eq!(create(&sim, 100, "team-a"), Ok(()));
    sim.write_etc(
        "datacenter.cfg",
        "user-tag-access: user-allow=list,user-allow-list=lxcri;ok\n",
    );
    assert_eq!(create(&sim, 101, "lxcri%3Bok"), Ok(()));
    assert_eq!(create(&sim, 102, "team-a"), denied("team-a"));
    sim.write_etc(
        "datacenter.cfg",
        "user-tag-access: user-allow=existing,user-allow-list=lxcri\n",
    );
    assert_eq!(create(&sim, 102, "team-a%3Blxcri"), Ok(()));
    assert_eq!(create(&sim, 103, "brand-new"), denied("brand-new"));
    // A tag counts as existing only on guests the token may VM.Audit.
    sim.write_etc(
        "user.cfg",
        &format!(
            "{USERS}acl:1:/vms/100:tagger@pve:NoAccess:\nacl:1:/vms/102:tagger@pve:NoAccess:\n"
        ),
    );
    assert_eq!(create(&sim, 103, "team-a"), denied("team-a"));
}

#[test]
fn registered_tags_need_sys_modify_even_when_free() {
    let sim = sim();
    sim.write_etc("datacenter.cfg", "registered-tags: prod;lxcri\n");
    assert_eq!(create(&sim, 100, "lxcri"), denied("lxcri"));
    assert_eq!(create(&sim, 100, "dev"), Ok(()));
    sim.write_etc("user.cfg", &format!("{USERS}{SYS_MODIFY}"));
    assert_eq!(put_tags(&sim, 100, "tags=dev%3Bprod"), Ok(()));
}
