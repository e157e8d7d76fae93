//! What a CT's config keys, volumes, bridges and tags need: pve-container
//! src/PVE/LXC.pm `check_ct_modify_config_perm` and `check_bridge_access`, pve-storage
//! src/PVE/Storage.pm `check_volume_access`, pve-guest-common src/PVE/GuestHelpers.pm
//! `assert_tag_permissions` / `get_allowed_tags` / `check_vnet_access`.

use super::{ApiError, State};
use crate::acl::names::split_list;
use crate::datacenter::{TagAccess, UserAllow};
use crate::store::CtConfig;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// pve-container src/PVE/LXC.pm, `$NEW_DISK_RE`: `STORAGE:SIZE_GiB`, a new volume.
static NEW_DISK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([^:\s]+):(\d+(\.\d+)?)$").unwrap());
/// pve-storage src/PVE/Storage.pm, `parse_volume_id`.
static VOLUME_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$").unwrap());
/// pve-storage src/PVE/Storage/ZFSPoolPlugin.pm, `parse_volname` (the VMID is group 4).
static ZFS_VOLNAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(((base|basevol)-(\d+)-\S+)/)?((base|basevol|vm|subvol)-(\d+)-\S+)$").unwrap()
});
/// The stand-in's directory volumes are named like ZFS subvolumes.
/// pve-storage src/PVE/Storage/Plugin.pm `parse_volname`: the names a directory storage
/// takes under `vztmpl/`, `iso/` and `snippets/` (src/PVE/Storage.pm `$VZTMPL_EXT_RE_1`,
/// `$ISO_EXT_RE_0`); anything else there is "unable to parse directory volume name".
static FILE_VOLNAMES: LazyLock<[(&str, Regex); 3]> = LazyLock::new(|| {
    [
        ("vztmpl", r"(?i)^vztmpl/[^/]+\.(tar|tar\.(gz|xz|zst|bz2))$"),
        ("iso", r"(?i)^iso/[^/]+\.(iso|img)$"),
        ("snippets", r"^snippets/[^/]+$"),
    ]
    .map(|(vtype, re)| (vtype, Regex::new(re).unwrap()))
});

static DIR_VOLNAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(subvol|vm|base|basevol)-(\d+)-\S+$").unwrap());

/// What PVE keeps for root@pam: a 403 with PVE's reason, unless `--allow-root-only`.
fn root_only(s: &State, why: &str) -> Result<(), ApiError> {
    if s.allow_root_only {
        Ok(())
    } else {
        Err(ApiError::forbidden(why))
    }
}

/// pve-container src/PVE/LXC/Config.pm `classify_mountpoint`: a volume starting with
/// `/` is a bind mount (`device` under `/dev/`), else a storage volume.
pub fn mount_type(value: &str) -> &'static str {
    let first = value.split(',').next().unwrap_or("");
    let volume = first.strip_prefix("volume=").unwrap_or(first);
    match volume {
        v if v.starts_with("/dev/") => "device",
        v if v.starts_with('/') => "bind",
        _ => "volume",
    }
}

pub fn volume_of(value: &str) -> &str {
    let first = value.split(',').next().unwrap_or("");
    first.strip_prefix("volume=").unwrap_or(first)
}

/// `parse_volume_id`: the storage of `STORAGE:NAME`.
pub fn storage_of(volid: &str) -> Option<(&str, &str)> {
    let c = VOLUME_ID.captures(volid)?;
    Some((c.get(1)?.as_str(), c.get(2)?.as_str()))
}

/// The content type and owner of a volume, as the storage's plugin `parse_volname` finds
/// them; its error when it cannot parse the name.
fn parse_volname(s: &State, sid: &str, name: &str) -> Result<(&'static str, Option<u32>), String> {
    if !s.storage.exists(sid) {
        return Err(format!("storage '{sid}' does not exist"));
    }
    let owner = |c: Option<regex::Match>| c.and_then(|m| m.as_str().parse().ok());
    if s.storage.kind(sid).0 == "zfspool" {
        let c = ZFS_VOLNAME
            .captures(name)
            .ok_or_else(|| format!("unable to parse zfs volume name '{name}'"))?;
        let kind = c.get(6).map_or("", |m| m.as_str());
        let vtype = if kind == "subvol" || kind == "basevol" {
            "rootdir"
        } else {
            "images"
        };
        return Ok((vtype, owner(c.get(7))));
    }
    for (vtype, re) in FILE_VOLNAMES.iter() {
        if name.starts_with(&format!("{vtype}/")) {
            return match re.is_match(name) {
                true => Ok((vtype, None)),
                false => Err(format!("unable to parse directory volume name '{name}'")),
            };
        }
    }
    for vtype in ["backup", "import"] {
        if name.strip_prefix(vtype).is_some_and(|r| r.starts_with('/')) {
            return Ok((vtype, None));
        }
    }
    match DIR_VOLNAME.captures(name) {
        Some(c) => Ok(("rootdir", owner(c.get(2)))),
        None => Err(format!("unable to parse directory volume name '{name}'")),
    }
}

/// pve-storage src/PVE/Storage.pm, `check_volume_access`.
pub fn check_volume_access(
    s: &State,
    vmid: u32,
    volid: &str,
    content: &str,
) -> Result<(), ApiError> {
    let Some((sid, name)) = storage_of(volid) else {
        if s.allow_root_only {
            return Ok(());
        }
        return Err(ApiError::fail(
            "Only root can pass arbitrary filesystem paths.",
        ));
    };
    let (vtype, owner) = parse_volname(s, sid, name).map_err(ApiError::fail)?;
    // 'images' is fine where 'rootdir' is expected.
    if vtype != content && !(content == "rootdir" && vtype == "images") {
        return Err(ApiError::fail(format!(
            "unable to use volume {volid} - content type needs to be '{content}'"
        )));
    }
    let store = format!("/storage/{sid}");
    if s.has(&store, "Datastore.Allocate") {
        return Ok(());
    }
    match (vtype, owner) {
        ("iso" | "vztmpl" | "import", _) => {
            s.require_any(&store, &["Datastore.AllocateSpace", "Datastore.Audit"])
        }
        (_, Some(o)) if o == vmid => Ok(()),
        ("backup", Some(o)) => {
            s.require_all(&store, &["Datastore.AllocateSpace"])?;
            s.require_all(&format!("/vms/{o}"), &["VM.Backup"])
        }
        ("images" | "rootdir", Some(o)) => {
            s.require_all(&store, &["Datastore.Audit"])?;
            s.require_all(&format!("/vms/{o}"), &["VM.Config.Disk"])
        }
        _ => Err(ApiError::fail(format!(
            "missing privileges to access {volid}"
        ))),
    }
}

/// pve-container src/PVE/LXC.pm `check_bridge_access` and pve-guest-common
/// src/PVE/GuestHelpers.pm `check_vnet_access`: `SDN.Use` on
/// `/sdn/zones/localnetwork/BRIDGE/TAG` for a `tag`, on `.../BRIDGE/VID` for each VLAN of
/// `trunks` (`get_tags_from_trunk`, in Perl's string order), and on `.../BRIDGE` only when
/// there is neither. The zone is always `localnetwork`: the stand-in has no SDN VNets.
/// A NIC without `bridge` needs nothing here.
pub fn check_bridge_access(s: &State, net: &str) -> Result<(), ApiError> {
    let kv: BTreeMap<&str, &str> = net.split(',').filter_map(|p| p.split_once('=')).collect();
    let Some(bridge) = kv.get("bridge") else {
        return Ok(());
    };
    let base = format!("/sdn/zones/localnetwork/{bridge}");
    // Perl truth: a tag or trunks of "0" or "" count as none.
    let set = |k: &str| kv.get(k).copied().filter(|v| !v.is_empty() && *v != "0");
    let (tag, trunks) = (set("tag"), set("trunks"));
    if let Some(tag) = tag {
        s.require_all(&format!("{base}/{tag}"), &["SDN.Use"])?;
    }
    for vlan in trunks.map(trunk_tags).unwrap_or_default() {
        s.require_all(&format!("{base}/{vlan}"), &["SDN.Use"])?;
    }
    if tag.is_none() && trunks.is_none() {
        s.require_all(&base, &["SDN.Use"])?;
    }
    Ok(())
}

/// GuestHelpers.pm `get_tags_from_trunk`: the VLANs of `a;b;c` as a set, so sorted as
/// strings (`sort keys`) and without repeats. (It also expands `a-b` ranges, which a CT's
/// `trunks` pattern, `\d+(?:;\d+)*`, never lets through.)
fn trunk_tags(trunks: &str) -> BTreeSet<&str> {
    trunks.split(';').filter(|t| !t.is_empty()).collect()
}

/// pve-container's `parse_features`, normalised: booleans as 1/0.
fn features(v: &str) -> BTreeMap<String, String> {
    v.split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let v = match v.to_ascii_lowercase().as_str() {
                "1" | "yes" | "on" | "true" if k != "mount" => "1".to_string(),
                "0" | "no" | "off" | "false" if k != "mount" => "0".to_string(),
                _ => v.to_string(),
            };
            (k.to_string(), v)
        })
        .collect()
}

/// One CT's config change as `check_ct_modify_config_perm` sees it.
pub struct Change<'a> {
    pub vmid: u32,
    /// Only create passes the pool; a config update passes none.
    pub pool: Option<&'a str>,
    pub old: Option<&'a CtConfig>,
    pub unprivileged: bool,
}

impl Change<'_> {
    fn old(&self, key: &str) -> Option<&str> {
        self.old
            .and_then(|c| c.options.get(key))
            .map(String::as_str)
    }

    /// pve-container src/PVE/LXC.pm, `check_ct_modify_config_perm`: the privilege each
    /// key set (`new`, in key order) or deleted (`delete`) needs, and what only root@pam
    /// may do. PVE goes through the keys in hash order; the stand-in sorts them.
    pub fn check(
        &self,
        s: &State,
        new: &BTreeMap<String, String>,
        delete: &[&str],
    ) -> Result<(), ApiError> {
        for (k, v) in new {
            self.check_one(s, k, Some(v))?;
        }
        for k in delete {
            self.check_one(s, k, None)?;
        }
        Ok(())
    }

    fn check_one(&self, s: &State, opt: &str, new: Option<&str>) -> Result<(), ApiError> {
        let vm = |privilege: &str| s.check_vm_perm(self.vmid, self.pool, &[privilege]);
        let indexed = |prefix: &str| {
            opt.strip_prefix(prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        match opt {
            "cores" | "cpuunits" | "cpulimit" => vm("VM.Config.CPU"),
            "rootfs" => self.check_volume(s, new),
            _ if indexed("mp") => self.check_volume(s, new),
            "memory" | "swap" => vm("VM.Config.Memory"),
            _ if indexed("net") => {
                vm("VM.Config.Network")?;
                // PVE's check_bridge_access leaves a NIC without bridge with `next`, which
                // in Perl ends this key's whole check: an old value without bridge skips the
                // new value's check there. The stand-in checks the new value all the same.
                if let Some(old) = self.old(opt) {
                    check_bridge_access(s, old)?;
                }
                match new {
                    Some(n) => check_bridge_access(s, n),
                    None => Ok(()),
                }
            }
            _ if indexed("dev") => root_only(
                s,
                "configuring device passthrough is only allowed for root@pam",
            ),
            "nameserver" | "searchdomain" | "hostname" => vm("VM.Config.Network"),
            "features" => self.check_features(s, new),
            "hookscript" => root_only(s, "changing the hookscript is only allowed for root@pam"),
            "tags" => assert_tag_permissions(s, self.vmid, self.old("tags"), new.unwrap_or("")),
            _ => vm("VM.Config.Options"),
        }
    }

    fn check_volume(&self, s: &State, new: Option<&str>) -> Result<(), ApiError> {
        s.check_vm_perm(self.vmid, self.pool, &["VM.Config.Disk"])?;
        let Some(value) = new else {
            return Ok(());
        };
        let ty = mount_type(value);
        if ty != "volume" {
            return root_only(
                s,
                &format!("mount point type {ty} is only allowed for root@pam"),
            );
        }
        let volid = volume_of(value);
        match NEW_DISK.captures(volid) {
            Some(c) => s.require_all(&format!("/storage/{}", &c[1]), &["Datastore.AllocateSpace"]),
            None => check_volume_access(s, self.vmid, volid, "rootdir"),
        }
    }

    fn check_features(&self, s: &State, new: Option<&str>) -> Result<(), ApiError> {
        if !self.unprivileged {
            root_only(
                s,
                "changing feature flags for privileged container is only allowed for root@pam",
            )?;
        }
        let only_nesting = |f: &BTreeMap<String, String>| f.len() == 1 && f.contains_key("nesting");
        let (mut nesting, mut other) = (false, false);
        match (new, self.old("features").filter(|o| !o.is_empty())) {
            (Some(n), Some(o)) => {
                let (new, old) = (features(n), features(o));
                for f in old.keys().chain(new.keys()) {
                    if old.get(f) != new.get(f) {
                        if f == "nesting" {
                            nesting = true;
                        } else {
                            other = true;
                            break;
                        }
                    }
                }
            }
            (Some(n), None) => {
                let f = features(n);
                nesting = only_nesting(&f);
                other = !nesting && !f.is_empty();
            }
            (None, old) => {
                let f = features(old.unwrap_or(""));
                nesting = only_nesting(&f);
                other = !nesting && !f.is_empty();
            }
        }
        if other {
            root_only(
                s,
                "changing feature flags (except nesting) is only allowed for root@pam",
            )?;
        }
        if nesting {
            s.check_vm_perm(self.vmid, self.pool, &["VM.Allocate"])?;
        }
        Ok(())
    }
}

/// pve-guest-common src/PVE/GuestHelpers.pm, `assert_tag_permissions`:
/// `VM.Config.Options` on `/vms/VMID` (never through a pool parameter), then for each tag
/// added or removed, unless the token has `Sys.Modify` on `/`: it must be allowed by
/// datacenter.cfg's `user-tag-access` and not be a `registered-tags` one.
pub fn assert_tag_permissions(
    s: &State,
    vmid: u32,
    old: Option<&str>,
    new: &str,
) -> Result<(), ApiError> {
    s.check_vm_perm(vmid, None, &["VM.Config.Options"])?;
    if s.has("/", "Sys.Modify") {
        return Ok(());
    }
    let count = |tags: &str| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for t in split_list(tags) {
            *m.entry(t.to_string()).or_default() += 1;
        }
        m
    };
    let (old, new) = (count(old.unwrap_or("")), count(new));
    let changed: BTreeSet<&String> = old
        .keys()
        .chain(new.keys())
        .filter(|t| old.get(*t) != new.get(*t))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let dc = TagAccess::load(&s.etc_pve.join("datacenter.cfg"));
    let allowed = allowed_tags(s, &dc);
    for tag in changed {
        let freeform = dc.user_allow == UserAllow::Free;
        if (!allowed.contains(tag) && !freeform) || dc.registered.contains(tag) {
            return Err(ApiError::forbidden(format!(
                "/, Sys.Modify for modifying tag '{tag}'"
            )));
        }
    }
    Ok(())
}

/// pve-guest-common src/PVE/GuestHelpers.pm, `get_allowed_tags` for a token without
/// `Sys.Modify` on `/`: the `user-allow-list` (unless `none`), plus with `free` or
/// `existing` the tags of every guest it may `VM.Audit`; registered tags never.
fn allowed_tags(s: &State, dc: &TagAccess) -> BTreeSet<String> {
    let mut allowed = BTreeSet::new();
    if dc.user_allow != UserAllow::None {
        allowed.extend(dc.user_allow_list.iter().cloned());
    }
    if matches!(dc.user_allow, UserAllow::Free | UserAllow::Existing) {
        for id in s.store.list() {
            if !s.has(&format!("/vms/{id}"), "VM.Audit") {
                continue;
            }
            let tags = s
                .store
                .read_raw(id)
                .and_then(|raw| CtConfig::parse(id, &raw, &s.schema).ok())
                .and_then(|(cfg, _)| cfg.options.get("tags").cloned());
            allowed.extend(tags.iter().flat_map(|t| split_list(t)).map(String::from));
        }
    }
    for r in &dc.registered {
        allowed.remove(r);
    }
    allowed
}
