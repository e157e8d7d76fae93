//! Effective privileges of a user or token on an ACL path.
//!
//! pve-access-control src/PVE/AccessControl.pm `roles` walks the ACL tree from `/` to
//! the path; src/PVE/RPCEnvironment.pm `permissions` and `$compile_acl_path` add the
//! roles a pool gives its members and turn roles into privileges.

use super::names::{is_userid, path_parts, split_tokenid};
use super::roles::VALID_PRIVS;
use super::usercfg::{RoleFlags, UserCfg};
use std::collections::{BTreeMap, BTreeSet};

/// Privilege -> propagate flag (the flag is informational; a key means the privilege
/// is held).
pub type Privs = BTreeMap<String, bool>;

/// pve-access-control src/PVE/AccessControl.pm, `roles`: walking from `/` to `path`, at
/// each node the first of these that applies replaces everything inherited so far: the
/// token's own entries, then the user's, then those of the user's groups (merged). An
/// entry applies at the path itself, and at a parent only when it propagates. If
/// `NoAccess` is among the result, it is the only role. A token without privilege
/// separation has its user's roles; an unknown token has none.
pub fn roles(cfg: &UserCfg, authid: &str, path: &str) -> RoleFlags {
    if let Some((user, token)) = split_tokenid(authid) {
        let Some(info) = cfg.users.get(user).and_then(|u| u.tokens.get(token)) else {
            return RoleFlags::new();
        };
        if !info.privsep {
            return roles(cfg, user, path);
        }
    }
    let parts = path_parts(path);
    let mut roles = RoleFlags::new();
    let mut node = Some(&cfg.acl);
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if !part.is_empty() {
            node = node.and_then(|n| n.children.get(*part));
        }
        let Some(n) = node else {
            break; // no ACL below here
        };
        let applying = |ri: &RoleFlags| -> Option<RoleFlags> {
            let new: RoleFlags = ri
                .iter()
                .filter(|(_, propagate)| last || **propagate)
                .map(|(r, p)| (r.clone(), *p))
                .collect();
            (!new.is_empty()).then_some(new)
        };
        if let Some(new) = n.tokens.get(authid).and_then(applying) {
            roles = new;
            continue;
        }
        // User privileges always override group privileges.
        if let Some(new) = n.users.get(authid).and_then(applying) {
            roles = new;
            continue;
        }
        let mut new = RoleFlags::new();
        for (group, ri) in &n.groups {
            if !cfg
                .groups
                .get(group)
                .is_some_and(|g| g.users.contains(authid))
            {
                continue;
            }
            if let Some(r) = applying(ri) {
                new.extend(r);
            }
        }
        if !new.is_empty() {
            roles = new;
        }
    }
    if let Some(flag) = roles.get("NoAccess") {
        return RoleFlags::from([("NoAccess".to_string(), *flag)]);
    }
    roles
}

/// pve-access-control src/PVE/RPCEnvironment.pm, `permissions`: `root@pam` holds every
/// privilege everywhere; a token without privilege separation holds its user's; a token
/// with it holds what both it and its user hold (except for root@pam's tokens, which
/// hold their own); an unknown token or a malformed user id holds nothing.
pub fn permissions(cfg: &UserCfg, authid: &str, path: &str) -> Privs {
    if authid == "root@pam" {
        return VALID_PRIVS.iter().map(|p| (p.clone(), true)).collect();
    }
    if let Some((user, token)) = split_tokenid(authid) {
        let Some(info) = cfg.users.get(user).and_then(|u| u.tokens.get(token)) else {
            return Privs::new();
        };
        let user_privs = permissions(cfg, user, path);
        if !info.privsep {
            return user_privs;
        }
        let own = compile(cfg, authid, path);
        if user == "root@pam" {
            return own;
        }
        return own
            .into_iter()
            .filter_map(|(p, flag)| user_privs.get(&p).map(|u| (p, *u && flag)))
            .collect();
    }
    if !is_userid(authid) {
        return Privs::new();
    }
    compile(cfg, authid, path)
}

/// pve-access-control src/PVE/RPCEnvironment.pm, `$compile_acl_path`: the roles on the
/// path, plus those the user holds on `/pool/NAME` for the pool's member VMs and storages
/// (never propagating, and never over a `NoAccess` of the path; a pool's `NoAccess`
/// replaces the rest), as privileges.
fn compile(cfg: &UserCfg, who: &str, path: &str) -> Privs {
    let mut pool_roles: BTreeSet<String> = BTreeSet::new();
    for (name, pool) in &cfg.pools {
        let member = pool.vms.iter().any(|v| path == format!("/vms/{v}"))
            || pool.storage.iter().any(|s| path == format!("/storage/{s}"));
        if member {
            pool_roles.extend(roles(cfg, who, &format!("/pool/{name}")).into_keys());
        }
    }
    let mut roles = roles(cfg, who, path);
    if !pool_roles.is_empty() && !roles.contains_key("NoAccess") {
        if pool_roles.contains("NoAccess") {
            roles = RoleFlags::from([("NoAccess".to_string(), false)]);
        } else {
            for r in pool_roles {
                roles.entry(r).or_insert(false);
            }
        }
    }
    let mut privs = Privs::new();
    for (role, propagate) in &roles {
        for p in cfg.roles.get(role).into_iter().flatten() {
            let e = privs.entry(p.clone()).or_insert(false);
            *e = *e || *propagate;
        }
    }
    privs
}

/// pve-access-control src/PVE/RPCEnvironment.pm, `get_effective_permissions`: the
/// privileges on the top-level paths, on every path of the ACL tree and on every pool
/// member's path; paths without any privilege are left out.
pub fn effective(cfg: &UserCfg, authid: &str) -> BTreeMap<String, Privs> {
    let mut paths: BTreeSet<String> = [
        "/",
        "/access",
        "/access/groups",
        "/nodes",
        "/pool",
        "/sdn",
        "/storage",
        "/vms",
    ]
    .map(String::from)
    .into();
    paths.extend(cfg.acl.paths());
    for pool in cfg.pools.values() {
        paths.extend(pool.vms.iter().map(|v| format!("/vms/{v}")));
        paths.extend(pool.storage.iter().map(|s| format!("/storage/{s}")));
    }
    paths
        .into_iter()
        .map(|p| {
            let privs = permissions(cfg, authid, &p);
            (p, privs)
        })
        .filter(|(_, privs)| !privs.is_empty())
        .collect()
}
