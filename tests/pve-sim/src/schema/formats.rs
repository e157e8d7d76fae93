//! PVE's named string formats (`format: "pve-vmid"` etc.), re-implemented from the
//! descriptions in pve-common's JSONSchema.pm and pve-container: the schema file names them
//! but does not carry their rules. Formats lxcri never sends are accepted unchecked.

use regex::Regex;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

/// Checks `value` against the named format; `Err` carries PVE's message.
pub fn check(format: &str, value: &str) -> Result<(), String> {
    match format {
        "pve-vmid" => matches(
            r"^[1-9][0-9]*$",
            value,
            "value does not look like a valid VMID",
        ),
        "pve-node" => matches(
            r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?$",
            value,
            "value does not look like a valid node name",
        ),
        "pve-configid" => configid(value),
        "pve-configid-list" => each(value, configid),
        "pve-tag-list" => tag_list(value),
        "dns-name" => dns_name(value),
        "dns-name-list" => each(value, dns_name),
        "pve-storage-id" => matches(
            r"(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$",
            value,
            &format!("storage ID '{value}' contains illegal characters"),
        ),
        "pve-storage-id-list" => each(value, |v| check("pve-storage-id", v)),
        "pve-volume-id" => volume_id(value),
        "pve-lxc-mp-string" => mp_string(value),
        "pve-lxc-dev-string" => dev_string(value),
        "disk-size" => matches(
            r"^\+?\d+(\.\d+)?[KMGT]?$",
            value,
            "value does not look like a valid disk size",
        ),
        "ipv4" => value
            .parse::<Ipv4Addr>()
            .map(drop)
            .map_err(|_| "value does not look like a valid IPv4 address".into()),
        "ipv6" => value
            .parse::<Ipv6Addr>()
            .map(drop)
            .map_err(|_| "value does not look like a valid IPv6 address".into()),
        "pve-ipv4-config" => ip_config(value, false),
        "pve-ipv6-config" => ip_config(value, true),
        "lxc-ip-with-ll-iface-list" => each(value, ip_with_ll_iface),
        "mac-addr" => matches(
            r"(?i)^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$",
            value,
            "value does not look like a valid unicast MAC address",
        ),
        // pve-access-control src/PVE/AccessControl.pm verify_poolname:
        // up to three levels separated by '/'.
        "pve-poolid" => matches(
            r"^[A-Za-z0-9.\-_]+(?:/[A-Za-z0-9.\-_]+){0,2}$",
            value,
            "invalid pool ID",
        ),
        "pve-ct-timezone" => matches(
            r"^(host|[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*)$",
            value,
            "invalid time zone",
        ),
        "pve-startup-order" => startup_order(value),
        "pve-realm" => matches(r"^[A-Za-z][A-Za-z0-9\.\-_]+$", value, "invalid realm"),
        "pve-userid" => matches(
            r"^[^\s:/]+@[A-Za-z][A-Za-z0-9\.\-_]+$",
            value,
            "value does not look like a valid user name",
        ),
        // Formats of endpoints lxcri does not call (migration, tokens, downloads...).
        _ => Ok(()),
    }
}

/// Compiles each pattern once; all patterns here are literals, so a failure is a bug.
fn regex(pattern: &str) -> Regex {
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<String, Regex>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).expect("built-in format regex"))
        .clone()
}

fn matches(pattern: &str, value: &str, msg: &str) -> Result<(), String> {
    if regex(pattern).is_match(value) {
        Ok(())
    } else {
        Err(msg.to_string())
    }
}

/// PVE's `split_list`: NUL-separated if there is a NUL, else separated by `,`, `;` or space.
pub fn split_list(value: &str) -> Vec<&str> {
    let parts: Vec<&str> = if value.contains('\0') {
        value.split('\0').collect()
    } else {
        value.split([',', ';', ' ', '\t', '\n']).collect()
    };
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

fn each(value: &str, check_one: impl Fn(&str) -> Result<(), String>) -> Result<(), String> {
    split_list(value).into_iter().try_for_each(check_one)
}

fn configid(value: &str) -> Result<(), String> {
    matches(
        r"(?i)^[a-z][a-z0-9_\-]+$",
        value,
        &format!("invalid configuration ID '{value}'"),
    )
}

/// Tags: `[a-z0-9_][a-z0-9_\-+.]*`, case-insensitive, split on `;`, `,` or space.
fn tag_list(value: &str) -> Result<(), String> {
    for tag in value.split([';', ',', ' ']).filter(|t| !t.is_empty()) {
        matches(
            r"(?i)^[a-z0-9_][a-z0-9_\-+.]*$",
            tag,
            &format!("invalid tag '{tag}'"),
        )?;
    }
    Ok(())
}

fn dns_name(value: &str) -> Result<(), String> {
    let label = r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?";
    matches(
        &format!(r"^(?:{label}\.)*{label}$"),
        value,
        "value does not look like a valid DNS name",
    )
}

fn volume_id(value: &str) -> Result<(), String> {
    matches(
        r"(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]:.+$",
        value,
        &format!("unable to parse volume ID '{value}'"),
    )
}

/// Mount point and volume strings must not contain `.`/`..` path components.
fn mp_string(value: &str) -> Result<(), String> {
    let bad = regex(r"(^|/)\.\.?(/|$)");
    if bad.is_match(value) {
        return Err(format!("{value} contains illegal character sequences"));
    }
    Ok(())
}

fn dev_string(value: &str) -> Result<(), String> {
    if !value.starts_with("/dev/") {
        return Err(format!("{value} is not a valid device path"));
    }
    mp_string(value)
}

fn ip_config(value: &str, v6: bool) -> Result<(), String> {
    let keywords: &[&str] = if v6 {
        &["auto", "dhcp", "manual"]
    } else {
        &["dhcp", "manual"]
    };
    if keywords.contains(&value) {
        return Ok(());
    }
    let family = if v6 { "ipv6" } else { "ipv4" };
    let err = || format!("value does not look like a valid {family} network configuration");
    let (addr, mask) = value.split_once('/').ok_or_else(err)?;
    let mask: u32 = match mask.bytes().all(|b| b.is_ascii_digit()) {
        true => mask.parse().map_err(|_| err())?,
        false => return Err(err()),
    };
    // pve-common JSONSchema.pm pve_verify_cidrv4/cidrv6: a prefix of 8 up to 32 (128).
    let ok = if v6 {
        addr.parse::<Ipv6Addr>().is_ok() && (8..=128).contains(&mask)
    } else {
        addr.parse::<Ipv4Addr>().is_ok() && (8..=32).contains(&mask)
    };
    ok.then_some(()).ok_or_else(err)
}

fn ip_with_ll_iface(value: &str) -> Result<(), String> {
    let (addr, iface) = match value.split_once('%') {
        Some((a, i)) => (a, Some(i)),
        None => (value, None),
    };
    let ok = match (addr.parse::<std::net::IpAddr>(), iface) {
        (Ok(std::net::IpAddr::V4(_)), None) => true,
        (Ok(std::net::IpAddr::V6(_)), None) => true,
        (Ok(std::net::IpAddr::V6(a)), Some(i)) => {
            (a.segments()[0] & 0xffc0) == 0xfe80 && regex(r"^[-_.\w]+$").is_match(i)
        }
        _ => false,
    };
    ok.then_some(())
        .ok_or_else(|| format!("unable to parse IP address '{value}'"))
}

fn startup_order(value: &str) -> Result<(), String> {
    for (i, part) in value.split(',').enumerate() {
        let ok = match part.split_once('=') {
            Some(("order" | "up" | "down", n)) => n.parse::<u64>().is_ok(),
            None => i == 0 && part.parse::<u64>().is_ok(),
            _ => false,
        };
        if !ok {
            return Err(format!("invalid startup order '{value}'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn formats_accept_and_reject() {
        assert!(check("pve-vmid", "100").is_ok());
        assert!(check("pve-vmid", "0100").is_err());
        assert!(check("pve-tag-list", "lxcri;default;my-pod.1").is_ok());
        assert!(check("pve-tag-list", "lxcri;bad:tag").is_err());
        assert!(check("dns-name", "pod-1.example").is_ok());
        assert!(check("dns-name", "pod_1").is_err());
        assert!(check("pve-ipv4-config", "10.0.0.2/24").is_ok());
        assert!(check("pve-ipv4-config", "10.0.0.2").is_err());
        assert!(check("pve-ipv4-config", "10.0.0.2/7").is_err());
        assert!(check("pve-ipv4-config", "10.0.0.2/33").is_err());
        assert!(check("pve-ipv4-config", "10.0.0.2/+24").is_err());
        assert!(check("pve-ipv6-config", "fd00::2/7").is_err());
        assert!(check("pve-ipv6-config", "fd00::2/64").is_ok());
        assert!(check("pve-ipv6-config", "auto").is_ok());
        assert!(check("mac-addr", "BC:24:11:00:00:01").is_ok());
        assert!(check("mac-addr", "01:24:11:00:00:01").is_err());
        assert!(check("pve-lxc-mp-string", "/srv/../etc").is_err());
        assert!(check("pve-lxc-mp-string", "local-zfs:subvol-100-disk-0").is_ok());
        assert!(check("pve-configid-list", "mp0,net1;tags").is_ok());
        assert!(check("pve-configid-list", "mp0,lxc.foo").is_err());
        assert!(check("lxc-ip-with-ll-iface-list", "10.0.0.1 fe80::1%eth0").is_ok());
    }
}
