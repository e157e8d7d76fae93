//! Whether a container start waits for the kernel to move LXC's monitor
//! into its cgroup. Every `cgroup.procs` write takes a global per-CPU
//! rwsem for writing, whose first writer after a quiet spell waits a
//! whole RCU grace period (5 to 15 ms) unless the cgroup2 hierarchy is
//! mounted with `favordynmods` (kernel 6.0+). Nothing is wrong either way:
//! this says what the node's setting costs (docs/operations.md, "Start
//! latency: favordynmods").

use super::{finding, Finding, Status};

const NAME: &str = "cgroup attach";

/// Reads the node's cgroup2 mount (the pure v2 root, or hybrid's
/// `unified`) from `/proc/self/mountinfo` (`mountinfo`).
pub fn cgroup_attach(mountinfo: &str) -> Finding {
    let Some((at, options)) = cgroup2_mount(mountinfo) else {
        return finding(
            NAME,
            Status::Ok,
            "no cgroup2 hierarchy mounted: nothing to tune",
        );
    };
    let detail = if options.split(',').any(|o| o == "favordynmods") {
        format!("cgroup2 at {at} has favordynmods: starts do not wait for an RCU grace period to move LXC's monitor")
    } else {
        format!("cgroup2 at {at} without favordynmods: every container start (and PVE CT start) waits an RCU grace period, 5 to 15 ms, to move LXC's monitor into its cgroup; `mount -o remount,favordynmods {at}` removes the wait at some cost to fork and exit (docs/operations.md)")
    };
    finding(NAME, Status::Ok, detail)
}

/// The mount point and superblock options of the node's cgroup2 mount.
fn cgroup2_mount(mountinfo: &str) -> Option<(&str, &str)> {
    mountinfo.lines().find_map(|line| {
        // ID PARENT DEV ROOT POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER
        let (left, right) = line.split_once(" - ")?;
        let point = left.split_whitespace().nth(4)?;
        let mut right = right.split_whitespace();
        let fstype = right.next()?;
        let super_options = right.nth(1)?;
        (fstype == "cgroup2" && matches!(point, "/sys/fs/cgroup" | "/sys/fs/cgroup/unified"))
            .then_some((point, super_options))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str =
        "30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n\
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw\n";

    #[test]
    fn a_hybrid_host_without_favordynmods_is_told_the_cost_and_the_remount() {
        let f = cgroup_attach(HYBRID);
        assert_eq!(f.status, Status::Ok);
        assert!(
            f.detail
                .contains("/sys/fs/cgroup/unified without favordynmods")
                && f.detail
                    .contains("mount -o remount,favordynmods /sys/fs/cgroup/unified"),
            "{}",
            f.detail
        );
    }

    #[test]
    fn a_v2_host_with_favordynmods_waits_for_nothing() {
        let v2 = "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,favordynmods,memory_recursiveprot\n";
        let f = cgroup_attach(v2);
        assert!(
            f.detail.contains("/sys/fs/cgroup has favordynmods"),
            "{}",
            f.detail
        );
    }

    #[test]
    fn a_cgroup2_mounted_elsewhere_is_not_the_nodes() {
        let elsewhere = "50 24 0:40 / /tmp/cg rw - cgroup2 cgroup2 rw,favordynmods\n";
        let f = cgroup_attach(elsewhere);
        assert!(f.detail.starts_with("no cgroup2 hierarchy"), "{}", f.detail);
    }
}
