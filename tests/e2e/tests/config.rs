//! containerd's per-runtime `ConfigPath` option (`ctr run
//! --runtime-config-path`) reaches the shim: its settings are used, and a
//! broken file fails create with the key named.

use lxcri_e2e::{require, Containerd, Runtime};

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
