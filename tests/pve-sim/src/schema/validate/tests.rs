use super::*;
use crate::schema::test_schema;
use serde_json::json;

fn form(pairs: &[(&str, &str)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect()
}

fn create(extra: &[(&str, &str)]) -> Result<Params, ParamErrors> {
    let s = test_schema();
    let m = s.lookup("POST", "/nodes/n1/lxc").unwrap();
    let mut input: Vec<(String, Value)> = m
        .path_params
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    input.extend(form(extra));
    validate(m.definition, &input)
}

const GOOD: &[(&str, &str)] = &[
    ("vmid", "123"),
    ("ostemplate", "local:vztmpl/busybox.tar.gz"),
    ("hostname", "web-1"),
    ("tags", "lxcri;default;web-1"),
    ("memory", "256"),
    ("swap", "0"),
    ("cores", "2"),
    ("cpulimit", "1.5"),
    ("unprivileged", "0"),
    ("rootfs", "local-zfs:0"),
    ("net0", "name=eth0,bridge=vmbr0,ip=dhcp,host-managed=1"),
    ("features", "nesting=1"),
    ("description", "container abc\npod x"),
    ("entrypoint", "/.lxcri/lxcri-init"),
    ("env", "A=1\0B=two"),
];

fn with<'a>(replace: (&'a str, &'a str)) -> Vec<(&'a str, &'a str)> {
    let mut v: Vec<(&str, &str)> = GOOD
        .iter()
        .filter(|(k, _)| *k != replace.0)
        .copied()
        .collect();
    v.push(replace);
    v
}

#[test]
fn valid_create_passes_and_is_normalised() {
    let p = create(GOOD).unwrap();
    assert_eq!(p.int("vmid"), Some(123));
    assert_eq!(p.num("cpulimit"), Some(1.5));
    assert!(!p.flag("unprivileged"));
    assert_eq!(p.str("node"), Some("n1"));
}

#[test]
fn unknown_parameter_is_named() {
    let e = create(&with(("colour", "red"))).unwrap_err();
    assert!(e["colour"].contains("not defined in schema"), "{e:?}");
    // net32 is past PVE's 32 NICs, mp256 past its 256 mount points.
    let e = create(&with(("net32", "name=eth0"))).unwrap_err();
    assert!(e.contains_key("net32"));
}

#[test]
fn vmid_range_and_type() {
    let e = create(&with(("vmid", "99"))).unwrap_err();
    assert_eq!(e["vmid"], "value must have a minimum value of 100");
    let e = create(&with(("vmid", "1000000000"))).unwrap_err();
    assert!(e["vmid"].contains("maximum"));
    let e = create(&with(("vmid", "12a"))).unwrap_err();
    assert!(e["vmid"].contains("type check ('integer')"));
}

#[test]
fn bad_property_strings() {
    let e = create(&with(("net0", "name=eth0,ip=10.0.0.1"))).unwrap_err();
    assert!(e["net0"].contains("ip:"), "{e:?}");
    let e = create(&with(("net0", "bridge=vmbr0"))).unwrap_err();
    assert!(e["net0"].contains("name: property is missing"));
    let e = create(&with(("rootfs", "local-zfs:0,wat=1"))).unwrap_err();
    assert!(e.contains_key("rootfs"));
    let e = create(&with(("features", "nesting=2"))).unwrap_err();
    assert!(e["features"].contains("nesting"));
    assert!(create(&with(("mp0", "/srv/x,mp=/data,ro=1"))).is_ok());
    let e = create(&with(("mp0", "/srv/x"))).unwrap_err();
    assert!(e["mp0"].contains("mp: property is missing"));
}

#[test]
fn bad_tags_hostnames_and_enums() {
    let e = create(&with(("tags", "lxcri;ns:pod"))).unwrap_err();
    assert!(e["tags"].contains("invalid tag"));
    let e = create(&with(("hostname", "pod\nlxc.foo"))).unwrap_err();
    assert!(e.contains_key("hostname"));
    let e = create(&with(("ostype", "windows"))).unwrap_err();
    assert!(e["ostype"].contains("enumeration"));
    // PVE's pattern admits \n (0x0A) but not 0x01-0x08.
    let e = create(&with(("env", "A=1\u{1}"))).unwrap_err();
    assert!(e["env"].contains("regex"));
}

#[test]
fn booleans_are_zero_or_one() {
    let e = create(&with(("unprivileged", "true"))).unwrap_err();
    assert!(e["unprivileged"].contains("boolean"));
    let s = test_schema();
    let m = s.lookup("POST", "/nodes/n1/lxc").unwrap();
    let input = vec![
        ("node".to_string(), json!("n1")),
        ("vmid".to_string(), json!(100)),
        ("ostemplate".to_string(), json!("local:vztmpl/x.tar")),
        ("unprivileged".to_string(), json!(true)),
    ];
    assert!(validate(m.definition, &input).unwrap().flag("unprivileged"));
}

#[test]
fn missing_required_is_named() {
    let e = create(&[("vmid", "100")]).unwrap_err();
    assert_eq!(
        e["ostemplate"],
        "property is missing and it is not optional"
    );
    assert_eq!(e.len(), 1);
}

#[test]
fn requires_is_enforced() {
    let e = create(&with(("unique", "1"))).unwrap_err();
    assert!(e["unique"].contains("restore"));
}

#[test]
fn perl_patterns_translate() {
    assert!(perl_regex(r"(?^:\d+(?:;\d+)*)").unwrap().is_match("1;2"));
    assert!(!perl_regex(r"(?^:\d+(?:;\d+)*)").unwrap().is_match("1;x"));
}
