//! A container's cgroup(s), located from `/proc/<pid>/cgroup` of its init,
//! so the same code works whatever LXC (or PVE: `lxc/VMID`) named them.
//!
//! A container may keep its processes one level below its own cgroup: PVE
//! starts CTs with `lxc.cgroup.dir.container.inner = ns` (pve-container
//! src/PVE/LXC.pm, `update_lxc_config`), so the init lives in `lxc/VMID/ns`
//! while PVE's limits, and pvestatd's cpuset, are on `lxc/VMID`. Limits,
//! stats, the freezer and the process list then use `lxc/VMID` (the whole
//! container); only processes joining it (exec) go into `ns`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::CgroupVersion;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("reading cgroup membership of pid {pid}: {source}")]
    Membership {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("pid {0} has no cgroup for the {1} controller")]
    NoController(i32, String),
    #[error("{op} {path}: {source}")]
    File {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup {path} did not freeze within {timeout:?}")]
    FreezeTimeout { path: PathBuf, timeout: Duration },
    /// A v1 memory limit below what the cgroup uses (EBUSY), in runc's
    /// words (libcontainer/cgroups/fs/memory.go): what a Kubernetes resize
    /// that cannot shrink the memory shows.
    #[error("unable to set memory limit to {limit} (current usage: {usage}, peak usage: {peak})")]
    MemoryBelowUsage {
        limit: String,
        usage: u64,
        peak: u64,
    },
}

pub type Result<T> = std::result::Result<T, CgroupError>;

/// The cgroup directories of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    version: CgroupVersion,
    pid: i32,
    /// Where the init's processes are. v1: controller name -> directory.
    /// v2: "" -> the one directory.
    process_dirs: BTreeMap<String, PathBuf>,
    /// The container's own cgroup, keyed as `process_dirs`: the same
    /// directories, or their parents when the processes are in an inner
    /// cgroup (see [`ContainerCgroup::with_inner`]).
    dirs: BTreeMap<String, PathBuf>,
}

impl ContainerCgroup {
    /// Locates the cgroups of `pid` under the host's `/sys/fs/cgroup`.
    pub fn for_pid(pid: i32) -> Result<Self> {
        let root = Path::new("/sys/fs/cgroup");
        let content = fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map_err(|source| CgroupError::Membership { pid, source })?;
        Ok(Self::from_proc_cgroup(
            pid,
            &content,
            root,
            CgroupVersion::detect(root),
        ))
    }

    /// Pure part of [`Self::for_pid`]: parses `/proc/<pid>/cgroup` lines
    /// (`ID:controllers:/path`) against a cgroup mount root.
    pub fn from_proc_cgroup(pid: i32, content: &str, root: &Path, version: CgroupVersion) -> Self {
        let mut dirs = BTreeMap::new();
        for (controllers, path) in super::proc_cgroup_entries(content) {
            let rel = path.trim_start_matches('/');
            match (version, controllers) {
                (CgroupVersion::V2, "") => {
                    dirs.insert(String::new(), root.join(rel));
                }
                (CgroupVersion::V1, "") => {
                    dirs.insert("unified".into(), root.join("unified").join(rel));
                }
                (CgroupVersion::V1, list) => {
                    let mount = list.trim_start_matches("name=");
                    // Co-mounted controllers (cpu,cpuacct) share one directory;
                    // hosts mount them either joined or separately.
                    let joined = root.join(mount);
                    for c in list.split(',') {
                        let c = c.trim_start_matches("name=");
                        let base = if joined.exists() || !root.join(c).exists() {
                            joined.clone()
                        } else {
                            root.join(c)
                        };
                        dirs.insert(c.to_string(), base.join(rel));
                    }
                }
                (CgroupVersion::V2, _) => {}
            }
        }
        Self {
            version,
            pid,
            process_dirs: dirs.clone(),
            dirs,
        }
    }

    /// The container's cgroup is the parent of each directory named
    /// `inner` the init is in (a directory named otherwise is the
    /// container's own). For PVE's `lxc/VMID/ns` layout.
    pub fn with_inner(mut self, inner: &str) -> Self {
        for (key, dir) in &self.process_dirs {
            if let (Some(name), Some(parent)) = (dir.file_name(), dir.parent()) {
                if name == inner {
                    self.dirs.insert(key.clone(), parent.to_path_buf());
                }
            }
        }
        self
    }

    /// Every directory the container's processes are in (one per v1
    /// hierarchy): where a process joining the container goes.
    pub fn process_dirs(&self) -> impl Iterator<Item = &Path> {
        self.process_dirs.values().map(PathBuf::as_path)
    }

    /// The `cgroup.procs` file of each directory in [`Self::process_dirs`],
    /// once each (co-mounted v1 controllers share a directory).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .process_dirs()
            .map(|d| d.join("cgroup.procs"))
            .collect();
        files.sort();
        files.dedup();
        files
    }

    /// Moves process `pid` into [`Self::process_dirs`].
    pub fn attach(&self, pid: i32) -> Result<()> {
        for path in self.procs_files() {
            fs::write(&path, pid.to_string()).map_err(|source| CgroupError::File {
                op: "moving a process into",
                path,
                source,
            })?;
        }
        Ok(())
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The directory that holds `controller`'s files.
    pub fn dir(&self, controller: &str) -> Result<&Path> {
        self.lookup(&self.dirs, controller)
    }

    /// The directory of `controller` the container's processes are in
    /// (PVE's `lxc/VMID/ns`; the container's own elsewhere).
    pub fn process_dir(&self, controller: &str) -> Result<&Path> {
        self.lookup(&self.process_dirs, controller)
    }

    fn lookup<'a>(
        &self,
        dirs: &'a BTreeMap<String, PathBuf>,
        controller: &str,
    ) -> Result<&'a Path> {
        let key = match self.version {
            CgroupVersion::V2 => "",
            CgroupVersion::V1 => controller,
        };
        dirs.get(key)
            .map(PathBuf::as_path)
            .ok_or_else(|| CgroupError::NoController(self.pid, controller.to_string()))
    }

    fn file(&self, name: &str) -> Result<PathBuf> {
        let controller = name.split('.').next().unwrap_or(name);
        let controller = match controller {
            "cgroup" => "pids",
            c => c,
        };
        Ok(self.dir(controller)?.join(name))
    }

    pub fn read(&self, name: &str) -> Result<String> {
        let path = self.file(name)?;
        fs::read_to_string(&path).map_err(|source| CgroupError::File {
            op: "reading",
            path,
            source,
        })
    }

    pub fn write(&self, name: &str, value: &str) -> Result<()> {
        let path = self.file(name)?;
        fs::write(&path, value).map_err(|source| CgroupError::File {
            op: "writing",
            path,
            source,
        })
    }

    /// A file holding one number; `None` when it is missing or holds
    /// something else (`max`: unlimited).
    pub fn read_u64(&self, name: &str) -> Option<u64> {
        self.read(name).ok()?.trim().parse().ok()
    }

    /// [`Self::read_u64`] where `max` (no limit) reads as u64::MAX, as
    /// containerd reads v2's files.
    pub fn read_u64_or_max(&self, name: &str) -> Option<u64> {
        match self.read(name).ok()?.trim() {
            "max" => Some(u64::MAX),
            n => n.parse().ok(),
        }
    }

    /// Every pid in the container's cgroup, nested cgroups included.
    pub fn procs(&self) -> Result<Vec<i32>> {
        let dir = match self.version {
            CgroupVersion::V2 => self.dir("")?.to_path_buf(),
            CgroupVersion::V1 => self
                .dir("pids")
                .or_else(|_| self.dir("memory"))
                .or_else(|_| self.dir("freezer"))?
                .to_path_buf(),
        };
        let mut pids = Vec::new();
        collect_procs(&dir, &mut pids)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Freezes every process of the container and waits until it is frozen.
    pub fn freeze(&self) -> Result<()> {
        let timeout = Duration::from_secs(10);
        match self.version {
            CgroupVersion::V2 => {
                self.write("cgroup.freeze", "1")?;
                self.wait_for("cgroup.events", "frozen 1", timeout)
            }
            CgroupVersion::V1 => {
                self.write("freezer.state", "FROZEN")?;
                self.wait_for("freezer.state", "FROZEN", timeout)
            }
        }
    }

    pub fn thaw(&self) -> Result<()> {
        match self.version {
            CgroupVersion::V2 => self.write("cgroup.freeze", "0"),
            CgroupVersion::V1 => self.write("freezer.state", "THAWED"),
        }
    }

    fn wait_for(&self, file: &str, want: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if self.read(file)?.lines().any(|l| l.trim() == want) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(CgroupError::FreezeTimeout {
                    path: self.file(file)?,
                    timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Writes resource settings (`memory.max` = `268435456`, ...), as
    /// produced by `plan::cgroup_settings`, in order.
    pub fn apply<'a>(&self, settings: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<()> {
        for (file, value) in settings {
            match self.inner_cpuset_dir(file) {
                Some(inner) => self.write_nested_cpuset(file, value, &inner)?,
                None => self
                    .write(file, value)
                    .map_err(|e| self.explain_busy_memory_limit(file, value, e))?,
            }
        }
        Ok(())
    }

    fn explain_busy_memory_limit(&self, file: &str, value: &str, e: CgroupError) -> CgroupError {
        let busy = matches!(&e, CgroupError::File { source, .. }
            if source.raw_os_error() == Some(libc::EBUSY));
        if !busy || file != "memory.limit_in_bytes" {
            return e;
        }
        CgroupError::MemoryBelowUsage {
            limit: value.to_string(),
            usage: self.read_u64("memory.usage_in_bytes").unwrap_or(0),
            peak: self.read_u64("memory.max_usage_in_bytes").unwrap_or(0),
        }
    }

    /// The processes' own cpuset cgroup below the container's, when
    /// `file` is a cpuset list and there is one.
    fn inner_cpuset_dir(&self, file: &str) -> Option<PathBuf> {
        if file != "cpuset.cpus" && file != "cpuset.mems" {
            return None;
        }
        let key = match self.version {
            CgroupVersion::V2 => "",
            CgroupVersion::V1 => "cpuset",
        };
        let inner = self.process_dirs.get(key)?;
        (Some(inner) != self.dirs.get(key)).then(|| inner.clone())
    }

    /// A v1 cpuset must stay within its parent's, so the container's set
    /// cannot move away from what its inner cgroup holds in one write:
    /// widen the container's to its parent's, set the inner one, then the
    /// container's (as pvestatd moves a CT's cpuset: pve-manager
    /// PVE/Service/pvestatd.pm, `rebalance_lxc_containers`).
    fn write_nested_cpuset(&self, file: &str, value: &str, inner: &Path) -> Result<()> {
        let outer = self.file(file)?;
        let parent = outer
            .parent()
            .and_then(Path::parent)
            .map(|p| p.join(file))
            .unwrap_or_else(|| outer.clone());
        let write = |path: &Path, value: &str| {
            fs::write(path, value).map_err(|source| CgroupError::File {
                op: "writing",
                path: path.to_path_buf(),
                source,
            })
        };
        let widest = fs::read_to_string(&parent).map_err(|source| CgroupError::File {
            op: "reading",
            path: parent.clone(),
            source,
        })?;
        write(&outer, widest.trim())?;
        write(&inner.join(file), value)?;
        write(&outer, value)
    }
}

fn collect_procs(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let text = fs::read_to_string(&procs).map_err(|source| CgroupError::File {
        op: "reading",
        path: procs,
        source,
    })?;
    out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_procs(&e.path(), out)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "13:pids:/lxc.payload.c1\n5:memory:/lxc.payload.c1\n4:cpu,cpuacct:/lxc.payload.c1\n3:freezer:/lxc.payload.c1\n1:name=systemd:/lxc.payload.c1\n0::/lxc.payload.c1\n";

    #[test]
    fn v1_controllers_map_to_their_hierarchies() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("cpu")).unwrap();
        fs::create_dir_all(tmp.path().join("cpuacct")).unwrap();
        let cg = ContainerCgroup::from_proc_cgroup(1, HYBRID, tmp.path(), CgroupVersion::V1);
        assert_eq!(
            cg.dir("memory").unwrap(),
            tmp.path().join("memory/lxc.payload.c1")
        );
        // separately mounted cpu and cpuacct (as on this machine)
        assert_eq!(
            cg.dir("cpuacct").unwrap(),
            tmp.path().join("cpuacct/lxc.payload.c1")
        );
        assert_eq!(
            cg.dir("systemd").unwrap(),
            tmp.path().join("systemd/lxc.payload.c1")
        );
        assert!(cg.dir("blkio").is_err());
    }

    #[test]
    fn v2_has_one_directory_and_reads_procs_recursively() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("lxc/100");
        fs::create_dir_all(dir.join("ns/init.scope")).unwrap();
        fs::write(dir.join("cgroup.procs"), "").unwrap();
        fs::write(dir.join("ns/cgroup.procs"), "12\n").unwrap();
        fs::write(dir.join("ns/init.scope/cgroup.procs"), "7\n12\n").unwrap();
        let cg =
            ContainerCgroup::from_proc_cgroup(7, "0::/lxc/100\n", tmp.path(), CgroupVersion::V2);
        assert_eq!(cg.procs().unwrap(), vec![7, 12]);
        cg.apply([("memory.max", "1048576"), ("pids.max", "10")])
            .unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("memory.max")).unwrap(),
            "1048576"
        );
        assert_eq!(cg.read("pids.max").unwrap(), "10");
    }

    #[test]
    fn pve_inner_dir_keeps_limits_on_the_container_and_exec_in_ns() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("lxc/100");
        fs::create_dir_all(dir.join("ns")).unwrap();
        fs::write(dir.join("cgroup.procs"), "").unwrap();
        fs::write(dir.join("ns/cgroup.procs"), "7\n9\n").unwrap();
        let cg =
            ContainerCgroup::from_proc_cgroup(7, "0::/lxc/100/ns\n", tmp.path(), CgroupVersion::V2)
                .with_inner("ns");
        assert_eq!(cg.dir("memory").unwrap(), dir);
        assert_eq!(cg.process_dirs().collect::<Vec<_>>(), vec![dir.join("ns")]);
        assert_eq!(cg.procs().unwrap(), vec![7, 9]);
        cg.apply([("memory.max", "1048576")]).unwrap();
        assert!(dir.join("memory.max").exists());
        assert!(!dir.join("ns/memory.max").exists());
    }

    #[test]
    fn a_cpuset_moves_through_the_parents_set_when_processes_are_nested() {
        let tmp = tempfile::tempdir().unwrap();
        let lxc = tmp.path().join("cpuset/lxc");
        fs::create_dir_all(lxc.join("100/ns")).unwrap();
        fs::write(lxc.join("cpuset.cpus"), "0-3\n").unwrap();
        fs::write(lxc.join("100/cpuset.cpus"), "0").unwrap();
        fs::write(lxc.join("100/ns/cpuset.cpus"), "0").unwrap();
        let cg = ContainerCgroup::from_proc_cgroup(
            1,
            "4:cpuset:/lxc/100/ns\n",
            tmp.path(),
            CgroupVersion::V1,
        )
        .with_inner("ns");
        cg.apply([("cpuset.cpus", "2")]).unwrap();
        assert_eq!(
            fs::read_to_string(lxc.join("100/cpuset.cpus")).unwrap(),
            "2"
        );
        assert_eq!(
            fs::read_to_string(lxc.join("100/ns/cpuset.cpus")).unwrap(),
            "2"
        );
    }

    #[test]
    fn inner_dir_applies_per_hierarchy_and_only_where_named() {
        let tmp = tempfile::tempdir().unwrap();
        let proc = "5:memory:/lxc/100/ns\n3:freezer:/lxc/100/ns\n1:name=systemd:/system.slice/x\n";
        let cg = ContainerCgroup::from_proc_cgroup(1, proc, tmp.path(), CgroupVersion::V1)
            .with_inner("ns");
        assert_eq!(cg.dir("memory").unwrap(), tmp.path().join("memory/lxc/100"));
        assert_eq!(
            cg.dir("freezer").unwrap(),
            tmp.path().join("freezer/lxc/100")
        );
        assert_eq!(
            cg.dir("systemd").unwrap(),
            tmp.path().join("systemd/system.slice/x")
        );
        let lxc = ContainerCgroup::from_proc_cgroup(1, HYBRID, tmp.path(), CgroupVersion::V1);
        assert_eq!(lxc.clone().with_inner("ns"), lxc);
    }

    #[test]
    fn v1_freeze_waits_for_frozen() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("freezer/c");
        fs::create_dir_all(&dir).unwrap();
        let cg =
            ContainerCgroup::from_proc_cgroup(1, "3:freezer:/c\n", tmp.path(), CgroupVersion::V1);
        // A plain file echoes what was written, like a freezer that froze at once.
        cg.freeze().unwrap();
        cg.thaw().unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("freezer.state")).unwrap(),
            "THAWED"
        );
    }
}
