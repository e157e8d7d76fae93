//! Rendered parameters checked against the real PVE 9.1 schema
//! (`tests/data/pve-api/schema.json`): key names, types, ranges, enums,
//! patterns and property-string formats.

use std::collections::BTreeSet;

use serde_json::Value;

use super::minire::Regex;
use super::*;
use crate::pve::config::schema_keys::{
    COMMON_KEYS, CREATE_ONLY_KEYS, INDEXED_KEYS, UPDATE_ONLY_KEYS,
};

fn schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pve-api/schema.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn params(schema: &Value, path: &str, method: &str) -> serde_json::Map<String, Value> {
    schema["paths"][path][method]["parameters"]["properties"]
        .as_object()
        .unwrap()
        .clone()
}

fn create_props(s: &Value) -> serde_json::Map<String, Value> {
    params(s, "/nodes/{node}/lxc", "POST")
}

fn update_props(s: &Value) -> serde_json::Map<String, Value> {
    params(s, "/nodes/{node}/lxc/{vmid}/config", "PUT")
}

/// `net0` -> `net[n]`.
fn schema_key(key: &str) -> String {
    let base = key.trim_end_matches(|c: char| c.is_ascii_digit());
    if base.len() != key.len() {
        format!("{base}[n]")
    } else {
        key.to_string()
    }
}

/// The values of a schema property's `enum`.
fn schema_enum(prop: &Value) -> BTreeSet<&str> {
    prop["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// PVE's `dns-name` and `pve-tag` formats (JSONSchema.pm).
const DNS_NAME: &str =
    "(([a-zA-Z0-9]([a-zA-Z0-9\\-]*[a-zA-Z0-9])?)\\.)*([a-zA-Z0-9]([a-zA-Z0-9\\-]*[a-zA-Z0-9])?)";
const PVE_TAG: &str = "(?i)[a-z0-9_][a-z0-9_\\-+.]*";

/// Checks one value against its schema entry, the way PVE's parameter
/// verification does; `Err` says what failed.
fn check(name: &str, def: &Value, value: &str) -> std::result::Result<(), String> {
    let fail = |why: String| Err(format!("{name}={value:?}: {why}"));
    match def["type"].as_str().unwrap_or("string") {
        "boolean" => {
            if value != "0" && value != "1" {
                return fail("not 0/1".into());
            }
        }
        t @ ("integer" | "number") => {
            let ok_syntax = if t == "integer" {
                !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
            } else {
                Regex::new("\\d+(\\.\\d+)?").is_full_match(value)
            };
            if !ok_syntax {
                return fail(format!("not an {t}"));
            }
            let n: f64 = value.parse().unwrap();
            if num(&def["minimum"]).is_some_and(|m| n < m)
                || num(&def["maximum"]).is_some_and(|m| n > m)
            {
                return fail(format!(
                    "out of range {} - {}",
                    def["minimum"], def["maximum"]
                ));
            }
        }
        _ => {
            if let Some(e) = def["enum"].as_array() {
                if !e.iter().any(|x| x.as_str() == Some(value)) {
                    return fail(format!("not in {e:?}"));
                }
            }
            if let Some(p) = def["pattern"].as_str() {
                if !Regex::new(p).is_full_match(value) {
                    return fail(format!("does not match {p}"));
                }
            }
            if let Some(max) = def["maxLength"].as_u64() {
                if value.chars().count() as u64 > max {
                    return fail(format!("longer than {max}"));
                }
            }
            match &def["format"] {
                Value::Object(fmt) => check_property_string(name, fmt, value)?,
                Value::String(f) => {
                    let ok = match f.as_str() {
                        "dns-name" => Regex::new(DNS_NAME).is_full_match(value),
                        "pve-tag-list" => {
                            let tag = Regex::new(PVE_TAG);
                            value.split(';').all(|t| tag.is_full_match(t))
                        }
                        "mac-addr" => Regex::new("(?i)[a-f0-9][02468ace](:[a-f0-9]{2}){5}")
                            .is_full_match(value),
                        _ => true,
                    };
                    if !ok {
                        return fail(format!("not a {f}"));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn check_property_string(
    name: &str,
    fmt: &serde_json::Map<String, Value>,
    value: &str,
) -> std::result::Result<(), String> {
    let default_key = fmt
        .iter()
        .find(|(_, d)| d["default_key"].as_u64() == Some(1))
        .map(|(k, _)| k.clone());
    let mut seen = BTreeSet::new();
    for part in value.split(',') {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.to_string(), v),
            None => (
                default_key
                    .clone()
                    .ok_or_else(|| format!("{name}: bare value {part:?} without default key"))?,
                part,
            ),
        };
        let def = fmt
            .get(&k)
            .ok_or_else(|| format!("{name}: unknown property {k:?} in {value:?}"))?;
        if !seen.insert(k.clone()) {
            return Err(format!("{name}: duplicate property {k:?}"));
        }
        check(&format!("{name}.{k}"), def, v)?;
    }
    for (k, d) in fmt {
        if d["optional"].as_u64() != Some(1) && !seen.contains(k) {
            return Err(format!(
                "{name}: required property {k:?} missing in {value:?}"
            ));
        }
    }
    Ok(())
}

fn check_all(props: &serde_json::Map<String, Value>, params: &[(String, String)]) {
    for (k, v) in params {
        let def = props
            .get(&schema_key(k))
            .unwrap_or_else(|| panic!("schema has no parameter {k}"));
        check(k, def, v).unwrap();
    }
}

#[test]
fn known_keys_are_exactly_the_schemas() {
    let s = schema();
    let indexed: Vec<String> = INDEXED_KEYS
        .iter()
        .map(|(k, _)| format!("{k}[n]"))
        .collect();
    let ours = |only: &[&str]| -> BTreeSet<String> {
        COMMON_KEYS
            .iter()
            .chain(only)
            .map(|k| k.to_string())
            .chain(indexed.iter().cloned())
            .collect()
    };
    let theirs = |m: serde_json::Map<String, Value>, path_params: &[&str]| -> BTreeSet<String> {
        m.keys()
            .filter(|k| !path_params.contains(&k.as_str()))
            .cloned()
            .collect()
    };
    assert_eq!(ours(CREATE_ONLY_KEYS), theirs(create_props(&s), &["node"]));
    assert_eq!(
        ours(UPDATE_ONLY_KEYS),
        theirs(update_props(&s), &["node", "vmid"])
    );
}

#[test]
fn golden_params_validate_against_the_schema() {
    let s = schema();
    check_all(
        &create_props(&s),
        &full_config()
            .to_create_params()
            .and_then(|p| p.with_vmid(12345))
            .unwrap(),
    );
    check_all(
        &update_props(&s),
        &full_config().resources.to_update_params().unwrap(),
    );
    // Other shapes: a PVE 8 config, static IPv6, no resources.
    let mut c = full_config();
    c.version = PveVersion::new(8, 4);
    c.nets.get_mut(&0).unwrap().host_managed = None;
    c.nets.get_mut(&0).unwrap().ip6 = Some(IpConfig6::Cidr("fd00::5".parse().unwrap(), 64));
    c.nets.get_mut(&0).unwrap().gw6 = Some("fd00::1".parse().unwrap());
    c.resources = PveResources::default();
    check_all(&create_props(&s), &api_params(&c).unwrap());
    // What only root@pam sets (node-locally) still renders to the schema's formats.
    let features = Features {
        keyctl: Some(true),
        fuse: Some(false),
        mount: vec!["nfs".into(), "cifs".into()],
        nesting: Some(true),
        ..Default::default()
    };
    let rootfs = RootFs {
        volume: Volume::HostPath("/var/lib/lxcri/r/abc".into()),
        options: MountPointOptions::default(),
    };
    check_all(
        &update_props(&s),
        &[
            ("features".into(), features.render().unwrap()),
            ("rootfs".into(), rootfs.render().unwrap()),
            (
                "mp0".into(),
                bind_mount("/srv/data", "/data").render("mp0").unwrap(),
            ),
        ],
    );
}

#[test]
fn sanitised_names_match_the_schema_formats() {
    let s = schema();
    let props = create_props(&s);
    let nasty = [
        "",
        "-",
        "My_Pod.Name",
        "x\nrootfs: local:1",
        "a;b,c=d e",
        "ünïcode-ñame",
        "...",
        "_leading",
        "+plus",
        &"y".repeat(400),
    ];
    for raw in nasty {
        let h = Hostname::sanitize(raw);
        check("hostname", &props["hostname"], h.as_str()).unwrap();
        let tags = Tags::for_container(Some(raw), Some(raw));
        check("tags", &props["tags"], &tags.render()).unwrap();
        let d = Description::for_container(&DescriptionInfo {
            container_id: raw.into(),
            pod: Some(raw.into()),
            ..Default::default()
        });
        check("description", &props["description"], d.as_str()).unwrap();
    }
}

#[test]
fn limits_and_enums_in_code_match_the_schema() {
    let s = schema();
    let p = create_props(&s);
    assert_eq!(num(&p["memory"]["minimum"]), Some(16.0));
    assert_eq!(num(&p["cores"]["maximum"]), Some(8192.0));
    assert_eq!(num(&p["cpulimit"]["maximum"]), Some(8192.0));
    assert_eq!(num(&p["cpuunits"]["maximum"]), Some(500_000.0));
    assert_eq!(num(&p["tty"]["maximum"]), Some(6.0));
    assert_eq!(p["description"]["maxLength"].as_u64(), Some(8192));
    assert_eq!(
        num(&p["vmid"]["minimum"]),
        Some(f64::from(crate::pve::vmid::MIN_VMID))
    );
    assert_eq!(
        num(&p["vmid"]["maximum"]),
        Some(f64::from(crate::pve::vmid::MAX_VMID))
    );
    let all_arch = [
        Arch::Amd64,
        Arch::I386,
        Arch::Arm64,
        Arch::Armhf,
        Arch::Riscv32,
        Arch::Riscv64,
    ];
    assert_eq!(
        all_arch.iter().map(|a| a.as_str()).collect::<BTreeSet<_>>(),
        schema_enum(&p["arch"])
    );
    let all_os = [
        OsType::Debian,
        OsType::Devuan,
        OsType::Ubuntu,
        OsType::Centos,
        OsType::Fedora,
        OsType::Opensuse,
        OsType::Archlinux,
        OsType::Alpine,
        OsType::Gentoo,
        OsType::Nixos,
        OsType::Unmanaged,
    ];
    assert_eq!(
        all_os.iter().map(|o| o.as_str()).collect::<BTreeSet<_>>(),
        schema_enum(&p["ostype"])
    );
    let opts = p["rootfs"]["format"]["mountoptions"]["pattern"]
        .as_str()
        .unwrap();
    let all = "discard;lazytime;noatime;nodev;noexec;nosuid";
    assert!(Regex::new(opts).is_full_match(all));
}

#[test]
fn the_schema_lets_line_breaks_through_where_lxcri_does_not() {
    let s = schema();
    let p = create_props(&s);
    // Why the renderer is stricter than the schema: these pass PVE's
    // patterns but would break the config file.
    check(
        "entrypoint",
        &p["entrypoint"],
        "/init\nlxc.cap.keep: sys_admin",
    )
    .unwrap();
    check("env", &p["env"], "A=1\nlxc.cap.keep: sys_admin").unwrap();
    let mut c = full_config();
    c.env = vec![("A".into(), "1\nlxc.cap.keep: sys_admin".into())];
    assert!(api_params(&c).is_err());
    assert!(Entrypoint::new(vec!["/init\nlxc.cap.keep: sys_admin".into()]).is_err());
}

/// The checker above must be able to fail, or the tests using it prove
/// nothing.
#[test]
fn the_checker_rejects_what_pve_would() {
    let s = schema();
    let p = create_props(&s);
    for (k, v) in [
        ("net[n]", "name=eth0,foo=1"),
        ("net[n]", "bridge=vmbr0"),
        ("net[n]", "name=eth0,bridge=vmbr0,ip=dhcp,bridge=x"),
        ("net[n]", "name=eth0,tag=4095"),
        ("net[n]", "name=eth0,hwaddr=01:00:5E:00:00:01"),
        ("net[n]", "name=eth 0"),
        ("rootfs", "local-zfs:8,mountoptions=noatime;sync"),
        ("mp[n]", "local-zfs:8"),
        ("cpulimit", "1e3"),
        ("cpulimit", "8193"),
        ("memory", "15"),
        ("unprivileged", "true"),
        ("ostype", "windows"),
        ("hostname", "a_b"),
        ("tags", "lxcri;-x"),
        ("env", "A-B=1"),
        ("entrypoint", ""),
    ] {
        assert!(check(k, &p[k], v).is_err(), "{k}={v}");
    }
}
