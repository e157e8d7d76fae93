//! Writing user.cfg back, and the two changes a guest's life makes to it.

use super::names::perl_true;
use super::roles::is_special;
use super::usercfg::{AclNode, UserCfg};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A text field as `write_user_config` writes it: a false one (empty, `0`) as nothing.
fn text(s: &str) -> &str {
    if perl_true(s) {
        s
    } else {
        ""
    }
}

impl UserCfg {
    /// pve-access-control src/PVE/AccessControl.pm, `write_user_config`: users (each
    /// followed by its tokens), groups, pools, the roles that are not built in, then the
    /// ACL tree path by path; each block ends with an empty line. `root@pam`'s ACL entries
    /// are not written (it is always Administrator).
    pub fn write(&self) -> String {
        let mut out = String::new();
        for (user, d) in &self.users {
            let _ = writeln!(
                out,
                "user:{user}:{}:{}:{}:{}:{}:{}:{}:",
                u8::from(d.enable),
                d.expire,
                text(&d.firstname),
                text(&d.lastname),
                text(&d.email),
                text(&d.comment),
                text(&d.keys),
            );
            for (token, t) in &d.tokens {
                let _ = writeln!(
                    out,
                    "token:{user}!{token}:{}:{}:{}:",
                    t.expire,
                    u8::from(t.privsep),
                    text(&t.comment)
                );
            }
        }
        out.push('\n');
        for (group, d) in &self.groups {
            let users: Vec<&str> = d.users.iter().map(String::as_str).collect();
            let _ = writeln!(
                out,
                "group:{group}:{}:{}:",
                users.join(","),
                text(&d.comment)
            );
        }
        out.push('\n');
        for (pool, d) in &self.pools {
            // Perl sorts the VMIDs as strings.
            let mut vms: Vec<String> = d.vms.iter().map(u32::to_string).collect();
            vms.sort();
            let storage: Vec<&str> = d.storage.iter().map(String::as_str).collect();
            let _ = writeln!(
                out,
                "pool:{pool}:{}:{}:{}:",
                text(&d.comment),
                vms.join(","),
                storage.join(",")
            );
        }
        out.push('\n');
        for (role, privs) in &self.roles {
            if is_special(role) {
                continue;
            }
            let privs: Vec<&str> = privs.iter().map(String::as_str).collect();
            let _ = writeln!(out, "role:{role}:{}:", privs.join(","));
        }
        out.push('\n');
        for path in self.acl.paths() {
            out.push_str(&acl_lines(&path, node_at(&self.acl, &path)));
        }
        out
    }

    /// pve-access-control src/PVE/AccessControl.pm, `add_vm_to_pool`: only when the pool
    /// (still) exists. Returns whether the config changed.
    pub fn add_vm_to_pool(&mut self, vmid: u32, pool: &str) -> bool {
        let Some(p) = self.pools.get_mut(pool) else {
            return false;
        };
        p.vms.insert(vmid);
        self.vms.insert(vmid, pool.to_string());
        true
    }

    /// pve-access-control src/PVE/AccessControl.pm, `remove_vm_access`: the ACL subtree
    /// `/vms/VMID` and the VM's pool membership. Returns whether the config changed.
    pub fn remove_vm_access(&mut self, vmid: u32) -> bool {
        let mut modified = false;
        if let Some(vms) = self.acl.children.get_mut("vms") {
            modified |= vms.children.remove(&vmid.to_string()).is_some();
        }
        if let Some(pool) = self.vms.get(&vmid).cloned() {
            if let Some(p) = self.pools.get_mut(&pool) {
                p.vms.remove(&vmid);
                self.vms.remove(&vmid);
                modified = true;
            }
        }
        modified
    }
}

fn node_at<'a>(root: &'a AclNode, path: &str) -> &'a AclNode {
    let mut node = root;
    for p in path.split('/').filter(|p| !p.is_empty()) {
        node = &node.children[p];
    }
    node
}

/// The `acl:` lines of one node: members with the same role list and flag share a line;
/// first the non-propagating lines, then the propagating ones, each sorted by role list.
fn acl_lines(path: &str, node: &AclNode) -> String {
    // propagate -> role list -> members
    let mut by: [BTreeMap<String, Vec<String>>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let members = node
        .groups
        .iter()
        .map(|(g, r)| (format!("@{g}"), r))
        .chain(
            node.users
                .iter()
                .filter(|(u, _)| u.as_str() != "root@pam")
                .map(|(u, r)| (u.clone(), r)),
        )
        .chain(node.tokens.iter().map(|(t, r)| (t.clone(), r)));
    for (member, roles) in members {
        for flag in [false, true] {
            let list: Vec<&str> = roles
                .iter()
                .filter(|(_, p)| **p == flag)
                .map(|(r, _)| r.as_str())
                .collect();
            if !list.is_empty() {
                by[usize::from(flag)]
                    .entry(list.join(","))
                    .or_default()
                    .push(member.clone());
            }
        }
    }
    let mut out = String::new();
    for (flag, lists) in by.iter().enumerate() {
        for (roles, members) in lists {
            let mut members = members.clone();
            members.sort();
            let _ = writeln!(out, "acl:{flag}:{path}:{}:{roles}:", members.join(","));
        }
    }
    out
}
