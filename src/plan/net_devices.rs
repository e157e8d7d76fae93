//! `linux.netDevices`: host network devices moved into the container's
//! network namespace, as runc 1.4+ does (libcontainer/configs/validate
//! `netdevices`, libcontainer/network_linux.go `devChangeNetNamespace`):
//! each keyed by its host name, optionally renamed. The move itself is the
//! runtime's, once the container's namespace exists.

use std::collections::BTreeMap;

use oci_spec::runtime::Linux;

use super::invalid;
use super::namespaces::Mode;
use super::Result;
use crate::network::net_device::NetDevice;
use crate::network::values::LinkName;

const FIELD: &str = "linux.netDevices";

/// The devices of `linux`, by host name; `net` is the container's network
/// namespace (a new one or one it joins: never the host's).
pub fn plan_net_devices(linux: &Linux, net: Mode) -> Result<Vec<NetDevice>> {
    let Some(devices) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) else {
        return Ok(Vec::new());
    };
    if net == Mode::Host {
        // runc's words.
        return Err(invalid(
            FIELD,
            "unable to move network devices without a NET namespace",
        ));
    }
    let sorted: BTreeMap<&String, _> = devices.iter().collect();
    let mut planned: Vec<NetDevice> = Vec::with_capacity(sorted.len());
    for (host, device) in sorted {
        let host: LinkName = host.parse().map_err(|e| {
            invalid(
                &format!("{FIELD}: {host:?}"),
                &format!("invalid network device name: {e}"),
            )
        })?;
        let name = match device.name().as_deref().filter(|n| !n.is_empty()) {
            Some(n) => n.parse().map_err(|e| {
                invalid(
                    &format!("{FIELD}.{host}.name"),
                    &format!("invalid network device name: {e}"),
                )
            })?,
            None => host.clone(),
        };
        if let Some(other) = planned.iter().find(|d| d.name == name) {
            return Err(invalid(
                &format!("{FIELD}.{host}.name"),
                &format!("{name} is {}'s name in the container too", other.host),
            ));
        }
        planned.push(NetDevice { host, name });
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan(devices: serde_json::Value, net: Mode) -> Result<Vec<NetDevice>> {
        let linux: Linux = serde_json::from_value(json!({ "netDevices": devices })).unwrap();
        plan_net_devices(&linux, net)
    }

    fn device(host: &str, name: &str) -> NetDevice {
        NetDevice {
            host: host.parse().unwrap(),
            name: name.parse().unwrap(),
        }
    }

    #[test]
    fn devices_by_host_name_renamed_or_not() {
        let planned = plan(
            json!({"eth2": {}, "ens1f0v3": {"name": "net1"}, "eth1": {"name": ""}}),
            Mode::New,
        )
        .unwrap();
        assert_eq!(
            planned,
            [
                device("ens1f0v3", "net1"),
                device("eth1", "eth1"),
                device("eth2", "eth2")
            ]
        );
        // Into a namespace the container joins (a pod's) too.
        assert_eq!(plan(json!({"eth1": {}}), Mode::Joined).unwrap().len(), 1);
        assert!(plan(json!({}), Mode::Host).unwrap().is_empty());
    }

    #[test]
    fn refusals_name_the_field() {
        for (devices, net, want) in [
            (
                json!({"eth1": {}}),
                Mode::Host,
                "linux.netDevices: unable to move network devices without a NET namespace",
            ),
            (
                json!({"a/b": {}}),
                Mode::New,
                "linux.netDevices: \"a/b\": invalid network device name: \"a/b\" has '/', which a link name cannot",
            ),
            (
                json!({"eth1": {"name": "sixteen-bytes-xx"}}),
                Mode::New,
                "linux.netDevices.eth1.name: invalid network device name: \"sixteen-bytes-xx\" is longer than 15 bytes (Linux IFNAMSIZ)",
            ),
            (
                json!({"eth1": {"name": "net0"}, "eth2": {"name": "net0"}}),
                Mode::New,
                "linux.netDevices.eth2.name: net0 is eth1's name in the container too",
            ),
            (
                json!({"eth1": {"name": ".."}}),
                Mode::New,
                "linux.netDevices.eth1.name: invalid network device name: \"..\" is not an interface name",
            ),
        ] {
            assert_eq!(plan(devices, net).unwrap_err().to_string(), want);
        }
    }
}
