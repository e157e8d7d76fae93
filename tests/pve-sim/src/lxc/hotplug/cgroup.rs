//! The part of pve-common src/PVE/CGroup.pm a hotplug uses: where a running CT's limits
//! are (`get_path($controller, 1)`), and `change_memory_limit`, `change_cpu_quota`,
//! `change_cpu_shares` writing them. Files are read and written through [`Files`], so the
//! rules are tested without root against a fake.

use crate::errno_text::strerror;
use crate::lxc::Host;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How the CT's cgroup files are read and written; the errors are PVE's `die` messages.
pub trait Files {
    /// pve-common src/PVE/File.pm `file_get_contents`.
    fn read(&self, path: &Path) -> Result<String, String>;
    /// pve-common src/PVE/ProcFSTools.pm `write_proc_entry`.
    fn write(&self, path: &Path, data: &str) -> Result<(), String>;
}

/// The host's cgroup files.
pub struct SysFiles;

impl Files for SysFiles {
    fn read(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path)
            .map_err(|e| format!("can't open '{}' - {}", path.display(), strerror(&e)))
    }

    /// `IO::File->new($filename, O_WRONLY)`, `print`, `close`. The print is buffered, so
    /// what the kernel refuses (EINVAL, EBUSY) shows at the close.
    fn write(&self, path: &Path, data: &str) -> Result<(), String> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| {
                format!(
                    "unable to open file '{}' - {}",
                    path.display(),
                    strerror(&e)
                )
            })?;
        f.write_all(data.as_bytes()).map_err(|e| {
            format!(
                "closing file '{}' failed - {}",
                path.display(),
                strerror(&e)
            )
        })
    }
}

/// One `/proc/PID/cgroup` line: its controllers (none for the v2 line) and its path.
#[derive(Debug, Clone, PartialEq)]
struct Membership {
    controllers: Vec<String>,
    path: String,
}

/// The inner cgroup pve-sim's CTs run their processes in (render.rs writes
/// `lxc.cgroup.dir.container.inner = ns`); the limits are on the one above it.
const INNER: &str = "ns";

/// pve-container src/PVE/LXC/CGroup.pm with pve-common CGroup.pm for one running CT.
pub struct CGroup<'a> {
    host: &'a Host,
    cgroups: Vec<Membership>,
    files: &'a dyn Files,
}

impl<'a> CGroup<'a> {
    /// `proc_cgroup` is `/proc/PID/cgroup` of the CT's init (`find_lxc_pid`: the PID
    /// `lxc-info` reports). PVE asks LXC's monitor for the limiting cgroup instead
    /// (LXC/CGroup.pm `get_subdir` -> `PVE::LXC::Command::get_cgroup_path`); for pve-sim's
    /// CTs that is the init's cgroup without the inner `ns`, which is what is derived here.
    pub fn new(host: &'a Host, proc_cgroup: &str, files: &'a dyn Files) -> CGroup<'a> {
        let cgroups = proc_cgroup
            .lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ':');
                let (_, list, path) = (it.next()?, it.next()?, it.next()?);
                Some(Membership {
                    controllers: list
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(String::from)
                        .collect(),
                    path: path.to_string(),
                })
            })
            .collect();
        CGroup {
            host,
            cgroups,
            files,
        }
    }

    /// The limiting cgroup below the hierarchy's mount: the v2 line, or the v1 line
    /// naming the controller, without the inner `ns`.
    fn subdir(&self, controller: &str, version: u8) -> Option<String> {
        let m = self.cgroups.iter().find(|m| match version {
            2 => m.controllers.is_empty(),
            _ => m.controllers.iter().any(|c| c == controller),
        })?;
        let path = m.path.trim_start_matches('/');
        let limit = path
            .strip_suffix(INNER)
            .and_then(|p| p.strip_suffix('/'))
            .unwrap_or(path);
        Some(limit.to_string())
    }

    /// CGroup.pm `get_path($controller, 1)`.
    pub fn get_path(&self, controller: &str) -> Option<(PathBuf, u8)> {
        let (base, version) = self.host.find_cgroup_controller(controller)?;
        let sub = self.subdir(controller, version)?;
        Some((base.join(sub), version))
    }

    fn write(&self, path: PathBuf, data: &str) -> Result<(), String> {
        self.files.write(&path, data)
    }

    /// `file_get_contents` then `chomp`.
    fn read(&self, path: &Path) -> Result<String, String> {
        let mut s = self.files.read(path)?;
        if s.ends_with('\n') {
            s.pop();
        }
        Ok(s)
    }

    /// CGroup.pm `change_memory_limit`, bytes. v2: `memory.swap.max` when swap is given,
    /// then with memory `memory.high` (`max` without a high value) and `memory.max`. v1
    /// cannot limit swap alone: memory and memory+swap change together, the combined
    /// limit first when it grows, second when it shrinks; what is not given keeps its
    /// old value (`$swap //= old memsw - old mem`).
    pub fn change_memory_limit(
        &self,
        mem: Option<i128>,
        swap: Option<i128>,
        high: Option<i128>,
    ) -> Result<(), String> {
        let Some((path, version)) = self.get_path("memory") else {
            return Err("trying to change memory cgroup values: container not running".into());
        };
        if version == 2 {
            if let Some(s) = swap {
                self.write(path.join("memory.swap.max"), &perl_number(s))?;
            }
            if let Some(m) = mem {
                let high = high.map_or_else(|| "max".to_string(), perl_number);
                self.write(path.join("memory.high"), &high)?;
                self.write(path.join("memory.max"), &perl_number(m))?;
            }
            return Ok(());
        }
        let path_mem = path.join("memory.limit_in_bytes");
        let path_memsw = path.join("memory.memsw.limit_in_bytes");
        let old_mem = perl_numeric(&self.read(&path_mem)?);
        let old_memsw = perl_numeric(&self.read(&path_memsw)?);
        let mem = mem.unwrap_or(old_mem);
        let swap = swap.unwrap_or(old_memsw - old_mem);
        let memsw = mem + swap;
        if memsw > old_memsw {
            self.write(path_memsw, &perl_number(memsw))?;
            self.write(path_mem, &perl_number(mem))
        } else {
            self.write(path_mem, &perl_number(mem))?;
            self.write(path_memsw, &perl_number(memsw))
        }
    }

    /// CGroup.pm `change_cpu_quota`. No quota and no period (a deleted `cpulimit`):
    /// v2 `cpu.max` = `max`, v1 the defaults, period 100000 and quota -1.
    pub fn change_cpu_quota(&self, quota: Option<i64>, period: Option<i64>) -> Result<(), String> {
        if period.is_none() && quota.is_some() {
            return Err("quota without period not allowed".into());
        }
        let Some((path, version)) = self.get_path("cpu") else {
            return Err("trying to change cpu quota cgroup values: container not running".into());
        };
        if version == 2 {
            let value = match period {
                Some(p) => format!("{} {p}", quota.map_or("max".into(), |q| q.to_string())),
                None => "max".into(),
            };
            return self.write(path.join("cpu.max"), &value);
        }
        let period = period.unwrap_or(100_000);
        self.write(path.join("cpu.cfs_period_us"), &period.to_string())?;
        self.write(
            path.join("cpu.cfs_quota_us"),
            &quota.unwrap_or(-1).to_string(),
        )
    }

    /// CGroup.pm `change_cpu_shares`: v2 `cpu.weight` (default 100, 1..=10000 or it
    /// dies), v1 `cpu.shares` (default 1024, no check).
    pub fn change_cpu_shares(&self, shares: Option<i64>) -> Result<(), String> {
        let Some((path, version)) = self.get_path("cpu") else {
            return Err(
                "trying to change cpu shares/weight cgroup values: container not running".into(),
            );
        };
        if version == 2 {
            let shares = shares.unwrap_or(100);
            if !(1..=10000).contains(&shares) {
                return Err("cpu weight (shares) must be in range [1, 10000]".into());
            }
            return self.write(path.join("cpu.weight"), &shares.to_string());
        }
        self.write(path.join("cpu.shares"), &shares.unwrap_or(1024).to_string())
    }
}

/// Perl's numeric value of a cgroup file's text: an integer as is; anything else, which
/// a limit file never holds, is 0 as in Perl.
fn perl_numeric(text: &str) -> i128 {
    text.trim().parse().unwrap_or(0)
}

/// How Perl prints the result of integer arithmetic: exact while it fits an IV or a UV
/// (64 bits), else as the double it became (`%.15g`), which the kernel then refuses.
pub fn perl_number(n: i128) -> String {
    if n >= i128::from(i64::MIN) && n <= i128::from(u64::MAX) {
        return n.to_string();
    }
    let s = format!("{:.14e}", n as f64);
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    // Beyond 64 bits the exponent is at least 19.
    format!("{mantissa}e+{exp}")
}
