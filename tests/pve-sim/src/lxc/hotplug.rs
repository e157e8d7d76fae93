//! A config update of a running CT, as PVE does it: pve-container
//! src/PVE/API2/LXC/Config.pm `update_vm` -> src/PVE/LXC/Config.pm `update_pct_config`,
//! which puts every change into the pending section, `cleanup_pending` (pve-guest-common
//! src/PVE/AbstractConfig.pm) dropping what equals the current config, then
//! `vmconfig_hotplug_pending`: the fast-plug keys are taken at once, and `memory`, `swap`,
//! `cpulimit` and `cpuunits` are written into the CT's cgroup ([`CGroup`]). A failed write
//! is "unable to hotplug OPT: MSG", and `update_vm` raises the errors before it writes the
//! config; what was written into the cgroup by then stays.
//!
//! pve-sim has no pending section: an update that PVE would leave (partly) pending until
//! the next start, or that hotplugs a NIC, mount point or device or removes an unused
//! volume, is refused, naming the key ([`Pending::check_modelled`]). lxcri sends a running
//! CT only resource keys.

mod cgroup;

pub use cgroup::{CGroup, SysFiles};

use super::render::calculate_memory_constraints;
use std::collections::{BTreeMap, BTreeSet};

/// Config.pm `$LXC_FASTPLUG_OPTIONS`: taken into the config of a running CT at once.
const FASTPLUG: &[&str] = &[
    "description",
    "onboot",
    "startup",
    "protection",
    "hostname",
    "hookscript",
    "cores",
    "tags",
    "lock",
];

/// What `vmconfig_hotplug_pending` applies to a running CT: deletes of these...
const HOTPLUG_DELETES: &[&str] = &["swap", "cpulimit", "cpuunits"];
/// ...and sets of these (besides the fast-plug keys).
const HOTPLUG_SETS: &[&str] = &["memory", "swap", "cpulimit", "cpuunits"];

/// Keys PVE hotplugs by other means than the cgroup, which pve-sim does not model.
fn unmodelled_hotplug(key: &str) -> Option<&'static str> {
    let family = key.trim_end_matches(|c: char| c.is_ascii_digit());
    match family {
        _ if family == key => None,
        "net" => Some("update_net / veth_delete"),
        "mp" => Some("apply_pending_mountpoint"),
        "dev" => Some("device_passthrough_hotplug"),
        "unused" => Some("delete_mountpoint_volume"),
        _ => None,
    }
}

fn is_fastplug(key: &str) -> bool {
    FASTPLUG.contains(&key)
}

/// The pending section of one update, after `cleanup_pending`.
#[derive(Debug, Default, PartialEq)]
pub struct Pending {
    /// Key -> new value, each different from the current one.
    pub sets: BTreeMap<String, String>,
    /// Keys to delete, each set in the current config.
    pub deletes: BTreeSet<String>,
}

impl Pending {
    /// `update_pct_config` and `cleanup_pending`: `current` is a key's value in the
    /// config. A delete of a key the config lacks is only warned about
    /// ("cannot delete 'KEY' - not set in current configuration!"); a value equal to the
    /// current one (a string comparison, `eq`) changes nothing.
    pub fn new(
        current: impl Fn(&str) -> Option<String>,
        sets: &BTreeMap<String, String>,
        deletes: &[&str],
    ) -> Pending {
        Pending {
            sets: sets
                .iter()
                .filter(|(k, v)| current(k).as_ref() != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            deletes: deletes
                .iter()
                .filter(|k| current(k).is_some())
                .map(|k| k.to_string())
                .collect(),
        }
    }

    /// Refuses what PVE would hotplug by means pve-sim lacks, or keep pending: the first
    /// such key, deletes before sets as `vmconfig_hotplug_pending` goes.
    pub fn check_modelled(&self) -> Result<(), String> {
        let deletes = self.deletes.iter().map(|k| (k, HOTPLUG_DELETES));
        let sets = self.sets.keys().map(|k| (k, HOTPLUG_SETS));
        for (key, hotplugged) in deletes.chain(sets) {
            if is_fastplug(key) || hotplugged.contains(&key.as_str()) {
                continue;
            }
            return Err(match unmodelled_hotplug(key) {
                Some(how) => format!(
                    "{key}: pve-sim does not model hotplugging it into a running CT (PVE: {how})"
                ),
                None => format!(
                    "{key}: PVE would keep this change pending until the CT's next start, and \
                     pve-sim does not model pending changes: change it while the CT is stopped"
                ),
            });
        }
        Ok(())
    }

    /// `vmconfig_hotplug_pending`'s cgroup writes, in its order (deletes, then sets, each
    /// by sorted key); the errors by key. Memory and swap change together, once per
    /// update: the first of them to succeed (a deleted swap included) sets the flag that
    /// makes the others pass without a write, though their values still go into the config.
    pub fn hotplug(&self, cg: &CGroup<'_>) -> BTreeMap<String, String> {
        let mut errors = BTreeMap::new();
        let mut memory_done = false;
        for opt in &self.deletes {
            let result = match opt.as_str() {
                "swap" => hotplug_memory(cg, None, Some("0"), &mut memory_done),
                // "reset, cgroup module can better decide values"
                "cpulimit" => cg.change_cpu_quota(None, None),
                "cpuunits" => cg.change_cpu_shares(None),
                // Fast-plug: gone from the config, nothing else.
                _ => Ok(()),
            };
            note(&mut errors, opt, result);
        }
        for (opt, value) in &self.sets {
            let result = match opt.as_str() {
                "cpulimit" => {
                    // `int(100000 * $value)`: a float product, truncated (0.29 -> 28999).
                    let quota = (100_000.0 * perl_float(value)).trunc() as i64;
                    cg.change_cpu_quota(Some(quota), Some(100_000))
                }
                "cpuunits" => cg.change_cpu_shares(Some(perl_float(value) as i64)),
                "memory" | "swap" if !memory_done => hotplug_memory(
                    cg,
                    self.sets.get("memory").map(String::as_str),
                    self.sets.get("swap").map(String::as_str),
                    &mut memory_done,
                ),
                _ => Ok(()),
            };
            note(&mut errors, opt, result);
        }
        errors
    }
}

/// `$add_hotplug_error`: PVE's message keeps the `die`'s newline.
fn note(errors: &mut BTreeMap<String, String>, opt: &str, result: Result<(), String>) {
    if let Err(msg) = result {
        errors.insert(opt.to_string(), format!("unable to hotplug {opt}: {msg}\n"));
    }
}

/// A schema-checked number as Perl reads it.
fn perl_float(value: &str) -> f64 {
    value.trim().parse().unwrap_or(0.0)
}

/// The `$hotplug_memory` closure: MiB to bytes (`calculate_memory_constraints` for the
/// memory and its `memory.high`), then `change_memory_limit`; the flag is set only when
/// that did not die.
fn hotplug_memory(
    cg: &CGroup<'_>,
    memory: Option<&str>,
    swap: Option<&str>,
    done: &mut bool,
) -> Result<(), String> {
    let (mem, high) = match memory {
        Some(m) => {
            let (max, high) = calculate_memory_constraints(perl_float(m));
            (Some(i128::from(max)), Some(i128::from(high)))
        }
        None => (None, None),
    };
    let swap = swap.map(|s| (perl_float(s) * 1024.0 * 1024.0).trunc() as i128);
    cg.change_memory_limit(mem, swap, high)?;
    *done = true;
    Ok(())
}

#[cfg(test)]
mod tests;
