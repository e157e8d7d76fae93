//! Huge page limits (`linux.resources.hugepageLimits`), side by side with
//! runc. The kubelet sends one for every page size the node has (0 unless
//! the pod asks for huge pages; containerd passes them on with
//! `disable_hugetlb_controller = false`). Where the host's hugetlb
//! controller is on the cgroup hierarchy limits are written to (a v1
//! hierarchy of its own on a hybrid host, as systemd mounts it and
//! `scripts/test` does here; delegated on v2), each page size's limit file
//! and, where the kernel has it, its reservation twin hold the value; an
//! update leaves them (runc's update takes none). Where it is not, the create fails for both
//! runtimes, lxcri naming the field, and nothing is left.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use lxcri_e2e::cgroup_files::own_dir;
use lxcri_e2e::{assert_same, cmd, runtimes, spec, Containerd};
use serde_json::json;

/// The host's huge page sizes as the kernel's hugetlb files name them
/// (`hugepages-2048kB` -> `2MB`), as the kubelet lists them.
fn page_sizes() -> Vec<String> {
    let mut sizes: Vec<(u64, String)> = fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let (n, unit) = if kb.is_multiple_of(1 << 20) {
                (kb >> 20, "GB")
            } else if kb.is_multiple_of(1 << 10) {
                (kb >> 10, "MB")
            } else {
                (kb, "KB")
            };
            Some((kb, format!("{n}{unit}")))
        })
        .collect();
    sizes.sort();
    sizes.into_iter().map(|(_, s)| s).collect()
}

/// The limit files of `dir` and their values.
fn limits(dir: &std::path::Path) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_limit = name.starts_with("hugetlb.")
                && (name.ends_with(".limit_in_bytes") || name.ends_with(".max"));
            is_limit.then(|| {
                let value = fs::read_to_string(e.path()).unwrap_or_default();
                (name, value.trim().to_string())
            })
        })
        .collect()
}

/// The limit files apart from their reservation twins (`.rsvd.`).
fn split_reservations(
    all: BTreeMap<String, String>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    all.into_iter().partition(|(f, _)| !f.contains(".rsvd."))
}

/// `hugetlb.2MB.rsvd.max` for `hugetlb.2MB.max`.
fn reservation_of(file: &str) -> String {
    let (size_part, suffix) = file
        .strip_prefix("hugetlb.")
        .and_then(|r| r.split_once('.'))
        .expect("a hugetlb limit file");
    format!("hugetlb.{size_part}.rsvd.{suffix}")
}

/// Whether the host's hugetlb controller can take limits: on a v1
/// hierarchy of its own, or delegated by the v2 root.
fn host_has_hugetlb() -> bool {
    let v1 = fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|m| m.lines().any(|l| l.contains(" /sys/fs/cgroup/hugetlb ")));
    let v2 = !std::path::Path::new("/sys/fs/cgroup/memory").exists()
        && fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control")
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "hugetlb"));
    v1 || v2
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn huge_page_limits_as_runc() {
    let sizes = page_sizes();
    assert!(!sizes.is_empty(), "the kernel lists no huge page sizes");
    let ctd = Containerd::start();
    ctd.import_busybox();
    // The kubelet's: 0 for each size, a pod's 4 MiB of the smallest.
    let at_create: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"pageSize": s, "limit": if i == 0 { 4u64 << 20 } else { 0 }}))
        .collect();
    let usable = host_has_hugetlb();
    let mut results = Vec::new();
    for rt in runtimes() {
        let id = ctd.new_id("hugetlb");
        let mut s = spec::busybox_spec(&ctd, &id, &["sleep", "1000"]);
        s["linux"]["resources"]["hugepageLimits"] = json!(at_create);
        let path = spec::write(&ctd, &id, &s);
        let out = ctd.run_config_detached(rt, &id, &path);
        if !usable {
            // runc: "cannot set hugetlb limit: container could not join or
            // create cgroup"; lxcri names the field's controller.
            let said = out.all_output();
            ctd.ctr(&["containers", "rm", &id]);
            let left = cmd::poll(Duration::from_secs(15), || {
                ctd.leftovers(&id).is_empty().then_some(())
            });
            assert!(!out.success(), "{rt}: should fail: {out}");
            assert!(said.contains("hugetlb"), "{rt}: {out}");
            if rt == lxcri_e2e::Runtime::Lxcri {
                assert!(said.contains("linux.resources.hugepageLimits"), "{out}");
            }
            assert!(
                left.is_some(),
                "{rt}: left behind: {:#?}",
                ctd.leftovers(&id)
            );
            results.push((rt, (false, BTreeMap::new(), BTreeMap::new())));
            continue;
        }
        assert!(out.success(), "{rt}: {out}");
        let (pid, _) = ctd.task(&id).expect("task listed");
        // On PVE's layout the CT's (above `ns`), where its limits are.
        let dir =
            own_dir(pid, "hugetlb").unwrap_or_else(|| panic!("{rt}: no hugetlb cgroup of {pid}"));
        let created = limits(&dir);
        let update = format!(
            r#"{{"hugepageLimits":[{{"pageSize":"{}","limit":{}}}]}}"#,
            sizes[0],
            2u64 << 20
        );
        let updated = ctd.update_resources(&id, &update).map(|()| limits(&dir));
        ctd.remove(&id);
        let updated = updated.unwrap_or_else(|e| panic!("{rt}: update: {e}"));
        let smallest = |m: &BTreeMap<String, String>| {
            m.iter()
                .filter(|(f, _)| f.starts_with(&format!("hugetlb.{}.", sizes[0])))
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        // runc 1.2 writes the reservation twins too; the 1.1.5 here
        // predates them (they keep the kernel's "no limit"): lxcri's must
        // hold the limits, and only the limits are compared.
        let (created, created_rsvd) = split_reservations(created);
        let (updated, updated_rsvd) = split_reservations(updated);
        if rt == lxcri_e2e::Runtime::Lxcri {
            let twins = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
                m.iter()
                    .map(|(f, v)| (reservation_of(f), v.clone()))
                    .collect()
            };
            if !created_rsvd.is_empty() {
                assert_eq!(created_rsvd, twins(&created), "{rt}");
                assert_eq!(updated_rsvd, created_rsvd, "{rt}");
            }
        }
        assert!(!smallest(&created).is_empty(), "{rt}: {created:?}");
        assert!(
            smallest(&created)
                .iter()
                .all(|v| *v == (4u64 << 20).to_string()),
            "{rt}: {created:?}"
        );
        assert!(
            created
                .iter()
                .filter(|(f, _)| !f.contains(&format!(".{}.", sizes[0])))
                .all(|(_, v)| v == "0"),
            "{rt}: {created:?}"
        );
        // runc's update takes no huge page limits (runc update.go): they
        // stay as created.
        assert_eq!(updated, created, "{rt}");
        results.push((rt, (true, created, updated)));
    }
    assert_same("huge page limits", &results);
}
