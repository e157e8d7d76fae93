use super::*;
use crate::schema::test_schema;

const UP: &str = "/usr/share/lxc/lxcnetaddbr";

fn mtus() -> BTreeMap<String, u32> {
    [("vmbr0".to_string(), 1500), ("ovsbr0".to_string(), 9000)].into()
}

/// update_lxc_config's net lines for `text` (a config's option lines), on a host with the
/// bridges `vmbr0` (MTU 1500) and `ovsbr0` (MTU 9000), then the start's check of what the
/// stand-in does not plug as PVE does.
fn lines(text: &str) -> Result<String, String> {
    let s = test_schema();
    let full = format!("arch: amd64\nostype: unmanaged\nrootfs: /r\n{text}");
    let cfg = CtConfig::parse(104, &full, &s).unwrap().0;
    let props = s.config_properties().unwrap();
    let mut out = String::new();
    render(104, &cfg, props, &mtus(), UP, &mut |k, v| {
        out.push_str(&format!("{k} = {v}\n"))
    })?;
    check_modelled(&cfg, props)?;
    Ok(out)
}

/// Config.pm `update_pct_config` at create and update: the MTU against an existing
/// bridge only when one is asked for, SLAAC with host-managed only with the link up; the
/// stand-in's unmodelled plumbing (firewall=1) is no concern before a start.
#[test]
fn updates_are_checked_as_update_pct_config_checks_them() {
    let s = test_schema();
    let props = s.config_properties().unwrap();
    let check = |v: &str| check_update(props, "net3", v, &mtus());
    assert_eq!(
        check("name=eth0,bridge=nosuchbr"),
        Ok(()),
        "no MTU, no bridge read"
    );
    assert_eq!(
        check("name=eth0,bridge=nosuchbr,mtu=1400"),
        Err("bridge 'nosuchbr' does not exist".into())
    );
    assert_eq!(
        check("name=eth0,bridge=vmbr0,mtu=9000"),
        Err("net3: MTU size '9000' is bigger than bridge MTU '1500'".into())
    );
    assert_eq!(check("name=eth0,bridge=ovsbr0,mtu=9000"), Ok(()));
    assert_eq!(
        check("name=eth0,bridge=vmbr0,host-managed=1,ip6=auto"),
        Err("net3: SLAAC is not supported for host-managed network configuration.".into())
    );
    assert_eq!(
        check("name=eth0,bridge=vmbr0,host-managed=1,ip6=auto,link_down=1"),
        Ok(())
    );
    assert_eq!(check("name=eth0,bridge=vmbr0,firewall=1"), Ok(()));
}

/// What PVE writes for lxcri's NICs: a host-managed one with both address families on an
/// OVS bridge, and a plain one whose MTU is the bridge's; `net10` sorts before `net2`.
#[test]
fn lines_are_pves_in_its_order() {
    let text = "net0: name=eth1,bridge=ovsbr0,tag=30,trunks=40;50,hwaddr=BC:24:11:00:00:01,\
                mtu=1400,ip=10.30.0.5/24,gw=10.30.0.1,ip6=fd00::5/64,gw6=fd00::1,\
                host-managed=1,type=veth\n\
                net10: name=eth10,bridge=vmbr0,hwaddr=BC:24:11:00:00:0A,ip=dhcp,host-managed=1\n\
                net2: name=eth2,bridge=vmbr0,hwaddr=BC:24:11:00:00:02,ip=10.0.0.2/24\n";
    let want = format!(
        "lxc.net.0.type = veth
lxc.net.0.veth.pair = veth104i0
lxc.net.0.hwaddr = BC:24:11:00:00:01
lxc.net.0.name = eth1
lxc.net.0.mtu = 1400
lxc.net.0.script.up = {UP}
lxc.net.0.ipv4.address = 10.30.0.5/24
lxc.net.0.ipv4.gateway = 10.30.0.1
lxc.net.0.ipv6.address = fd00::5/64
lxc.net.0.ipv6.gateway = fd00::1
lxc.net.0.flags = up
lxc.net.10.type = veth
lxc.net.10.veth.pair = veth104i10
lxc.net.10.hwaddr = BC:24:11:00:00:0A
lxc.net.10.name = eth10
lxc.net.10.mtu = 1500
lxc.net.10.script.up = {UP}
lxc.net.10.flags = up
lxc.net.2.type = veth
lxc.net.2.veth.pair = veth104i2
lxc.net.2.hwaddr = BC:24:11:00:00:02
lxc.net.2.name = eth2
lxc.net.2.mtu = 1500
lxc.net.2.script.up = {UP}
"
    );
    assert_eq!(lines(text).unwrap(), want);
}

#[test]
fn link_down_has_no_addresses_and_no_refusals() {
    let text = "net0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:01,ip=10.0.0.2/24,\
                host-managed=1,link_down=1,firewall=1,rate=5\n";
    let out = lines(text).unwrap();
    assert!(
        out.ends_with(&format!("lxc.net.0.script.up = {UP}\n")),
        "{out}"
    );
}

#[test]
fn a_missing_hwaddr_is_made_up_with_pves_prefix() {
    let out = lines("net0: name=eth0,bridge=vmbr0\n").unwrap();
    let mac = out
        .lines()
        .find_map(|l| l.strip_prefix("lxc.net.0.hwaddr = "))
        .unwrap();
    assert!(mac.starts_with("BC:24:11:") && mac.len() == 17, "{mac}");
}

#[test]
fn refusals_are_pves_or_name_what_is_not_modelled() {
    for (net, err) in [
        (
            "name=eth0,bridge=nosuchbr",
            "bridge 'nosuchbr' does not exist",
        ),
        ("name=eth0", "bridge '' does not exist"),
        (
            "name=eth0,bridge=vmbr0,mtu=9000",
            "net0: MTU size '9000' is bigger than bridge MTU '1500'",
        ),
        (
            "name=eth0,bridge=vmbr0,ip6=auto,host-managed=1",
            "net0: SLAAC is not supported for host-managed network configuration",
        ),
        (
            "name=eth0,bridge=vmbr0,firewall=1",
            "net0: pve-sim does not model firewall bridges (firewall=1)",
        ),
        (
            "name=eth0,bridge=vmbr0,rate=12.5",
            "net0: pve-sim does not model rate limits (rate=12.5)",
        ),
    ] {
        assert_eq!(
            lines(&format!("net0: {net}\n")),
            Err(err.to_string()),
            "{net}"
        );
    }
    // Without host-managed, SLAAC is the CT's own business.
    assert!(lines("net0: name=eth0,bridge=vmbr0,ip6=auto\n").is_ok());
}
