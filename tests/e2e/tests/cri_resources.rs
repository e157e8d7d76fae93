//! A container's resources through containerd's CRI plugin, side by side
//! with runc: the kubelet's CPU and memory settings at create and its
//! in-place resize (UpdateContainerResources, GA in Kubernetes 1.33), read
//! where they take effect, the container's cgroups on the host.

use std::fs;
use std::path::Path;

use lxcri_e2e::cgroup_files::{chain, memory_limit, own_dir};
use lxcri_e2e::cri::api;
use lxcri_e2e::cri::validate::{remove, run_pod, running, PAUSE};
use lxcri_e2e::{assert_same, runtimes, Containerd};

/// What the kernel applies to a container's processes.
#[derive(Debug, PartialEq, Eq)]
struct Effective {
    /// The lowest memory limit of its cgroup and those above it.
    memory_limit: u64,
    /// The CFS quota and period of the tightest cgroup on the way up.
    cpu_quota: Option<(u64, u64)>,
    /// Its CPU weight among its siblings: `cpu.shares` (v1) or
    /// `cpu.weight` (v2) of its own cgroup (on PVE's layout, with the
    /// processes in `lxc/VMID/ns`, the CT's).
    cpu_weight: u64,
}

fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn effective(pid: u32) -> Effective {
    let cpu_quota = chain(pid, "cpu")
        .iter()
        .filter_map(|d| {
            let v1 = read(&d.join("cpu.cfs_quota_us"))
                .zip(read(&d.join("cpu.cfs_period_us")))
                .and_then(|(q, p)| Some((q.parse::<i64>().ok()?, p.parse::<u64>().ok()?)))
                .and_then(|(q, p)| (q > 0).then_some((q as u64, p)));
            v1.or_else(|| {
                let max = read(&d.join("cpu.max"))?;
                let (q, p) = max.split_once(' ')?;
                Some((q.parse().ok()?, p.parse().ok()?))
            })
        })
        .min_by(|(q1, p1), (q2, p2)| (q1 * p2).cmp(&(q2 * p1)));
    let own = own_dir(pid, "cpu").expect("the container's cpu cgroup");
    let cpu_weight = read(&own.join("cpu.shares"))
        .or_else(|| read(&own.join("cpu.weight")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Effective {
        memory_limit: memory_limit(pid),
        cpu_quota,
        cpu_weight,
    }
}

fn resources(cpu_quota: i64, cpu_shares: i64, memory: i64) -> api::LinuxContainerResources {
    api::LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota,
        cpu_shares,
        memory_limit_in_bytes: memory,
        ..Default::default()
    }
}

/// A Burstable container (0.5 CPU limit, 512 shares, 256 MiB) resized in
/// place to 0.2 CPU, 256 shares and 128 MiB: what its processes run
/// under, and what CRI reports, before and after.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn in_place_resize() {
    let ctd = Containerd::start_cri();
    let weight = |shares: u64| -> u64 {
        // What the host's files say for `shares`: v1 shares, or v2 weight.
        let own = own_dir(std::process::id(), "cpu").expect("our cpu cgroup");
        if own.join("cpu.shares").exists() {
            shares
        } else {
            1 + ((shares - 2) * 9999) / 262_142
        }
    };
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "resize", Default::default(), &[]);
        let mut c = pod.container("c", PAUSE);
        c.linux.as_mut().expect("linux").resources = Some(resources(50_000, 512, 256 << 20));
        let id = running(&pod, c);
        let cri = ctd.cri();
        let pid = cri
            .container_pid(&id)
            .unwrap_or_else(|e| panic!("{rt}: {e}"));
        assert!(pid > 0, "{rt}: no pid");
        let before = effective(pid);
        let updated = cri.update_container_resources(&id, resources(20_000, 256, 128 << 20));
        let after = effective(pid);
        let reported = cri
            .container_status(&id)
            .ok()
            .and_then(|s| s.resources)
            .and_then(|r| r.linux)
            .map(|l| (l.cpu_quota, l.cpu_shares, l.memory_limit_in_bytes));
        remove(&ctd, rt, pod);
        updated.unwrap_or_else(|e| {
            panic!("{rt}: UpdateContainerResources: {e}\n{}", ctd.log_tail(40))
        });
        assert_eq!(
            before,
            Effective {
                memory_limit: 256 << 20,
                cpu_quota: Some((50_000, 100_000)),
                cpu_weight: weight(512),
            },
            "{rt}: at create"
        );
        assert_eq!(
            after,
            Effective {
                memory_limit: 128 << 20,
                cpu_quota: Some((20_000, 100_000)),
                cpu_weight: weight(256),
            },
            "{rt}: after the resize"
        );
        assert_eq!(reported, Some((20_000, 256, 128 << 20)), "{rt}");
        results.push((rt, (before, after, reported)));
    }
    assert_same("an in-place resize", &results);
}
