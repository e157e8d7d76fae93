//! The CTs of the warm pool (`pve.warm_pool_size`): stopped CTs created
//! ahead with only what a create fixes for good, which a container's create
//! takes over with one `PUT .../config` of everything else.
//!
//! What a create fixes (pve-container src/PVE/LXC/Config.pm
//! `update_pct_config` refuses to change `unprivileged`; `ostemplate`,
//! `pool` and `storage` are parameters of create only; the rootfs volume is
//! allocated and filled from the template by the create task) is hashed
//! into a [`MemberFingerprint`] written into the member's description. A
//! create takes only a member whose fingerprint is its own. `ostype` and
//! `arch` decide what the create task sets up inside the rootfs, so they
//! are fixed here too although PVE would change them later.

use std::fmt;

use sha2::{Digest, Sha256};

use super::{
    CreateParams, Description, Hostname, PveConfig, PveConfigError, PveResources, Result, Tags,
};

/// The create parameters a member is made with and a create must match.
const FIXED_AT_CREATE: &[&str] = &[
    "ostemplate",
    "pool",
    "unprivileged",
    "rootfs",
    "ostype",
    "arch",
];

/// The first line of a member's description.
const MEMBER_HEADER: &str = "Managed by lxcri: a warm pool member, no container's yet.";
const FINGERPRINT_LABEL: &str = "- pool member: ";

/// Hex digits of SHA-256 kept: 64 bits tell apart the handful of variants
/// a node creates.
const FINGERPRINT_LEN: usize = 16;

/// The hash of what a create fixed, or [`MemberFingerprint::drained`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberFingerprint(String);

impl MemberFingerprint {
    /// A member `lxcri gc` took out of the pool before destroying it: no
    /// create takes it, and the next `gc` removes it if the destroy failed.
    pub fn drained() -> Self {
        Self("drained".into())
    }

    fn of(params: &[(String, String)]) -> Self {
        let mut fixed: Vec<&(String, String)> = params
            .iter()
            .filter(|(k, _)| FIXED_AT_CREATE.contains(&k.as_str()))
            .collect();
        fixed.sort();
        let mut h = Sha256::new();
        for (k, v) in fixed {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Self(hex[..FINGERPRINT_LEN].to_string())
    }

    /// A fingerprint as written by lxcri, or `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.len() == FINGERPRINT_LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        (hex || s == "drained").then(|| Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Description {
    /// The notes of a warm pool member.
    pub fn pool_member(fingerprint: &MemberFingerprint) -> Self {
        Self::parse(&format!(
            "{MEMBER_HEADER}\n\n{FINGERPRINT_LABEL}{fingerprint}\n"
        ))
        .expect("a fingerprint has no control characters")
    }

    /// The fingerprint of a description written by
    /// [`Description::pool_member`]; `None` for any other.
    pub fn pool_fingerprint(text: &str) -> Option<MemberFingerprint> {
        if text.lines().next() != Some(MEMBER_HEADER) {
            return None;
        }
        let mut found = text
            .lines()
            .filter_map(|l| l.trim_end().strip_prefix(FINGERPRINT_LABEL));
        let fp = found.next()?;
        if found.next().is_some() {
            return None;
        }
        MemberFingerprint::parse(fp)
    }
}

/// How a container's CT comes out of the warm pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolClaim {
    /// The members this container can take.
    pub fingerprint: MemberFingerprint,
    /// `POST /nodes/{node}/lxc` of a new member (without `vmid`).
    pub member: CreateParams,
    /// `PUT .../config` turning a member into this container's CT.
    pub update: Vec<(String, String)>,
    /// The container's notes, written into the member's `VMID.conf` when it
    /// is claimed: from then on it is this container's.
    pub description: Description,
}

impl PveConfig {
    /// The warm pool's view of this CT: members that fit it, and what makes
    /// a member it.
    pub fn pool_claim(&self) -> Result<PoolClaim> {
        let description = self.description.clone().ok_or(PveConfigError::Missing {
            field: "description",
            endpoint: super::ApiEndpoint::Update,
        })?;
        let mut member = self.clone();
        member.hostname = Hostname::sanitize("lxcri-pool");
        member.tags = Tags::for_container(None, None);
        member.resources = PveResources::default();
        member.entrypoint = None;
        member.env.clear();
        member.nets.clear();
        member.mounts.clear();
        member.features = Default::default();
        let probe = member
            .to_create_params()?
            .with_vmid(crate::pve::vmid::MIN_VMID)?;
        let fingerprint = MemberFingerprint::of(&probe);
        member.description = Some(Description::pool_member(&fingerprint));
        let mut update = self.clone();
        update.rootfs = None;
        update.ostype = None;
        update.arch = None;
        Ok(PoolClaim {
            fingerprint,
            member: member.to_create_params()?,
            update: update.to_update_params()?,
            description,
        })
    }
}
