//! Which NICs lxcri plugs for a container, and into which network
//! namespace: `io.lxcri.netN` annotations (else `network.netN` defaults),
//! decided by who owns the namespace.
//!
//! - A `ctr` container with its own new namespace gets its annotations'
//!   NICs, or the defaults when it has none.
//! - A pod's NICs belong to the pod: the sandbox's annotations (kubelet's
//!   pod annotations, passed by containerd's `pod_annotations`) are plugged
//!   into the namespace containerd made for it, beside CNI's interface.
//!   containerd passes the pod's annotations to its app containers too;
//!   they are the pod's, so those containers plug nothing.
//! - A namespace lxcri did not make, or the host's, gets none: annotations
//!   there are an error, defaults are not applied.

use std::path::PathBuf;

use oci_spec::runtime::Spec;

use super::namespaces::Mode;
use super::{invalid, unsupported, Result};
use crate::network::nic::{nic_set_conflict, NicIndex, NicSpec};
use crate::network::values::{Ipv4Config, Ipv6Config};
use crate::spec::annotations::nic_annotations;
use crate::spec::CriContainerType;

/// Where a container's NICs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsTarget {
    /// The container's own new namespace (its init's).
    Own,
    /// The pod's namespace, made by containerd.
    Pod(PathBuf),
}

/// NICs to plug, with their namespace; empty for most containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPlan {
    pub nics: Vec<NicSpec>,
    pub netns: NetnsTarget,
}

pub(super) struct NetworkInputs<'a> {
    pub spec: &'a Spec,
    pub cri: Option<CriContainerType>,
    pub defaults: &'a [NicSpec],
    pub net: Mode,
    /// The namespace joined, when `net` is [`Mode::Joined`].
    pub net_path: Option<PathBuf>,
}

pub(super) fn plan_network(i: &NetworkInputs<'_>) -> Result<Option<NetworkPlan>> {
    let annotated = nic_annotations(i.spec).map_err(|e| invalid("annotations", &e.to_string()))?;
    let mut nics = Vec::new();
    for (n, key, value) in &annotated {
        let index = NicIndex::new(*n).expect("annotations are net0-net9");
        nics.push(
            NicSpec::parse(index, value, key)
                .map_err(|e| invalid("annotations", &e.to_string()))?,
        );
    }
    let first = annotated.first().map(|(_, key, _)| key.as_str());
    let netns = match (i.cri, i.net) {
        (Some(CriContainerType::Container), _) => return Ok(None),
        (_, Mode::New) => NetnsTarget::Own,
        (Some(CriContainerType::Sandbox), Mode::Joined) => {
            NetnsTarget::Pod(i.net_path.clone().expect("a joined namespace has a path"))
        }
        (_, mode) => {
            return match first {
                None => Ok(None),
                Some(key) => Err(unsupported(
                    key,
                    if mode == Mode::Host {
                        "the container uses the host's network namespace (hostNetwork); lxcri plugs NICs only into a namespace of the container's or pod's own"
                    } else {
                        "the container joins a network namespace it did not make; NICs go on the container or pod that owns it"
                    },
                )),
            }
        }
    };
    // Defaults are for `ctr` containers: a pod has CNI's interface.
    if annotated.is_empty() && i.cri.is_none() {
        nics = i.defaults.to_vec();
    }
    if nics.is_empty() {
        return Ok(None);
    }
    for (k, nic) in nics.iter().enumerate() {
        // Nobody would run the client: lxcri's containers run no network
        // setup of their own, on either backend.
        if nic.ip == Some(Ipv4Config::Dhcp) || nic.ip6 == Some(Ipv6Config::Dhcp) {
            return Err(unsupported(
                &nic.source,
                "ip=dhcp / ip6=dhcp: lxcri sets addresses itself and runs no DHCP client; give a static ADDR/LEN, or `manual` and run a client in the container",
            ));
        }
        if let Some(conflict) = nic_set_conflict(nic, &nics[..k]) {
            return Err(invalid(&nic.source, &conflict.reason));
        }
    }
    Ok(Some(NetworkPlan { nics, netns }))
}
