//! containerd's per-runtime `ConfigPath` option (`ctr run
//! --runtime-config-path`) reaches the shim: its settings are used, and a
//! broken file fails create with the key named; a node config that breaks
//! fails creates, never cleanups.

use std::time::Duration;

use lxcri_e2e::{cleanup, cmd, require, Containerd, Runtime};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn config_path_runtime_option_is_used() {
    require(Runtime::Lxcri, "config_path_runtime_option_is_used");
    let ctd = Containerd::start();
    ctd.import_busybox();
    let root = ctd.dir().join("lxcri-state");
    let lxcpath = ctd.dir().join("lxcri-lxc");
    let config = ctd.dir().join("lxcri.toml");
    std::fs::write(
        &config,
        format!(
            "runtime_root = \"{}\"\n[lxc]\nlxcpath = \"{}\"\n",
            root.display(),
            lxcpath.display()
        ),
    )
    .unwrap();
    let id = ctd.new_id("cfg");
    let flag = format!("--runtime-config-path={}", config.display());
    ctd.run_detached(Runtime::Lxcri, &id, &["sleep", "1000"], &[&flag]);
    let name = format!("{}_{}", ctd.namespace(), id);
    // On the pve backend the LXC side is PVE's (LXCRI_PVE_LXCPATH): the
    // container is a CT of the stand-in instead.
    let on_pve = ctd.pve().is_some();
    if let Some(sim) = ctd.pve() {
        assert!(
            sim.ct_of(ctd.namespace(), &id).is_some(),
            "no CT for the container"
        );
    } else {
        assert!(
            lxcpath.join(&name).join("config").is_file(),
            "no LXC config under the configured lxcpath {}",
            lxcpath.display()
        );
    }
    assert!(
        root.join(ctd.namespace())
            .join(&id)
            .join("state.json")
            .is_file(),
        "no state record under the configured runtime_root {}",
        root.display()
    );
    assert!(
        !std::path::Path::new("/var/lib/lxcri/lxc")
            .join(&name)
            .exists(),
        "the default lxcpath was used"
    );
    ctd.remove(&id);
    assert!(!lxcpath.join(&name).exists(), "LXC container left behind");
    if on_pve {
        assert_eq!(ctd.leftovers(&id), Vec::<String>::new());
    }
    assert!(!root.join(ctd.namespace()).exists(), "state left behind");

    let bad = ctd.dir().join("bad.toml");
    std::fs::write(&bad, "bogus_key = 1\n").unwrap();
    let id = ctd.new_id("badcfg");
    let out = ctd.run(
        Runtime::Lxcri,
        &id,
        &["true"],
        &[&format!("--runtime-config-path={}", bad.display())],
    );
    assert!(
        out.code != Some(0) && out.all_output().contains("bogus_key"),
        "a broken config file must fail create naming the key: {out}"
    );
    ctd.ctr(&["containers", "rm", &id]);
}

/// The node's config file breaks while containers run: a new create fails
/// naming the cause (never the defaults in its place) and leaves nothing,
/// and containerd's cleanup of a running container whose shim died still
/// works, with the configuration that container was created with.
#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn a_broken_node_config_fails_create_and_cleanup_still_works() {
    if !require(Runtime::Lxcri, "a_broken_node_config") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node_config = dir.path().join("lxcri.toml");
    std::fs::write(&node_config, "# the node's config\n").unwrap();
    let ctd = Containerd::start_with_env(&[("LXCRI_CONFIG", node_config.to_str().unwrap())]);
    ctd.import_busybox();
    let running = ctd.new_id("before");
    ctd.run_detached(Runtime::Lxcri, &running, &["sleep", "1000"], &[]);

    std::fs::write(&node_config, "backend = \"lxc\"\nbogus_key = 1\n").unwrap();
    let id = ctd.new_id("broken");
    let out = ctd.run(Runtime::Lxcri, &id, &["true"], &[]);
    assert!(
        out.code != Some(0) && out.all_output().contains("bogus_key"),
        "a broken config file must fail create naming the key: {out}"
    );
    ctd.ctr(&["containers", "rm", &id]);
    assert_eq!(ctd.leftovers(&id), Vec::<String>::new());

    // The running container's shim dies: containerd's `<shim> delete`
    // cleans up with the configuration it was created with.
    let (pid, _) = ctd.task(&running).expect("task listed");
    for (p, _) in cleanup::processes()
        .into_iter()
        .filter(|(_, c)| c.contains(lxcri_e2e::LXCRI_SHIM) && c.contains(ctd.namespace()))
    {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    let dead = cmd::poll(Duration::from_secs(30), || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(dead.is_some(), "the container's process {pid} survived");
    ctd.ctr(&["task", "rm", "-f", &running]);
    ctd.ctr(&["containers", "rm", &running]);
    let clean = cmd::poll(Duration::from_secs(30), || {
        ctd.leftovers(&running).is_empty().then_some(())
    });
    assert!(
        clean.is_some(),
        "left behind: {:#?}",
        ctd.leftovers(&running)
    );
}
