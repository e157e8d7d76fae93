//! The facts about a host that change what `pct start` renders, read the way PVE reads
//! them (pve-common src/PVE/CGroup.pm, src/PVE/CpuSet.pm), so tests can render for a
//! cgroup-v2 PVE 9 node and for this hybrid machine alike.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// LXC's template config directory (`$cfgpath` in `update_lxc_config`).
pub const LXC_CONFIG_DIR: &str = "/usr/share/lxc/config";

/// Facts about the host that change the rendering.
#[derive(Clone, Default)]
pub struct Host {
    /// cgroup v1 controllers: pve-common CGroup.pm `get_v1_controllers` (every controller
    /// named in /proc/self/cgroup).
    pub cgroup_v1: Vec<String>,
    /// cgroup v2 controllers, `None` without a `cgroup.controllers` file at
    /// /sys/fs/cgroup or /sys/fs/cgroup/unified: CGroup.pm `get_v2_controllers`. An empty
    /// unified hierarchy (this machine) is `Some` of the few controllers it has.
    pub cgroup_v2: Option<Vec<String>>,
    /// /sys/fs/cgroup itself is cgroup2: CGroup.pm `cgroup_mode` == 2.
    pub unified: bool,
    /// The v1 memory controller has swap accounting (`memory.memsw.*`).
    pub memsw: bool,
    /// The Linux bridges, for the node's network list.
    pub bridges: Vec<String>,
    /// Every link's MTU (/sys/class/net/LINK/mtu), read again at each start: what
    /// pve-common Network.pm `read_bridge_mtu` reads for a NIC's bridge, Linux or OVS.
    pub mtus: BTreeMap<String, u32>,
    /// The installed LXC knows `lxc.environment.runtime` (LXC >= 6, lxc-pve 6.0.5-3).
    pub environment_runtime: bool,
    /// The files in /usr/share/lxc/config (`<ostype>.common.conf` exists or not).
    pub lxc_config_files: Vec<String>,
    /// /usr/share/lxc/config/common.seccomp, the base of an unprivileged CT's rules.
    pub common_seccomp: String,
    /// The cpuset PVE picks `cores` CPUs from; `None` without a cpuset controller.
    pub cpuset: Option<Cpuset>,
}

/// For the startup log: the facts, without common.seccomp's text.
impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("cgroup_v1", &self.cgroup_v1)
            .field("cgroup_v2", &self.cgroup_v2)
            .field("unified", &self.unified)
            .field("memsw", &self.memsw)
            .field("bridges", &self.bridges)
            .field("mtus", &self.mtus)
            .field("environment_runtime", &self.environment_runtime)
            .field("cpuset", &self.cpuset)
            .finish_non_exhaustive()
    }
}

/// CGroup.pm `cpuset_controller_path`, and what `PVE::CpuSet->new_from_path($path/lxc, 1)`
/// reads there.
#[derive(Debug, Clone, PartialEq)]
pub struct Cpuset {
    /// 1 or 2: which `lxc.cgroup<ver>.cpuset.cpus` key PVE writes.
    pub version: u8,
    /// The first line of the `lxc` cgroup's effective cpus file; "" when it does not exist
    /// (pve-common File.pm `file_read_first_line` returns undef on ENOENT, and
    /// `new_from_path` makes an empty set of that rather than failing, so PVE's fallback
    /// to the root cgroup in `update_lxc_config` never triggers for a missing `lxc`).
    pub lxc_cpus: String,
}

fn controllers(text: &str) -> Vec<String> {
    text.split_whitespace().map(String::from).collect()
}

/// The cgroup facts of `Host`: v1 controllers, v2 controllers, unified mode.
pub fn detect_cgroups() -> (Vec<String>, Option<Vec<String>>, bool) {
    let proc_cgroup = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    // CGroup.pm get_v1_controllers: the second field of each /proc/self/cgroup line.
    let v1 = proc_cgroup
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .flat_map(|c| c.split(','))
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    // CGroup.pm get_v2_controllers.
    let v2 = fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .or_else(|_| fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers"))
        .ok()
        .map(|t| controllers(&t));
    // CGroup.pm cgroup_mode: /sys/fs/cgroup's file system type.
    let unified = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    (v1, v2, unified)
}

/// The MTU of every link in /sys/class/net.
fn read_mtus() -> BTreeMap<String, u32> {
    let links = fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten();
    links
        .filter_map(|e| {
            let mtu = fs::read_to_string(e.path().join("mtu")).ok()?;
            Some((e.file_name().into_string().ok()?, mtu.trim().parse().ok()?))
        })
        .collect()
}

impl Host {
    /// Reads the facts as PVE does at `pct start`.
    pub fn detect() -> Host {
        let (cgroup_v1, cgroup_v2, unified) = detect_cgroups();
        let bridges = fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("bridge").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        let lxc_config_files = fs::read_dir(LXC_CONFIG_DIR)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        let mut host = Host {
            cgroup_v1,
            cgroup_v2,
            unified,
            memsw: Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
            bridges,
            mtus: read_mtus(),
            environment_runtime: super::lxc_major() >= 6,
            lxc_config_files,
            common_seccomp: fs::read_to_string(Path::new(LXC_CONFIG_DIR).join("common.seccomp"))
                .unwrap_or_default(),
            cpuset: None,
        };
        host.cpuset = host.read_cpuset();
        host
    }

    /// A copy with the cpuset and the MTUs read again (PVE reads them at every start).
    pub fn at_start(&self) -> Host {
        let mut h = self.clone();
        h.cpuset = h.read_cpuset();
        h.mtus = read_mtus();
        h
    }

    /// The same host as a PVE 9 node sees it: cgroup v2 only, all controllers there,
    /// an LXC that knows `lxc.environment.runtime`.
    pub fn as_v2(&self) -> Host {
        let all = [
            "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc",
        ];
        Host {
            cgroup_v1: Vec::new(),
            cgroup_v2: Some(all.map(String::from).to_vec()),
            unified: true,
            memsw: false,
            environment_runtime: true,
            cpuset: self.cpuset.as_ref().map(|c| Cpuset {
                version: 2,
                lxc_cpus: c.lxc_cpus.clone(),
            }),
            ..self.clone()
        }
    }

    pub fn v2_has(&self, c: &str) -> bool {
        self.cgroup_v2
            .as_ref()
            .is_some_and(|v| v.iter().any(|x| x == c))
    }

    pub fn v1_has(&self, c: &str) -> bool {
        self.cgroup_v1.iter().any(|x| x == c)
    }

    /// CGroup.pm `find_cgroup_controller`: the controller's hierarchy and its version,
    /// v2 first (at `cgroupv2_base_path`), else `/sys/fs/cgroup/CONTROLLER` of v1.
    pub fn find_cgroup_controller(&self, controller: &str) -> Option<(PathBuf, u8)> {
        if self.v2_has(controller) {
            let base = if self.unified {
                "/sys/fs/cgroup"
            } else {
                "/sys/fs/cgroup/unified"
            };
            Some((PathBuf::from(base), 2))
        } else if self.v1_has(controller) {
            Some((Path::new("/sys/fs/cgroup").join(controller), 1))
        } else {
            None
        }
    }

    /// CGroup.pm `find_cgroup_controller('cpuset')`, then CpuSet.pm
    /// `new_from_path("$path/lxc", 1)`: `cpuset.effective_cpus` (v1) or
    /// `cpuset.cpus.effective` (v2).
    fn read_cpuset(&self) -> Option<Cpuset> {
        let (path, version) = self.find_cgroup_controller("cpuset")?;
        let lxc = path.join("lxc");
        let file = if lxc.join("cpuset.effective_cpus").exists() {
            lxc.join("cpuset.effective_cpus")
        } else {
            lxc.join("cpuset.cpus.effective")
        };
        let lxc_cpus = fs::read_to_string(file)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_string))
            .unwrap_or_default();
        Some(Cpuset { version, lxc_cpus })
    }
}
