//! The VLANs of a port on a VLAN-aware Linux bridge, set as Proxmox VE
//! sets them when it plugs a guest NIC in: pve-common
//! `src/PVE/Network.pm`, `$bridge_add_interface` (run by `tap_plug`):
//!
//! 1. `bridge vlan del dev PORT vid 1-4094`;
//! 2. with trunks, `bridge vlan add dev PORT vid T` for each trunk;
//!    without trunks and without a tag, `... vid 2-4094`;
//! 3. `bridge vlan add dev PORT vid TAG pvid untagged`, TAG being 1 when
//!    there is no tag.
//!
//! Each step is the netlink message `bridge vlan` sends: `RTM_DELLINK`
//! (del) or `RTM_SETLINK` (add), family `AF_BRIDGE`, the port's index, and
//! `IFLA_AF_SPEC` holding `IFLA_BRIDGE_VLAN_INFO` (a range as two entries,
//! `RANGE_BEGIN` and `RANGE_END`). Like `bridge vlan` without `self` or
//! `master`, no `IFLA_BRIDGE_FLAGS`: the kernel then applies the entries to
//! the port on its bridge. Consecutive trunk vids are sent as one range
//! (`vid 10-12` where PVE would list 10;11;12 one by one): the same entries.

use netlink_packet_route::link::{
    AfSpecBridge, BridgeVlanInfo, BridgeVlanInfoFlags, LinkAttribute, LinkMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Netlink, NetlinkError, Result};

/// The vids a bridge port can carry (0 and 4095 are reserved).
const VID_MIN: u16 = 1;
const VID_MAX: u16 = 4094;

/// One `bridge vlan add|del` on a port: vids `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct VlanStep {
    pub add: bool,
    pub first: u16,
    pub last: u16,
    /// `pvid untagged`: untagged frames in are this VLAN, frames of this
    /// VLAN go out untagged.
    pub pvid_untagged: bool,
}

impl VlanStep {
    fn describe(&self, port: &str) -> String {
        let vids = if self.first == self.last {
            format!("vlan {}", self.first)
        } else {
            format!("vlans {}-{}", self.first, self.last)
        };
        let pvid = if self.pvid_untagged {
            " as pvid untagged"
        } else {
            ""
        };
        if self.add {
            format!("adding {vids}{pvid} to bridge port {port}")
        } else {
            format!("removing {vids} from bridge port {port}")
        }
    }
}

/// PVE's steps for a port with `tag` and `trunks` (see the module docs).
pub(super) fn vlan_steps(
    tag: Option<u16>,
    trunks: &[u16],
) -> std::result::Result<Vec<VlanStep>, String> {
    let bad = tag
        .into_iter()
        .chain(trunks.iter().copied())
        .find(|v| !(VID_MIN..=VID_MAX).contains(v));
    if let Some(v) = bad {
        return Err(format!("vlan {v} is outside {VID_MIN}-{VID_MAX}"));
    }
    let span = |add, first, last| VlanStep {
        add,
        first,
        last,
        pvid_untagged: false,
    };
    let mut steps = vec![span(false, VID_MIN, VID_MAX)];
    if !trunks.is_empty() {
        steps.extend(
            vid_ranges(trunks)
                .into_iter()
                .map(|(first, last)| span(true, first, last)),
        );
    } else if tag.is_none() {
        steps.push(span(true, 2, VID_MAX));
    }
    let pvid = tag.unwrap_or(1);
    steps.push(VlanStep {
        pvid_untagged: true,
        ..span(true, pvid, pvid)
    });
    Ok(steps)
}

/// Sorted, deduplicated vids as runs of consecutive ones.
fn vid_ranges(vids: &[u16]) -> Vec<(u16, u16)> {
    let mut sorted = vids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for v in sorted {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == v => *last = v,
            _ => ranges.push((v, v)),
        }
    }
    ranges
}

/// The message of one step on the port with index `port_index`.
pub(super) fn vlan_message(port_index: u32, step: &VlanStep) -> RouteNetlinkMessage {
    let mut flags = BridgeVlanInfoFlags::empty();
    if step.pvid_untagged {
        flags |= BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged;
    }
    let info = |flags, vid| AfSpecBridge::VlanInfo(BridgeVlanInfo { flags, vid });
    let entries = if step.first == step.last {
        vec![info(flags, step.first)]
    } else {
        vec![
            info(flags | BridgeVlanInfoFlags::RangeBegin, step.first),
            info(flags | BridgeVlanInfoFlags::RangeEnd, step.last),
        ]
    };
    let mut msg = LinkMessage::default();
    msg.header.interface_family = AddressFamily::Bridge;
    msg.header.index = port_index;
    msg.attributes.push(LinkAttribute::AfSpecBridge(entries));
    if step.add {
        RouteNetlinkMessage::SetLink(msg)
    } else {
        RouteNetlinkMessage::DelLink(msg)
    }
}

impl Netlink {
    /// The VLANs of bridge port `port` as PVE's `tap_plug` sets them on a
    /// VLAN-aware bridge: `tag` untagged (VLAN 1 without one), `trunks`
    /// tagged, every other VLAN removed (all but 1 allowed when there is
    /// neither). Refused when the port's bridge does not filter VLANs,
    /// where the entries would be kept but isolate nothing.
    pub fn set_bridge_port_vlans(
        &mut self,
        port: &str,
        tag: Option<u16>,
        trunks: &[u16],
    ) -> Result<()> {
        let op = format!("setting VLANs on bridge port {port}");
        let steps = vlan_steps(tag, trunks).map_err(|reason| NetlinkError::Invalid {
            op: op.clone(),
            reason,
        })?;
        let link = self.link(port)?.ok_or_else(|| NetlinkError::NoSuchLink {
            op: op.clone(),
            name: port.to_owned(),
        })?;
        let Some(master) = link.master else {
            return Err(NetlinkError::Invalid {
                op,
                reason: "it is not a port of any bridge".into(),
            });
        };
        let bridge = self.link_by_index(&op, master)?;
        if bridge.kind.as_deref() != Some("bridge") {
            return Err(NetlinkError::Invalid {
                op,
                reason: format!(
                    "its master {} is not a Linux bridge ({})",
                    bridge.name,
                    bridge.kind.as_deref().unwrap_or("no kind")
                ),
            });
        }
        if bridge.vlan_filtering != Some(true) {
            return Err(NetlinkError::NotVlanAware {
                port: port.to_owned(),
                bridge: bridge.name,
            });
        }
        for step in &steps {
            self.request(&step.describe(port), vlan_message(link.index, step), 0)?;
        }
        Ok(())
    }
}
