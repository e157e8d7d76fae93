//! Removing what a test's containerd, shims and containers may have left,
//! and finding leaks. Everything here is scoped to one test's unique
//! containerd namespace or temp dir, so it never touches anything else.
//!
//! What it assumes about lxcri (the shim must match):
//! - LXC containers live under [`LXCRI_LXC_PATH`] named `<namespace>_<id>`;
//! - per-container runtime dirs are `<`[`LXCRI_RUN_ROOT`]`>/<namespace>/<id>`;
//! - every cgroup of a container has `<namespace>_<id>` in its directory
//!   name or is `.../<namespace>/<id>` (containerd's default `cgroupsPath`);
//! - shim processes carry `-namespace <namespace>` and `-address <socket>`
//!   on their command line (containerd starts them that way).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sha2::{Digest, Sha256};

use crate::cmd;
use crate::{LXCRI_LXC_PATH, LXCRI_RUN_ROOT, LXCRI_SHIM, RUNC_ROOT};

/// What one test's containerd owns, for cleaning up after it.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The containerd namespace of its containers.
    pub namespace: &'a str,
    /// `None`: everything in `namespace` (unique to the test). `Some`: only
    /// these containers, for CRI, whose namespace `k8s.io` every test's
    /// containerd shares.
    pub ids: Option<&'a [String]>,
    /// A cgroup directory name only this test uses: its namespace, or the
    /// pods' cgroup parent under CRI.
    pub cgroup_mark: &'a str,
}

impl Scope<'_> {
    fn owns(&self, id: &str) -> bool {
        self.ids.is_none_or(|ids| ids.iter().any(|i| i == id))
    }
}

/// Everything after containerd has stopped: leftover shims, runc and LXC
/// containers, cgroups, mounts, state dirs, shim sockets, the temp dir.
/// Prints what it had to clean (which means something leaked). `ids` are
/// the container ids whose shim sockets to look for.
pub fn after_containerd(scope: Scope, socket: &Path, dir: &Path, ids: &[String]) {
    let namespace = scope.namespace;
    let mut cleaned = Vec::new();
    let own = |cmdline: &str| {
        cmdline.contains(socket.to_str().unwrap_or("\0"))
            || (scope.ids.is_none() && cmdline.contains(namespace))
    };
    for (pid, cmdline) in processes() {
        if own(&cmdline) {
            cleaned.push(format!("process {pid}: {cmdline}"));
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    cleaned.extend(runc_cleanup(scope));
    cleaned.extend(lxc_cleanup(scope));
    cleaned.extend(cgroup_cleanup(scope));
    let ns_run_dir = Path::new(LXCRI_RUN_ROOT).join(namespace);
    let run_dirs: Vec<PathBuf> = match scope.ids {
        None => vec![ns_run_dir],
        Some(ids) => ids.iter().map(|id| ns_run_dir.join(id)).collect(),
    };
    let mut mount_roots = vec![dir.to_path_buf()];
    mount_roots.extend(run_dirs.iter().cloned());
    for m in unmount_under(&mount_roots) {
        cleaned.push(format!("mount {}", m.display()));
    }
    for run_dir in &run_dirs {
        if run_dir.exists() {
            cleaned.push(format!("state dir {}", run_dir.display()));
            let _ = fs::remove_dir_all(run_dir);
        }
    }
    for id in ids {
        let sock = shim_socket(socket, namespace, id);
        if sock.exists() {
            cleaned.push(format!("shim socket {} of {id}", sock.display()));
            let _ = fs::remove_file(&sock);
        }
    }
    if let Err(e) = fs::remove_dir_all(dir) {
        eprintln!("cleanup: cannot remove {}: {e}", dir.display());
    }
    if !cleaned.is_empty() {
        eprintln!(
            "cleanup of namespace {namespace} removed leftovers:\n  {}",
            cleaned.join("\n  ")
        );
    }
}

/// `(pid, cmdline with spaces)` of every process but this one.
pub fn processes() -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let raw = fs::read(e.path().join("cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&raw)
            .trim_end_matches('\0')
            .replace('\0', " ");
        (pid != me && !cmdline.is_empty()).then_some((pid, cmdline))
    })
    .collect()
}

/// The shim processes of `rt` whose command line names container `id` of
/// `namespace`.
pub fn shim_pids(namespace: &str, rt: crate::Runtime, id: &str) -> Vec<i32> {
    let this = format!("-namespace {namespace} -id {id} ");
    processes()
        .into_iter()
        .filter(|(_, c)| c.contains(rt.shim_binary()) && c.contains(&this))
        .map(|(p, _)| p)
        .collect()
}

/// containerd 1.6's shim socket for `(address, namespace, id)`:
/// `/run/containerd/s/sha256(address/namespace/id)`.
pub fn shim_socket(address: &Path, namespace: &str, id: &str) -> PathBuf {
    let key = address.join(namespace).join(id);
    let digest = Sha256::digest(key.as_os_str().as_encoded_bytes());
    Path::new("/run/containerd/s").join(hex::encode(digest))
}

fn runc_cleanup(scope: Scope) -> Vec<String> {
    let root = Path::new(RUNC_ROOT).join(scope.namespace);
    let mut cleaned = Vec::new();
    let Ok(entries) = fs::read_dir(&root) else {
        return cleaned;
    };
    for e in entries.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        if !scope.owns(&id) {
            continue;
        }
        cleaned.push(format!("runc container {id}"));
        cmd::run(
            Command::new("runc")
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force", &id]),
            Duration::from_secs(20),
        );
    }
    if scope.ids.is_none() {
        let _ = fs::remove_dir_all(&root);
    }
    cleaned
}

/// LXC containers of this namespace under the lxcri lxcpath.
pub fn lxc_containers(namespace: &str) -> Vec<String> {
    let prefix = format!("{namespace}_");
    fs::read_dir(LXCRI_LXC_PATH)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn lxc_cleanup(scope: Scope) -> Vec<String> {
    let mut cleaned = Vec::new();
    let prefix = format!("{}_", scope.namespace);
    for name in lxc_containers(scope.namespace) {
        if !scope.owns(name.strip_prefix(&prefix).unwrap_or(&name)) {
            continue;
        }
        cleaned.push(format!("LXC container {name}"));
        cmd::run(
            Command::new("lxc-stop").args(["-P", LXCRI_LXC_PATH, "-n", &name, "-k"]),
            Duration::from_secs(30),
        );
        let dir = Path::new(LXCRI_LXC_PATH).join(&name);
        unmount_under(std::slice::from_ref(&dir));
        let _ = fs::remove_dir_all(&dir);
    }
    cleaned
}

/// Whether a cgroup directory belongs to this namespace (or, with `id`,
/// to that container): `<ns>_<id>` in its name, or `.../<ns>/<id>`.
fn cgroup_matches(path: &Path, namespace: &str, id: Option<&str>) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("");
    match id {
        Some(id) => {
            name.contains(&format!("{namespace}_{id}")) || (parent == namespace && name == id)
        }
        None => name.contains(namespace),
    }
}

/// Cgroup directories (all hierarchies, v1 and v2) of this namespace, or of
/// one container, deepest first.
pub fn cgroups(namespace: &str, id: Option<&str>) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        if depth == 0 {
            return;
        }
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let p = e.path();
                out.push(p.clone());
                walk(&p, depth - 1, out);
            }
        }
    }
    let mut all = Vec::new();
    // The hierarchies only: a plain directory in a hybrid host's tmpfs is
    // no cgroup, and freezer files written there would stay.
    for hierarchy in lxcri::cgroup::hierarchy_dirs(Path::new("/sys/fs/cgroup")) {
        walk(&hierarchy, 6, &mut all);
    }
    let mut found: Vec<PathBuf> = all
        .into_iter()
        .filter(|p| p.ancestors().any(|a| cgroup_matches(a, namespace, id)))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// The cgroups PVE's LXC config gives CT `vmid` (`lxc.cgroup.dir.container
/// = lxc/VMID`, monitor `lxc.monitor/VMID`) in every hierarchy, v1 and v2.
pub fn ct_cgroups(vmid: u32) -> Vec<PathBuf> {
    [format!("lxc/{vmid}"), format!("lxc.monitor/{vmid}")]
        .iter()
        .flat_map(|rel| cgroup_dirs(rel))
        .collect()
}

/// The cgroup `rel` (below the root) in every hierarchy that has it: v2's
/// root, v1's controllers, a hybrid host's `unified`.
pub fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    lxcri::cgroup::hierarchy_dirs(Path::new("/sys/fs/cgroup"))
        .iter()
        .map(|r| r.join(rel))
        .filter(|d| d.is_dir())
        .collect()
}

fn cgroup_cleanup(scope: Scope) -> Vec<String> {
    let mut dirs = cgroups(scope.cgroup_mark, None);
    for id in scope.ids.unwrap_or_default() {
        dirs.extend(cgroups(scope.namespace, Some(id)));
    }
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    dirs.dedup();
    let mark = scope.cgroup_mark;
    let mut cleaned = Vec::new();
    for dir in &dirs {
        // A frozen cgroup would keep its processes from dying.
        let _ = fs::write(dir.join("freezer.state"), "THAWED");
        let _ = fs::write(dir.join("cgroup.freeze"), "0");
        for pid in fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            cleaned.push(format!("process {pid} in {}", dir.display()));
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    for dir in &dirs {
        let removed = cmd::poll(Duration::from_secs(3), || {
            (fs::remove_dir(dir).is_ok() || !dir.exists()).then_some(())
        });
        if removed.is_none() {
            eprintln!("cleanup: cannot remove cgroup {}", dir.display());
        }
    }
    // runc leaves the empty parent (`/<ns>`, the pods' cgroup parent) by
    // design; anything deeper is a container's own cgroup, worth naming.
    cleaned.extend(
        dirs.iter()
            .filter(|d| d.file_name().is_some_and(|n| n != mark))
            .map(|d| format!("cgroup {}", d.display())),
    );
    cleaned
}

/// Mount points at or below any of `paths`, deepest first.
pub fn mounts_under(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = lxcri::rootfs::mountinfo::read()
        .into_iter()
        .map(|m| m.path)
        .filter(|m| paths.iter().any(|p| m.starts_with(p)))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Lazily unmounts everything at or below `paths`; returns what it found.
pub fn unmount_under(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mounts = mounts_under(paths);
    for m in &mounts {
        // Stacked mounts: unmount until nothing is left there.
        while umount2(m, MntFlags::MNT_DETACH).is_ok() {}
    }
    mounts
}

/// Everything a container `id` of `namespace` may leave behind, as found
/// now: LXC container, state dirs (lxcri's, runc's), mounts (bundle, state
/// dir, LXC dir), cgroups, lxcri shim processes of the containerd at
/// `socket`. Empty means clean.
pub fn leftovers(namespace: &str, id: &str, bundle: &Path, socket: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let name = format!("{namespace}_{id}");
    let lxc_dir = Path::new(LXCRI_LXC_PATH).join(&name);
    if lxc_dir.exists() {
        found.push(format!("LXC container dir {}", lxc_dir.display()));
    }
    if lxc_containers(namespace).contains(&name) {
        found.push(format!("LXC container {name}"));
    }
    let state = Path::new(LXCRI_RUN_ROOT).join(namespace).join(id);
    if state.exists() {
        found.push(format!("state dir {}", state.display()));
    }
    let runc_state = Path::new(RUNC_ROOT).join(namespace).join(id);
    if runc_state.exists() {
        found.push(format!("runc state dir {}", runc_state.display()));
    }
    for m in mounts_under(&[bundle.to_path_buf(), state, lxc_dir]) {
        found.push(format!("mount {}", m.display()));
    }
    for cg in cgroups(namespace, Some(id)) {
        found.push(format!("cgroup {}", cg.display()));
    }
    for (pid, cmdline) in processes() {
        // The shim of this container: one containerd runs the shims of
        // several containers, so its address alone is not enough.
        if cmdline.contains(LXCRI_SHIM)
            && cmdline.contains(socket.to_str().unwrap_or("\0"))
            && cmdline.contains(&format!(" -id {id} "))
        {
            found.push(format!("shim process {pid}: {cmdline}"));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_names() {
        let ns = "e2e-1-2-abc";
        assert!(cgroup_matches(
            Path::new("/sys/fs/cgroup/memory/e2e-1-2-abc/c-0"),
            ns,
            Some("c-0")
        ));
        assert!(cgroup_matches(
            Path::new("/sys/fs/cgroup/unified/lxc.payload.e2e-1-2-abc_c-0"),
            ns,
            Some("c-0")
        ));
        assert!(!cgroup_matches(
            Path::new("/sys/fs/cgroup/memory/e2e-1-2-abc"),
            ns,
            Some("c-0")
        ));
        assert!(!cgroup_matches(
            Path::new("/sys/fs/cgroup/memory/other/c-0"),
            ns,
            Some("c-0")
        ));
        assert!(cgroup_matches(
            Path::new("/sys/fs/cgroup/memory/e2e-1-2-abc"),
            ns,
            None
        ));
    }

    #[test]
    fn shim_socket_path() {
        let p = shim_socket(Path::new("/run/containerd/containerd.sock"), "default", "x");
        assert!(p.starts_with("/run/containerd/s"));
        assert_eq!(p.file_name().unwrap().len(), 64);
    }
}
