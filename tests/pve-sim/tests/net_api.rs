//! A CT's `netN` through the API: the `pve-lxc-network` format as PVE checks it (400s
//! naming the key), and what PVE asks for a NIC (pve-container src/PVE/LXC.pm
//! `check_ct_modify_config_perm`, `check_bridge_access`; pve-guest-common
//! `check_vnet_access`), on create and on a config update.

mod common;

use common::Sim;

const TOKEN: &str = "lxcri@pve!sim=5ecret-net-0042";

/// What lxcri's role holds on `/vms` and `/storage` (docs/operations.md), without
/// `VM.Config.Network` unless `network`, and the ACL lines `sdn`.
fn user_cfg(network: bool, sdn: &str) -> String {
    format!(
        "user:lxcri@pve:1:0::::::\ntoken:lxcri@pve!sim:0:0::\n\
         role:LxcriCT:VM.Allocate,VM.Audit,VM.Config.CPU,VM.Config.Disk,VM.Config.Memory,\
         VM.Config.Options,VM.PowerMgmt{}:\n\
         acl:1:/vms:lxcri@pve:LxcriCT:\nacl:1:/storage:lxcri@pve:PVEDatastoreUser:\n{sdn}",
        if network { ",VM.Config.Network" } else { "" }
    )
}

/// `SDN.Use` on VLAN `vid` of `vmbr0` only.
fn vlan_acl(vid: u32) -> String {
    format!("acl:1:/sdn/zones/localnetwork/vmbr0/{vid}:lxcri@pve:PVESDNUser:\n")
}

/// The documented grant: `pveum acl modify /sdn/zones/localnetwork --users lxcri@pve
/// --roles PVESDNUser`.
const SDN_ALL: &str = "acl:1:/sdn/zones/localnetwork:lxcri@pve:PVESDNUser:\n";

fn sim_with(user: &str) -> Sim {
    let sim = Sim::start_as(TOKEN, &[]);
    sim.put_template("local", "e.tar.gz");
    sim.write_etc("user.cfg", user);
    sim
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// lxcri's create of CT `vmid` with `net0` (no hostname, which needs `VM.Config.Network`
/// by itself).
fn create(sim: &Sim, vmid: u32, net0: &str) -> common::Answer {
    let form = format!(
        "vmid={vmid}&ostemplate={}&rootfs={}&ostype=unmanaged&memory=64&net0={}",
        enc("local:vztmpl/e.tar.gz"),
        enc("local-zfs:0"),
        enc(net0)
    );
    sim.call("POST", &format!("/nodes/{}/lxc", sim.node), &form)
}

fn refused(a: &common::Answer, reason: &str) {
    assert_eq!((a.status, a.reason.as_str()), (403, reason), "{:?}", a.body);
}

#[test]
fn a_nic_needs_vm_config_network_and_sdn_use_on_its_bridge_or_vlans() {
    let sim = sim_with(&user_cfg(false, SDN_ALL));
    let before = sim.tree();
    refused(
        &create(&sim, 100, "name=eth0,bridge=vmbr0"),
        "Permission check failed (/vms/100, VM.Config.Network)",
    );
    sim.write_etc("user.cfg", &user_cfg(true, ""));
    let bridge = "Permission check failed (/sdn/zones/localnetwork/vmbr0, SDN.Use)";
    refused(&create(&sim, 100, "name=eth0,bridge=vmbr0"), bridge);
    refused(
        &create(&sim, 100, "name=eth0,bridge=vmbr0,tag=30,trunks=40"),
        "Permission check failed (/sdn/zones/localnetwork/vmbr0/30, SDN.Use)",
    );
    // The trunk VLANs one by one in Perl's string order (100, 40, 50), not as given and
    // not numerically: either would name 40.
    sim.write_etc("user.cfg", &user_cfg(true, &vlan_acl(50)));
    refused(
        &create(&sim, 100, "name=eth0,bridge=vmbr0,trunks=50;40;100"),
        "Permission check failed (/sdn/zones/localnetwork/vmbr0/100, SDN.Use)",
    );
    let vlans = vlan_acl(40) + &vlan_acl(50);
    sim.write_etc("user.cfg", &user_cfg(true, &vlans));
    // VLANs alone do not give the whole bridge, and a NIC without bridge needs no SDN.Use.
    refused(&create(&sim, 100, "name=eth0,bridge=vmbr0"), bridge);
    assert_eq!(sim.tree(), before, "a refused create leaves nothing");
    let a = create(&sim, 100, "name=eth0,bridge=vmbr0,trunks=50;40");
    assert_eq!(sim.wait_task(a.body["data"].as_str().unwrap()), "OK");
    let a = create(&sim, 101, "name=eth0");
    assert_eq!(sim.wait_task(a.body["data"].as_str().unwrap()), "OK");
    // The documented grant covers every bridge and VLAN of the zone.
    sim.write_etc("user.cfg", &user_cfg(true, SDN_ALL));
    // An MTU is checked against the bridge's at create (pve-common Network.pm
    // `read_bridge_mtu` reads any link): `lo` is one every host has.
    let net0 = "name=eth1,bridge=lo,tag=30,trunks=40;50,mtu=1400,ip=10.30.0.5/24,\
                gw=10.30.0.1,ip6=fd00::5/64,host-managed=1";
    let a = create(&sim, 102, net0);
    assert_eq!(sim.wait_task(a.body["data"].as_str().unwrap()), "OK");
    let cfg = sim.call("GET", &format!("/nodes/{}/lxc/102/config", sim.node), "");
    let stored = cfg.body["data"]["net0"].as_str().unwrap().to_string();
    assert!(
        stored.starts_with(&format!("{net0},hwaddr=BC:24:11:")),
        "{stored}"
    );
    assert!(stored.ends_with(",type=veth"), "{stored}");
}

#[test]
fn an_update_checks_the_old_nic_and_the_new_one() {
    let sim = sim_with(&user_cfg(true, SDN_ALL));
    let a = create(&sim, 100, "name=eth0,bridge=vmbr0");
    assert_eq!(sim.wait_task(a.body["data"].as_str().unwrap()), "OK");
    let only_vmbr1 = "acl:1:/sdn/zones/localnetwork/vmbr1:lxcri@pve:PVESDNUser:\n";
    sim.write_etc("user.cfg", &user_cfg(true, only_vmbr1));
    let path = format!("/nodes/{}/lxc/100/config", sim.node);
    let old = "Permission check failed (/sdn/zones/localnetwork/vmbr0, SDN.Use)";
    refused(
        &sim.call(
            "PUT",
            &path,
            &format!("net0={}", enc("name=eth0,bridge=vmbr1")),
        ),
        old,
    );
    refused(&sim.call("PUT", &path, "delete=net0"), old);
    refused(
        &sim.call(
            "PUT",
            &path,
            &format!("net1={}", enc("name=eth1,bridge=vmbr2")),
        ),
        "Permission check failed (/sdn/zones/localnetwork/vmbr2, SDN.Use)",
    );
    // Allowed: the config is written, then PVE's `update_lxc_config` fails the call, as
    // on a node that has no vmbr0 (this host has no bridges).
    let a = sim.call(
        "PUT",
        &path,
        &format!("net1={}", enc("name=eth1,bridge=vmbr1")),
    );
    assert_eq!(
        (a.status, a.reason.as_str()),
        (500, "bridge 'vmbr0' does not exist"),
        "{:?}",
        a.body
    );
    let cfg = sim.call("GET", &path, "");
    assert!(cfg.body["data"]["net1"]
        .as_str()
        .is_some_and(|n| n.starts_with("name=eth1,bridge=vmbr1")));
}

#[test]
fn bad_nics_are_400s_naming_the_key_as_pve_words_them() {
    let sim = sim_with(&user_cfg(true, SDN_ALL));
    let format_error =
        |key: &str, msg: &str| format!("invalid format - format error\nnet0.{key}: {msg}");
    for (net0, want) in [
        (
            "name=eth0,tag=4095",
            format_error("tag", "value must have a maximum value of 4094"),
        ),
        (
            "name=eth0,tag=0",
            format_error("tag", "value must have a minimum value of 1"),
        ),
        (
            "name=eth0,tag=x",
            format_error("tag", "type check ('integer') failed - got 'x'"),
        ),
        (
            "name=eth0,trunks=40-50",
            format_error("trunks", "value does not match the regex pattern"),
        ),
        (
            "name=eth0,mtu=63",
            format_error("mtu", "value must have a minimum value of 64"),
        ),
        (
            "name=eth0,mtu=65536",
            format_error("mtu", "value must have a maximum value of 65535"),
        ),
        (
            "name=eth0,hwaddr=01:24:11:00:00:01",
            format_error(
                "hwaddr",
                "value does not look like a valid unicast MAC address",
            ),
        ),
        (
            "name=eth0,ip=10.0.0.5",
            format_error(
                "ip",
                "value does not look like a valid ipv4 network configuration",
            ),
        ),
        (
            "name=eth0,ip=10.0.0.5/7",
            format_error(
                "ip",
                "value does not look like a valid ipv4 network configuration",
            ),
        ),
        (
            "name=eth0,ip6=slaac",
            format_error(
                "ip6",
                "value does not look like a valid ipv6 network configuration",
            ),
        ),
        (
            "name=eth0,gw=10.0.0.256",
            format_error("gw", "value does not look like a valid IPv4 address"),
        ),
        (
            "name=eth0,type=macvlan",
            format_error(
                "type",
                "value 'macvlan' does not have a value in the enumeration 'veth'",
            ),
        ),
        (
            "name=eth0,bridge=br/0",
            format_error("bridge", "value does not match the regex pattern"),
        ),
        (
            "name=eth0,host-managed=maybe",
            format_error(
                "host-managed",
                "type check ('boolean') failed - got 'maybe'",
            ),
        ),
        (
            "bridge=vmbr0",
            format_error("name", "property is missing and it is not optional"),
        ),
        (
            "name=eth0,trunks=40,50",
            "invalid format - value without key, but schema does not define a default key".into(),
        ),
        (
            "name=eth0,vlan=30",
            "invalid format - invalid key in comma-separated list property: vlan".into(),
        ),
        (
            "name=eth0,tag=",
            "invalid format - missing key in comma-separated list property".into(),
        ),
    ] {
        let a = create(&sim, 100, net0);
        assert_eq!(a.status, 400, "{net0}: {:?}", a.body);
        assert_eq!(a.body["errors"]["net0"], want, "{net0}");
    }
    let a = sim.call(
        "POST",
        &format!("/nodes/{}/lxc", sim.node),
        &format!(
            "vmid=100&ostemplate={}&net32={}",
            enc("local:vztmpl/e.tar.gz"),
            enc("name=eth0")
        ),
    );
    assert_eq!(a.status, 400);
    assert!(a.body["errors"]["net32"]
        .as_str()
        .unwrap()
        .contains("not defined in schema"));
}
