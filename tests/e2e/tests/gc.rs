//! `lxcri gc` finds what a container left when nobody cleaned up after it
//! (its shim killed while containerd was down, and its bundle removed as
//! containerd does on delete) and removes it all with `--force`; a running
//! container is never touched.

use std::process::Command;
use std::time::Duration;

use lxcri_e2e::containerd::bin_dir;
use lxcri_e2e::{cleanup, cmd, require, Containerd, Runtime};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// `lxcri gc [--force] --json` with the shims' environment.
fn gc(ctd: &Containerd, force: bool) -> serde_json::Value {
    let mut c = Command::new(bin_dir().join("lxcri"));
    c.args(["gc", "--json"]);
    if force {
        c.arg("--force");
    }
    if let Some(sim) = ctd.pve() {
        c.envs(sim.env());
    }
    let out = c.output().expect("run lxcri gc");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lxcri gc: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("gc JSON ({e}): {text}"))
}

/// gc's verdict on container `id` of `ctd`.
fn verdict(doc: &serde_json::Value, ctd: &Containerd, id: &str) -> Option<(String, String)> {
    doc["containers"].as_array()?.iter().find_map(|c| {
        (c["namespace"] == ctd.namespace() && c["id"] == id).then(|| {
            (
                c["verdict"].as_str().unwrap_or("").to_string(),
                c["action"].as_str().unwrap_or("").to_string(),
            )
        })
    })
}

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn gc_removes_what_a_forgotten_container_left() {
    if !require(Runtime::Lxcri, "gc_removes_what_a_forgotten_container_left") {
        return;
    }
    let mut ctd = Containerd::start();
    ctd.import_busybox();
    let keep = ctd.new_id("keep");
    ctd.run_detached(Runtime::Lxcri, &keep, &["sleep", "1000"], &[]);
    let id = ctd.new_id("lost");
    ctd.run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[]);
    let (pid, _) = ctd.task(&id).expect("task listed");
    let doc = gc(&ctd, false);
    assert_eq!(
        verdict(&doc, &ctd, &id).map(|v| v.0),
        Some("live".into()),
        "{doc:#}"
    );

    // containerd goes down, the container's shim and process die, and its
    // bundle goes as containerd's delete removes it: nobody is left to
    // run `<shim> delete`.
    ctd.stop();
    let bundle = ctd.bundle(&id);
    let this_shim = format!("-namespace {} -id {id} ", ctd.namespace());
    for (p, _) in cleanup::processes()
        .into_iter()
        .filter(|(_, c)| c.contains(lxcri_e2e::LXCRI_SHIM) && c.contains(&this_shim))
    {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    let dead = cmd::poll(Duration::from_secs(20), || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(dead.is_some(), "the container's process {pid} lives on");
    cleanup::unmount_under(std::slice::from_ref(&bundle));
    std::fs::remove_dir_all(&bundle).expect("remove the bundle");
    assert!(!ctd.leftovers(&id).is_empty(), "nothing left to collect");

    let doc = gc(&ctd, false);
    assert_eq!(
        verdict(&doc, &ctd, &id),
        Some(("orphan".into(), "would-remove".into())),
        "{doc:#}"
    );
    assert!(
        !ctd.leftovers(&id).is_empty(),
        "a dry run removed something"
    );
    let doc = gc(&ctd, true);
    assert_eq!(
        verdict(&doc, &ctd, &id),
        Some(("orphan".into(), "removed".into())),
        "{doc:#}"
    );
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
    assert_eq!(
        verdict(&doc, &ctd, &keep).map(|v| v.1),
        Some("keep".into()),
        "{doc:#}"
    );
    ctd.restart();
    ctd.remove(&keep);
}
