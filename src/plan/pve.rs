//! OCI spec -> the Proxmox VE CT of a container ([`PveConfig`]): what PVE
//! shows and accounts for (hostname, tags, notes, resources, the init), as
//! its API takes it. The container's insides come from the same plan as on
//! the lxc backend (`lxcri-init` is the CT's init).
//!
//! Resources ([`pve_resources`]) are chosen so that PVE, which turns them
//! back into cgroup v2 files when it starts the CT (`memory.max` = memory,
//! `memory.swap.max` = swap, `cpu.max` = cpulimit x 100000 over a 100000 us
//! period, `cpu.weight` = cpuunits), lands on the values the lxc backend
//! writes:
//!
//! - memory: bytes -> MiB rounded up (PVE counts whole MiB; rounding down
//!   would OOM below what was asked), at least PVE's 16 MiB.
//! - swap: OCI `swap` is memory+swap, PVE's `swap` is swap alone, so
//!   `swap - limit`, rounded up. OCI `-1` (unlimited) has no PVE
//!   equivalent and is left unset (PVE's default applies).
//! - cpulimit: quota / period in CPUs (50000/100000 -> 0.5), rounded up to
//!   PVE's 1/100000 resolution.
//! - cpuunits: see [`shares_to_cpuunits`].
//! - cores: the number of CPUs in `cpus` (`0-3,6` -> 5), on a cgroup v2
//!   host. The set itself goes into `VMID.conf` as a raw
//!   `lxc.cgroup2.cpuset.cpus` line, which keeps PVE from appending a cpuset
//!   of its own choice after every include (pve-container src/PVE/LXC.pm,
//!   `update_lxc_config`) and pvestatd from rebalancing it (pve-manager
//!   PVE/Service/pvestatd.pm, `rebalance_lxc_containers`). On a v1 cpuset
//!   controller PVE appends its `lxc.cgroup.cpuset.cpus` whenever `cores`
//!   is set (its test looks only for the v2 key), so there `cores` stays
//!   unset.

use oci_spec::runtime::Spec;

use super::limits::{CpuLimits, Limit, Limits, MemoryLimits};
use super::pve_nics::pve_nets;
use super::{invalid, NetworkPlan, Result};
use crate::cgroup::CgroupVersion;
use crate::pve::config::{
    Arch, CpuLimit, Description, DescriptionInfo, Entrypoint, Hostname, PoolId, PveConfig,
    PveResources, PveVersion, RootFs, Tags, Volume, MAX_CPUS, MIN_MEMORY_MIB,
};
use crate::spec::CriAnnotations;
use crate::zfs::DiskSize;

const MIB: u128 = 1024 * 1024;
/// PVE writes `cpu.max` as `cpulimit * 100000` over this period.
const PVE_CPU_PERIOD: u128 = 100_000;
const DEFAULT_OCI_PERIOD: u64 = 100_000;

/// What [`ct_config`] builds a CT from.
#[derive(Debug, Clone, Copy)]
pub struct CtInputs<'a> {
    pub version: PveVersion,
    pub namespace: &'a str,
    pub id: &'a str,
    pub spec: &'a Spec,
    pub cri: &'a CriAnnotations,
    /// The checked limits of the plan ([`super::ContainerPlan::limits`]).
    pub limits: &'a Limits,
    /// The host's cgroup version (see [`pve_resources`]).
    pub cgroup: CgroupVersion,
    /// The init's path inside the container (`/.lxcri/lxcri-init`).
    pub init_cmd: &'a str,
    /// `[pve] template`.
    pub template: &'a str,
    /// `[pve] storage`: where PVE allocates the CT's root volume.
    pub storage: &'a str,
    /// `[pve] pool`: the resource pool the CT joins.
    pub pool: Option<&'a PoolId>,
    /// `rootfs.mode = "zfs"`: the volume's size (`zfs.size`); the volume
    /// becomes the container's clone. `None`: a quota-less volume PVE
    /// insists on allocating, unused (the rootfs is containerd's).
    pub rootfs_size: Option<DiskSize>,
    /// The container's NICs ([`super::ContainerPlan::network`]).
    pub network: Option<&'a NetworkPlan>,
    /// The container runs in a user namespace (the spec's, or the one
    /// `userns.unprivileged` gives it): an unprivileged CT.
    pub user_namespace: bool,
}

/// The CT of a container, as PVE's API takes it. In overlay mode the rootfs
/// here is a quota-less volume PVE insists on allocating; the container's
/// real rootfs (containerd's, a host directory) is root-only and set in the
/// node-local config by the pve backend. In zfs mode it is the volume the
/// container's clone replaces.
pub fn ct_config(i: &CtInputs<'_>) -> Result<PveConfig> {
    let name = i
        .spec
        .hostname()
        .as_deref()
        .filter(|h| !h.is_empty())
        .or(i.cri.container_name.as_deref())
        .or(i.cri.sandbox_name.as_deref())
        .unwrap_or(i.id);
    let mut ct = PveConfig::new(i.version, Hostname::sanitize_or(name, i.id));
    ct.tags = Tags::for_container(
        i.cri.sandbox_namespace.as_deref(),
        i.cri.sandbox_name.as_deref(),
    );
    ct.description = Some(Description::for_container(&DescriptionInfo {
        container_id: i.id.to_string(),
        containerd_namespace: Some(i.namespace.to_string()),
        namespace: i.cri.sandbox_namespace.clone(),
        pod: i.cri.sandbox_name.clone(),
        container_name: i.cri.container_name.clone(),
        image: i.cri.image_name.clone(),
    }));
    ct.resources = pve_resources(i.limits, i.cgroup)?;
    ct.entrypoint = Some(Entrypoint::new(vec![i.init_cmd.to_string()])?);
    ct.env = pve_env(i.spec);
    ct.unprivileged = i.user_namespace;
    ct.ostemplate = Some(i.template.to_string());
    ct.pool = i.pool.cloned();
    ct.rootfs = Some(RootFs {
        volume: Volume::Allocate {
            storage: i.storage.to_string(),
            size: i.rootfs_size,
        },
        options: Default::default(),
    });
    ct.nets = pve_nets(i.network, i.version)?;
    ct.arch = Arch::host();
    // lxcri-init owns stdio; PVE's consoles would be gettys nobody runs.
    ct.console = Some(false);
    ct.tty = Some(0);
    Ok(ct)
}

/// The process environment as PVE shows it (`env`), keeping only what
/// PVE can store: `NAME=value` with `NAME` of `[A-Za-z0-9_]` and no
/// control character in the value. The process gets its whole environment
/// from the init either way; this is the admin's view.
fn pve_env(spec: &Spec) -> Vec<(String, String)> {
    let env = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default();
    env.iter()
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, v)| {
            !k.is_empty()
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !v.chars().any(char::is_control)
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The CT's `memory`, `swap`, `cores`, `cpulimit` and `cpuunits` for
/// checked limits (see the module docs). Fails only where PVE cannot say
/// what the spec does.
pub fn pve_resources(limits: &Limits, cgroup: CgroupVersion) -> Result<PveResources> {
    let mut out = PveResources::default();
    memory(&limits.memory, &mut out)?;
    cpu(&limits.cpu, cgroup, &mut out);
    Ok(out)
}

fn mib_ceil(bytes: u128) -> u64 {
    u64::try_from(bytes.div_ceil(MIB)).unwrap_or(u64::MAX)
}

fn memory(m: &MemoryLimits, out: &mut PveResources) -> Result<()> {
    let limit = m.limit.and_then(Limit::value).map(u128::from);
    if let Some(l) = limit {
        out.memory_mib = Some(mib_ceil(l).max(MIN_MEMORY_MIB));
    }
    if let Some(s) = m.swap.and_then(Limit::value).map(u128::from) {
        // PVE's swap is a size next to memory; without one it means nothing.
        let Some(l) = limit else {
            return Err(invalid(
                "linux.resources.memory.swap",
                "a swap limit needs a memory limit on the pve backend",
            ));
        };
        // MemoryLimits checked that memory+swap is not below memory.
        out.swap_mib = Some(mib_ceil(s - l));
    }
    Ok(())
}

fn cpu(c: &CpuLimits, cgroup: CgroupVersion, out: &mut PveResources) {
    if let Some(q) = c.quota.and_then(Limit::value) {
        let period = c.period.unwrap_or(DEFAULT_OCI_PERIOD);
        let units = (u128::from(q) * PVE_CPU_PERIOD).div_ceil(u128::from(period));
        let max = u128::from(MAX_CPUS * CpuLimit::UNITS_PER_CPU);
        // More than the schema allows means "no practical limit".
        out.cpulimit = CpuLimit::from_units(units.min(max) as u32);
    }
    if let Some(s) = c.shares {
        out.cpuunits = Some(shares_to_cpuunits(s));
    }
    if let (Some(set), CgroupVersion::V2) = (&c.cpus, cgroup) {
        out.cores = Some(set.count().clamp(1, MAX_CPUS as usize) as u32);
    }
}

/// cgroup v1 `cpu.shares` -> PVE `cpuunits` (= cgroup v2 `cpu.weight`).
///
/// Linear, `shares * 100 / 1024`, rounded, clamped to 1..=10000 (PVE
/// clamps cpuunits to that on cgroup v2). Why not the runc/crun formula
/// [`super::shares_to_weight`] used by the lxc backend: that affine map
/// sends the default 1024 shares to weight 39, while every other PVE guest
/// defaults to cpuunits 100; a pod with a 1-CPU request would get less CPU
/// than an idle-default PVE guest next to it. With 1024 -> 100 a k8s CPU
/// request of 1 weighs the same as a default guest, and ratios between
/// pods are kept exactly (k8s derives shares linearly from millicores:
/// 250m -> 256 shares -> 25).
pub fn shares_to_cpuunits(shares: u64) -> u32 {
    let units = (u128::from(shares) * 100 + 512) / 1024;
    units.clamp(1, 10_000) as u32
}
