//! PVE's LXC hooks, run by LXC as `pve-sim hook ...`: the stand-in's copy of
//! pve-container's src/lxc-pve.conf (installed as `common.conf.d/01-pve.conf`) names this
//! binary for `lxc.hook.pre-start` and `lxc.hook.post-stop` (and each NIC's
//! `lxc.net.N.script.up` names it with `--lxcnetaddbr`, see `netaddbr`), and LXC runs it through
//! `/bin/sh -c "exec HOOK NAME lxc TYPE"` (lxc src/lxc/conf.c `run_script_argv`,
//! utils.c `lxc_popen`), with LXC_ROOTFS_PATH, LXC_ROOTFS_MOUNT, LXC_CONFIG_FILE... set
//! (start.c `lxc_init`). Its stdout and stderr go to LXC's log at DEBUG (`run_buffer`); a
//! non-zero exit aborts the start ("Script exited with status N").

use super::mounts::{
    bindmount, errstr, move_mount, open_tree_clone, umount_recursive, walk_tree_nofollow_fd,
};
use super::netaddbr::veth_delete;
use super::nets::nets;
use super::ovs::Ovs;
use super::render::{numbered, sub_format, truthy};
use crate::schema::{property_string, Schema};
use crate::store::CtConfig;
use crate::zfs_storage::ZfsStorageArg;
use clap::Parser;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `pve-sim hook`: what the include file runs.
#[derive(Parser, Debug)]
#[command(name = "pve-sim hook")]
pub struct HookArgs {
    /// The stand-in's data dir (etc/pve/lxc/VMID.conf, storages).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// PVE API schema, to parse VMID.conf as the server does (the server's
    /// `--schema`; default the built-in one).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// LXC path (the staging directory lives in it).
    #[arg(long)]
    pub lxcpath: PathBuf,
    /// The server's `--zfs-storage` storages.
    #[arg(long, value_parser = crate::zfs_storage::parse_arg)]
    pub zfs_storage: Vec<ZfsStorageArg>,
    /// The server's `--ovsdb`, for PVE's `ovs-vsctl` calls.
    #[arg(long, default_value = crate::cli::DEFAULT_OVSDB)]
    pub ovsdb: String,
    /// Run as pve-container's src/lxcnetaddbr (a NIC's `script.up`), not as a hook.
    #[arg(long)]
    pub lxcnetaddbr: bool,
    /// What LXC appends with `lxc.hook.version = 0`: NAME SECTION TYPE.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub lxc_args: Vec<String>,
}

/// Quotes `s` for `/bin/sh` (LXC hands the hook line to `sh -c`) when it needs it. Plain
/// words stay bare: LXC's parse_line strips a quote pair around the whole value.
fn sh_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._:=@%+,-".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The hook command line the include file names.
pub fn command(
    exe: &Path,
    data_dir: &Path,
    schema: Option<&Path>,
    lxcpath: &Path,
    zfs: &[ZfsStorageArg],
    ovsdb: &str,
) -> String {
    let mut c = format!(
        "{} hook --data-dir {} --lxcpath {} --ovsdb {}",
        sh_quote(&exe.display().to_string()),
        sh_quote(&data_dir.display().to_string()),
        sh_quote(&lxcpath.display().to_string()),
        sh_quote(ovsdb),
    );
    if let Some(schema) = schema {
        c.push_str(&format!(
            " --schema {}",
            sh_quote(&schema.display().to_string())
        ));
    }
    for z in zfs {
        c.push_str(&format!(
            " --zfs-storage {}",
            sh_quote(&format!("{}={}", z.id, z.dataset))
        ));
    }
    c
}

/// The stand-in's `common.conf.d/01-pve.conf`: pve-container src/lxc-pve.conf without
/// its autodev hook (device passthrough is a mount entry here, see render.rs).
pub fn include_file(hook: &str) -> String {
    format!(
        "# pve-sim: pve-container's src/lxc-pve.conf (common.conf.d/01-pve.conf) with its\n\
         # Perl hooks replaced by pve-sim's own (docs/pve-sim.md)\n\
         lxc.hook.pre-start = {hook}\n\
         lxc.hook.post-stop = {hook}\n"
    )
}

/// Runs the hook; the process exit code (Perl's `die` exits 255 when `$!` is 0).
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args = match HookArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let result = if args.lxcnetaddbr {
        super::netaddbr::main(
            &args.data_dir,
            args.schema.as_deref(),
            &args.ovsdb,
            &args.lxc_args,
        )
    } else {
        run(&args)
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            255
        }
    }
}

/// pve-container src/PVE/LXC/Tools.pm `lxc_hook`: the CT name, section and type from the
/// arguments (hook version 0) or the environment (version 1).
fn run(args: &HookArgs) -> Result<(), String> {
    let env = |k: &str| std::env::var(k).ok();
    let (name, section, ty) = match env("LXC_HOOK_VERSION").as_deref().unwrap_or("0") {
        "0" => match args.lxc_args.as_slice() {
            [n, s, t, ..] => (n.clone(), s.clone(), t.clone()),
            _ => {
                return Err("missing hook parameters, expected to be called by lxc as hook".into())
            }
        },
        "1" => (
            env("LXC_NAME").ok_or("missing LXC_NAME environment variable")?,
            env("LXC_HOOK_SECTION").ok_or("missing LXC_HOOK_SECTION environment variable")?,
            env("LXC_HOOK_TYPE").ok_or("missing LXC_HOOK_TYPE environment variable")?,
        ),
        v => return Err(format!("lxc.hook.version {v} not supported!")),
    };
    let Ok(vmid) = name.parse::<u32>() else {
        return Ok(());
    };
    if section != "lxc" || !name.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    let need = |k: &str| env(k).ok_or(format!("missing {k} env var"));
    let _rootfs_mount = need("LXC_ROOTFS_MOUNT")?;
    let rootfs_path = PathBuf::from(need("LXC_ROOTFS_PATH")?);
    let _config_file = need("LXC_CONFIG_FILE")?;
    let conf = args.data_dir.join(format!("etc/pve/lxc/{vmid}.conf"));
    // Both hooks: `return undef if !-f config_file($vmid)`.
    let Ok(text) = std::fs::read_to_string(&conf) else {
        return Ok(());
    };
    let schema = Schema::load(args.schema.as_deref()).map_err(|e| format!("{e:#}"))?;
    let cfg = CtConfig::parse(vmid, &text, &schema)?.0;
    let props = schema
        .config_properties()
        .ok_or("schema has no config properties")?;
    match ty.as_str() {
        "pre-start" => pre_start(args, vmid, &cfg, props, &rootfs_path),
        "post-stop" => post_stop(args, vmid, &cfg, &rootfs_path),
        _ => Ok(()),
    }
}

/// pve-container src/lxc-pve-prestart-hook, the parts that shape what the CT sees.
/// Not modelled: the skiplock flag file and lock check (the API has checked the lock),
/// the warnings file, device passthrough nodes, the OS setup plugin's
/// `pre_start_hook`, SDN DHCP mappings.
fn pre_start(
    args: &HookArgs,
    vmid: u32,
    cfg: &CtConfig,
    props: &serde_json::Map<String, serde_json::Value>,
    rootdir: &Path,
) -> Result<(), String> {
    // "only start if we have quorum": a start whose task began before the loss.
    crate::quorum::check(&args.data_dir.join("etc/pve"))?;
    cleanup_cgroups(vmid)?;
    let owner = root_ids(cfg)?;
    // "Unmount first when the user mounted the container with "pct mount"", errors ignored.
    let _ = umount_recursive(rootdir, true);
    let storage = crate::storage::Storage::new(&args.data_dir, &args.zfs_storage)?;
    let staging = staging_tempfs(&args.lxcpath)?;
    let mut rootfs_fd: Option<OwnedFd> = None;
    for mp in volumes(cfg, props)? {
        // $setup_mountpoint: LXC.pm mountpoint_stage, then mountpoint_insert_staged.
        let stage = staging.join(&mp.key);
        if let Err(e) = std::fs::create_dir(&stage) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(format!(
                    "failed to create directory {}: {e}",
                    stage.display()
                ));
            }
        }
        mount_volume(&mp, &stage, &storage)?;
        let mount_fd = open_tree_clone(&stage)?;
        let dest = match &rootfs_fd {
            // Mount points go below the rootfs mount, symlinks in the CT refused.
            Some(root) => walk_tree_nofollow_fd(
                "/",
                root.as_fd(),
                &format!("./{}", mp.mp),
                true,
                Some(owner),
            )?,
            None => {
                let slash = nix::fcntl::open(
                    "/",
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| format!("failed to open '.': {}", errstr(e)))?;
                let rootdir = rootdir.display().to_string();
                walk_tree_nofollow_fd("/", slash.as_fd(), &rootdir, true, Some(owner))?
            }
        };
        move_mount(mount_fd.as_fd(), dest.as_fd()).map_err(|e| {
            format!(
                "failed to move '{}' into container hierarchy: {}",
                mp.key,
                errstr(e)
            )
        })?;
        if rootfs_fd.is_none() {
            rootfs_fd = Some(mount_fd);
        }
    }
    Ok(())
}

/// pve-container src/lxc-pve-poststop-hook: unmount the rootfs and the staged mounts, and
/// delete the veths LXC may have missed and their OVS ports. Not modelled: deactivating
/// volumes, pending changes, reboot, hookscripts.
fn post_stop(args: &HookArgs, vmid: u32, cfg: &CtConfig, rootdir: &Path) -> Result<(), String> {
    umount_recursive(rootdir, false)?;
    let staging = args.lxcpath.join(".pve-staged-mounts");
    for e in std::fs::read_dir(&staging).into_iter().flatten().flatten() {
        if let Err(err) = nix::mount::umount(&e.path()) {
            eprintln!(
                "command 'umount -- {}' failed: {}",
                e.path().display(),
                errstr(err)
            );
        }
    }
    // "netlink is not a reliable protocol": LXC may have missed deleting a veth.
    let ovs = Ovs { db: &args.ovsdb };
    for (ind, _) in nets(cfg) {
        veth_delete(&format!("veth{vmid}i{ind}"), &ovs)?;
    }
    Ok(())
}

/// One volume to mount (Config.pm `foreach_volume`: rootfs, then mp0, mp1...).
struct Volume {
    key: String,
    volume: String,
    mp: String,
    ro: bool,
}

fn volumes(
    cfg: &CtConfig,
    props: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<Volume>, String> {
    let mut out = Vec::new();
    let mut keys: Vec<(&String, &String)> =
        cfg.options.get_key_value("rootfs").into_iter().collect();
    keys.extend(numbered(cfg, "mp"));
    for (key, value) in keys {
        let format_key = if key == "rootfs" { "rootfs" } else { "mp0" };
        let format = sub_format(props, format_key).ok_or("schema has no mount point format")?;
        let v = property_string::parse(format, value)?;
        let mp = if key == "rootfs" {
            Some("/".to_string())
        } else {
            v.get("mp").cloned()
        };
        // __mountpoint_mount: `return if !$volid || !$mount`.
        let (Some(volume), Some(mp)) = (v.get("volume").cloned(), mp) else {
            continue;
        };
        out.push(Volume {
            key: key.clone(),
            volume,
            mp,
            ro: truthy(v.get("ro")),
        });
    }
    Ok(out)
}

/// LXC.pm `__mountpoint_mount` onto a staging directory, by Config.pm
/// `classify_mountpoint`: `/dev/...` is a device, another absolute path a bind mount,
/// anything else a storage volume (the stand-in's volumes are all directories, PVE's
/// `subvol` format, which it bind-mounts too).
fn mount_volume(
    mp: &Volume,
    stage: &Path,
    storage: &crate::storage::Storage,
) -> Result<(), String> {
    if mp.volume.starts_with("/dev/") {
        let mut cmd = Command::new("mount");
        if mp.ro {
            cmd.args(["-o", "ro"]);
        }
        let out = cmd
            .arg(&mp.volume)
            .arg(stage)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            return Err(format!(
                "command 'mount {} {}' failed: exit code {}",
                mp.volume,
                stage.display(),
                out.status.code().unwrap_or(-1)
            ));
        }
        return Ok(());
    }
    if mp.volume.starts_with('/') {
        // __mountpoint_mount, type bind (`-d` follows symlinks; bindmount then refuses
        // any symlink on the way).
        if !Path::new(&mp.volume).is_dir() {
            return Err(format!("directory '{}' does not exist", mp.volume));
        }
        return bindmount(&mp.volume, stage, mp.ro);
    }
    let path = storage.resolve(&mp.volume)?;
    bindmount(&path.display().to_string(), stage, mp.ro)
}

/// LXC.pm `get_staging_tempfs`: a tmpfs on `LXCPATH/.pve-staged-mounts`, mounted only by
/// the start that makes the directory (PVE returns an existing directory as it is).
fn staging_tempfs(lxcpath: &Path) -> Result<PathBuf, String> {
    let target = lxcpath.join(".pve-staged-mounts");
    match std::fs::create_dir(&target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(target),
        Err(e) => {
            return Err(format!(
                "failed to create directory {}: {e}",
                target.display()
            ))
        }
    }
    nix::mount::mount(
        Some("none"),
        &target,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=8k,mode=755"),
    )
    .map_err(|e| {
        format!(
            "failed to mount {} as tmpfs: {}",
            target.display(),
            errstr(e)
        )
    })?;
    Ok(target)
}

/// LXC.pm `parse_id_maps`: the host ids of the CT's root.
fn root_ids(cfg: &CtConfig) -> Result<(u32, u32), String> {
    let (mut uid, mut gid, mut any) = (0, 0, false);
    for (_, v) in cfg.lxc.iter().filter(|(k, _)| k == "lxc.idmap") {
        let f: Vec<&str> = v.split_whitespace().collect();
        let nums: Option<Vec<u32>> = f
            .get(1..4)
            .map(|n| n.iter().filter_map(|x| x.parse().ok()).collect());
        match (f.first(), nums) {
            (Some(&t @ ("u" | "g")), Some(n)) if f.len() == 4 && n.len() == 3 => {
                any = true;
                if n[0] == 0 {
                    if t == "u" {
                        uid = n[1];
                    } else {
                        gid = n[1];
                    }
                }
            }
            _ => return Err(format!("failed to parse idmap: {v}")),
        }
    }
    if !any && truthy(cfg.options.get("unprivileged")) {
        return Ok((100000, 100000));
    }
    Ok((uid, gid))
}

/// src/lxc-pve-prestart-hook `cleanup_cgroups`: leftover `lxc/VMID` and
/// `lxc.monitor/VMID` cgroups would make LXC fail; remove them in every hierarchy.
fn cleanup_cgroups(vmid: u32) -> Result<(), String> {
    let (v1, v2, unified) = super::host::detect_cgroups();
    let mut bases: Vec<String> = Vec::new();
    if unified {
        bases.push("/sys/fs/cgroup".into());
    } else {
        for c in &v1 {
            // `name=systemd` is mounted just as `systemd`.
            bases.push(format!("/sys/fs/cgroup/{}", c.trim_start_matches("name=")));
        }
        if v2.is_some() {
            bases.push("/sys/fs/cgroup/unified".into());
        }
    }
    for b in bases {
        rmdir_recursive(&PathBuf::from(format!("{b}/lxc/{vmid}")))?;
        rmdir_recursive(&PathBuf::from(format!("{b}/lxc.monitor/{vmid}")))?;
    }
    Ok(())
}

/// An I/O error as Perl's `$!` prints it.
fn ioerr(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errstr(nix::errno::Errno::from_raw(n)).to_string(),
        None => e.to_string(),
    }
}

/// src/lxc-pve-prestart-hook `rmdir_recursive`.
fn rmdir_recursive(path: &Path) -> Result<(), String> {
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(format!(
                "failed to open directory '{}': {}",
                path.display(),
                ioerr(&e)
            ))
        }
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            rmdir_recursive(&e.path())?;
        }
    }
    std::fs::remove_dir(path).map_err(|e| {
        format!(
            "failed to remove directory '{}': {}",
            path.display(),
            ioerr(&e)
        )
    })
}
