//! One API request from bytes to answer: parameters, auth, schema verdict, faults, the
//! endpoint's work, and the line in requests.jsonl.

mod create;
mod ct;
mod ct_perms;
mod node;
mod perms;
mod power;

use crate::faults::{FaultSpec, Faults};
use crate::log::{Entry, RequestLog};
use crate::lxc::{Host, Lxc};
use crate::schema::{self, ParamErrors, Params, Schema, Unmatched};
use crate::storage::Storage;
use crate::store::Store;
use crate::tasks::Tasks;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Everything the handlers share.
pub struct State {
    /// Lets handlers hand an owned `Arc` of the state to task threads.
    pub this: std::sync::Weak<State>,
    pub node: String,
    pub token_id: String,
    pub secret: String,
    /// Users, tokens, roles, ACLs and pools: `DATA/etc/pve/user.cfg`.
    pub access: crate::acl::Access,
    /// `DATA/etc/pve` (user.cfg, datacenter.cfg, storage.cfg, lxc/).
    pub etc_pve: std::path::PathBuf,
    pub allow_root_only: bool,
    pub auth_fail_delay: Duration,
    pub schema: Schema,
    pub store: Store,
    pub storage: Storage,
    pub tasks: Tasks,
    /// `--pve-timing`.
    pub timing: Option<crate::timing::PveTiming>,
    pub lxc: Lxc,
    pub host: Host,
    pub faults: Faults,
    pub log: RequestLog,
}

/// The request as the HTTP layer hands it over.
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// An answer: status, reason phrase (PVE puts its message there) and JSON body.
pub struct Reply {
    pub status: u16,
    pub reason: Option<String>,
    pub body: Value,
}

pub enum Outcome {
    Reply(Reply),
    /// Close the connection without an answer (fault injection).
    Drop,
}

/// A failed call, answered in PVE's envelope.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub errors: Option<ParamErrors>,
}

pub type ApiResult = Result<Value, ApiError>;

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            errors: None,
        }
    }
    /// PVE's catch-all for failures inside a handler.
    pub fn fail(message: impl Into<String>) -> ApiError {
        ApiError::new(500, message)
    }
    pub fn param(name: &str, message: impl Into<String>) -> ApiError {
        let mut errors = ParamErrors::new();
        errors.insert(name.to_string(), message.into());
        ApiError::params(errors)
    }
    pub fn params(errors: ParamErrors) -> ApiError {
        ApiError {
            status: 400,
            message: "Parameter verification failed.".into(),
            errors: Some(errors),
        }
    }
    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(403, format!("Permission check failed ({})", detail.into()))
    }

    fn reply(self) -> Reply {
        let mut body = json!({"data": null, "message": format!("{}\n", self.message)});
        if let Some(e) = self.errors {
            body["errors"] = json!(e);
        }
        Reply {
            status: self.status,
            reason: Some(self.message),
            body,
        }
    }
}

/// Parameters from the query string and the body (form or JSON), in arrival order.
fn params_of(req: &Request) -> Result<Vec<(String, Value)>, String> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let form = |bytes: &[u8], out: &mut Vec<(String, Value)>| {
        for (k, v) in form_urlencoded::parse(bytes) {
            out.push((k.into_owned(), Value::String(v.into_owned())));
        }
    };
    if let Some(q) = &req.query {
        form(q.as_bytes(), &mut out);
    }
    let is_json = req
        .content_type
        .as_deref()
        .is_some_and(|c| c.contains("json"));
    if req.body.is_empty() {
    } else if is_json {
        match serde_json::from_slice::<Value>(&req.body) {
            Ok(Value::Object(m)) => out.extend(m),
            Ok(_) => return Err("JSON body is not an object".into()),
            Err(e) => return Err(format!("invalid JSON body: {e}")),
        }
    } else {
        form(&req.body, &mut out);
    }
    Ok(out)
}

impl State {
    /// `PVEAPIToken=USER@REALM!ID=SECRET`, split on the last `=`. The token's user and
    /// the token must be in user.cfg, enabled and not expired
    /// (pve-access-control `verify_token`), before the secret is compared.
    fn authenticate(&self, header: Option<&str>) -> Result<(), String> {
        let value = header.ok_or("No ticket")?;
        let token = value.strip_prefix("PVEAPIToken=").ok_or("No ticket")?;
        let (id, secret) = token.rsplit_once('=').ok_or("invalid token value!")?;
        if id == self.token_id {
            self.access.verify_token(id)?;
        }
        if id == self.token_id && secret == self.secret {
            Ok(())
        } else {
            Err("invalid token value!".into())
        }
    }

    /// `check`: `privilege` on `path` (user.cfg's ACLs), else 403
    /// `Permission check failed (PATH, PRIV)`.
    pub fn require(&self, path: &str, privilege: &str) -> Result<(), ApiError> {
        self.require_all(path, &[privilege])
    }

    pub fn check_node(&self, p: &Params) -> Result<(), ApiError> {
        match p.str("node") {
            Some(n) if n != self.node => Err(ApiError::fail(format!(
                "hostname lookup '{n}' failed - failed to get address info for: {n}: Name or service not known"
            ))),
            _ => Ok(()),
        }
    }

    pub fn me(&self) -> std::sync::Arc<State> {
        self.this.upgrade().expect("state outlives its requests")
    }

    pub fn user(&self) -> &str {
        &self.token_id
    }

    pub fn handle(&self, req: Request) -> Outcome {
        if req.path.starts_with("/_sim/") {
            return Outcome::Reply(self.admin(&req));
        }
        let started = Instant::now();
        crate::timing::pause(self.timing, |t| t.request);
        let api_path = req.path.strip_prefix("/api2/json").unwrap_or("");
        let api_path = if api_path.is_empty() { "/" } else { api_path };
        let input = params_of(&req);
        let params_for_log = input.as_ref().cloned().unwrap_or_default();
        let auth = self.authenticate(req.authorization.as_deref());
        let matched = if req.path.starts_with("/api2/json/") {
            self.schema.lookup(&req.method, api_path)
        } else {
            Err(Unmatched::NoSuchPath)
        };
        let mut reasons = Vec::new();
        let checked: Result<Params, ApiError> = match (&matched, &input) {
            (Err(_), _) => {
                reasons.push(format!(
                    "no endpoint '{} {}' in the schema",
                    req.method, api_path
                ));
                Err(ApiError::new(
                    501,
                    format!("Method '{} {}' not implemented", req.method, req.path),
                ))
            }
            (Ok(_), Err(e)) => {
                reasons.push(e.clone());
                Err(ApiError::new(400, e.clone()))
            }
            (Ok(m), Ok(input)) => {
                let mut all: Vec<(String, Value)> = input
                    .iter()
                    .filter(|(k, _)| !m.path_params.iter().any(|(p, _)| p == k))
                    .cloned()
                    .collect();
                all.extend(
                    m.path_params
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone()))),
                );
                schema::validate(m.definition, &all).map_err(|errors| {
                    reasons.extend(errors.iter().map(|(k, v)| format!("{k}: {v}")));
                    ApiError::params(errors)
                })
            }
        };
        let valid = reasons.is_empty();
        let fault = match (&auth, &checked, &matched) {
            (Ok(()), Ok(_), Ok(m)) => self.faults.take(&req.method, m.template, api_path),
            _ => None,
        };
        let auth_ok = auth.is_ok();
        let outcome = match (auth, checked) {
            (Err(msg), _) => {
                std::thread::sleep(self.auth_fail_delay);
                Outcome::Reply(ApiError::new(401, msg).reply())
            }
            (Ok(()), Err(e)) => Outcome::Reply(e.reply()),
            (Ok(()), Ok(params)) => {
                let template = matched.as_ref().map(|m| m.template).unwrap_or_default();
                let perms = matched
                    .as_ref()
                    .ok()
                    .and_then(|m| m.definition.get("permissions"));
                self.run_with_fault(&req.method, template, perms, &params, fault.as_ref())
            }
        };
        let status = match &outcome {
            Outcome::Reply(r) => r.status,
            Outcome::Drop => 0,
        };
        self.log.append(Entry {
            method: &req.method,
            path: api_path,
            template: matched.as_ref().ok().map(|m| m.template),
            schema: matched.as_ref().ok().map(|m| m.origin.as_str()),
            params: &params_for_log,
            auth: if auth_ok { "ok" } else { "failed" },
            status,
            valid,
            reasons,
            fault: fault.as_ref().map(FaultSpec::summary),
            duration_ms: started.elapsed().as_millis(),
        });
        outcome
    }

    fn run_with_fault(
        &self,
        method: &str,
        template: &str,
        perms: Option<&Value>,
        p: &Params,
        fault: Option<&FaultSpec>,
    ) -> Outcome {
        if let Some(f) = fault {
            std::thread::sleep(Duration::from_millis(f.delay_ms));
            if f.drop_connection && !f.after {
                return Outcome::Drop;
            }
            if let Some(status) = f.status {
                let msg = f
                    .message
                    .clone()
                    .unwrap_or_else(|| "injected failure".into());
                return Outcome::Reply(ApiError::new(status, msg).reply());
            }
        }
        let task_fault = fault.map(FaultSpec::task_fault).unwrap_or_default();
        let result = perms::check_api2(self, perms, p)
            .and_then(|()| self.dispatch(method, template, p, task_fault));
        if fault.is_some_and(|f| f.drop_connection) {
            return Outcome::Drop;
        }
        Outcome::Reply(match result {
            Ok(data) => Reply {
                status: 200,
                reason: None,
                body: json!({ "data": data }),
            },
            Err(e) => e.reply(),
        })
    }

    fn dispatch(
        &self,
        method: &str,
        template: &str,
        p: &Params,
        tf: crate::tasks::TaskFault,
    ) -> ApiResult {
        if template.starts_with("/nodes/{node}") {
            self.check_node(p)?;
        }
        let t = template.strip_prefix("/nodes/{node}").unwrap_or(template);
        match (method, t) {
            ("GET", "/version") => node::version(self),
            ("GET", "/cluster/nextid") => node::nextid(self, p),
            ("GET", "/cluster/resources") => node::resources(self, p),
            ("GET", "/cluster/tasks") => node::task_list(self),
            ("GET", "/nodes") => node::nodes(self),
            ("GET", "/access/permissions") => node::permissions(self, p),
            ("GET", "/storage") => node::storage(self, p),
            ("GET", "/network") => node::network(self, p),
            ("GET", "/tasks") => node::task_list(self),
            ("GET", "/tasks/{upid}/status") => node::task_status(self, p),
            ("GET", "/tasks/{upid}/log") => node::task_log(self, p),
            ("GET", "/lxc") => node::vmlist(self),
            ("POST", "/lxc") => create::create(self, p, tf),
            ("DELETE", "/lxc/{vmid}") => ct::destroy(self, p, tf),
            ("GET", "/lxc/{vmid}/config") => ct::get_config(self, p),
            ("PUT", "/lxc/{vmid}/config") => ct::put_config(self, p),
            ("GET", "/lxc/{vmid}/status/current") => power::current(self, p),
            ("POST", "/lxc/{vmid}/status/start") => power::start(self, p, tf),
            ("POST", "/lxc/{vmid}/status/stop") => power::stop(self, p, tf),
            ("POST", "/lxc/{vmid}/status/shutdown") => power::shutdown(self, p, tf),
            _ => Err(ApiError::new(
                501,
                format!("Method '{method} {template}' not implemented by pve-sim"),
            )),
        }
    }

    /// `/_sim/faults`: GET lists, POST arms one (JSON), DELETE clears all.
    fn admin(&self, req: &Request) -> Reply {
        let ok = |data: Value| Reply {
            status: 200,
            reason: None,
            body: json!({ "data": data }),
        };
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/_sim/faults") => ok(self.faults.list()),
            ("DELETE", "/_sim/faults") => {
                self.faults.clear();
                ok(Value::Null)
            }
            ("POST", "/_sim/faults") => {
                let spec =
                    serde_json::from_slice::<FaultSpec>(&req.body).map_err(|e| e.to_string());
                match spec.and_then(|s| self.faults.add(s)) {
                    Ok(()) => ok(Value::Null),
                    Err(e) => ApiError::new(400, format!("bad fault: {e}")).reply(),
                }
            }
            _ => ApiError::new(404, "unknown /_sim endpoint").reply(),
        }
    }
}
