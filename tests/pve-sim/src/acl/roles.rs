//! PVE's privileges and built-in roles, as data.
//!
//! pve-access-control src/PVE/AccessControl.pm: `$privgroups` sorts every privilege of a
//! category into `root` (only root/Administrator), `admin`, `user` and `audit`;
//! `create_roles` derives the built-in roles from it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// One category of `$privgroups`.
struct PrivGroup {
    category: &'static str,
    root: &'static [&'static str],
    admin: &'static [&'static str],
    user: &'static [&'static str],
    audit: &'static [&'static str],
}

/// pve-access-control src/PVE/AccessControl.pm, `$privgroups`.
const PRIVGROUPS: &[PrivGroup] = &[
    PrivGroup {
        category: "VM",
        root: &[],
        admin: &[
            "VM.Config.Disk",
            "VM.Config.CPU",
            "VM.Config.Memory",
            "VM.Config.Network",
            "VM.Config.HWType",
            "VM.Config.Options",
            "VM.Allocate",
            "VM.Clone",
            "VM.GuestAgent.Unrestricted",
            "VM.Migrate",
            "VM.Replicate",
            "VM.Snapshot",
            "VM.Snapshot.Rollback",
        ],
        user: &[
            "VM.Config.CDROM",
            "VM.Config.Cloudinit",
            "VM.Console",
            "VM.Backup",
            "VM.GuestAgent.FileRead",
            "VM.GuestAgent.FileSystemMgmt",
            "VM.GuestAgent.FileWrite",
            "VM.PowerMgmt",
        ],
        audit: &["VM.Audit", "VM.GuestAgent.Audit"],
    },
    PrivGroup {
        category: "Sys",
        root: &[
            "Sys.PowerMgmt",
            "Sys.Modify",
            "Sys.Incoming",
            "Sys.AccessNetwork",
        ],
        admin: &["Sys.Console", "Sys.Syslog"],
        user: &[],
        audit: &["Sys.Audit"],
    },
    PrivGroup {
        category: "Datastore",
        root: &[],
        admin: &["Datastore.Allocate", "Datastore.AllocateTemplate"],
        user: &["Datastore.AllocateSpace"],
        audit: &["Datastore.Audit"],
    },
    PrivGroup {
        category: "SDN",
        root: &[],
        admin: &["SDN.Allocate", "SDN.Audit"],
        user: &["SDN.Use"],
        audit: &["SDN.Audit"],
    },
    PrivGroup {
        category: "User",
        root: &["Realm.Allocate"],
        admin: &["User.Modify", "Group.Allocate", "Realm.AllocateUser"],
        user: &[],
        audit: &[],
    },
    PrivGroup {
        category: "Pool",
        root: &[],
        admin: &["Pool.Allocate"],
        user: &["Pool.Audit"],
        audit: &["Pool.Audit"],
    },
    PrivGroup {
        category: "Mapping",
        root: &[],
        admin: &["Mapping.Modify"],
        user: &["Mapping.Use"],
        audit: &["Mapping.Audit"],
    },
];

pub type RoleSet = BTreeMap<String, BTreeSet<String>>;

/// `$valid_privs`: `Permissions.Modify` (in no group) plus every grouped privilege.
pub static VALID_PRIVS: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    let mut all = BTreeSet::from(["Permissions.Modify".to_string()]);
    for g in PRIVGROUPS {
        for p in [g.root, g.admin, g.user, g.audit].concat() {
            all.insert(p.to_string());
        }
    }
    all
});

/// `$special_roles` after `create_roles`: NoAccess (nothing), Administrator (every valid
/// privilege), `PVE<Cat>Admin` (admin+user+audit), `PVEAdmin` (the union of those, less
/// `Mapping.Modify`), `PVE<Cat>User` for categories with user privileges (user+audit),
/// `PVEAuditor` (every audit privilege) and `PVETemplateUser` (VM.Clone, VM.Audit).
pub static SPECIAL_ROLES: LazyLock<RoleSet> = LazyLock::new(|| {
    fn add(roles: &mut RoleSet, role: String, privs: &[&str]) {
        roles
            .entry(role)
            .or_default()
            .extend(privs.iter().map(|p| p.to_string()));
    }
    let mut roles = RoleSet::new();
    add(&mut roles, "NoAccess".into(), &[]);
    add(&mut roles, "PVEAuditor".into(), &[]);
    for g in PRIVGROUPS {
        let managed = [g.admin, g.user, g.audit].concat();
        add(&mut roles, format!("PVE{}Admin", g.category), &managed);
        add(&mut roles, "PVEAdmin".into(), &managed);
        if !g.user.is_empty() {
            add(
                &mut roles,
                format!("PVE{}User", g.category),
                &[g.user, g.audit].concat(),
            );
        }
        add(&mut roles, "PVEAuditor".into(), g.audit);
    }
    roles
        .get_mut("PVEAdmin")
        .expect("PVEAdmin")
        .remove("Mapping.Modify");
    add(
        &mut roles,
        "PVETemplateUser".into(),
        &["VM.Clone", "VM.Audit"],
    );
    roles.insert("Administrator".into(), VALID_PRIVS.clone());
    roles
});

/// `role_is_special`: the built-in roles, which user.cfg cannot change.
pub fn is_special(role: &str) -> bool {
    SPECIAL_ROLES.contains_key(role)
}

pub fn is_valid_priv(privilege: &str) -> bool {
    VALID_PRIVS.contains(privilege)
}
