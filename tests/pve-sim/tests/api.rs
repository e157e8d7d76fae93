//! The stand-in as a black box over HTTPS, without root or LXC: auth, fingerprint pinning,
//! the request log's verdicts, CT config lifecycle, VMID races and faults.

mod common;

use common::{Sim, TOKEN};
use serde_json::Value;

fn upid(a: &common::Answer) -> String {
    assert_eq!(a.status, 200, "{} {:?}", a.reason, a.body);
    a.body["data"].as_str().expect("UPID").to_string()
}

#[test]
fn fingerprint_auth_and_request_log() {
    let sim = Sim::start(&[]);
    assert_eq!(sim.fingerprint.len(), 32 * 3 - 1);
    assert!(sim
        .fingerprint
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase() || c == ':'));

    let ok = sim.call("GET", "/version", "");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["data"]["release"], "9.1");

    let wrong = TOKEN.replace("secret", "guess");
    let a = sim
        .call_as(Some(&wrong), &sim.fingerprint, "GET", "/version", "")
        .unwrap();
    assert_eq!(a.status, 401);
    let a = sim
        .call_as(None, &sim.fingerprint, "GET", "/version", "")
        .unwrap();
    assert_eq!(a.status, 401);

    // A client pinning another fingerprint must not get through the handshake.
    let other = sim.fingerprint.replace(
        &sim.fingerprint[..2],
        if &sim.fingerprint[..2] == "00" {
            "11"
        } else {
            "00"
        },
    );
    assert!(sim
        .call_as(Some(TOKEN), &other, "GET", "/version", "")
        .is_err());

    let bad = sim.call("GET", "/cluster/nextid", "vmid=12&colour=red");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.reason, "Parameter verification failed.");
    assert!(bad.body["errors"]["colour"].is_string());
    assert!(bad.body["errors"]["vmid"]
        .as_str()
        .unwrap()
        .contains("minimum"));
    assert_eq!(sim.call("GET", "/nodes/simnode/nothing", "").status, 501);
    assert_eq!(sim.call("PATCH", "/version", "").status, 501);

    let log = sim.requests();
    assert_eq!(log.len(), 6, "the refused handshake never reaches the API");
    assert_eq!(log[0]["valid"], true);
    assert_eq!(log[0]["status"], 200);
    assert_eq!(log[1]["auth"], "failed");
    let invalid: Vec<&Value> = log.iter().filter(|l| l["valid"] == false).collect();
    assert_eq!(invalid.len(), 3);
    assert!(invalid[0]["reasons"].to_string().contains("colour"));
    let text = std::fs::read_to_string(sim.dir.path().join("requests.jsonl")).unwrap();
    assert!(
        !text.contains("8d7f-secret"),
        "token secret leaked into the log"
    );
}

#[test]
fn create_config_nextid_and_destroy() {
    let sim = Sim::start(&[]);
    let n = &sim.node;
    sim.put_template("local", "none.tar.gz");
    assert_eq!(sim.call("GET", "/cluster/nextid", "").body["data"], "100");
    let form = "vmid=100&ostemplate=local%3Avztmpl%2Fnone.tar.gz&hostname=web-1&memory=256&swap=0\
                &tags=lxcri%3Bdefault&net0=name%3Deth0%2Cbridge%3Dlo%2Cip%3Ddhcp\
                &description=container%20abc%0Apod%20web&rootfs=local-zfs%3A0";
    let task = upid(&sim.call("POST", &format!("/nodes/{n}/lxc"), form));
    assert!(
        task.starts_with(&format!("UPID:{n}:")) && task.contains(":vzcreate:100:root@pam!lxcri:"),
        "{task}"
    );
    assert_eq!(sim.wait_task(&task), "OK");

    let again = sim.call(
        "POST",
        &format!("/nodes/{n}/lxc"),
        "vmid=100&ostemplate=local%3Avztmpl%2Fx.tar",
    );
    assert_eq!(again.status, 500);
    assert_eq!(again.reason, "CT 100 already exists on node 'simnode'");
    assert_eq!(sim.call("GET", "/cluster/nextid", "vmid=100").status, 400);
    assert_eq!(sim.call("GET", "/cluster/nextid", "").body["data"], "101");

    let conf = std::fs::read_to_string(sim.dir.path().join("etc/pve/lxc/100.conf")).unwrap();
    assert!(conf.starts_with("#container abc\n#pod web\n"), "{conf}");
    // PVE prints a size-0 (quota-less) subvolume as 0T.
    assert!(
        conf.contains("rootfs: local-zfs:subvol-100-disk-0,size=0T\n"),
        "{conf}"
    );
    let subvol = sim.dir.path().join("storage/local-zfs/subvol-100-disk-0");
    assert!(subvol.is_dir());

    // lxcri's node-local edit: its own directory as rootfs, the created volume kept as
    // unused0 (so destroy frees it), and a raw include, written directly to the file.
    let rootdir = sim.dir.path().join("host-rootfs");
    std::fs::create_dir(&rootdir).unwrap();
    let edited: String = conf
        .lines()
        .filter(|l| !l.starts_with("rootfs:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        sim.dir.path().join("etc/pve/lxc/100.conf"),
        format!(
            "{edited}rootfs: {}\nunused0: local-zfs:subvol-100-disk-0\nlxc.include: /run/lxcri/ns/web/pve-lxc.conf\n",
            rootdir.display()
        ),
    )
    .unwrap();
    let got = sim.call("GET", &format!("/nodes/{n}/lxc/100/config"), "");
    let data = &got.body["data"];
    assert_eq!(data["memory"], 256);
    assert_eq!(data["tags"], "lxcri;default");
    assert_eq!(data["rootfs"], rootdir.display().to_string());
    assert_eq!(data["unused0"], "local-zfs:subvol-100-disk-0");
    assert_eq!(data["lxc"][0][0], "lxc.include");
    let digest = data["digest"].as_str().unwrap().to_string();

    let put = sim.call(
        "PUT",
        &format!("/nodes/{n}/lxc/100/config"),
        &format!("cores=2&delete=swap&digest={digest}"),
    );
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_eq!(put.body["data"], Value::Null);
    let stale = sim.call(
        "PUT",
        &format!("/nodes/{n}/lxc/100/config"),
        &format!("cores=1&digest={digest}"),
    );
    assert_eq!(stale.status, 500);
    // Real PVE keeps directory rootfs and bind mounts for root@pam: so does the stand-in.
    let dir = sim.call(
        "PUT",
        &format!("/nodes/{n}/lxc/100/config"),
        "mp0=%2Fsrv%2Fx%2Cmp%3D%2Fdata",
    );
    assert_eq!(dir.status, 403, "{:?}", dir.body);
    // What a create fixed stays (pve-container src/PVE/LXC/Config.pm update_pct_config).
    for (form, reason) in [
        (
            "unprivileged=0",
            "unable to modify read-only option: 'unprivileged'",
        ),
        ("delete=ostype", "unable to delete required option 'ostype'"),
    ] {
        let answer = sim.call("PUT", &format!("/nodes/{n}/lxc/100/config"), form);
        assert_eq!((answer.status, answer.reason.as_str()), (500, reason));
    }
    let data = sim
        .call("GET", &format!("/nodes/{n}/lxc/100/config"), "")
        .body["data"]
        .clone();
    assert_eq!(data["cores"], 2);
    assert!(data.get("swap").is_none());
    // update_vm clamps cpuunits to the booted cgroup version (pve-common CGroup.pm
    // `clamp_cpu_shares`): at least 2 on v1, at most 10000 on v2.
    let unified = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    for (units, v1, v2) in [(1, 2, 1), (20000, 20000, 10000)] {
        let put = sim.call(
            "PUT",
            &format!("/nodes/{n}/lxc/100/config"),
            &format!("cpuunits={units}"),
        );
        assert_eq!(put.status, 200, "{:?}", put.body);
        let data = sim.call("GET", &format!("/nodes/{n}/lxc/100/config"), "");
        let want = if unified { v2 } else { v1 };
        assert_eq!(data.body["data"]["cpuunits"], want, "cpuunits={units}");
    }
    // So does create_vm.
    let form = "vmid=102&ostemplate=local%3Avztmpl%2Fnone.tar.gz&cpuunits=1&rootfs=local%3A0";
    assert_eq!(
        sim.wait_task(&upid(&sim.call("POST", &format!("/nodes/{n}/lxc"), form))),
        "OK"
    );
    let data = sim.call("GET", &format!("/nodes/{n}/lxc/102/config"), "");
    assert_eq!(data.body["data"]["cpuunits"], if unified { 1 } else { 2 });

    let cur = sim.call("GET", &format!("/nodes/{n}/lxc/100/status/current"), "");
    assert_eq!(cur.body["data"]["status"], "stopped");
    let list = sim.call("GET", "/cluster/resources", "type=vm");
    assert_eq!(list.body["data"][0]["id"], "lxc/100");

    // Destroy frees unusedN volumes (no destroy-unreferenced-disks needed) and never
    // touches a directory rootfs.
    let task = upid(&sim.call("DELETE", &format!("/nodes/{n}/lxc/100"), "purge=1&force=1"));
    assert_eq!(sim.wait_task(&task), "OK");
    assert!(!sim.dir.path().join("etc/pve/lxc/100.conf").exists());
    assert!(!subvol.exists(), "unused0 is freed by destroy");
    assert!(
        rootdir.is_dir(),
        "a directory rootfs is not PVE's to delete"
    );
    assert_eq!(
        sim.call("GET", &format!("/nodes/{n}/lxc/100/config"), "")
            .status,
        500
    );
    assert!(sim.requests().iter().all(|l| l["valid"] == true));
}

#[test]
fn missing_template_fails_before_any_task_and_leaves_nothing() {
    let sim = Sim::start(&[]);
    let before = sim.tree();
    let a = sim.call(
        "POST",
        "/nodes/simnode/lxc",
        "vmid=100&ostemplate=local%3Avztmpl%2Flxcri-empty.tar.gz&rootfs=local-zfs%3A0",
    );
    assert_eq!(a.status, 500);
    assert_eq!(
        a.reason,
        "volume 'local:vztmpl/lxcri-empty.tar.gz' does not exist"
    );
    assert_eq!(
        a.body["message"],
        "volume 'local:vztmpl/lxcri-empty.tar.gz' does not exist\n"
    );
    assert_eq!(a.body["data"], Value::Null);
    assert_eq!(sim.tree(), before, "no config, volume or lock file");
    let tasks = sim.call("GET", "/nodes/simnode/tasks", "");
    assert_eq!(tasks.body["data"], serde_json::json!([]), "no task ran");
    assert_eq!(sim.call("GET", "/cluster/nextid", "").body["data"], "100");
    // A template name a directory storage does not take (pve-storage Plugin.pm
    // `parse_volname`: `.tar`, `.tar.gz|xz|zst|bz2`), even when the file is there.
    sim.put_template("local", "lxcri-empty.tgz");
    let a = sim.call(
        "POST",
        "/nodes/simnode/lxc",
        "vmid=100&ostemplate=local%3Avztmpl%2Flxcri-empty.tgz&rootfs=local-zfs%3A0",
    );
    assert_eq!(
        (a.status, a.reason.as_str()),
        (
            500,
            "unable to parse directory volume name 'vztmpl/lxcri-empty.tgz'"
        )
    );

    // The same create works once the template is where PVE keeps it.
    let volid = sim.put_template("local", "lxcri-empty.tar.gz");
    assert_eq!(volid, "local:vztmpl/lxcri-empty.tar.gz");
    assert!(sim
        .dir
        .path()
        .join("storage/local/template/cache/lxcri-empty.tar.gz")
        .is_file());
    let task = upid(&sim.call(
        "POST",
        "/nodes/simnode/lxc",
        "vmid=100&ostemplate=local%3Avztmpl%2Flxcri-empty.tar.gz&rootfs=local-zfs%3A0",
    ));
    assert_eq!(sim.wait_task(&task), "OK");
    assert!(sim.requests().iter().all(|l| l["valid"] == true));
}

#[test]
fn power_calls_on_a_stopped_ct_fail_at_once() {
    let sim = Sim::start(&[]);
    sim.put_template("local", "x.tar.gz");
    let task = upid(&sim.call(
        "POST",
        "/nodes/simnode/lxc",
        "vmid=120&ostemplate=local%3Avztmpl%2Fx.tar.gz",
    ));
    assert_eq!(sim.wait_task(&task), "OK");
    for call in ["stop", "shutdown"] {
        let a = sim.call("POST", &format!("/nodes/simnode/lxc/120/status/{call}"), "");
        assert_eq!((a.status, a.reason.as_str()), (500, "CT 120 not running"));
        assert_eq!(a.body["message"], "CT 120 not running\n");
    }
    let tasks = sim.call("GET", "/nodes/simnode/tasks", "").body["data"].clone();
    assert_eq!(
        tasks.as_array().unwrap().len(),
        1,
        "only the create: {tasks}"
    );
    let missing = sim.call("POST", "/nodes/simnode/lxc/121/status/stop", "");
    assert_eq!(
        (missing.status, missing.reason.as_str()),
        (
            500,
            "Configuration file 'nodes/simnode/lxc/121.conf' does not exist"
        )
    );
}

/// pve-guest-common src/PVE/AbstractConfig.pm `check_lock`: a locked CT (here by a
/// backup) is neither started nor destroyed, and the error says which lock: the destroy's
/// API call checks it, the start's worker does (src/PVE/API2/LXC/Status.pm `vm_start`:
/// the call answers a UPID, the task fails).
#[test]
fn a_locked_ct_is_not_started_or_destroyed() {
    let sim = Sim::start(&[]);
    sim.put_template("local", "x.tar.gz");
    let task = upid(&sim.call(
        "POST",
        "/nodes/simnode/lxc",
        "vmid=130&ostemplate=local%3Avztmpl%2Fx.tar.gz",
    ));
    assert_eq!(sim.wait_task(&task), "OK");
    let path = sim.dir.path().join("etc/pve/lxc/130.conf");
    let conf = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("lock: backup\n{conf}")).unwrap();
    let start = upid(&sim.call("POST", "/nodes/simnode/lxc/130/status/start", ""));
    assert_eq!(sim.wait_task(&start), "CT is locked (backup)");
    let destroy = sim.call("DELETE", "/nodes/simnode/lxc/130", "purge=1&force=1");
    assert_eq!(
        (destroy.status, destroy.reason.as_str()),
        (500, "CT is locked (backup)")
    );
    std::fs::write(&path, &conf).unwrap();
    let task = upid(&sim.call("DELETE", "/nodes/simnode/lxc/130", "purge=1"));
    assert_eq!(sim.wait_task(&task), "OK");
}

#[test]
fn concurrent_creates_of_one_vmid_have_one_winner() {
    let sim = std::sync::Arc::new(Sim::start(&[]));
    sim.put_template("local", "x.tar");
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let sim = sim.clone();
            std::thread::spawn(move || {
                sim.call(
                    "POST",
                    "/nodes/simnode/lxc",
                    "vmid=150&ostemplate=local%3Avztmpl%2Fx.tar",
                )
                .status
            })
        })
        .collect();
    let codes: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 500).count(), 19, "{codes:?}");
}

#[test]
fn faults_answer_fail_tasks_and_drop_connections() {
    let sim = Sim::start(&[]);
    sim.put_template("local", "x.tar");
    let create = "vmid=100&ostemplate=local%3Avztmpl%2Fx.tar";
    assert_eq!(sim.admin("POST", r#"{"path_regex": "^/nodes/[^/]+/lxc$", "method": "POST", "status": 500, "message": "boom"}"#), 200);
    let a = sim.call("POST", "/nodes/simnode/lxc", create);
    assert_eq!((a.status, a.reason.as_str()), (500, "boom"));

    assert_eq!(
        sim.admin(
            "POST",
            r#"{"path_regex": "/lxc$", "task_fail": "unable to create CT 100 - disk full"}"#
        ),
        200
    );
    let task = upid(&sim.call("POST", "/nodes/simnode/lxc", create));
    assert_eq!(sim.wait_task(&task), "unable to create CT 100 - disk full");
    assert!(
        !sim.dir.path().join("etc/pve/lxc/100.conf").exists(),
        "a failed create leaves no config"
    );

    assert_eq!(
        sim.admin(
            "POST",
            r#"{"path_regex": "/version", "drop_connection": true}"#
        ),
        200
    );
    assert!(sim
        .call_as(Some(TOKEN), &sim.fingerprint, "GET", "/version", "")
        .is_err());
    assert_eq!(
        sim.call("GET", "/version", "").status,
        200,
        "times defaults to 1"
    );

    assert_eq!(
        sim.admin("POST", r#"{"path_regex": "x", "nonsense": 1}"#),
        400
    );
    assert_eq!(sim.admin("POST", r#"{"method": "GET"}"#), 400, "no path");
    let log = sim.requests();
    assert!(log
        .iter()
        .all(|l| !l["path"].as_str().unwrap().starts_with("/_sim")));
    assert!(log.iter().any(|l| l["fault"].is_object()));
}

/// While the create task runs, the config holds only PVE's lock, as the API
/// writes it before forking the worker; the rest comes when the task ends.
#[test]
fn a_ct_being_created_has_only_the_create_lock() {
    let sim = Sim::start(&[]);
    sim.put_template("local", "x.tar");
    assert_eq!(
        sim.admin("POST", r#"{"path_regex": "/lxc$", "task_delay_ms": 1500}"#),
        200
    );
    let form = "vmid=100&ostemplate=local%3Avztmpl%2Fx.tar&description=container%20abc";
    let task = upid(&sim.call("POST", "/nodes/simnode/lxc", form));
    let conf = sim.dir.path().join("etc/pve/lxc/100.conf");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "lock: create\n");
    assert_eq!(sim.wait_task(&task), "OK");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.starts_with("#container abc\n") && !text.contains("lock:"),
        "{text}"
    );
}

/// pve-container src/PVE/API2/LXC.pm `create_vm`: the worker allocates and extracts under
/// the config lock (`lock_config` around its code), then sets PVE's defaults for what the
/// call left out: `hostname: CT<VMID>`, `memory: 512`, `swap: 512`.
#[test]
fn the_create_worker_holds_the_config_lock_and_sets_pve_defaults() {
    use nix::fcntl::{Flock, FlockArg};
    let sim = Sim::start(&[]);
    sim.put_template("local", "x.tar");
    assert_eq!(
        sim.admin("POST", r#"{"path_regex": "/lxc$", "task_delay_ms": 1000}"#),
        200
    );
    let form = "vmid=100&ostemplate=local%3Avztmpl%2Fx.tar&rootfs=local-zfs%3A0";
    let task = upid(&sim.call("POST", "/nodes/simnode/lxc", form));
    // Another holder of the lock (an edit of lxcri's) while the worker wants to start.
    let lock_file =
        std::fs::File::open(sim.dir.path().join("run/lock/lxc/pve-config-100.lock")).unwrap();
    let held = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let subvol = sim.dir.path().join("storage/local-zfs/subvol-100-disk-0");
    assert!(!subvol.exists(), "nothing allocated without the lock");
    let enc: String = form_urlencoded::byte_serialize(task.as_bytes()).collect();
    let status = sim.call("GET", &format!("/nodes/simnode/tasks/{enc}/status"), "");
    assert_eq!(
        status.body["data"]["status"], "running",
        "{:?}",
        status.body
    );
    drop(held);
    assert_eq!(sim.wait_task(&task), "OK");
    assert!(subvol.is_dir());
    let data = sim.call("GET", "/nodes/simnode/lxc/100/config", "").body["data"].clone();
    assert_eq!(data["hostname"], "CT100");
    assert_eq!(data["memory"], 512);
    assert_eq!(data["swap"], 512);
    // Given ones stay, `swap: 0` too (`//=`).
    let form = "vmid=101&ostemplate=local%3Avztmpl%2Fx.tar&rootfs=local-zfs%3A0&hostname=a&memory=64&swap=0";
    let task = upid(&sim.call("POST", "/nodes/simnode/lxc", form));
    assert_eq!(sim.wait_task(&task), "OK");
    let data = sim.call("GET", "/nodes/simnode/lxc/101/config", "").body["data"].clone();
    assert_eq!(
        (&data["hostname"], &data["memory"], &data["swap"]),
        (&Value::from("a"), &Value::from(64), &Value::from(0))
    );
}

/// Each step of lxcri's create, failed by method and schema template as lxcri's
/// integration tests do it.
#[test]
fn faults_by_template_fail_each_create_step() {
    let sim = Sim::start(&[]);
    let n = &sim.node;
    sim.put_template("local", "lxcri-empty.tar.gz");
    let create = "vmid=100&ostemplate=local%3Avztmpl%2Flxcri-empty.tar.gz&rootfs=local-zfs%3A0\
                  &unprivileged=1&ostype=unmanaged&console=0&tty=0&entrypoint=%2F.lxcri%2Finit\
                  &env=A%3D1%00B%3D2&tags=lxcri&description=c1&arch=amd64&hostname=c1&memory=64";
    let arm = |json: &str| assert_eq!(sim.admin("POST", json), 200, "{json}");

    // GET /cluster/nextid fails twice, then works.
    arm(
        r#"{"method": "GET", "template": "/cluster/nextid", "status": 500, "message": "nextid down", "times": 2}"#,
    );
    for _ in 0..2 {
        let a = sim.call("GET", "/cluster/nextid", "");
        assert_eq!((a.status, a.reason.as_str()), (500, "nextid down"));
    }
    assert_eq!(sim.call("GET", "/cluster/nextid", "").body["data"], "100");

    // POST /nodes/{node}/lxc: a synchronous 500, then a create task that fails.
    arm(
        r#"{"method": "POST", "template": "/nodes/{node}/lxc", "status": 500, "message": "create refused"}"#,
    );
    let a = sim.call("POST", &format!("/nodes/{n}/lxc"), create);
    assert_eq!((a.status, a.reason.as_str()), (500, "create refused"));
    arm(
        r#"{"method": "POST", "template": "/nodes/{node}/lxc", "task_fail": "unable to create CT 100 - no space"}"#,
    );
    let task = upid(&sim.call("POST", &format!("/nodes/{n}/lxc"), create));
    assert_eq!(sim.wait_task(&task), "unable to create CT 100 - no space");
    assert!(!sim.dir.path().join("etc/pve/lxc/100.conf").exists());

    // A dropped connection before the call runs: nothing was created.
    arm(r#"{"method": "POST", "template": "/nodes/{node}/lxc", "drop_connection": true}"#);
    assert!(sim
        .call_as(
            Some(TOKEN),
            &sim.fingerprint,
            "POST",
            &format!("/nodes/{n}/lxc"),
            create
        )
        .is_err());
    assert!(!sim.dir.path().join("etc/pve/lxc/100.conf").exists());
    // ...and after it ran: the CT exists though the client saw no answer.
    arm(
        r#"{"method": "POST", "template": "/nodes/{node}/lxc", "drop_connection": true, "after": true}"#,
    );
    assert!(sim
        .call_as(
            Some(TOKEN),
            &sim.fingerprint,
            "POST",
            &format!("/nodes/{n}/lxc"),
            create
        )
        .is_err());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let cfg = sim.call("GET", &format!("/nodes/{n}/lxc/100/config"), "");
        if cfg.status == 200 && cfg.body["data"].get("lock").is_none() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "create did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // POST .../status/start: a synchronous 500, then a start task that fails. Neither
    // touches LXC, so this runs without root.
    let start = "/nodes/{node}/lxc/{vmid}/status/start";
    arm(&format!(
        r#"{{"method": "POST", "template": "{start}", "status": 500, "message": "start refused"}}"#
    ));
    let a = sim.call("POST", &format!("/nodes/{n}/lxc/100/status/start"), "");
    assert_eq!((a.status, a.reason.as_str()), (500, "start refused"));
    arm(&format!(
        r#"{{"method": "POST", "template": "{start}", "task_fail": "startup for container '100' failed"}}"#
    ));
    let task = upid(&sim.call("POST", &format!("/nodes/{n}/lxc/100/status/start"), ""));
    assert_eq!(sim.wait_task(&task), "startup for container '100' failed");

    // The list shows what is armed; every fault above was used up.
    arm(&format!(
        r#"{{"method": "POST", "template": "{start}", "status": 500, "times": 3}}"#
    ));
    let list = sim.admin_answer("GET", "").body["data"].clone();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["template"], start);
    assert_eq!(
        (list[0]["left"].as_u64(), list[0]["hits"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(sim.admin("DELETE", ""), 200);
    assert_eq!(
        sim.admin_answer("GET", "").body["data"],
        serde_json::json!([])
    );

    let log = sim.requests();
    assert!(log.iter().all(|l| l["valid"] == true));
    let faulted: Vec<&Value> = log.iter().filter(|l| l["fault"].is_object()).collect();
    assert_eq!(faulted.len(), 8, "{faulted:?}");
    assert_eq!(faulted[0]["template"], "/cluster/nextid");
    assert_eq!(faulted[0]["fault"]["template"], "/cluster/nextid");
}

/// pve-container's `check_ct_modify_config_perm`: each key needs its own
/// VM.Config privilege, and the call needs one of them at all. The CT is made
/// with everything allowed; then user.cfg (read again when it changes) takes
/// privileges away.
#[test]
fn config_updates_need_the_privilege_of_each_key() {
    let sim = Sim::start(&[]);
    let n = &sim.node;
    sim.put_template("local", "none.tar.gz");
    let form = "vmid=100&ostemplate=local%3Avztmpl%2Fnone.tar.gz&rootfs=local-zfs%3A0";
    let task = upid(&sim.call("POST", &format!("/nodes/{n}/lxc"), form));
    assert_eq!(sim.wait_task(&task), "OK");
    // The test's token is root@pam's, which holds everything whatever the ACLs say;
    // a privilege-separated token holds only what its own ACLs give it.
    let users = |privs: &str| {
        format!(
            "user:root@pam:1:0::::::\ntoken:root@pam!lxcri:0:1::\nrole:Some:{privs}:\n\
             acl:1:/:root@pam!lxcri:Some:\n"
        )
    };
    sim.write_etc(
        "user.cfg",
        &users("VM.Allocate,VM.Audit,VM.PowerMgmt,VM.Config.Memory,Datastore.AllocateSpace,Datastore.AllocateTemplate,Datastore.Audit,Sys.Audit"),
    );
    let put = |form: &str| sim.call("PUT", &format!("/nodes/{n}/lxc/100/config"), form);
    assert_eq!(put("memory=512&swap=0").status, 200);
    for (form, privilege) in [
        ("cpulimit=0.5", "VM.Config.CPU"),
        ("memory=256&cores=2", "VM.Config.CPU"),
        ("delete=cpuunits", "VM.Config.CPU"),
        ("hostname=web", "VM.Config.Network"),
        ("onboot=1", "VM.Config.Options"),
    ] {
        let answer = put(form);
        assert_eq!(answer.status, 403, "{form}: {:?}", answer.body);
        assert_eq!(
            answer.reason,
            format!("Permission check failed (/vms/100, {privilege})"),
            "{form}"
        );
    }
    let data = sim
        .call("GET", &format!("/nodes/{n}/lxc/100/config"), "")
        .body["data"]
        .clone();
    assert_eq!(data["memory"], 512, "a refused update changes nothing");
    sim.write_etc(
        "user.cfg",
        &users("VM.Allocate,VM.Audit,Datastore.AllocateSpace"),
    );
    let answer = put("memory=64");
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.reason,
        "Permission check failed (/vms/100, VM.Config.Disk|VM.Config.CPU|VM.Config.Memory|VM.Config.Network|VM.Config.Options)"
    );
    std::fs::remove_file(sim.dir.path().join("etc/pve/user.cfg")).unwrap();
    let task = upid(&sim.call("DELETE", &format!("/nodes/{n}/lxc/100"), ""));
    assert_eq!(sim.wait_task(&task), "OK");
}

/// `--pve-timing`: a task's UPID comes after the worker's fork, and the task takes what
/// its type does on PVE (timing.rs).
#[test]
fn pve_timing_makes_tasks_take_pve_like_time() {
    let sim = Sim::start(&["--pve-timing"]);
    let n = &sim.node;
    sim.put_template("local", "none.tar.gz");
    let began = std::time::Instant::now();
    let form = "vmid=100&ostemplate=local%3Avztmpl%2Fnone.tar.gz&rootfs=local-zfs%3A0";
    let task = upid(&sim.call("POST", &format!("/nodes/{n}/lxc"), form));
    let answered = began.elapsed();
    assert_eq!(sim.wait_task(&task), "OK");
    let done = began.elapsed();
    assert!(
        answered >= std::time::Duration::from_millis(30),
        "{answered:?}"
    );
    assert!(done >= std::time::Duration::from_millis(430), "{done:?}");
    let task = upid(&sim.call("DELETE", &format!("/nodes/{n}/lxc/100"), ""));
    assert_eq!(sim.wait_task(&task), "OK");
}

/// A node without cluster quorum (pmxcfs shows `/etc/pve/local` as mode 0555): create
/// and start refuse as pve-container's API does (`check_cfs_quorum`), every write under
/// `/etc/pve` meets pmxcfs's EACCES (a config update; a destroy, which has freed the
/// volumes by then, keeps the config), reads still work; with quorum back all goes on.
#[test]
fn without_quorum_creates_starts_and_config_writes_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::start(&[]);
    sim.put_template("local", "x.tar.gz");
    let create = |vmid: u32| {
        sim.call(
            "POST",
            "/nodes/simnode/lxc",
            &format!("vmid={vmid}&ostemplate=local%3Avztmpl%2Fx.tar.gz&rootfs=local%3A1"),
        )
    };
    assert_eq!(sim.wait_task(&upid(&create(140))), "OK");
    let conf = sim.dir.path().join("etc/pve/lxc/140.conf");
    let before = std::fs::read_to_string(&conf).unwrap();
    let local = sim.dir.path().join("etc/pve/local");
    let set_quorum = |mode: u32| {
        std::fs::set_permissions(&local, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set_quorum(0o555);

    let no_quorum = (500, "cluster not ready - no quorum?".to_string());
    let a = create(141);
    assert_eq!((a.status, a.reason.clone()), no_quorum);
    assert!(!sim.dir.path().join("etc/pve/lxc/141.conf").exists());
    let a = sim.call("POST", "/nodes/simnode/lxc/140/status/start", "");
    assert_eq!((a.status, a.reason.clone()), no_quorum);
    let a = sim.call("PUT", "/nodes/simnode/lxc/140/config", "hostname=other");
    assert_eq!(a.status, 500, "{}", a.reason);
    assert!(
        a.reason.starts_with("unable to open file '")
            && a.reason.contains("/etc/pve/lxc/140.conf.tmp.")
            && a.reason.ends_with("' - Permission denied"),
        "{}",
        a.reason
    );
    let a = sim.call("GET", "/nodes/simnode/lxc/140/config", "");
    assert_eq!(a.status, 200, "reads need no quorum: {}", a.reason);
    let task = upid(&sim.call("DELETE", "/nodes/simnode/lxc/140", "purge=1"));
    let status = sim.wait_task(&task);
    assert!(status.ends_with("' - Permission denied"), "{status}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);

    set_quorum(0o755);
    let task = upid(&sim.call("DELETE", "/nodes/simnode/lxc/140", "purge=1"));
    assert_eq!(sim.wait_task(&task), "OK");
    assert!(!conf.exists());
    assert_eq!(sim.wait_task(&upid(&create(141))), "OK");
}

/// pve-container src/PVE/LXC/Config.pm `update_pct_config` checks each `netN` a create
/// or a config update sets before anything is written (an MTU against its bridge, SLAAC
/// with host-managed); a config update then regenerates the LXC config
/// (src/PVE/API2/LXC/Config.pm `update_vm` -> `update_lxc_config`), and a NIC whose
/// bridge does not exist fails the call with the new config already written.
#[test]
fn nics_are_checked_at_create_and_update_as_on_a_node() {
    let sim = Sim::start(&[]);
    sim.put_template("local", "x.tar.gz");
    let create = |vmid: u32, net: &str| {
        sim.call(
            "POST",
            "/nodes/simnode/lxc",
            &format!(
                "vmid={vmid}&ostemplate=local%3Avztmpl%2Fx.tar.gz&rootfs=local%3A0&net0={}",
                form_urlencoded::byte_serialize(net.as_bytes()).collect::<String>()
            ),
        )
    };
    for (net, reason) in [
        (
            "name=eth0,bridge=nosuchbr0,mtu=1400",
            "bridge 'nosuchbr0' does not exist",
        ),
        (
            "name=eth0,bridge=nosuchbr0,host-managed=1,ip6=auto",
            "net0: SLAAC is not supported for host-managed network configuration.",
        ),
    ] {
        let a = create(150, net);
        assert_eq!((a.status, a.reason.as_str()), (500, reason), "{net}");
        assert!(!sim.dir.path().join("etc/pve/lxc/150.conf").exists());
    }
    // No MTU asked for: the bridge is only read when the LXC config is made.
    assert_eq!(
        sim.wait_task(&upid(&create(150, "name=eth0,bridge=nosuchbr0"))),
        "OK"
    );
    let a = sim.call(
        "PUT",
        "/nodes/simnode/lxc/150/config",
        "net0=name%3Deth1%2Cbridge%3Dnosuchbr1",
    );
    assert_eq!(
        (a.status, a.reason.as_str()),
        (500, "bridge 'nosuchbr1' does not exist")
    );
    let conf = std::fs::read_to_string(sim.dir.path().join("etc/pve/lxc/150.conf")).unwrap();
    assert!(conf.contains("bridge=nosuchbr1"), "written before: {conf}");
}
