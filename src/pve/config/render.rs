//! [`PveConfig`], what lxcri sets on a CT, and its one renderer to API
//! form parameters.
//!
//! Every parameter passes [`Params::push`]: the key must be one the schema
//! lists for the endpoint, and the value may not contain a character the
//! schema forbids. lxcri is stricter than the schema where the schema would
//! let a line break into the config file: `entrypoint`'s pattern
//! (`[^\x00-\x08\x10-\x1F\x7F]+`) admits `\n` and `\r`, and PVE stores
//! `env` as one `lxc.environment.runtime` line per variable, so both
//! reject every control character but `env`'s NUL separators.

use std::collections::BTreeMap;

use super::kinds::{Arch, OsType};
use super::names::MAX_DESCRIPTION;
use super::props::{check_storage_id, Features, MountPoint, NetConfig, RootFs};
use super::resources::{PveResources, MAX_CPUS, MIN_MEMORY_MIB};
use super::schema_keys::{is_known, ApiEndpoint};
use super::{
    check_no_control, Description, Hostname, PoolId, PveConfigError, PveVersion, Result, Tags,
};

/// The init command of the CT (`entrypoint` on PVE >= 9.1, `lxc.init.cmd`
/// before). PVE and LXC split it at spaces, so no argument may contain
/// white space or quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrypoint(Vec<String>);

impl Entrypoint {
    pub fn new(argv: Vec<String>) -> Result<Self> {
        let joined = argv.join(" ");
        if argv.is_empty() {
            return Err(PveConfigError::invalid(
                "entrypoint",
                &joined,
                "has no command",
            ));
        }
        for arg in &argv {
            check_no_control("entrypoint", arg)?;
            if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "\"'\\".contains(c)) {
                return Err(PveConfigError::invalid(
                    "entrypoint",
                    arg,
                    "is empty or contains white space, a quote or a backslash",
                ));
            }
        }
        Ok(Self(argv))
    }

    pub fn argv(&self) -> &[String] {
        &self.0
    }

    pub fn render(&self) -> String {
        self.0.join(" ")
    }
}

/// Everything lxcri sets on a CT. Build it with [`PveConfig::new`] and set
/// the fields; nothing is checked until rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct PveConfig {
    /// The target node's release: decides `entrypoint`/`env` vs raw lines.
    pub version: PveVersion,
    /// Template volume for create (`local:vztmpl/x.tar.zst`); create only.
    pub ostemplate: Option<String>,
    /// The resource pool PVE adds the CT to; create only.
    pub pool: Option<PoolId>,
    pub hostname: Hostname,
    pub tags: Tags,
    pub description: Option<Description>,
    pub resources: PveResources,
    pub entrypoint: Option<Entrypoint>,
    /// The init's environment, in order.
    pub env: Vec<(String, String)>,
    /// From the OCI spec's user namespace. Fixed at create: PVE refuses to
    /// change it afterwards.
    pub unprivileged: bool,
    pub ostype: Option<OsType>,
    pub arch: Option<Arch>,
    pub rootfs: Option<RootFs>,
    /// `mpN` by index.
    pub mounts: BTreeMap<u32, MountPoint>,
    /// `netN` by index.
    pub nets: BTreeMap<u32, NetConfig>,
    pub features: Features,
    pub console: Option<bool>,
    /// Number of ttys, 0..=6.
    pub tty: Option<u8>,
}

impl PveConfig {
    /// lxcri's defaults: tag `lxcri`, unprivileged, `ostype: unmanaged`
    /// (PVE must not run its distribution setup inside an OCI image).
    pub fn new(version: PveVersion, hostname: Hostname) -> Self {
        Self {
            version,
            ostemplate: None,
            pool: None,
            hostname,
            tags: Tags::for_container(None, None),
            description: None,
            resources: PveResources::default(),
            entrypoint: None,
            env: Vec::new(),
            unprivileged: true,
            ostype: Some(OsType::Unmanaged),
            arch: None,
            rootfs: None,
            mounts: BTreeMap::new(),
            nets: BTreeMap::new(),
            features: Features::default(),
            console: None,
            tty: None,
        }
    }

    /// The checked parameters of `POST /nodes/{node}/lxc`, all but `vmid`
    /// (each create attempt adds the VMID it tries).
    pub fn to_create_params(&self) -> Result<CreateParams> {
        self.render(ApiEndpoint::Create).map(CreateParams)
    }

    /// The checked parameters of `PUT /nodes/{node}/lxc/{vmid}/config`
    /// setting every key of this config that an update takes.
    pub(super) fn to_update_params(&self) -> Result<Vec<(String, String)>> {
        self.render(ApiEndpoint::Update)
    }

    /// LXC config lines (`key`, `value`) for lxcri's own include fragment
    /// that a PVE before 9.1 cannot take through the API: `lxc.init.cmd`
    /// and one `lxc.environment` per variable. Empty on 9.1 and later.
    /// They go into the fragment, not `VMID.conf`, so the raw part of the
    /// PVE file stays one `lxc.include` line.
    pub fn fragment_lines(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        if self.version.has_entrypoint() {
            return Ok(out);
        }
        if let Some(e) = &self.entrypoint {
            out.push(("lxc.init.cmd".to_string(), e.render()));
        }
        for (k, v) in &self.env {
            check_env(k, v)?;
            out.push(("lxc.environment".to_string(), format!("{k}={v}")));
        }
        Ok(out)
    }

    /// The one renderer.
    fn render(&self, endpoint: ApiEndpoint) -> Result<Vec<(String, String)>> {
        let mut p = Params {
            endpoint,
            out: Vec::new(),
        };
        if endpoint == ApiEndpoint::Create {
            let t = self.ostemplate.as_deref().ok_or(PveConfigError::Missing {
                field: "ostemplate",
                endpoint,
            })?;
            check_volume_id("ostemplate", t)?;
            p.push("ostemplate", t)?;
            if let Some(pool) = &self.pool {
                p.push("pool", pool.as_str())?;
            }
        }
        p.push("hostname", self.hostname.as_str())?;
        if !self.tags.is_empty() {
            p.push("tags", &self.tags.render())?;
        }
        if let Some(d) = &self.description {
            p.push("description", d.as_str())?;
        }
        if let Some(a) = self.arch {
            p.push("arch", a.as_str())?;
        }
        if let Some(o) = self.ostype {
            p.push("ostype", o.as_str())?;
        }
        if endpoint == ApiEndpoint::Create {
            p.push("unprivileged", bool01(self.unprivileged))?;
        }
        self.resources.push(&mut p)?;
        if let Some(c) = self.console {
            p.push("console", bool01(c))?;
        }
        if let Some(t) = self.tty {
            if t > 6 {
                return Err(PveConfigError::invalid("tty", &t.to_string(), "is above 6"));
            }
            p.push("tty", &t.to_string())?;
        }
        if !self.features.is_empty() {
            let value = self.features.render()?;
            if !self.features.api_settable() {
                return Err(root_only("features", "only nesting is settable by a token"));
            }
            p.push("features", &value)?;
        }
        if let Some(r) = &self.rootfs {
            let value = r.render()?;
            if r.volume.is_host_path() {
                return Err(root_only("rootfs", "a host directory is root@pam's"));
            }
            p.push("rootfs", &value)?;
        }
        for (i, mp) in &self.mounts {
            let key = format!("mp{i}");
            let value = mp.render(&key)?;
            if mp.volume.is_host_path() {
                return Err(root_only(&key, "a bind mount is root@pam's"));
            }
            p.push(&key, &value)?;
        }
        for (i, net) in &self.nets {
            let key = format!("net{i}");
            if net.host_managed.is_some() && !self.version.has_entrypoint() {
                return Err(PveConfigError::invalid(
                    &format!("{key}.host-managed"),
                    "1",
                    format!("needs PVE 9.1, the node runs {}", self.version),
                ));
            }
            p.push(&key, &net.render(&key)?)?;
        }
        if self.version.has_entrypoint() {
            if let Some(e) = &self.entrypoint {
                p.push("entrypoint", &e.render())?;
            }
            if !self.env.is_empty() {
                let mut vars = Vec::with_capacity(self.env.len());
                for (k, v) in &self.env {
                    check_env(k, v)?;
                    vars.push(format!("{k}={v}"));
                }
                p.push("env", &vars.join("\0"))?;
            }
        }
        Ok(p.out)
    }
}

impl PveResources {
    /// Parameters for `PUT /nodes/{node}/lxc/{vmid}/config` changing only
    /// these resource keys (what an OCI `update` changes).
    pub fn to_update_params(&self) -> Result<Vec<(String, String)>> {
        let mut p = Params {
            endpoint: ApiEndpoint::Update,
            out: Vec::new(),
        };
        self.push(&mut p)?;
        Ok(p.out)
    }

    fn push(&self, p: &mut Params) -> Result<()> {
        let r = self;
        if let Some(m) = r.memory_mib {
            if m < MIN_MEMORY_MIB {
                return Err(PveConfigError::invalid(
                    "memory",
                    &m.to_string(),
                    "is below 16 MiB",
                ));
            }
            p.push("memory", &m.to_string())?;
        }
        if let Some(s) = r.swap_mib {
            p.push("swap", &s.to_string())?;
        }
        if let Some(c) = r.cores {
            if c == 0 || c > MAX_CPUS {
                return Err(PveConfigError::invalid(
                    "cores",
                    &c.to_string(),
                    "is outside 1..=8192",
                ));
            }
            p.push("cores", &c.to_string())?;
        }
        if let Some(l) = r.cpulimit {
            p.push("cpulimit", &l.render())?;
        }
        if let Some(u) = r.cpuunits {
            if u > 500_000 {
                return Err(PveConfigError::invalid(
                    "cpuunits",
                    &u.to_string(),
                    "is above 500000",
                ));
            }
            p.push("cpuunits", &u.to_string())?;
        }
        Ok(())
    }
}

/// Checked parameters of `POST /nodes/{node}/lxc` without `vmid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateParams(Vec<(String, String)>);

impl CreateParams {
    /// The parameters creating CT `vmid` (`vmid` first).
    pub fn with_vmid(&self, vmid: u32) -> Result<Vec<(String, String)>> {
        if !(crate::pve::vmid::MIN_VMID..=crate::pve::vmid::MAX_VMID).contains(&vmid) {
            return Err(PveConfigError::invalid(
                "vmid",
                &vmid.to_string(),
                "is outside 100..=999999999",
            ));
        }
        let mut params = Vec::with_capacity(self.0.len() + 1);
        params.push(("vmid".to_string(), vmid.to_string()));
        params.extend_from_slice(&self.0);
        Ok(params)
    }
}

fn root_only(field: &str, reason: &str) -> PveConfigError {
    PveConfigError::RootOnly {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

fn bool01(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// `env`'s pattern: `\w+=` then no control characters (stricter than the
/// schema, see the module docs).
fn check_env(name: &str, value: &str) -> Result<()> {
    let field = format!("env.{name}");
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(PveConfigError::invalid(
            &field,
            name,
            "is not a variable name PVE accepts ([A-Za-z0-9_]+)",
        ));
    }
    check_no_control(&field, value)
}

/// A volume id like `local:vztmpl/debian.tar.zst`.
fn check_volume_id(field: &str, v: &str) -> Result<()> {
    check_no_control(field, v)?;
    let Some((storage, name)) = v.split_once(':') else {
        return Err(PveConfigError::invalid(
            field,
            v,
            "is not a volume id STORAGE:NAME",
        ));
    };
    check_storage_id(field, storage)?;
    if name.is_empty() || v.len() > 255 {
        return Err(PveConfigError::invalid(
            field,
            v,
            "has an empty name or is too long",
        ));
    }
    Ok(())
}

/// Collects checked parameters.
struct Params {
    endpoint: ApiEndpoint,
    out: Vec<(String, String)>,
}

impl Params {
    fn push(&mut self, key: &str, value: &str) -> Result<()> {
        if !is_known(self.endpoint, key) {
            return Err(PveConfigError::UnknownKey {
                key: key.to_string(),
                endpoint: self.endpoint,
            });
        }
        match key {
            // PVE writes each line as its own `#` comment.
            "description" => {
                if value.len() > MAX_DESCRIPTION {
                    return Err(PveConfigError::invalid(
                        key,
                        value,
                        "is longer than 8192 bytes",
                    ));
                }
                for line in value.split('\n') {
                    check_no_control(key, line)?;
                }
            }
            "env" => {
                for var in value.split('\0') {
                    check_no_control(key, var)?;
                }
            }
            _ => check_no_control(key, value)?,
        }
        if key == "hostname" {
            Hostname::parse(value)?;
        }
        self.out.push((key.to_string(), value.to_string()));
        Ok(())
    }
}
