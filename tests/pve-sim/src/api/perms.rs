//! The calling token's permission checks, as pve-access-control's
//! src/PVE/RPCEnvironment.pm makes them (`check`, `check_any`, `check_vm_perm`,
//! `check_pool_exist`, `check_api2_permissions`), on the privileges computed from
//! user.cfg (see `crate::acl`).

use super::{ApiError, State};
use crate::acl::{self, Privs};
use crate::schema::Params;
use serde_json::Value;

/// PVE's bare refusal (`raise_perm_exc()` without a reason).
pub fn denied() -> ApiError {
    ApiError::new(403, "Permission check failed")
}

impl State {
    /// The token's privileges on `path` now.
    pub fn privs_on(&self, path: &str) -> Privs {
        self.access.permissions(&self.token_id, path)
    }

    pub fn has(&self, path: &str, privilege: &str) -> bool {
        self.privs_on(path).contains_key(privilege)
    }

    /// `check_any`: one of `privs` on `path`, else `Permission check failed (PATH,
    /// P1|P2|...)`.
    pub fn require_any(&self, path: &str, privs: &[&str]) -> Result<(), ApiError> {
        let have = self.privs_on(path);
        if privs.iter().any(|p| have.contains_key(*p)) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("{path}, {}", privs.join("|"))))
        }
    }

    /// `check`: every one of `privs`, the first missing one named.
    pub fn require_all(&self, path: &str, privs: &[&str]) -> Result<(), ApiError> {
        let have = self.privs_on(path);
        match privs.iter().find(|p| !have.contains_key(**p)) {
            None => Ok(()),
            Some(p) => Err(ApiError::forbidden(format!("{path}, {p}"))),
        }
    }

    /// pve-access-control src/PVE/RPCEnvironment.pm, `check_vm_perm`: enough on the
    /// pool when one is given, else on `/vms/VMID` (the error names that path).
    pub fn check_vm_perm(
        &self,
        vmid: u32,
        pool: Option<&str>,
        privs: &[&str],
    ) -> Result<(), ApiError> {
        if let Some(pool) = pool {
            if self.require_all(&format!("/pool/{pool}"), privs).is_ok() {
                return Ok(());
            }
        }
        self.require_all(&format!("/vms/{vmid}"), privs)
    }

    /// pve-access-control src/PVE/RPCEnvironment.pm, `check_pool_exist`.
    pub fn check_pool_exist(&self, pool: &str) -> Result<(), ApiError> {
        if self.access.config().pools.contains_key(pool) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("pool '{pool}' does not exist")))
        }
    }
}

/// pve-access-control src/PVE/RPCEnvironment.pm, `check_api2_permissions`: the
/// `permissions` of the endpoint's schema. `user: all` (or `world`) leaves the checks to
/// the call itself; `check` is run as `exec_api2_perm_check` runs it. An endpoint without
/// `permissions` is for root@pam only, which a token never is.
pub fn check_api2(s: &State, perms: Option<&Value>, p: &Params) -> Result<(), ApiError> {
    let Some(perms) = perms else {
        return Err(ApiError::forbidden("user != root@pam"));
    };
    if matches!(
        perms.get("user").and_then(Value::as_str),
        Some("all" | "world")
    ) {
        return Ok(());
    }
    match perms.get("check") {
        Some(check) => exec(s, check, p, false).map(|_| ()),
        None => Err(denied()),
    }
}

/// `exec_api2_perm_check` for the tests the endpoints of the stand-in use: `perm`,
/// `and`, `or`. With `noerr` a failed check is `Ok(false)`.
fn exec(s: &State, check: &Value, p: &Params, noerr: bool) -> Result<bool, ApiError> {
    let items = check.as_array().map(Vec::as_slice).unwrap_or_default();
    let fail = |e: ApiError| if noerr { Ok(false) } else { Err(e) };
    match items.first().and_then(Value::as_str) {
        Some("and") => {
            for sub in &items[1..] {
                exec(s, sub, p, false)?;
            }
            Ok(true)
        }
        Some("or") => {
            for sub in &items[1..] {
                if exec(s, sub, p, true)? {
                    return Ok(true);
                }
            }
            fail(denied())
        }
        Some("perm") => {
            let template = items.get(1).and_then(Value::as_str).unwrap_or("");
            let privs: Vec<&str> = items
                .get(2)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            // Options follow as key, value pairs: `any`, 1 / `require_param`, NAME.
            let mut any = false;
            for kv in items[3.min(items.len())..].chunks(2) {
                match (kv[0].as_str(), kv.get(1)) {
                    (Some("any"), Some(v)) => any = v.as_i64().unwrap_or(0) != 0,
                    (Some("require_param"), Some(Value::String(name)))
                        if !p.0.contains_key(name) =>
                    {
                        return fail(denied());
                    }
                    _ => {}
                }
            }
            let path = template_replace(template, p);
            let path = acl::names::normalize_path(&path).unwrap_or(path);
            let r = if any {
                s.require_any(&path, &privs)
            } else {
                s.require_all(&path, &privs)
            };
            match r {
                Ok(()) => Ok(true),
                Err(e) => fail(e),
            }
        }
        other => Err(ApiError::fail(format!(
            "pve-sim: permission test {other:?} is not modelled"
        ))),
    }
}

/// pve-common src/PVE/Tools.pm, `template_replace`: `{name}` by the parameter's value.
fn template_replace(template: &str, p: &Params) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = &rest[start + 1..start + len];
        match p.0.get(name) {
            Some(Value::String(v)) => out.push_str(v),
            Some(v) => out.push_str(&v.to_string()),
            None => {}
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}
