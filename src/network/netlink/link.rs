//! Links: looking them up, veth pairs and bridges, their flags, MTU, MAC,
//! bridge master and alias.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoBridge, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkExtentMask, LinkFlags,
    LinkInfo as InfoAttr, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::{Netlink, NetlinkError, Result};
use crate::network::values::LinkName;

/// `IFALIASZ`, the terminating NUL included.
const IFALIASZ: usize = 256;

/// A link as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    /// The index of its master (a bridge the link is a port of).
    pub master: Option<u32>,
    /// `IFLA_INFO_KIND`: "bridge", "veth", "openvswitch", "tun", ...
    pub kind: Option<String>,
    /// For bridges: `IFLA_BR_VLAN_FILTERING`. A kernel without bridge VLAN
    /// filtering does not report it; such a bridge cannot filter: false.
    pub vlan_filtering: Option<bool>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    pub alias: Option<String>,
}

impl LinkInfo {
    pub(super) fn from_message(op: &str, msg: &LinkMessage) -> Result<Self> {
        let mut name = None;
        let mut info = LinkInfo {
            index: msg.header.index,
            name: String::new(),
            mtu: 0,
            master: None,
            kind: None,
            vlan_filtering: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            alias: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::Mtu(m) => info.mtu = *m,
                LinkAttribute::Controller(m) => info.master = Some(*m),
                LinkAttribute::IfAlias(a) => info.alias = Some(a.clone()),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            InfoAttr::Kind(k) => info.kind = Some(k.to_string()),
                            InfoAttr::Data(InfoData::Bridge(br)) => {
                                info.vlan_filtering = br.iter().find_map(|b| match b {
                                    InfoBridge::VlanFiltering(on) => Some(*on),
                                    _ => None,
                                });
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if info.kind.as_deref() == Some("bridge") && info.vlan_filtering.is_none() {
            info.vlan_filtering = Some(false);
        }
        info.name = name.ok_or_else(|| NetlinkError::Decode {
            op: op.to_owned(),
            reason: format!("link {} has no name", info.index),
        })?;
        Ok(info)
    }
}

impl Netlink {
    /// The link named `name`, or None if there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<LinkInfo>> {
        let op = format!("looking up link {name}");
        check_name(&op, name)?;
        self.get_link(&op, by_name(name))
    }

    /// The link with index `index`, which must exist.
    pub(super) fn link_by_index(&mut self, op: &str, index: u32) -> Result<LinkInfo> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.get_link(op, msg)?
            .ok_or_else(|| NetlinkError::NoSuchLink {
                op: op.to_owned(),
                name: format!("#{index}"),
            })
    }

    /// `RTM_GETLINK` of the one link `msg` names; None on ENODEV.
    fn get_link(&mut self, op: &str, mut msg: LinkMessage) -> Result<Option<LinkInfo>> {
        msg.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let replies = match self.request(op, RouteNetlinkMessage::GetLink(msg), 0) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(None),
            r => r?,
        };
        match replies.iter().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(m) => Some(m),
            _ => None,
        }) {
            Some(m) => LinkInfo::from_message(op, m).map(Some),
            None => Err(NetlinkError::Decode {
                op: op.to_owned(),
                reason: "acknowledged without describing the link".into(),
            }),
        }
    }

    /// The index of link `name`, which must exist.
    pub(super) fn index_of(&mut self, op: &str, name: &str) -> Result<u32> {
        match self.link(name)? {
            Some(l) => Ok(l.index),
            None => Err(NetlinkError::NoSuchLink {
                op: op.to_owned(),
                name: name.to_owned(),
            }),
        }
    }

    /// A veth pair: `host` here, `peer` made directly inside `peer_netns`
    /// under its final name (never visible on the host, no rename race).
    /// `alias` goes on the host end, where lxcri finds leftovers by it.
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
        alias: &str,
    ) -> Result<()> {
        let op = format!("creating veth {host} (peer {peer})");
        check_name(&op, host)?;
        check_name(&op, peer)?;
        check_alias(&op, alias)?;
        let msg = veth_message(host, peer, peer_netns.as_raw_fd());
        self.request(
            &op,
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        // The kernel ignores IFLA_IFALIAS in a RTM_NEWLINK that creates a
        // link, so the alias is a second step; a pair that cannot get it
        // is removed rather than left where no one would look for it.
        let mut msg = by_name(host);
        msg.attributes
            .push(LinkAttribute::IfAlias(alias.to_owned()));
        if let Err(e) = self.set_link(&format!("setting alias {alias:?} on {host}"), host, msg) {
            // The alias error is the one worth reporting.
            let _ = self.delete_link(host);
            return Err(e);
        }
        Ok(())
    }

    /// A Linux bridge, VLAN filtering off (the kernel's default).
    pub fn create_bridge(&mut self, name: &str) -> Result<()> {
        let op = format!("creating bridge {name}");
        check_name(&op, name)?;
        let mut msg = by_name(name);
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![InfoAttr::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            &op,
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Deletes link `name` (a veth takes its peer with it). Idempotent:
    /// false if there was no such link.
    pub fn delete_link(&mut self, name: &str) -> Result<bool> {
        let op = format!("deleting link {name}");
        check_name(&op, name)?;
        match self.request(&op, RouteNetlinkMessage::DelLink(by_name(name)), 0) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn set_up(&mut self, name: &str) -> Result<()> {
        let mut msg = by_name(name);
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.set_link(&format!("setting {name} up"), name, msg)
    }

    pub fn set_down(&mut self, name: &str) -> Result<()> {
        let mut msg = by_name(name);
        msg.header.change_mask = LinkFlags::Up;
        self.set_link(&format!("setting {name} down"), name, msg)
    }

    /// Moves link `index` into the network namespace `netns` as `new_name`,
    /// in one request, so the name is never taken twice in either
    /// namespace (runc's `devChangeNetNamespace` does the same).
    pub fn move_to_netns(
        &mut self,
        index: u32,
        new_name: &str,
        netns: BorrowedFd<'_>,
    ) -> Result<()> {
        let op =
            format!("moving link {index} into the container's network namespace as {new_name}");
        check_name(&op, new_name)?;
        self.request(
            &op,
            RouteNetlinkMessage::SetLink(move_message(index, new_name, netns.as_raw_fd())),
            0,
        )?;
        Ok(())
    }

    pub fn set_mtu(&mut self, name: &str, mtu: u32) -> Result<()> {
        let mut msg = by_name(name);
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(&format!("setting mtu {mtu} on {name}"), name, msg)
    }

    pub fn set_mac(&mut self, name: &str, mac: [u8; 6]) -> Result<()> {
        let mut msg = by_name(name);
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        let mac = mac.map(|b| format!("{b:02x}")).join(":");
        self.set_link(&format!("setting mac {mac} on {name}"), name, msg)
    }

    /// Makes `name` a port of bridge `bridge`.
    pub fn set_master(&mut self, name: &str, bridge: &str) -> Result<()> {
        let op = format!("adding {name} to bridge {bridge}");
        check_name(&op, bridge)?;
        let index = self.index_of(&op, bridge)?;
        let mut msg = by_name(name);
        msg.attributes.push(LinkAttribute::Controller(index));
        self.set_link(&op, name, msg)
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>> {
        let op = "listing links";
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let mut found = Vec::new();
        for reply in self.dump(op, RouteNetlinkMessage::GetLink(msg))? {
            if let RouteNetlinkMessage::NewLink(m) = reply {
                found.push(LinkInfo::from_message(op, &m)?);
            }
        }
        Ok(found)
    }

    /// Links whose alias starts with `prefix`, as (name, alias).
    pub fn links_with_alias_prefix(&mut self, prefix: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .links()?
            .into_iter()
            .filter_map(|l| Some((l.name, l.alias.filter(|a| a.starts_with(prefix))?)))
            .collect())
    }

    /// `RTM_SETLINK` of `msg`, which names the link `name`.
    fn set_link(&mut self, op: &str, name: &str, msg: LinkMessage) -> Result<()> {
        check_name(op, name)?;
        self.request(op, RouteNetlinkMessage::SetLink(msg), 0)?;
        Ok(())
    }
}

/// A link message naming its link by `IFLA_IFNAME`: the kernel resolves
/// names for get, set, delete and new, saving a lookup of the index.
fn by_name(name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    msg
}

/// `RTM_SETLINK` of link `index` (named by index: its name changes) to
/// `name` in the namespace of fd `netns`.
pub(super) fn move_message(index: u32, name: &str, netns: RawFd) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    msg.attributes.push(LinkAttribute::NetNsFd(netns));
    msg
}

/// The `RTM_NEWLINK` of a veth pair; the peer's own message carries its
/// name and namespace.
pub(super) fn veth_message(host: &str, peer: &str, peer_netns: RawFd) -> LinkMessage {
    let mut peer_msg = by_name(peer);
    peer_msg.attributes.push(LinkAttribute::NetNsFd(peer_netns));
    let mut msg = by_name(host);
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        InfoAttr::Kind(InfoKind::Veth),
        InfoAttr::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
    ]));
    msg
}

/// The kernel's rules for a link name ([`LinkName`]), checked first so a
/// bad name is reported as such rather than as a bare EINVAL.
pub(super) fn check_name(op: &str, name: &str) -> Result<()> {
    name.parse::<LinkName>()
        .map(drop)
        .map_err(|e| NetlinkError::Invalid {
            op: op.to_owned(),
            reason: format!("link name {e}"),
        })
}

fn check_alias(op: &str, alias: &str) -> Result<()> {
    let reason = if alias.len() >= IFALIASZ {
        format!("alias is longer than {} bytes", IFALIASZ - 1)
    } else if alias.contains('\0') {
        "alias contains NUL".to_owned()
    } else {
        return Ok(());
    };
    Err(NetlinkError::Invalid {
        op: op.to_owned(),
        reason,
    })
}
