use crate::network::nic::{NicError, NicIndex, NicSpec};

const SRC: &str = "io.lxcri.net0";

fn parse(text: &str) -> Result<NicSpec, NicError> {
    NicSpec::parse(NicIndex::new(0).unwrap(), text, SRC)
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn a_full_pve_nic_parses_into_checked_values() {
    let nic = parse(
        "name=eth1,bridge=vmbr1,tag=30,trunks=50;40;50,hwaddr=bc:24:11:aa:bb:cc,mtu=1400,\
         ip=10.30.0.5/24,gw=10.30.0.1,ip6=fd00::5/64,gw6=fd00::1,firewall=1,rate=12.5,\
         link_down=0,type=veth",
    )
    .unwrap();
    assert_eq!(nic.name.as_str(), "eth1");
    assert_eq!(nic.tag.unwrap().get(), 30);
    let trunks: Vec<u16> = nic.trunks.ids().iter().map(|v| v.get()).collect();
    assert_eq!(trunks, [40, 50], "sorted, without repeats");
    assert_eq!(nic.mtu.unwrap().get(), 1400);
    assert!(nic.firewall && !nic.link_down && !nic.host_managed);
    assert_eq!(nic.hwaddr.unwrap().to_string(), "BC:24:11:AA:BB:CC");
    assert_eq!(nic.ip.unwrap().to_string(), "10.30.0.5/24");
    assert_eq!(nic.gw6.unwrap().to_string(), "fd00::1");
}

#[test]
fn booleans_and_address_modes_as_pve_spells_them() {
    let nic =
        parse("name=eth0,firewall=yes,link_down=ON,host-managed=true,ip=dhcp,ip6=auto").unwrap();
    assert!(nic.firewall && nic.link_down && nic.host_managed);
    assert_eq!(nic.ip.unwrap().to_string(), "dhcp");
    assert_eq!(nic.ip6.unwrap().to_string(), "auto");
    assert!(
        parse("name=eth0,ip=manual,ip6=manual,,").is_ok(),
        "empty parts are skipped"
    );
}

#[test]
fn each_bad_value_names_the_source_and_field() {
    let cases = [
        ("name=eth0,tag=0", "tag", "not a VLAN id"),
        ("name=eth0,bridge=br0,tag=4095", "tag", "not a VLAN id"),
        ("name=eth0,bridge=br0,tag=+5", "tag", "not a VLAN id"),
        (
            "name=eth0,bridge=br0,trunks=10;5000",
            "trunks",
            "\"5000\" is not a VLAN id",
        ),
        (
            "name=eth0,bridge=br0,trunks=10;;20",
            "trunks",
            "not a VLAN id",
        ),
        ("name=eth0,hwaddr=01:00:5e:00:00:01", "hwaddr", "multicast"),
        // The I/G bit alone makes it multicast, whatever else is set.
        ("name=eth0,hwaddr=03:00:00:00:00:00", "hwaddr", "multicast"),
        ("name=eth0,hwaddr=00:00:00:00:00:00", "hwaddr", "all zeros"),
        (
            "name=eth0,hwaddr=zz:00:5e:00:00:01",
            "hwaddr",
            "not a MAC address",
        ),
        ("name=eth0,mtu=63", "mtu", "not an MTU"),
        // veth's minimum, though PVE allows 64.
        ("name=eth0,mtu=67", "mtu", "a veth takes nothing below 68"),
        ("name=eth0,mtu=65536", "mtu", "not an MTU"),
        ("name=eth0,ip=10.0.0.1", "ip", "CIDR"),
        ("name=eth0,ip=10.0.0.1/33", "ip", "CIDR"),
        ("name=eth0,ip=fd00::1/64", "ip", "IPv4"),
        ("name=eth0,ip6=10.0.0.1/24", "ip6", "IPv6"),
        ("name=eth0,ip=0.0.0.0/8", "ip", "not a host address"),
        // PVE takes prefixes of 8 and more only (found by tests/fuzz).
        ("name=eth0,ip=10.0.0.1/7", "ip", "CIDR"),
        ("name=eth0,ip6=fd00::1/7", "ip6", "CIDR"),
        ("name=eth0,ip=10.0.0.2/24,gw=fd00::1", "gw", "IPv4 gateway"),
        ("name=eth0,firewall=maybe", "firewall", "not a boolean"),
        ("name=eth0,rate=-1", "rate", "not a rate"),
        ("name=eth0,rate=0", "rate", "not a rate"),
        ("name=eth0,rate=1.0001", "rate", "at most 3 decimals"),
        ("name=eth0,rate=1e3", "rate", "not a rate"),
        ("name=eth0,type=macvlan", "type", "only veth"),
        ("name=a-very-long-name0", "name", "longer than 15"),
        ("name=eth/0", "name", "'/'"),
        ("name=..", "name", "not an interface name"),
        ("name=eth0,bridge=br 0", "bridge", "' '"),
        // `=` inside a value: PVE takes the key up to the first `=`.
        ("name=eth0,bridge=br0=x", "bridge", "'='"),
    ];
    for (text, field, says) in cases {
        let e = err(text);
        assert!(
            e.starts_with(&format!("{SRC}: {field}: ")) && e.contains(says),
            "{text}: {e}"
        );
    }
}

#[test]
fn malformed_strings_are_refused_whole() {
    let cases = [
        ("bridge=br0", "name= is required"),
        ("name=eth0,name=eth1", "name is given twice"),
        ("name=eth0,vlan=10", "unknown key \"vlan\""),
        ("name=eth0,bridge", "\"bridge\" is not key=value"),
        ("name=eth0,=x", "is not key=value"),
        ("name=eth0,bridge=", "is not key=value"),
        ("name=eth0\nlxc.hook.pre-start=/x", "control character"),
        ("name=eth0\r", "control character"),
        ("name=eth0,tag=10", "tag= and trunks= need a bridge="),
        ("name=eth0,trunks=10", "tag= and trunks= need a bridge="),
        ("name=eth0,gw=10.0.0.1", "gw= needs a static ip="),
        ("name=eth0,ip=dhcp,gw=10.0.0.1", "gw= needs a static ip="),
        ("name=eth0,gw6=fd00::1,ip6=auto", "gw6= needs a static ip6="),
        (
            "name=eth0,mtu=1279,ip6=fd00::2/64",
            "mtu=1279 with ip6=fd00::2/64: IPv6 needs an MTU of at least 1280",
        ),
        ("name=eth0,ip6=auto,mtu=576", "mtu=576 with ip6=auto"),
    ];
    for (text, says) in cases {
        let e = err(text);
        assert!(e.starts_with(SRC) && e.contains(says), "{text:?}: {e}");
    }
}

#[test]
fn the_smallest_mtus_and_macs_the_kernel_takes_are_accepted() {
    for text in [
        "name=eth0,mtu=68",
        "name=eth0,mtu=1279,ip=10.0.0.2/24",
        "name=eth0,mtu=1280,ip6=fd00::2/64",
        "name=eth0,hwaddr=02:00:00:00:00:00",
        "name=eth0,hwaddr=fe:ff:ff:ff:ff:ff",
    ] {
        assert!(parse(text).is_ok(), "{text}: {:?}", parse(text));
    }
}

#[test]
fn nic_indexes_are_0_to_9() {
    assert!(NicIndex::new(9).is_some());
    assert!(NicIndex::new(10).is_none());
}

#[test]
fn rates_keep_their_decimals() {
    for (text, shown, bytes) in [
        ("12.5", "12.5", 12_500_000),
        ("0.125", "0.125", 125_000),
        ("3", "3", 3_000_000),
        ("2.50", "2.5", 2_500_000),
    ] {
        let nic = parse(&format!("name=eth0,rate={text}")).unwrap();
        let rate = nic.rate.unwrap();
        assert_eq!(
            (rate.to_string().as_str(), rate.bytes_per_sec()),
            (shown, bytes),
            "{text}"
        );
    }
}
