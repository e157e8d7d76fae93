//! `linux.memoryPolicy` -> the mode and node mask the init hands to
//! `set_mempolicy(2)`, checked as runc 1.4+ checks them (specconv
//! `mpolModeMap`/`mpolModeFMap` and `configs.ToCPUSet`, validate
//! `memoryPolicy`). The init sets it while it still holds every capability
//! and before the seccomp filter (Docker's default profile allows
//! `set_mempolicy` only with `CAP_SYS_NICE`), for exec processes as well.

use lxcri_init_spec::{MemoryPolicy, MEMORY_POLICY_MAX_NODES};
use oci_spec::runtime::{MemoryPolicyFlagType, MemoryPolicyModeType, Spec};

use super::scheduling::id_list;
use super::{invalid, Result};

const FIELD: &str = "linux.memoryPolicy";

/// The policy of `spec`, if it states one.
pub(super) fn memory_policy(spec: &Spec) -> Result<Option<MemoryPolicy>> {
    let Some(policy) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref())
    else {
        return Ok(None);
    };
    // include/uapi/linux/mempolicy.h
    let mode = policy.mode();
    let number = match mode {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    };
    let mut flags = 0u32;
    for flag in policy.flags().as_deref().unwrap_or_default() {
        flags |= match flag {
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
        };
    }
    let nodes = id_list(
        &format!("{FIELD}.nodes"),
        "node",
        MEMORY_POLICY_MAX_NODES,
        policy.nodes().as_deref(),
    )?
    .unwrap_or_default();
    // runc's words (validate `memoryPolicy`).
    match mode {
        MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal
            if !nodes.is_empty() =>
        {
            return Err(invalid(
                &format!("{FIELD}.nodes"),
                &format!(
                    "memory policy mode requires 0 nodes but got {}",
                    nodes.len()
                ),
            ))
        }
        MemoryPolicyModeType::MpolBind
        | MemoryPolicyModeType::MpolInterleave
        | MemoryPolicyModeType::MpolPreferredMany
        | MemoryPolicyModeType::MpolWeightedInterleave
            if nodes.is_empty() =>
        {
            return Err(invalid(
                &format!("{FIELD}.nodes"),
                "memory policy mode requires at least one node but got 0",
            ))
        }
        _ => {}
    }
    Ok(Some(MemoryPolicy {
        mode: number | flags,
        nodes,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn plan(policy: Value) -> Result<Option<MemoryPolicy>> {
        let spec: Spec = serde_json::from_value(json!({
            "ociVersion": "1.2.1",
            "linux": {"memoryPolicy": policy},
        }))
        .unwrap();
        memory_policy(&spec)
    }

    #[test]
    fn modes_flags_and_nodes_as_the_kernel_takes_them() {
        let bind =
            plan(json!({"mode": "MPOL_BIND", "nodes": "0-2,5", "flags": ["MPOL_F_STATIC_NODES"]}));
        assert_eq!(
            bind.unwrap(),
            Some(MemoryPolicy {
                mode: 2 | 1 << 15,
                nodes: vec![0, 1, 2, 5]
            })
        );
        let local = plan(json!({"mode": "MPOL_LOCAL"})).unwrap().unwrap();
        assert_eq!((local.mode, local.nodes.len()), (4, 0));
        // Preferred takes no node or some.
        assert_eq!(
            plan(json!({"mode": "MPOL_PREFERRED"}))
                .unwrap()
                .unwrap()
                .mode,
            1
        );
        assert_eq!(
            plan(json!({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": "1", "flags": ["MPOL_F_RELATIVE_NODES", "MPOL_F_NUMA_BALANCING"]}))
                .unwrap()
                .unwrap()
                .mode,
            6 | 1 << 14 | 1 << 13
        );
        let none: Spec =
            serde_json::from_value(json!({"ociVersion": "1.2.1", "linux": {}})).unwrap();
        assert_eq!(memory_policy(&none).unwrap(), None);
    }

    #[test]
    fn node_counts_and_lists_as_runc_checks_them() {
        for (policy, want) in [
            (
                json!({"mode": "MPOL_BIND"}),
                "linux.memoryPolicy.nodes: memory policy mode requires at least one node but got 0",
            ),
            (
                json!({"mode": "MPOL_DEFAULT", "nodes": "0"}),
                "linux.memoryPolicy.nodes: memory policy mode requires 0 nodes but got 1",
            ),
            (
                json!({"mode": "MPOL_INTERLEAVE", "nodes": "1024"}),
                "linux.memoryPolicy.nodes: node 1024 is above 1023",
            ),
            (
                json!({"mode": "MPOL_INTERLEAVE", "nodes": "3-1"}),
                "linux.memoryPolicy.nodes: \"3-1\" is a backward range",
            ),
        ] {
            assert_eq!(plan(policy).unwrap_err().to_string(), want);
        }
    }
}
