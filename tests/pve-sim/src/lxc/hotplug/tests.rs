use super::cgroup::{perl_number, Files};
use super::*;
use crate::lxc::Host;
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// cgroup files in memory, with the kernel's v1 rule that memory+swap is never below
/// memory, and refusals to order; every write is logged.
#[derive(Default)]
struct FakeFiles {
    files: RefCell<BTreeMap<PathBuf, String>>,
    /// Path -> strerror text the kernel answers a write with.
    refuse: BTreeMap<PathBuf, &'static str>,
    writes: RefCell<Vec<String>>,
}

impl FakeFiles {
    fn with(files: &[(&str, &str)]) -> FakeFiles {
        let f = FakeFiles::default();
        for (p, v) in files {
            f.files.borrow_mut().insert(p.into(), format!("{v}\n"));
        }
        f
    }

    fn writes(&self) -> Vec<String> {
        self.writes.borrow().clone()
    }
}

fn closing(path: &Path, why: &str) -> String {
    format!("closing file '{}' failed - {why}", path.display())
}

impl Files for FakeFiles {
    fn read(&self, path: &Path) -> Result<String, String> {
        self.files.borrow().get(path).cloned().ok_or_else(|| {
            format!(
                "can't open '{}' - No such file or directory",
                path.display()
            )
        })
    }

    fn write(&self, path: &Path, data: &str) -> Result<(), String> {
        if let Some(why) = self.refuse.get(path) {
            return Err(closing(path, why));
        }
        let name = path.file_name().unwrap().to_str().unwrap();
        let sibling = |n: &str| {
            let v = self.files.borrow().get(&path.with_file_name(n)).cloned();
            v.map(|v| v.trim().parse::<i128>().unwrap())
        };
        let value = data.parse::<i128>().ok();
        let below_memsw = match (name, value) {
            ("memory.limit_in_bytes", Some(v)) => {
                sibling("memory.memsw.limit_in_bytes").is_none_or(|sw| v <= sw)
            }
            ("memory.memsw.limit_in_bytes", Some(v)) => {
                sibling("memory.limit_in_bytes").is_none_or(|m| v >= m)
            }
            _ => true,
        };
        if !below_memsw {
            return Err(closing(path, "Invalid argument"));
        }
        self.writes
            .borrow_mut()
            .push(format!("{} = {data}", path.display()));
        self.files
            .borrow_mut()
            .insert(path.to_path_buf(), format!("{data}\n"));
        Ok(())
    }
}

/// A PVE 9 node: everything on cgroup v2 at /sys/fs/cgroup.
fn v2_host() -> Host {
    Host {
        cgroup_v2: Some(vec!["cpu".into(), "memory".into()]),
        unified: true,
        ..Host::default()
    }
}

/// This machine: memory and cpu on v1, an empty unified hierarchy.
fn hybrid_host() -> Host {
    Host {
        cgroup_v1: vec!["memory".into(), "cpu".into(), "cpuacct".into()],
        cgroup_v2: Some(Vec::new()),
        memsw: true,
        ..Host::default()
    }
}

const V2_CGROUP: &str = "0::/lxc/100/ns\n";
const V1_CGROUP: &str = "5:memory:/lxc/100/ns\n4:cpu,cpuacct:/lxc/100/ns\n0::/lxc/100/ns\n";
const V1_MEM: &str = "/sys/fs/cgroup/memory/lxc/100/memory.limit_in_bytes";
const V1_MEMSW: &str = "/sys/fs/cgroup/memory/lxc/100/memory.memsw.limit_in_bytes";
/// The kernel's "unlimited" (PAGE_COUNTER_MAX pages of 4 KiB).
const V1_UNLIMITED: &str = "9223372036854771712";
const MIB: i128 = 1 << 20;

fn sets(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The pending changes of an update against a config with memory 512, swap 512,
/// cpuunits 100, hostname ct, arch amd64.
fn pending(set: &[(&str, &str)], delete: &[&str]) -> Pending {
    let current = sets(&[
        ("memory", "512"),
        ("swap", "512"),
        ("cpuunits", "100"),
        ("hostname", "ct"),
        ("arch", "amd64"),
    ]);
    Pending::new(|k| current.get(k).cloned(), &sets(set), delete)
}

fn run(host: &Host, proc_cgroup: &str, files: &FakeFiles, p: &Pending) -> BTreeMap<String, String> {
    p.hotplug(&CGroup::new(host, proc_cgroup, files))
}

/// [`run`] on a PVE 9 node; the errors.
fn on_v2(files: &FakeFiles, p: &Pending) -> BTreeMap<String, String> {
    run(&v2_host(), V2_CGROUP, files, p)
}

/// [`run`] on this hybrid machine kind (memory and cpu on v1); the errors.
fn on_v1(files: &FakeFiles, p: &Pending) -> BTreeMap<String, String> {
    run(&hybrid_host(), V1_CGROUP, files, p)
}

#[test]
fn cleanup_pending_drops_what_equals_the_config_and_deletes_of_unset_keys() {
    let p = pending(
        &[("memory", "512"), ("swap", "256"), ("hostname", "web")],
        &["cpuunits", "cpulimit", "mp3"],
    );
    assert_eq!(p.sets, sets(&[("hostname", "web"), ("swap", "256")]));
    assert_eq!(p.deletes, BTreeSet::from(["cpuunits".to_string()]));
    // A string comparison, as Perl's `eq`.
    assert_eq!(pending(&[("memory", "512.0")], &[]).sets.len(), 1);
}

#[test]
fn what_pve_would_keep_pending_or_hotplug_otherwise_is_refused_by_key() {
    for (set, delete, want) in [
        (
            &[("net0", "name=eth0,bridge=vmbr0")][..],
            &[][..],
            "net0: pve-sim does not model hotplugging it into a running CT (PVE: update_net / veth_delete)",
        ),
        (&[("mp0", "local:1,mp=/x")], &[], "mp0: pve-sim does not model hotplugging"),
        (&[("cores", "2"), ("arch", "arm64")], &[], "arch: PVE would keep this change pending"),
        (&[], &["hostname", "arch"], "arch: PVE would keep this change pending"),
    ] {
        let e = pending(set, delete).check_modelled().unwrap_err();
        assert!(e.starts_with(want), "{e}");
    }
    // Fast-plug keys and the resource keys lxcri sends are taken, and a delete of a key
    // that is not set never gets pending.
    let ok = pending(
        &[
            ("cores", "2"),
            ("memory", "256"),
            ("swap", "0"),
            ("cpulimit", "0.5"),
            ("tags", "a"),
        ],
        &["cpuunits", "hostname", "mp3", "net0"],
    );
    assert_eq!(ok.check_modelled(), Ok(()));
}

#[test]
fn v2_memory_writes_high_then_max_and_swap_first() {
    let files = FakeFiles::default();
    let errors = on_v2(&files, &pending(&[("memory", "256")], &[]));
    assert!(errors.is_empty(), "{errors:?}");
    // 1016/1024 of max below 16 GiB.
    assert_eq!(
        files.writes(),
        [
            format!("/sys/fs/cgroup/lxc/100/memory.high = {}", 256 * 1024 * 1016),
            format!("/sys/fs/cgroup/lxc/100/memory.max = {}", 256 * MIB),
        ]
    );
    let files = FakeFiles::default();
    let p = pending(&[("memory", "16384"), ("swap", "64")], &[]);
    assert!(on_v2(&files, &p).is_empty());
    // From 16 GiB: max - 128 MiB; swap first, once for both keys.
    assert_eq!(
        files.writes(),
        [
            format!("/sys/fs/cgroup/lxc/100/memory.swap.max = {}", 64 * MIB),
            format!(
                "/sys/fs/cgroup/lxc/100/memory.high = {}",
                (16384 - 128) * MIB
            ),
            format!("/sys/fs/cgroup/lxc/100/memory.max = {}", 16384 * MIB),
        ]
    );
    // Swap alone leaves memory and memory.high alone.
    let files = FakeFiles::default();
    assert!(on_v2(&files, &pending(&[("swap", "0")], &[])).is_empty());
    assert_eq!(
        files.writes(),
        ["/sys/fs/cgroup/lxc/100/memory.swap.max = 0"]
    );
}

#[test]
fn v1_memory_and_memsw_change_together_in_the_order_the_kernel_takes() {
    let old = [(V1_MEM, "268435456"), (V1_MEMSW, "536870912")];
    // Growing: memsw first, keeping the old 256 MiB of swap.
    let files = FakeFiles::with(&old);
    assert!(on_v1(&files, &pending(&[("memory", "1024")], &[])).is_empty());
    assert_eq!(
        files.writes(),
        [
            format!("{V1_MEMSW} = {}", 1280 * MIB),
            format!("{V1_MEM} = {}", 1024 * MIB),
        ]
    );
    // Shrinking: memory first.
    let files = FakeFiles::with(&old);
    let p = pending(&[("memory", "128"), ("swap", "0")], &[]);
    assert!(on_v1(&files, &p).is_empty());
    assert_eq!(
        files.writes(),
        [
            format!("{V1_MEM} = {}", 128 * MIB),
            format!("{V1_MEMSW} = {}", 128 * MIB),
        ]
    );
    // Unlimited before: the "old swap" is 0, so memsw comes down to the memory.
    let files = FakeFiles::with(&[(V1_MEM, V1_UNLIMITED), (V1_MEMSW, V1_UNLIMITED)]);
    assert!(on_v1(&files, &pending(&[("memory", "64")], &[])).is_empty());
    assert_eq!(
        files.writes(),
        [
            format!("{V1_MEM} = {}", 64 * MIB),
            format!("{V1_MEMSW} = {}", 64 * MIB)
        ]
    );
    // Unlimited swap, memory growing: the sum passes i64 but stays exact (a Perl UV).
    let files = FakeFiles::with(&[(V1_MEM, "67108864"), (V1_MEMSW, V1_UNLIMITED)]);
    assert!(on_v1(&files, &pending(&[("memory", "256")], &[])).is_empty());
    assert_eq!(
        files.writes()[0],
        format!("{V1_MEMSW} = 9223372037056098304")
    );
    // Without swap accounting PVE dies reading memsw: nothing is written.
    let files = FakeFiles::with(&[(V1_MEM, "67108864")]);
    let errors = on_v1(&files, &pending(&[("memory", "256")], &[]));
    assert_eq!(
        errors["memory"],
        format!("unable to hotplug memory: can't open '{V1_MEMSW}' - No such file or directory\n")
    );
    assert!(files.writes().is_empty());
}

#[test]
fn a_deleted_swap_sets_the_flag_so_a_new_memory_is_not_written() {
    let files = FakeFiles::default();
    let p = pending(&[("memory", "256")], &["swap"]);
    assert!(on_v2(&files, &p).is_empty());
    assert_eq!(
        files.writes(),
        ["/sys/fs/cgroup/lxc/100/memory.swap.max = 0"]
    );
    // v1: the old memory stays, memsw comes down to it.
    let files = FakeFiles::with(&[(V1_MEM, "536870912"), (V1_MEMSW, "1073741824")]);
    assert!(on_v1(&files, &p).is_empty());
    assert_eq!(
        files.writes(),
        [
            format!("{V1_MEM} = 536870912"),
            format!("{V1_MEMSW} = 536870912")
        ]
    );
}

#[test]
fn a_refused_write_is_a_hotplug_error_and_the_writes_before_it_stay() {
    let mut files = FakeFiles::default();
    let max = PathBuf::from("/sys/fs/cgroup/lxc/100/memory.max");
    files.refuse.insert(max.clone(), "Device or resource busy");
    let p = pending(
        &[("memory", "64"), ("swap", "128"), ("cpuunits", "200")],
        &[],
    );
    let errors = on_v2(&files, &p);
    let want = |opt: &str| {
        format!(
            "unable to hotplug {opt}: {}\n",
            closing(&max, "Device or resource busy")
        )
    };
    // The flag is set only by a call that did not die: swap tries again.
    assert_eq!(
        errors,
        BTreeMap::from([
            ("memory".to_string(), want("memory")),
            ("swap".to_string(), want("swap")),
        ])
    );
    // By sorted key: cpuunits before memory and swap.
    assert_eq!(
        files.writes(),
        [
            "/sys/fs/cgroup/lxc/100/cpu.weight = 200".to_string(),
            format!("/sys/fs/cgroup/lxc/100/memory.swap.max = {}", 128 * MIB),
            format!("/sys/fs/cgroup/lxc/100/memory.high = {}", 64 * 1024 * 1016),
            format!("/sys/fs/cgroup/lxc/100/memory.swap.max = {}", 128 * MIB),
            format!("/sys/fs/cgroup/lxc/100/memory.high = {}", 64 * 1024 * 1016),
        ]
    );
}

#[test]
fn cpulimit_is_a_truncated_float_product_over_a_period_of_100000() {
    let p = pending(&[("cpulimit", "0.29")], &[]);
    let files = FakeFiles::default();
    assert!(on_v2(&files, &p).is_empty());
    assert_eq!(
        files.writes(),
        ["/sys/fs/cgroup/lxc/100/cpu.max = 28999 100000"]
    );
    let files = FakeFiles::default();
    assert!(on_v1(&files, &p).is_empty());
    assert_eq!(
        files.writes(),
        [
            "/sys/fs/cgroup/cpu/lxc/100/cpu.cfs_period_us = 100000",
            "/sys/fs/cgroup/cpu/lxc/100/cpu.cfs_quota_us = 28999",
        ]
    );
    // A delete resets: v2 `max`, v1 the period's default and no quota.
    let current = sets(&[("cpulimit", "1")]);
    let del = Pending::new(|k| current.get(k).cloned(), &BTreeMap::new(), &["cpulimit"]);
    let files = FakeFiles::default();
    assert!(on_v2(&files, &del).is_empty());
    assert_eq!(files.writes(), ["/sys/fs/cgroup/lxc/100/cpu.max = max"]);
    let files = FakeFiles::default();
    assert!(on_v1(&files, &del).is_empty());
    assert_eq!(
        files.writes(),
        [
            "/sys/fs/cgroup/cpu/lxc/100/cpu.cfs_period_us = 100000",
            "/sys/fs/cgroup/cpu/lxc/100/cpu.cfs_quota_us = -1",
        ]
    );
}

#[test]
fn cpuunits_is_checked_against_v2_weights_only() {
    let files = FakeFiles::default();
    let errors = on_v2(&files, &pending(&[("cpuunits", "0")], &[]));
    assert_eq!(
        errors["cpuunits"],
        "unable to hotplug cpuunits: cpu weight (shares) must be in range [1, 10000]\n"
    );
    assert!(files.writes().is_empty());
    // A hybrid host's v2 cpu is not clamped by the API (cgroup_mode 1): 20000 dies too.
    let hybrid_v2_cpu = Host {
        cgroup_v2: Some(vec!["cpu".into()]),
        ..hybrid_host()
    };
    let errors = run(
        &hybrid_v2_cpu,
        V1_CGROUP,
        &files,
        &pending(&[("cpuunits", "20000")], &[]),
    );
    assert!(errors["cpuunits"].contains("[1, 10000]"), "{errors:?}");
    let files = FakeFiles::default();
    assert!(on_v1(&files, &pending(&[("cpuunits", "20000")], &[])).is_empty());
    assert_eq!(
        files.writes(),
        ["/sys/fs/cgroup/cpu/lxc/100/cpu.shares = 20000"]
    );
    // Deleted: the version's default.
    let del = pending(&[], &["cpuunits"]);
    let files = FakeFiles::default();
    assert!(on_v2(&files, &del).is_empty());
    assert!(on_v1(&files, &del).is_empty());
    assert_eq!(
        files.writes(),
        [
            "/sys/fs/cgroup/lxc/100/cpu.weight = 100",
            "/sys/fs/cgroup/cpu/lxc/100/cpu.shares = 1024",
        ]
    );
}

#[test]
fn the_limits_are_on_the_cgroup_above_the_inner_ns() {
    let files = FakeFiles::default();
    let (v2, hybrid, empty) = (v2_host(), hybrid_host(), Host::default());
    let cg = CGroup::new(&v2, V2_CGROUP, &files);
    assert_eq!(
        cg.get_path("memory"),
        Some((PathBuf::from("/sys/fs/cgroup/lxc/100"), 2))
    );
    let cg = CGroup::new(&hybrid, V1_CGROUP, &files);
    assert_eq!(
        cg.get_path("cpu"),
        Some((PathBuf::from("/sys/fs/cgroup/cpu/lxc/100"), 1))
    );
    // A hybrid host's v2 controller is under /sys/fs/cgroup/unified.
    let host = Host {
        cgroup_v2: Some(vec!["cpu".into()]),
        ..hybrid_host()
    };
    assert_eq!(
        CGroup::new(&host, V1_CGROUP, &files).get_path("cpu"),
        Some((PathBuf::from("/sys/fs/cgroup/unified/lxc/100"), 2))
    );
    // No such controller, or no cgroup to read: "container not running".
    let none = CGroup::new(&empty, V1_CGROUP, &files);
    assert_eq!(
        none.change_memory_limit(Some(1), None, None),
        Err("trying to change memory cgroup values: container not running".into())
    );
    let gone = CGroup::new(&v2, "", &files);
    assert!(gone
        .change_cpu_shares(None)
        .unwrap_err()
        .contains("not running"));
}

#[test]
fn sys_files_fail_with_perls_words() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("memory.max");
    assert_eq!(
        SysFiles.write(&missing, "1"),
        Err(format!(
            "unable to open file '{}' - No such file or directory",
            missing.display()
        ))
    );
    assert_eq!(
        SysFiles.read(&missing),
        Err(format!(
            "can't open '{}' - No such file or directory",
            missing.display()
        ))
    );
    // What the kernel refuses shows at the buffered print's close.
    assert_eq!(
        SysFiles.write(Path::new("/dev/full"), "1"),
        Err("closing file '/dev/full' failed - No space left on device".into())
    );
}

#[test]
fn perl_prints_integers_beyond_64_bits_as_floats() {
    assert_eq!(perl_number(-1), "-1");
    assert_eq!(perl_number(i128::from(u64::MAX)), u64::MAX.to_string());
    assert_eq!(perl_number(1 << 64), "1.84467440737096e+19");
}
