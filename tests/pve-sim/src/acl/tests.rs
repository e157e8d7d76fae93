//! Unit tests of user.cfg parsing and writing, the built-in roles and the privilege
//! computation, each rule on its own.

use super::names::{normalize_path, split_list, split_tokenid};
use super::perms::{effective, permissions, roles};
use super::roles::SPECIAL_ROLES;
use super::usercfg::UserCfg;
use std::collections::BTreeSet;

fn cfg(text: &str) -> UserCfg {
    let (cfg, warnings) = UserCfg::parse(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    cfg
}

fn privs(cfg: &UserCfg, who: &str, path: &str) -> Vec<String> {
    permissions(cfg, who, path).into_keys().collect()
}

fn has(cfg: &UserCfg, who: &str, path: &str, privilege: &str) -> bool {
    permissions(cfg, who, path).contains_key(privilege)
}

const USERS: &str = "user:u@pve:1:0::::::\ntoken:u@pve!tk:0:1::\ntoken:u@pve!all:0:0::\n\
                     user:v@pve:1:0::::::\ngroup:ops:u@pve,v@pve::\n";

#[test]
fn built_in_roles_are_create_roles_output() {
    let names: BTreeSet<&str> = SPECIAL_ROLES.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = [
        "Administrator",
        "NoAccess",
        "PVEAdmin",
        "PVEAuditor",
        "PVEDatastoreAdmin",
        "PVEDatastoreUser",
        "PVEMappingAdmin",
        "PVEMappingUser",
        "PVEPoolAdmin",
        "PVEPoolUser",
        "PVESDNAdmin",
        "PVESDNUser",
        "PVESysAdmin",
        "PVETemplateUser",
        "PVEUserAdmin",
        "PVEVMAdmin",
        "PVEVMUser",
    ]
    .into();
    assert_eq!(names, want);
    let role = |r: &str| &SPECIAL_ROLES[r];
    assert!(role("NoAccess").is_empty());
    // Sys.Modify is a root-only privilege: only Administrator has it.
    for (name, privs) in SPECIAL_ROLES.iter() {
        assert_eq!(
            privs.contains("Sys.Modify"),
            name == "Administrator",
            "{name}"
        );
    }
    assert!(role("Administrator").contains("Permissions.Modify"));
    assert!(role("PVEVMAdmin").contains("VM.Allocate"));
    assert!(role("PVEVMAdmin").contains("VM.PowerMgmt"));
    assert!(role("PVEVMAdmin").contains("VM.Audit"));
    assert!(!role("PVEVMUser").contains("VM.Allocate"));
    assert!(role("PVEVMUser").contains("VM.PowerMgmt"));
    assert_eq!(
        role("PVEDatastoreUser"),
        &["Datastore.AllocateSpace", "Datastore.Audit"]
            .map(String::from)
            .into()
    );
    assert!(!role("PVEAdmin").contains("Mapping.Modify"));
    assert!(role("PVEMappingAdmin").contains("Mapping.Modify"));
    assert_eq!(
        role("PVESysAdmin"),
        &["Sys.Audit", "Sys.Console", "Sys.Syslog"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        role("PVETemplateUser"),
        &["VM.Audit", "VM.Clone"].map(String::from).into()
    );
    assert!(role("PVEAuditor").contains("Datastore.Audit"));
    assert!(!role("PVEAuditor").contains("Pool.Allocate"));
}

#[test]
fn parses_every_kind_of_line_in_pve_field_order() {
    let c = cfg(&format!(
        "{USERS}user:x@pam:0:1700000000:Jo:Do:j@x:note:keys:\n\
         pool:web:Web%20pool:101,100:local-zfs:\npool:a/b/c::200::\n\
         role:Ops:VM.Audit,Sys.Modify;VM.PowerMgmt:\n\
         acl:1:/vms:@ops,u@pve!tk:Ops,PVEAuditor:\nacl:0:/:v@pve:NoAccess:\n"
    ));
    let x = &c.users["x@pam"];
    assert!(!x.enable);
    assert_eq!(x.expire, 1_700_000_000);
    assert_eq!((x.firstname.as_str(), x.email.as_str()), ("Jo", "j@x"));
    assert!(c.users["u@pve"].tokens["tk"].privsep);
    assert!(!c.users["u@pve"].tokens["all"].privsep);
    assert!(c.users["u@pve"].groups.contains("ops"));
    assert!(c.users.contains_key("root@pam"), "root@pam always exists");
    assert_eq!(c.pools["web"].vms, [100, 101].into());
    assert_eq!(c.pools["web"].storage, ["local-zfs".to_string()].into());
    assert_eq!(c.pools["web"].comment, "Web%20pool");
    assert_eq!(c.vms[&100], "web");
    assert!(
        c.pools.contains_key("a/b") && c.pools.contains_key("a"),
        "parents of a/b/c"
    );
    assert_eq!(c.roles["Ops"].len(), 3);
    let vms = &c.acl.children["vms"];
    assert!(vms.groups["ops"]["Ops"]);
    assert!(vms.tokens["u@pve!tk"]["PVEAuditor"]);
    assert!(!c.acl.users["v@pve"]["NoAccess"]);
}

#[test]
fn bad_lines_are_warned_about_and_skipped_like_pve() {
    let (c, w) = UserCfg::parse(
        "user:u@pve:1:0::::::\nbogus:line\nuser:nouser:1:0:\nuser:e@pve:1:soon:\n\
         token:ghost@pve!tk:0:0::\nrole:R:VM.Audit,VM.Fly:\nacl:1:/:u@pve:Missing:\n\
         acl:1:/:u@pve!none:PVEAuditor:\nacl:1:/b%d:u@pve:PVEAuditor:\n\
         pool:p1::100:\npool:p2::100,x1:\nrole:Administrator::\n:\n",
    );
    let has = |s: &str| w.iter().any(|x| x.contains(s));
    assert!(has("ignore config line: bogus:line"), "{w:?}");
    assert!(has("ignore user 'nouser' - invalid user name"), "{w:?}");
    assert!(
        has("ignore user 'e@pve' - (illegal characters in expire 'soon')"),
        "{w:?}"
    );
    assert!(
        has("ignore token 'ghost@pve!tk' - user does not exist"),
        "{w:?}"
    );
    assert!(has("ignore invalid privilege 'VM.Fly'"), "{w:?}");
    assert!(has("ignore invalid acl role 'Missing'"), "{w:?}");
    assert!(has("ignore invalid acl token 'u@pve!none'"), "{w:?}");
    assert!(has("ignore invalid path in acl '/b%d'"), "{w:?}");
    assert!(has("ignore duplicate vmid '100' in pool 'p2'"), "{w:?}");
    assert!(has("ignore invalid vmid 'x1' in pool 'p2'"), "{w:?}");
    assert!(has("ignore config line: :"), "{w:?}");
    assert_eq!(c.roles["R"], ["VM.Audit".to_string()].into());
    assert_eq!(c.vms[&100], "p1");
    assert!(
        c.acl.children.is_empty() && c.acl.users.is_empty(),
        "{:?}",
        c.acl
    );
    // A file cannot redefine a built-in role.
    assert_eq!(c.roles["Administrator"], SPECIAL_ROLES["Administrator"]);
}

#[test]
fn writes_back_what_pve_writes_and_reads_it_again() {
    let c = cfg(&format!(
        "{USERS}pool:web:Web::local-zfs:\nrole:Ops:VM.PowerMgmt,VM.Audit:\n\
         acl:1:/vms:@ops,u@pve!tk:Ops:\nacl:0:/vms:v@pve:PVEAuditor,Ops:\n\
         acl:1:/:root@pam:Administrator:\npool:web::1000,99:\n"
    ));
    let text = c.write();
    assert_eq!(
        text,
        "user:root@pam:1:0::::::\nuser:u@pve:1:0::::::\ntoken:u@pve!all:0:0::\n\
         token:u@pve!tk:0:1::\nuser:v@pve:1:0::::::\n\ngroup:ops:u@pve,v@pve::\n\n\
         pool:web:Web:1000,99:local-zfs:\n\nrole:Ops:VM.Audit,VM.PowerMgmt:\n\n\
         acl:0:/vms:v@pve:Ops,PVEAuditor:\nacl:1:/vms:@ops,u@pve!tk:Ops:\n"
    );
    let mut again = cfg(&text);
    // root@pam's ACL entry is never written (it is Administrator anyway).
    again.acl.users.insert(
        "root@pam".into(),
        [("Administrator".to_string(), true)].into(),
    );
    assert_eq!(again, c);
}

#[test]
fn pools_gain_and_lose_vms_and_destroy_drops_their_acls() {
    let mut c = cfg(&format!(
        "{USERS}pool:web:::\nacl:1:/vms/100:u@pve:PVEVMAdmin:\nacl:1:/vms/101:u@pve:PVEVMAdmin:\n"
    ));
    assert!(
        !c.add_vm_to_pool(100, "nope"),
        "no such pool: nothing happens"
    );
    assert!(c.add_vm_to_pool(100, "web"));
    assert_eq!(c.vms[&100], "web");
    assert!(c.write().contains("pool:web::100::\n"));
    assert!(c.remove_vm_access(100));
    assert!(!c.vms.contains_key(&100) && c.pools["web"].vms.is_empty());
    assert!(!c.acl.children["vms"].children.contains_key("100"));
    assert!(c.acl.children["vms"].children.contains_key("101"));
    assert!(!c.remove_vm_access(100), "nothing left to remove");
}

#[test]
fn a_more_specific_acl_replaces_the_inherited_roles() {
    let c = cfg(&format!(
        "{USERS}acl:1:/:u@pve:PVEAdmin:\nacl:1:/vms/100:u@pve:PVEAuditor:\n"
    ));
    assert!(has(&c, "u@pve", "/vms/101", "VM.Allocate"));
    assert!(!has(&c, "u@pve", "/vms/100", "VM.Allocate"));
    assert!(has(&c, "u@pve", "/vms/100", "VM.Audit"));
    assert_eq!(roles(&c, "u@pve", "/vms/100").len(), 1);
}

#[test]
fn propagate_reaches_children_and_nopropagate_only_the_path() {
    let c = cfg(&format!(
        "{USERS}acl:0:/:u@pve:PVEAuditor:\nacl:1:/storage:u@pve:PVEDatastoreUser:\n\
         acl:0:/vms:u@pve:PVEVMAdmin:\n"
    ));
    assert!(has(&c, "u@pve", "/", "Sys.Audit"));
    assert!(
        !has(&c, "u@pve", "/nodes/n1", "Sys.Audit"),
        "not propagated from /"
    );
    assert!(
        !has(&c, "u@pve", "/vms", "Sys.Audit"),
        "replaced by /vms's own entry"
    );
    assert!(has(&c, "u@pve", "/vms", "VM.Allocate"));
    assert!(
        privs(&c, "u@pve", "/vms/100").is_empty(),
        "/vms does not propagate"
    );
    assert!(has(
        &c,
        "u@pve",
        "/storage/local",
        "Datastore.AllocateSpace"
    ));
    // The flag of each privilege tells whether it propagates.
    assert!(permissions(&c, "u@pve", "/storage")["Datastore.Audit"]);
    assert!(!permissions(&c, "u@pve", "/vms")["VM.Audit"]);
}

#[test]
fn no_access_wins_over_everything_at_its_path() {
    let c = cfg(&format!(
        "{USERS}acl:1:/:u@pve:Administrator:\nacl:1:/vms/100:u@pve:NoAccess,PVEVMAdmin:\n\
         acl:1:/vms/100:@ops:PVEVMAdmin:\n"
    ));
    assert!(privs(&c, "u@pve", "/vms/100").is_empty());
    assert!(has(&c, "u@pve", "/vms/101", "VM.Allocate"));
    // v@pve has no user entry there: its group's entry applies.
    assert!(has(&c, "v@pve", "/vms/100", "VM.Allocate"));
}

#[test]
fn token_entries_before_user_entries_before_group_entries() {
    let c = cfg(&format!(
        "{USERS}acl:1:/:@ops:PVEAuditor:\nacl:1:/vms:u@pve:PVEVMUser:\n\
         acl:1:/vms:u@pve!tk:PVEVMAdmin:\nacl:1:/vms:@ops:PVEDatastoreUser:\n"
    ));
    assert!(
        has(&c, "v@pve", "/vms/1", "Datastore.AllocateSpace"),
        "group"
    );
    assert!(
        !has(&c, "v@pve", "/vms/1", "Sys.Audit"),
        "group replaced at /vms"
    );
    assert!(
        has(&c, "u@pve", "/vms/1", "VM.PowerMgmt"),
        "user over group"
    );
    assert!(!has(&c, "u@pve", "/vms/1", "Datastore.AllocateSpace"));
    assert_eq!(
        roles(&c, "u@pve!tk", "/vms/1")
            .into_keys()
            .collect::<Vec<_>>(),
        ["PVEVMAdmin"],
        "token's own entry first"
    );
}

#[test]
fn privsep_tokens_hold_the_intersection_others_their_users_privileges() {
    let c = cfg(&format!(
        "{USERS}acl:1:/vms:u@pve:PVEVMUser:\nacl:1:/vms:u@pve!tk:PVEVMAdmin:\n\
         acl:1:/storage:u@pve!tk:PVEDatastoreUser:\n"
    ));
    // VM.Allocate: the token has it, its user not.
    assert!(!has(&c, "u@pve!tk", "/vms/100", "VM.Allocate"));
    assert!(has(&c, "u@pve!tk", "/vms/100", "VM.PowerMgmt"));
    // The user holds nothing on /storage, so neither does the token.
    assert!(privs(&c, "u@pve!tk", "/storage/local").is_empty());
    // Without privilege separation the token's own ACLs do not count.
    assert_eq!(
        privs(&c, "u@pve!all", "/vms/100"),
        privs(&c, "u@pve", "/vms/100")
    );
    assert!(
        privs(&c, "u@pve!gone", "/vms/100").is_empty(),
        "unknown token"
    );
    assert!(privs(&c, "not-a-user", "/").is_empty());
}

#[test]
fn root_holds_everything_and_its_privsep_tokens_their_own() {
    let c = cfg("token:root@pam!sep:0:1::\ntoken:root@pam!full:0:0::\n\
                 acl:1:/vms:root@pam!sep:PVEAuditor:\n");
    assert!(has(&c, "root@pam", "/", "Sys.Modify"));
    assert!(has(&c, "root@pam!full", "/storage/x", "Permissions.Modify"));
    assert!(has(&c, "root@pam!sep", "/vms/1", "VM.Audit"));
    assert!(!has(&c, "root@pam!sep", "/vms/1", "VM.Allocate"));
    assert!(!has(&c, "root@pam!sep", "/", "Sys.Modify"));
}

#[test]
fn pools_give_their_members_roles_that_do_not_propagate() {
    let c = cfg(&format!(
        "{USERS}pool:web::100,101:local-zfs:\npool:dark::102::\n\
         acl:1:/pool/web:u@pve:PVEVMAdmin,PVEDatastoreUser:\nacl:1:/vms/101:u@pve:NoAccess:\n\
         acl:1:/pool/dark:u@pve:NoAccess:\nacl:1:/vms:u@pve:PVEAuditor:\n"
    ));
    assert!(has(&c, "u@pve", "/vms/100", "VM.Allocate"));
    assert!(!permissions(&c, "u@pve", "/vms/100")["VM.Allocate"]);
    assert!(has(
        &c,
        "u@pve",
        "/storage/local-zfs",
        "Datastore.AllocateSpace"
    ));
    assert!(!has(&c, "u@pve", "/vms/103", "VM.Allocate"), "not a member");
    assert!(
        privs(&c, "u@pve", "/vms/101").is_empty(),
        "the path's NoAccess wins"
    );
    assert!(
        privs(&c, "u@pve", "/vms/102").is_empty(),
        "the pool's NoAccess wins"
    );
    assert!(has(&c, "u@pve", "/vms/103", "VM.Audit"));
    // On the pool path itself, the ACL (propagating) applies as to any path.
    assert!(has(&c, "u@pve", "/pool/web", "VM.Allocate"));
}

#[test]
fn effective_permissions_list_acl_paths_and_pool_members() {
    let c = cfg(&format!(
        "{USERS}pool:web::100::\nacl:1:/pool/web:u@pve:PVEVMUser:\n\
         acl:0:/nodes/n1:u@pve:PVEAuditor:\n"
    ));
    let e = effective(&c, "u@pve");
    let paths: Vec<&str> = e.keys().map(String::as_str).collect();
    assert_eq!(paths, ["/nodes/n1", "/pool/web", "/vms/100"]);
    assert!(!e["/vms/100"]["VM.PowerMgmt"]);
    assert!(e["/pool/web"]["VM.PowerMgmt"]);
}

#[test]
fn names_follow_pve() {
    assert_eq!(normalize_path("//vms//100/").as_deref(), Some("/vms/100"));
    assert_eq!(normalize_path("vms").as_deref(), Some("/vms"));
    assert_eq!(normalize_path("/").as_deref(), Some("/"));
    assert_eq!(normalize_path("/a b"), None);
    assert_eq!(split_tokenid("a@pve!t1"), Some(("a@pve", "t1")));
    assert_eq!(split_tokenid("a@b@pve!t1"), Some(("a@b@pve", "t1")));
    assert_eq!(split_tokenid("a@pve"), None);
    assert_eq!(split_list("a,b; c\0"), ["a,b; c", ""]);
    assert_eq!(split_list("a,b; c"), ["a", "b", "c"]);
}
