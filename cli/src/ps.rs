//! `lxcri ps`: the containers recorded under the runtime root, and whether
//! their init is still alive.
//!
//! The state record cannot tell `created` from `running` (both have a live
//! init), so a live init is shown as `running` and anything else as `stopped`.

use std::path::Path;

use lxcri::config::Config;
use lxcri::state::{ContainerRecord, StateError, StateStore};

use crate::table::or_dash;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `lxcri ps` prints.
#[derive(Debug)]
pub struct Listed {
    /// The table or JSON.
    pub out: String,
    /// One line per record that could not be read, for stderr.
    pub warnings: Vec<String>,
}

/// Lists the containers and renders them as a table or JSON; a record that
/// cannot be read is left out and named on stderr, as `runc list` does.
pub fn run(config: &Config, args: &Args) -> Result<Listed, StateError> {
    let listing = StateStore::new(&config.runtime_root).list()?;
    let proc_root = Path::new("/proc");
    let rows: Vec<(&ContainerRecord, &str)> = listing
        .records
        .iter()
        .map(|r| (r, state(proc_root, r)))
        .collect();
    Ok(Listed {
        out: if args.json { json(&rows) } else { table(&rows) },
        warnings: listing
            .unreadable
            .iter()
            .map(|u| format!("lxcri ps: left out {}/{}: {}", u.namespace, u.id, u.error))
            .collect(),
    })
}

/// `running` while the recorded init runs.
fn state(proc_root: &Path, r: &ContainerRecord) -> &'static str {
    if r.live_init_pid(proc_root).is_some() {
        "running"
    } else {
        "stopped"
    }
}

/// The NICs lxcri plugged: `eth1=lx1a2b3c4di1@vmbr1` (inside = host end
/// @ bridge), comma-separated.
fn ports(r: &ContainerRecord) -> String {
    if r.nics.is_empty() {
        return "-".to_string();
    }
    let port = |n: &lxcri::network::plug::PluggedNic| match &n.bridge {
        Some(b) => format!("{}={}@{b}", n.name, n.host),
        None => format!("{}={}", n.name, n.host),
    };
    r.nics.iter().map(port).collect::<Vec<_>>().join(",")
}

fn pod(r: &ContainerRecord) -> String {
    match (&r.pod_namespace, &r.pod) {
        (Some(ns), Some(pod)) => format!("{ns}/{pod}"),
        (None, Some(pod)) => pod.clone(),
        _ => "-".to_string(),
    }
}

/// One row per container; `-` where a column does not apply (VMID and
/// NODE on the lxc backend, PID before the init runs).
fn table(rows: &[(&ContainerRecord, &str)]) -> String {
    let header = [
        "ID",
        "NAMESPACE",
        "BACKEND",
        "NAME",
        "VMID",
        "NODE",
        "PID",
        "STATE",
        "POD",
        "PORTS",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.map(String::from).to_vec()];
    for (r, state) in rows {
        lines.push(vec![
            r.id.clone(),
            r.namespace.clone(),
            r.backend.clone(),
            r.backend_name.clone(),
            or_dash(r.vmid),
            or_dash(r.node.as_deref()),
            or_dash(r.pid),
            state.to_string(),
            pod(r),
            ports(r),
        ]);
    }
    crate::table::render(&lines)
}

fn json(rows: &[(&ContainerRecord, &str)]) -> String {
    let list: Vec<_> = rows
        .iter()
        .map(|(r, state)| {
            serde_json::json!({
                "id": r.id,
                "namespace": r.namespace,
                "backend": r.backend,
                "name": r.backend_name,
                "vmid": r.vmid,
                "node": r.node,
                "pid": r.pid,
                "state": state,
                "pod": r.pod,
                "pod_namespace": r.pod_namespace,
                "sandbox_id": r.sandbox_id,
                "bundle": r.bundle,
                "created_at_ns": r.created_at_ns,
                "nics": r.nics,
            })
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&list).expect("JSON values serialize");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A realistic stat line whose comm holds `) (` to exercise the parsing.
    fn stat_line(state: char, start: u64) -> String {
        format!(
            "1234 (we) (ird) {state} 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 {start} 1000 200 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
        )
    }

    fn fake_proc(pid: i32, stat: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(pid.to_string());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("stat"), stat).unwrap();
        tmp
    }

    fn with_init(pid: Option<i32>, start: Option<u64>) -> ContainerRecord {
        ContainerRecord {
            pid,
            pid_start_time: start,
            ..record("abc", None)
        }
    }

    #[test]
    fn this_process_is_running() {
        let stat = fs::read_to_string("/proc/self/stat").unwrap();
        let (_, started) = lxcri::pidfd::parse_stat(&stat).unwrap();
        let pid = Some(std::process::id() as i32);
        let proc = Path::new("/proc");
        assert_eq!(state(proc, &with_init(pid, Some(started))), "running");
        assert_eq!(state(proc, &with_init(pid, Some(started + 1))), "stopped");
    }

    #[test]
    fn liveness() {
        let proc = fake_proc(42, &stat_line('S', 777));
        let running = |pid, start| state(proc.path(), &with_init(pid, start)) == "running";
        assert!(running(Some(42), Some(777)));
        assert!(running(Some(42), None));
        assert!(!running(Some(42), Some(778)), "pid reused");
        assert!(!running(Some(43), Some(777)), "gone");
        assert!(!running(None, None));
        assert!(!running(Some(0), None), "no pid 0");
        let zombie = fake_proc(42, &stat_line('Z', 777));
        assert_eq!(
            state(zombie.path(), &with_init(Some(42), Some(777))),
            "stopped"
        );
    }

    fn record(id: &str, pod: Option<&str>) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            namespace: "k8s.io".into(),
            bundle: "/b".into(),
            backend: "lxc".into(),
            backend_name: format!("k8s.io_{id}"),
            pid: Some(7),
            pid_start_time: Some(1),
            sandbox_id: None,
            pod: pod.map(String::from),
            pod_namespace: pod.map(|_| "default".to_string()),
            rootfs_mounted: true,
            rootfs: None,
            created_at_ns: 1,
            vmid: None,
            node: None,
            nics: Vec::new(),
            userns_slot: None,
            container_name: None,
            image: None,
            poststop_hooks: false,
        }
    }

    #[test]
    fn renders_table_and_json() {
        let a = record("abc", Some("web-0"));
        let b = record("a-much-longer-id", None);
        let rows = [(&a, "running"), (&b, "stopped")];
        let t = table(&rows);
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  "), "{t}");
        assert!(lines[1].contains("default/web-0"), "{t}");
        // Columns line up: STATE starts at the same offset on every line.
        let col = lines[0].find("STATE").unwrap();
        assert_eq!(&lines[1][col..col + 7], "running");
        assert_eq!(&lines[2][col..col + 7], "stopped");

        // The lxc backend has no VMID or node.
        let vmid = lines[0].find("VMID").unwrap();
        let node = lines[0].find("NODE").unwrap();
        assert_eq!(&lines[1][vmid..vmid + 2], "- ", "{t}");
        assert_eq!(&lines[1][node..node + 2], "- ", "{t}");

        let v: serde_json::Value = serde_json::from_str(&json(&rows)).unwrap();
        assert_eq!(v[0]["name"], "k8s.io_abc");
        assert_eq!(v[0]["state"], "running");
        assert_eq!(v[1]["pod"], serde_json::Value::Null);
        assert_eq!(v[0]["vmid"], serde_json::Value::Null);
        assert_eq!(v[0]["node"], serde_json::Value::Null);
    }

    #[test]
    fn pve_rows_show_vmid_and_node() {
        let mut a = record("abc", None);
        a.backend = "pve".into();
        a.backend_name = "10042".into();
        a.vmid = Some(10042);
        a.node = Some("pve1".into());
        let b = record("def", None);
        let rows = [(&a, "running"), (&b, "stopped")];
        let t = table(&rows);
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(
            lines[0],
            "ID   NAMESPACE  BACKEND  NAME        VMID   NODE  PID  STATE    POD  PORTS"
        );
        assert_eq!(
            lines[1],
            "abc  k8s.io     pve      10042       10042  pve1  7    running  -    -"
        );
        assert_eq!(
            lines[2],
            "def  k8s.io     lxc      k8s.io_def  -      -     7    stopped  -    -"
        );

        let v: serde_json::Value = serde_json::from_str(&json(&rows)).unwrap();
        assert_eq!(v[0]["vmid"], 10042);
        assert_eq!(v[0]["node"], "pve1");
        assert_eq!(v[1]["vmid"], serde_json::Value::Null);
    }

    #[test]
    fn ports_show_each_nic_with_its_host_end_and_bridge() {
        let mut a = record("abc", None);
        let nic = |name: &str, host: &str, bridge: Option<&str>| lxcri::network::plug::PluggedNic {
            host: host.into(),
            name: name.into(),
            bridge: bridge.map(String::from),
            ovs: false,
        };
        a.nics = vec![
            nic("eth1", "lx01020304i0", Some("vmbr1")),
            nic("eth2", "lx01020304i1", None),
        ];
        let t = table(&[(&a, "running")]);
        assert!(
            t.lines()
                .nth(1)
                .unwrap()
                .ends_with("eth1=lx01020304i0@vmbr1,eth2=lx01020304i1"),
            "{t}"
        );
        let v: serde_json::Value = serde_json::from_str(&json(&[(&a, "running")])).unwrap();
        assert_eq!(v[0]["nics"][0]["host"], "lx01020304i0");
        assert_eq!(v[0]["nics"][0]["bridge"], "vmbr1");
    }

    #[test]
    fn lists_from_the_runtime_root() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::new(tmp.path());
        let mut rec = record("x", None);
        rec.pid = None;
        store.save(&rec).unwrap();
        let mut config = Config::default();
        config.runtime_root = tmp.path().to_path_buf();
        let torn = store.container_dir("x", "torn").unwrap();
        std::fs::create_dir_all(&torn).unwrap();
        std::fs::write(torn.join("state.json"), b"{").unwrap();
        let listed = run(&config, &Args { json: false }).unwrap();
        let out = listed.out;
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.lines().nth(1).unwrap().contains("stopped"), "{out}");
        assert_eq!(listed.warnings.len(), 1, "{:?}", listed.warnings);
        assert!(
            listed.warnings[0].starts_with("lxcri ps: left out x/torn: state ")
                && listed.warnings[0].contains("x/torn/state.json is corrupt"),
            "{:?}",
            listed.warnings
        );
        let empty = tempfile::tempdir().unwrap();
        config.runtime_root = empty.path().join("missing");
        let listed = run(&config, &Args { json: true }).unwrap();
        assert_eq!(listed.out.trim(), "[]");
        assert!(listed.warnings.is_empty());
    }
}
