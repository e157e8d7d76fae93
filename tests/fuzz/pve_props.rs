//! PVE property strings (`netN`, `mpN`, `rootfs`, `features`): what lxcri
//! renders, PVE's parser splits into exactly the keys and values lxcri
//! meant, whatever the values hold; what cannot be written that way is
//! refused.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::prelude::*;

use lxcri::network::values::Rate;
use lxcri::pve::config::{
    Features, IpConfig4, IpConfig6, MacAddr, MountOption, MountPoint, MountPointOptions, NetConfig,
    Volume,
};
use lxcri::zfs::DiskSize;

use crate::{fuzz, mostly_plain, Case};

/// pve-common src/PVE/JSONSchema.pm `parse_property_string`: split at every
/// `,`, blank parts skipped, `^([^=]+)=(.+)$` is a key and value, a part
/// without `=` the default key's value, anything else an error.
fn pve_parse(text: &str, default_key: Option<&str>) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in text.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        let (k, v) = match part.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() && !v.contains('\n') => {
                (k.to_string(), v.to_string())
            }
            Some(_) => return Err(format!("missing key in {part:?}")),
            None => match default_key {
                Some(d) => (d.to_string(), part.to_string()),
                None => return Err(format!("value without key: {part:?}")),
            },
        };
        if out.insert(k.clone(), v).is_some() {
            return Err(format!("duplicate key {k}"));
        }
    }
    Ok(out)
}

fn flag(m: &mut BTreeMap<String, String>, key: &str, v: Option<bool>) {
    if let Some(v) = v {
        m.insert(key.into(), u8::from(v).to_string());
    }
}

fn ifname() -> impl Strategy<Value = String> {
    mostly_plain("[a-z][a-z0-9_.-]{0,14}", 16)
}

fn net() -> impl Strategy<Value = NetConfig> {
    let ip4 = prop_oneof![
        Just(IpConfig4::Dhcp),
        Just(IpConfig4::Manual),
        (any::<u32>(), 0u8..40).prop_map(|(a, l)| IpConfig4::Cidr(Ipv4Addr::from(a), l)),
    ];
    let ip6 = prop_oneof![
        Just(IpConfig6::Auto),
        Just(IpConfig6::Dhcp),
        Just(IpConfig6::Manual),
        (any::<u128>(), 0u8..140).prop_map(|(a, l)| IpConfig6::Cidr(Ipv6Addr::from(a), l)),
    ];
    let rate = "[0-9]{1,4}(\\.[0-9]{1,4})?".prop_filter_map("a rate", |s| s.parse::<Rate>().ok());
    (
        (ifname(), proptest::option::of(ifname())),
        proptest::array::uniform6(any::<u8>()),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
        ),
        (proptest::option::of(ip4), proptest::option::of(ip6)),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u128>()),
        ),
        (
            proptest::option::of(0u16..=9000),
            proptest::option::of(rate),
            proptest::option::of(0u16..4100),
            vec(0u16..4100, 0..3),
        ),
    )
        .prop_map(|((name, bridge), mac, flags, (ip, ip6), (gw, gw6), rest)| {
            let (mtu, rate, tag, trunks) = rest;
            NetConfig {
                name,
                bridge,
                firewall: flags.0,
                gw: gw.map(Ipv4Addr::from),
                gw6: gw6.map(Ipv6Addr::from),
                host_managed: flags.1,
                hwaddr: Some(MacAddr(mac)),
                ip,
                ip6,
                link_down: flags.2,
                mtu,
                rate,
                tag,
                trunks,
            }
        })
}

fn expected_net(n: &NetConfig) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("name".into(), n.name.clone());
    if let Some(b) = &n.bridge {
        m.insert("bridge".into(), b.clone());
    }
    flag(&mut m, "firewall", n.firewall);
    if let Some(gw) = n.gw {
        m.insert("gw".into(), gw.to_string());
    }
    if let Some(gw6) = n.gw6 {
        m.insert("gw6".into(), gw6.to_string());
    }
    flag(&mut m, "host-managed", n.host_managed);
    if let Some(mac) = n.hwaddr {
        m.insert("hwaddr".into(), mac.to_string());
    }
    if let Some(ip) = n.ip {
        let v = match ip {
            IpConfig4::Dhcp => "dhcp".into(),
            IpConfig4::Manual => "manual".into(),
            IpConfig4::Cidr(a, l) => format!("{a}/{l}"),
        };
        m.insert("ip".into(), v);
    }
    if let Some(ip) = n.ip6 {
        let v = match ip {
            IpConfig6::Auto => "auto".into(),
            IpConfig6::Dhcp => "dhcp".into(),
            IpConfig6::Manual => "manual".into(),
            IpConfig6::Cidr(a, l) => format!("{a}/{l}"),
        };
        m.insert("ip6".into(), v);
    }
    flag(&mut m, "link_down", n.link_down);
    if let Some(mtu) = n.mtu {
        m.insert("mtu".into(), mtu.to_string());
    }
    if let Some(rate) = n.rate {
        m.insert("rate".into(), rate.to_string());
    }
    if let Some(tag) = n.tag {
        m.insert("tag".into(), tag.to_string());
    }
    if !n.trunks.is_empty() {
        let t: Vec<String> = n.trunks.iter().map(u16::to_string).collect();
        m.insert("trunks".into(), t.join(";"));
    }
    m.insert("type".into(), "veth".into());
    m
}

/// The prefix lengths and VLAN ids PVE's schema takes (pve-common
/// JSONSchema.pm `pve_verify_cidrv4`/`cidrv6`; pve-container Config.pm
/// `tag`, `trunks`, `mtu`).
fn pve_accepts_net(n: &NetConfig) -> bool {
    let cidr_ok = match (n.ip, n.ip6) {
        (Some(IpConfig4::Cidr(_, l)), _) if !(8..=32).contains(&l) => false,
        (_, Some(IpConfig6::Cidr(_, l))) if !(8..=128).contains(&l) => false,
        _ => true,
    };
    let vlan = |t: u16| (1..=4094).contains(&t);
    cidr_ok
        && n.tag.map_or(true, vlan)
        && n.trunks.iter().all(|&t| vlan(t))
        && n.mtu.map_or(true, |m| m >= 64)
}

#[test]
fn net_property_strings_split_as_meant() {
    fuzz("tests/fuzz/regressions/pve_props_net.txt", net(), 10, |n| {
        let Ok(text) = n.render("net0") else {
            return Ok(Case::Refused);
        };
        prop_assert!(pve_accepts_net(&n), "rendered what PVE refuses: {}", text);
        let parsed = pve_parse(&text, None).map_err(TestCaseError::fail)?;
        prop_assert_eq!(parsed, expected_net(&n), "{}", text);
        Ok(Case::Checked)
    });
}

fn volume() -> impl Strategy<Value = Volume> {
    let storage = || mostly_plain("[a-z][a-z0-9-]{0,6}[a-z0-9]", 10);
    prop_oneof![
        (storage(), mostly_plain("subvol-[0-9]{3}-disk-[0-9]", 16))
            .prop_map(|(storage, name)| Volume::Existing { storage, name }),
        (storage(), proptest::option::of(1u64..100_000)).prop_map(|(storage, mib)| {
            Volume::Allocate {
                storage,
                size: mib.and_then(DiskSize::from_mib),
            }
        }),
        mostly_plain("/[a-z]{1,6}(/[a-z0-9 ._-]{1,6}){0,2}", 16)
            .prop_map(|p| Volume::HostPath(p.into())),
    ]
}

fn mount_point() -> impl Strategy<Value = MountPoint> {
    let opts = (
        proptest::option::of(any::<bool>()),
        vec(
            prop_oneof![
                Just(MountOption::Discard),
                Just(MountOption::Noatime),
                Just(MountOption::Nosuid),
                Just(MountOption::Nodev),
            ],
            0..3,
        ),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(mostly_plain("[0-9]{1,3}(\\.[0-9])?[KMGT]?", 6)),
    );
    (
        volume(),
        mostly_plain("/[a-z]{1,6}(/[a-z0-9 ._-]{1,6}){0,2}", 16),
        proptest::option::of(any::<bool>()),
        opts,
    )
        .prop_map(
            |(volume, mp, backup, (acl, mountoptions, ro, shared, size))| MountPoint {
                volume,
                mp,
                backup,
                options: MountPointOptions {
                    acl,
                    mountoptions,
                    quota: None,
                    replicate: None,
                    ro,
                    shared,
                    size,
                },
            },
        )
}

fn expected_mp(m: &MountPoint) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let volume = match &m.volume {
        Volume::Existing { storage, name } => format!("{storage}:{name}"),
        Volume::Allocate { storage, size } => format!(
            "{storage}:{}",
            size.map_or("0".to_string(), DiskSize::gib_decimal)
        ),
        Volume::HostPath(p) => p.to_str().unwrap().to_string(),
    };
    out.insert("volume".into(), volume);
    out.insert("mp".into(), m.mp.clone());
    flag(&mut out, "backup", m.backup);
    let o = &m.options;
    flag(&mut out, "acl", o.acl);
    if !o.mountoptions.is_empty() {
        let names: Vec<&str> = o.mountoptions.iter().map(|o| o.as_str()).collect();
        out.insert("mountoptions".into(), names.join(";"));
    }
    flag(&mut out, "ro", o.ro);
    flag(&mut out, "shared", o.shared);
    if let Some(s) = &o.size {
        out.insert("size".into(), s.clone());
    }
    out
}

#[test]
fn mount_point_property_strings_split_as_meant() {
    fuzz(
        "tests/fuzz/regressions/pve_props_mp.txt",
        mount_point(),
        10,
        |m| {
            let Ok(text) = m.render("mp0") else {
                return Ok(Case::Refused);
            };
            let parsed = pve_parse(&text, Some("volume")).map_err(TestCaseError::fail)?;
            prop_assert_eq!(parsed, expected_mp(&m), "{}", text);
            // pve-container Config.pm: `pve-lxc-mp-string` has no `.`/`..`
            // component, so a mount point cannot climb out of the rootfs.
            prop_assert!(!m.mp.split('/').any(|c| c == ".." || c == "."));
            Ok(Case::Checked)
        },
    );
}

#[test]
fn features_property_strings_split_as_meant() {
    let f = (
        proptest::array::uniform5(proptest::option::of(any::<bool>())),
        vec(mostly_plain("[a-z0-9_]{1,6}", 6), 0..3),
    )
        .prop_map(|(b, mount)| Features {
            force_rw_sys: b[0],
            fuse: b[1],
            keyctl: b[2],
            mknod: b[3],
            mount,
            nesting: b[4],
        });
    fuzz(
        "tests/fuzz/regressions/pve_props_features.txt",
        f,
        10,
        |f| {
            let Ok(text) = f.render() else {
                return Ok(Case::Refused);
            };
            let parsed = pve_parse(&text, None).map_err(TestCaseError::fail)?;
            let mut want = BTreeMap::new();
            flag(&mut want, "force_rw_sys", f.force_rw_sys);
            flag(&mut want, "fuse", f.fuse);
            flag(&mut want, "keyctl", f.keyctl);
            flag(&mut want, "mknod", f.mknod);
            if !f.mount.is_empty() {
                want.insert("mount".into(), f.mount.join(";"));
            }
            flag(&mut want, "nesting", f.nesting);
            prop_assert_eq!(parsed, want, "{}", text);
            Ok(Case::Checked)
        },
    );
}
