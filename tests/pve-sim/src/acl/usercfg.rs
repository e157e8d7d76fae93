//! `/etc/pve/user.cfg`, read as pve-access-control src/PVE/AccessControl.pm
//! `parse_user_config` reads it: one entry per line, fields split on `:`.
//!
//! ```text
//! user:USERID:ENABLE:EXPIRE:FIRSTNAME:LASTNAME:EMAIL:COMMENT:KEYS:
//! token:USERID!TOKEN:EXPIRE:PRIVSEP:COMMENT:
//! group:NAME:USERS:COMMENT:
//! pool:NAME:COMMENT:VMIDS:STORAGES:
//! role:NAME:PRIVS:
//! acl:PROPAGATE:PATH:USERS_GROUPS_TOKENS:ROLES:
//! ```
//!
//! Like PVE, a bad line is warned about and skipped, never fatal; an entry may only
//! refer to users, tokens and roles defined on earlier lines (PVE writes the file in that
//! order). Text fields (names, comments) are kept as written, so writing the file back
//! gives what PVE's `write_user_config` would.

use super::names::{
    colon_fields, is_group_or_role_name, is_pool_storage, is_poolname, is_userid, normalize_path,
    perl_true, split_list, split_tokenid,
};
use super::roles::{is_valid_priv, SPECIAL_ROLES};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    pub enable: bool,
    /// Seconds since the epoch; 0 is never.
    pub expire: u64,
    pub firstname: String,
    pub lastname: String,
    pub email: String,
    pub comment: String,
    pub keys: String,
    pub tokens: BTreeMap<String, Token>,
    pub groups: BTreeSet<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Token {
    pub privsep: bool,
    pub expire: u64,
    pub comment: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group {
    pub users: BTreeSet<String>,
    pub comment: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pool {
    pub comment: String,
    pub vms: BTreeSet<u32>,
    pub storage: BTreeSet<String>,
}

/// Role name -> propagate flag, for one user, group or token at one ACL node.
pub type RoleFlags = BTreeMap<String, bool>;

/// One node of the ACL tree (`$cfg->{acl_root}`), addressed by path segments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AclNode {
    pub children: BTreeMap<String, AclNode>,
    pub users: BTreeMap<String, RoleFlags>,
    pub groups: BTreeMap<String, RoleFlags>,
    pub tokens: BTreeMap<String, RoleFlags>,
}

impl AclNode {
    /// `find_acl_tree_node`: the node of a normalized path, made if missing.
    pub fn node_mut(&mut self, path: &str) -> &mut AclNode {
        let mut node = self;
        for p in path.split('/').filter(|p| !p.is_empty()) {
            node = node.children.entry(p.to_string()).or_default();
        }
        node
    }

    /// `iterate_acl_tree`: every node's path, parents first, children sorted.
    pub fn paths(&self) -> Vec<String> {
        fn walk(path: &str, node: &AclNode, out: &mut Vec<String>) {
            out.push(path.to_string());
            let base = if path == "/" { "" } else { path };
            for (name, child) in &node.children {
                walk(&format!("{base}/{name}"), child, out);
            }
        }
        let mut out = Vec::new();
        walk("/", self, &mut out);
        out
    }
}

/// The parsed user.cfg (`$cfg` of `parse_user_config`).
#[derive(Clone, Debug, PartialEq)]
pub struct UserCfg {
    pub users: BTreeMap<String, User>,
    pub groups: BTreeMap<String, Group>,
    pub roles: BTreeMap<String, BTreeSet<String>>,
    pub pools: BTreeMap<String, Pool>,
    /// VMID -> the pool it is in (`$cfg->{vms}`).
    pub vms: BTreeMap<u32, String>,
    pub acl: AclNode,
}

impl Default for UserCfg {
    /// `userconfig_force_defaults` on an empty config.
    fn default() -> Self {
        let mut cfg = UserCfg {
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            roles: BTreeMap::new(),
            pools: BTreeMap::new(),
            vms: BTreeMap::new(),
            acl: AclNode::default(),
        };
        cfg.force_defaults();
        cfg
    }
}

impl UserCfg {
    /// `userconfig_force_defaults`: the built-in roles (replacing any same-named role of
    /// the file) and an enabled `root@pam`.
    fn force_defaults(&mut self) {
        for (name, privs) in SPECIAL_ROLES.iter() {
            self.roles.insert(name.clone(), privs.clone());
        }
        self.users.entry("root@pam".into()).or_insert_with(|| User {
            enable: true,
            ..User::default()
        });
    }

    /// `check_token_exist`.
    pub fn token(&self, tokenid: &str) -> Option<&Token> {
        let (user, token) = split_tokenid(tokenid)?;
        self.users.get(user)?.tokens.get(token)
    }

    /// Parses the file's text; also returns PVE's warnings for the lines it skipped.
    pub fn parse(raw: &str) -> (UserCfg, Vec<String>) {
        let mut cfg = UserCfg::default();
        let mut warnings = Vec::new();
        for line in raw.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut data = colon_fields(line);
            let kind = if data.is_empty() {
                String::new()
            } else {
                data.remove(0)
            };
            data.resize(8, String::new());
            let warn = |w: &mut Vec<String>, msg: String| w.push(format!("user config - {msg}"));
            match kind.as_str() {
                "user" => cfg.parse_user(&data, &mut warnings),
                "group" => cfg.parse_group(&data, &mut warnings),
                "role" => {
                    let (role, privs) = (&data[0], &data[1]);
                    if !is_group_or_role_name(role) {
                        warn(
                            &mut warnings,
                            format!("ignore role '{role}' - invalid characters in role name"),
                        );
                        continue;
                    }
                    let set = cfg.roles.entry(role.clone()).or_default();
                    for p in split_list(privs) {
                        if is_valid_priv(p) {
                            set.insert(p.to_string());
                        } else {
                            warn(&mut warnings, format!("ignore invalid privilege '{p}'"));
                        }
                    }
                }
                "acl" => cfg.parse_acl(&data, &mut warnings),
                "pool" => cfg.parse_pool(&data, &mut warnings),
                "token" => cfg.parse_token(&data, &mut warnings),
                _ => warn(&mut warnings, format!("ignore config line: {line}")),
            }
        }
        cfg.force_defaults();
        (cfg, warnings)
    }

    fn parse_user(&mut self, d: &[String], warnings: &mut Vec<String>) {
        let user = &d[0];
        if !is_userid(user) {
            warnings.push(format!(
                "user config - ignore user '{user}' - invalid user name"
            ));
            return;
        }
        let Some(expire) = parse_expire(&d[2]) else {
            warnings.push(format!(
                "user config - ignore user '{user}' - (illegal characters in expire '{}')",
                d[2]
            ));
            return;
        };
        // A second line for the same user replaces the first, tokens included.
        self.users.insert(
            user.clone(),
            User {
                enable: perl_true(&d[1]),
                expire,
                firstname: d[3].clone(),
                lastname: d[4].clone(),
                email: d[5].clone(),
                comment: d[6].clone(),
                keys: d[7].clone(),
                ..User::default()
            },
        );
    }

    fn parse_token(&mut self, d: &[String], warnings: &mut Vec<String>) {
        let tokenid = &d[0];
        let Some((user, token)) = split_tokenid(tokenid) else {
            warnings.push(format!("user config - ignore invalid tokenid '{tokenid}'"));
            return;
        };
        let Some(expire) = parse_expire(&d[1]) else {
            warnings.push(format!(
                "user config - ignore token '{tokenid}' - (illegal characters in expire '{}')",
                d[1]
            ));
            return;
        };
        let Some(u) = self.users.get_mut(user) else {
            warnings.push(format!(
                "user config - ignore token '{tokenid}' - user does not exist"
            ));
            return;
        };
        u.tokens.insert(
            token.to_string(),
            Token {
                privsep: perl_true(&d[2]),
                expire,
                comment: d[3].clone(),
            },
        );
    }

    fn parse_group(&mut self, d: &[String], warnings: &mut Vec<String>) {
        let group = &d[0];
        if !is_group_or_role_name(group) {
            warnings.push(format!(
                "user config - ignore group '{group}' - invalid characters in group name"
            ));
            return;
        }
        let entry = self.groups.entry(group.clone()).or_default();
        if perl_true(&d[2]) {
            entry.comment = d[2].clone();
        }
        for user in split_list(&d[1]) {
            if !is_userid(user) {
                warnings.push(format!(
                    "user config - ignore invalid group member '{user}'"
                ));
                continue;
            }
            match self.users.get_mut(user) {
                Some(u) => {
                    u.groups.insert(group.clone());
                }
                None => warnings.push(format!(
                    "user config - ignore invalid group member '{user}'"
                )),
            }
            // PVE records the member even when the user is unknown.
            entry.users.insert(user.to_string());
        }
    }

    fn parse_acl(&mut self, d: &[String], warnings: &mut Vec<String>) {
        let propagate = perl_true(&d[0]);
        let Some(path) = normalize_path(&d[1]) else {
            warnings.push(format!(
                "user config - ignore invalid path in acl '{}'",
                d[1]
            ));
            return;
        };
        for role in split_list(&d[3]) {
            if !is_group_or_role_name(role) {
                warnings.push(format!(
                    "user config - ignore invalid role name '{role}' in acl"
                ));
                continue;
            }
            if !self.roles.contains_key(role) {
                warnings.push(format!("user config - ignore invalid acl role '{role}'"));
                continue;
            }
            for ug in split_list(&d[2]) {
                let group = ug.strip_prefix('@').filter(|g| is_group_or_role_name(g));
                let set = |flags: &mut BTreeMap<String, RoleFlags>, key: &str| {
                    flags
                        .entry(key.to_string())
                        .or_default()
                        .insert(role.to_string(), propagate);
                };
                if let Some(group) = group {
                    if !self.groups.contains_key(group) {
                        warnings.push(format!("user config - ignore invalid acl group '{group}'"));
                    }
                    set(&mut self.acl.node_mut(&path).groups, group);
                } else if is_userid(ug) {
                    if !self.users.contains_key(ug) {
                        warnings.push(format!("user config - ignore invalid acl member '{ug}'"));
                    }
                    set(&mut self.acl.node_mut(&path).users, ug);
                } else if split_tokenid(ug).is_some() {
                    if self.token(ug).is_some() {
                        set(&mut self.acl.node_mut(&path).tokens, ug);
                    } else {
                        warnings.push(format!("user config - ignore invalid acl token '{ug}'"));
                    }
                } else {
                    warnings.push(format!("user config - invalid user/group '{ug}' in acl"));
                }
            }
        }
    }

    fn parse_pool(&mut self, d: &[String], warnings: &mut Vec<String>) {
        let pool = &d[0];
        if !is_poolname(pool) {
            warnings.push(format!(
                "user config - ignore pool '{pool}' - invalid characters in pool name"
            ));
            return;
        }
        self.pools.entry(pool.clone()).or_default();
        // Nested pools (`a/b`): their parents exist too.
        let mut cur = pool.as_str();
        while let Some((parent, _)) = cur.rsplit_once('/') {
            self.pools.entry(parent.to_string()).or_default();
            cur = parent;
        }
        if perl_true(&d[1]) {
            self.pools.get_mut(pool).expect("just added").comment = d[1].clone();
        }
        for vmid in split_list(&d[2]) {
            let Some(id) = vmid
                .parse::<u32>()
                .ok()
                .filter(|_| vmid.bytes().all(|b| b.is_ascii_digit()))
            else {
                warnings.push(format!(
                    "user config - ignore invalid vmid '{vmid}' in pool '{pool}'"
                ));
                continue;
            };
            if self.vms.contains_key(&id) {
                warnings.push(format!(
                    "user config - ignore duplicate vmid '{id}' in pool '{pool}'"
                ));
                continue;
            }
            self.pools.get_mut(pool).expect("just added").vms.insert(id);
            self.vms.insert(id, pool.clone());
        }
        for sid in split_list(&d[3]) {
            if !is_pool_storage(sid) {
                warnings.push(format!(
                    "user config - ignore invalid storage '{sid}' in pool '{pool}'"
                ));
                continue;
            }
            let p = self.pools.get_mut(pool).expect("just added");
            p.storage.insert(sid.to_string());
        }
    }
}

/// An `expire` field: empty or `0` is 0, else it must be digits.
fn parse_expire(s: &str) -> Option<u64> {
    if !perl_true(s) {
        return Some(0);
    }
    s.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| s.parse().ok())
        .flatten()
}
