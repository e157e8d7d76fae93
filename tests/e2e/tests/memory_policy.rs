//! `linux.memoryPolicy` (runtime-spec 1.3): the process runs under the
//! NUMA policy, as runc 1.4+ sets it (`setupMemoryPolicy`); both backends.
//! runc 1.4 needs Go 1.24, which this machine cannot install, and the runc
//! 1.1.5 and 1.3.6 here ignore the field; containerd before 2.2 drops it
//! when it copies the spec: lxcri alone, through its shim directly
//! ([`lxcri_e2e::shim_task`]), against the kernel's own view of the policy
//! (`/proc/self/numa_maps`).

use lxcri_e2e::shim_task::{run_spec, ShimTask};
use lxcri_e2e::{spec, Containerd, Runtime};
use serde_json::json;

/// The policy of the process's first mapping, as `numa_maps` names it.
const POLICY: &str = "head -1 /proc/self/numa_maps | awk '{print $2}'";

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn the_process_runs_under_the_memory_policy() {
    let ctd = Containerd::start();
    for (policy, want) in [
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0\n"),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            "interleave=static:0\n",
        ),
        (json!({"mode": "MPOL_LOCAL"}), "local\n"),
    ] {
        let id = ctd.new_id("mpol");
        let mut s = spec::busybox_spec(&ctd, &id, &["sh", "-c", POLICY]);
        s["linux"]["memoryPolicy"] = policy.clone();
        let (status, out) = run_spec(&ctd, Runtime::Lxcri, &id, &s);
        assert_eq!((status, out.as_str()), (Ok(0), want), "{policy}");
        let left = ctd.leftovers(&id);
        assert!(left.is_empty(), "{policy}: left behind: {left:#?}");
    }
}

/// A node the machine lacks: the kernel refuses the policy, the create
/// fails naming the field and nothing is left; a mode with too few nodes
/// is refused at planning, in runc's words.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_policy_that_cannot_be_set_fails_the_create() {
    let ctd = Containerd::start();
    for (policy, cause) in [
        (
            json!({"mode": "MPOL_BIND", "nodes": "1000"}),
            "set_mempolicy (linux.memoryPolicy)",
        ),
        (
            json!({"mode": "MPOL_BIND"}),
            "linux.memoryPolicy.nodes: memory policy mode requires at least one node but got 0",
        ),
    ] {
        let id = ctd.new_id("mpolbad");
        let mut s = spec::busybox_spec(&ctd, &id, &["true"]);
        s["linux"]["memoryPolicy"] = policy.clone();
        let (status, out) = run_spec(&ctd, Runtime::Lxcri, &id, &s);
        let error = status.expect_err("the create should fail");
        assert!(error.contains(cause), "{policy}: {error}\n{out}");
        let left = ctd.leftovers(&id);
        assert!(left.is_empty(), "{policy}: left behind: {left:#?}");
    }
}

/// An exec runs under the container's memory policy too, as runc's
/// `setns` init sets it.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn an_exec_runs_under_the_memory_policy() {
    let ctd = Containerd::start();
    let id = ctd.new_id("mpolexec");
    let mut s = spec::busybox_spec(&ctd, &id, &["sleep", "1000"]);
    s["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    let bundle = ctd.dir().join(format!("bundle-{id}"));
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("config.json"), serde_json::to_vec(&s).unwrap()).unwrap();
    let task = ShimTask::start(&ctd, Runtime::Lxcri, &id, &bundle).unwrap();
    task.create(&bundle, &bundle.join("output")).unwrap();
    task.start_process("").unwrap();
    let mut process = s["process"].clone();
    process["args"] = json!(["sh", "-c", POLICY]);
    let exec_output = bundle.join("exec-output");
    let exec = task.exec("policy", &process, &exec_output);
    let killed = task.kill(9);
    let status = task.wait("");
    task.finish();
    let seen = std::fs::read_to_string(&exec_output).unwrap_or_default();
    assert_eq!((exec, seen.as_str()), (Ok(0), "bind:0\n"));
    assert_eq!((killed, status), (Ok(()), Ok(137)));
    let left = ctd.leftovers(&id);
    assert!(left.is_empty(), "left behind: {left:#?}");
}
