//! Which privileges the token needs, on which ACL paths, read from what a
//! create, start, stop and delete of lxcri's CTs makes PVE check
//! (pve-container src/PVE/API2/LXC.pm `create_vm`, src/PVE/LXC.pm
//! `check_ct_modify_config_perm`, pve-storage src/PVE/Storage.pm
//! `check_volume_access`), and the finding that names each one missing.

use lxcri::config::PveSettings;
use lxcri::error_chain as chain;
use lxcri::pve::client::Permissions;

use super::Api;
use crate::check::{finding, Finding, Status};

/// On `/vms` (inherited by `/vms/{vmid}`): create the CT, set each key
/// lxcri sends, start/stop and read it. A pool's ACL is not enough: PVE
/// checks the tags of a new CT on `/vms/{vmid}` alone (pve-guest-common
/// src/PVE/GuestHelpers.pm, `assert_tag_permissions`).
pub const VM_PRIVS: &[&str] = &[
    "VM.Allocate",
    "VM.Config.Options",
    "VM.Config.CPU",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Disk",
    "VM.PowerMgmt",
    "VM.Audit",
];
/// On `/storage/{pve.storage}`: allocate the CT's volume; see it in
/// `/cluster/resources` (which lists only storages with
/// `Datastore.Audit`, pve-manager PVE/API2/Cluster.pm, `resources`).
pub const STORAGE_PRIVS: &[&str] = &["Datastore.AllocateSpace", "Datastore.Audit"];
/// On the template's storage, any one of these (templates may be
/// sensitive, so reading one needs one of them).
pub const TEMPLATE_PRIVS: &[&str] = &["Datastore.AllocateSpace", "Datastore.Audit"];
/// On `/nodes/{node}`: node listings (network, storage status).
pub const NODE_PRIVS: &[&str] = &["Sys.Audit"];
/// On `/`: create privileged CTs (containers without a user namespace).
pub const PRIVILEGED_PRIVS: &[&str] = &["Sys.Modify"];

/// One privilege need: any of `privileges` on `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub privileges: Vec<&'static str>,
    pub path: String,
}

impl Need {
    fn one(privilege: &'static str, path: &str) -> Self {
        Self {
            privileges: vec![privilege],
            path: path.to_string(),
        }
    }

    /// `VM.Allocate on /vms`, `A or B on /storage/local`.
    pub fn describe(&self) -> String {
        format!("{} on {}", self.privileges.join(" or "), self.path)
    }
}

/// What every CT needs, path by path.
pub fn needs(settings: &PveSettings) -> Vec<Need> {
    let node = settings.node.as_deref().unwrap_or("");
    let mut out: Vec<Need> = VM_PRIVS.iter().map(|p| Need::one(p, "/vms")).collect();
    let storage = format!("/storage/{}", settings.storage);
    out.extend(STORAGE_PRIVS.iter().map(|p| Need::one(p, &storage)));
    if let Some((template_storage, _)) = settings.template.split_once(':') {
        out.push(Need {
            privileges: TEMPLATE_PRIVS.to_vec(),
            path: format!("/storage/{template_storage}"),
        });
    }
    let node = format!("/nodes/{node}");
    out.extend(NODE_PRIVS.iter().map(|p| Need::one(p, &node)));
    out
}

/// The ACL paths to ask `GET /access/permissions` about, each once.
fn paths(needs: &[Need]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in needs {
        if !out.contains(&n.path) {
            out.push(n.path.clone());
        }
    }
    out
}

pub fn privileges(api: &dyn Api, settings: &PveSettings) -> Finding {
    let needs = needs(settings);
    let mut held: Vec<(String, Permissions)> = Vec::new();
    for path in paths(&needs) {
        match api.permissions(&path) {
            Ok(p) => held.push((path, p)),
            Err(e) => {
                return finding(
                    "pve-privileges",
                    Status::Fail,
                    format!("cannot read the token's permissions: {}", chain(&e)),
                )
            }
        }
    }
    let has = |path: &str, privilege: &str| {
        held.iter()
            .any(|(p, perms)| p == path && perms.has(path, privilege))
    };
    let missing: Vec<String> = needs
        .iter()
        .filter(|n| !n.privileges.iter().any(|p| has(&n.path, p)))
        .map(Need::describe)
        .collect();
    if missing.is_empty() {
        finding(
            "pve-privileges",
            Status::Ok,
            format!("token holds all {} privileges lxcri needs", needs.len()),
        )
    } else {
        finding(
            "pve-privileges",
            Status::Fail,
            format!("token lacks: {}", missing.join(", ")),
        )
    }
}

/// `Sys.Modify` on `/`, without which PVE refuses every privileged CT:
/// lxcri's CT of a container without a user namespace, i.e. most pods.
pub fn privileged_cts(api: &dyn Api) -> Finding {
    let missing = match api.permissions("/") {
        Ok(perms) => perms.missing("/", PRIVILEGED_PRIVS),
        Err(e) => {
            return finding(
                "pve-privileged-cts",
                Status::Fail,
                format!("cannot read the token's permissions on /: {}", chain(&e)),
            )
        }
    };
    if missing.is_empty() {
        finding(
            "pve-privileged-cts",
            Status::Ok,
            "token holds Sys.Modify on /: containers without a user namespace can be created (as privileged CTs)",
        )
    } else {
        finding(
            "pve-privileged-cts",
            Status::Warn,
            "token lacks Sys.Modify on /: PVE refuses privileged CTs, so only containers with a user namespace (Kubernetes: hostUsers: false) can be created; grant it with a role holding only Sys.Modify on / (propagate 0, see docs/operations.md)",
        )
    }
}
