//! What the host's Linux security modules offer a container's spec: is
//! AppArmor on and which profiles are loaded, is SELinux on. Read from
//! securityfs and selinuxfs under a root directory, so tests bring their own.
//!
//! runc applies `process.apparmorProfile` and `process.selinuxLabel` only at
//! the exec of the container's process, and fails there when the kernel
//! refuses them. lxcri checks the same conditions when it plans, so the
//! create fails before anything is made and the error names the field.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// AppArmor's name for "no profile", accepted whether or not AppArmor is on.
pub const APPARMOR_UNCONFINED: &str = "unconfined";

#[derive(Debug, Error)]
pub enum LsmError {
    #[error("AppArmor profile {profile:?} requested, but AppArmor is not enabled on this node")]
    AppArmorDisabled { profile: String },
    #[error(
        "AppArmor profile {profile:?} is not loaded on this node (load it with `apparmor_parser -r FILE`)"
    )]
    AppArmorNotLoaded { profile: String },
    #[error("reading AppArmor's loaded profiles from {path}: {source}")]
    AppArmorProfiles { path: PathBuf, source: io::Error },
    #[error("an SELinux label is set, but SELinux is not enabled on this node")]
    SelinuxDisabled,
}

/// The host's security modules, read lazily (a spec that names no profile
/// or label costs no read).
#[derive(Debug, Clone)]
pub struct HostLsm {
    root: PathBuf,
}

impl HostLsm {
    /// This host.
    pub fn host() -> Self {
        Self::at(Path::new("/"))
    }

    /// A host whose `/sys` is under `root`.
    pub fn at(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// As runc's `apparmor.IsEnabled`: securityfs has AppArmor's directory
    /// and the module says it is enabled.
    pub fn apparmor_enabled(&self) -> bool {
        let module = self.root.join("sys/module/apparmor/parameters/enabled");
        self.root.join("sys/kernel/security/apparmor").is_dir()
            && std::fs::read(module).is_ok_and(|b| b.first() == Some(&b'Y'))
    }

    /// Fails unless `profile` can be applied on this host: AppArmor is on and
    /// the profile is loaded (`unconfined` always can).
    pub fn check_apparmor_profile(&self, profile: &str) -> Result<(), LsmError> {
        if profile == APPARMOR_UNCONFINED {
            return Ok(());
        }
        if !self.apparmor_enabled() {
            return Err(LsmError::AppArmorDisabled {
                profile: profile.into(),
            });
        }
        let path = self.root.join("sys/kernel/security/apparmor/profiles");
        let list = std::fs::read_to_string(&path)
            .map_err(|source| LsmError::AppArmorProfiles { path, source })?;
        if loaded_profiles(&list).any(|p| p == profile) {
            Ok(())
        } else {
            Err(LsmError::AppArmorNotLoaded {
                profile: profile.into(),
            })
        }
    }

    /// As go-selinux's `GetEnabled` in practice: selinuxfs is mounted and
    /// has a policy loaded (`enforce` exists in permissive mode too).
    pub fn selinux_enabled(&self) -> bool {
        self.root.join("sys/fs/selinux/enforce").is_file()
    }

    /// Fails unless SELinux can apply a label on this host.
    pub fn check_selinux(&self) -> Result<(), LsmError> {
        if self.selinux_enabled() {
            Ok(())
        } else {
            Err(LsmError::SelinuxDisabled)
        }
    }
}

/// The names in securityfs' `apparmor/profiles`: one `NAME (MODE)` per line.
/// The AppArmor profile process `pid` runs under, as `lxc-attach` reads it
/// to confine what it attaches (lxc `attach.c`): `None` when unconfined or
/// when AppArmor is not on (the files then fail with `EINVAL`).
pub fn apparmor_profile_of(pid: i32) -> Option<String> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}/attr"));
    // The per-module file where LSMs are stacked, else the shared one.
    let text = std::fs::read_to_string(proc_dir.join("apparmor/current"))
        .or_else(|_| std::fs::read_to_string(proc_dir.join("current")))
        .ok()?;
    profile_in_label(&text)
}

/// `NAME (MODE)` -> NAME; `unconfined` and anything unreadable -> None.
fn profile_in_label(label: &str) -> Option<String> {
    let label = label.trim_end_matches(['\n', '\0']);
    let name = match label.rsplit_once(" (") {
        Some((name, mode)) if mode.ends_with(')') => name,
        _ => label,
    };
    let printable = !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic());
    (printable && name != APPARMOR_UNCONFINED).then(|| name.to_string())
}

fn loaded_profiles(list: &str) -> impl Iterator<Item = &str> {
    list.lines()
        .filter_map(|l| l.rsplit_once(" (").map(|(name, _)| name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_with(apparmor: Option<&str>, selinux: bool) -> (tempfile::TempDir, HostLsm) {
        let dir = tempfile::tempdir().unwrap();
        if let Some(profiles) = apparmor {
            let sec = dir.path().join("sys/kernel/security/apparmor");
            std::fs::create_dir_all(&sec).unwrap();
            std::fs::write(sec.join("profiles"), profiles).unwrap();
            let module = dir.path().join("sys/module/apparmor/parameters");
            std::fs::create_dir_all(&module).unwrap();
            std::fs::write(module.join("enabled"), "Y\n").unwrap();
        }
        if selinux {
            let fs = dir.path().join("sys/fs/selinux");
            std::fs::create_dir_all(&fs).unwrap();
            std::fs::write(fs.join("enforce"), "1").unwrap();
        }
        let lsm = HostLsm::at(dir.path());
        (dir, lsm)
    }

    #[test]
    fn a_label_gives_its_profile_and_unconfined_none() {
        for (label, want) in [
            (
                "lxc-105_</var/lib/lxc> (enforce)\n",
                Some("lxc-105_</var/lib/lxc>"),
            ),
            ("docker-default (complain)", Some("docker-default")),
            ("unconfined\n", None),
            ("unconfined (unconfined)\n", None),
            ("", None),
            ("two words (enforce)", None),
        ] {
            assert_eq!(profile_in_label(label).as_deref(), want, "{label:?}");
        }
    }

    #[test]
    fn loaded_profile_passes_and_unknown_one_is_named() {
        let list = "cri-containerd.apparmor.d (enforce)\n/usr/bin/man (complain)\nlxc-container-default-cgns (enforce)\n";
        let (_d, lsm) = host_with(Some(list), false);
        assert!(lsm.apparmor_enabled());
        lsm.check_apparmor_profile("cri-containerd.apparmor.d")
            .unwrap();
        lsm.check_apparmor_profile("/usr/bin/man").unwrap();
        let e = lsm.check_apparmor_profile("cri-validate-apparmor-test-deny-write");
        assert!(
            matches!(&e, Err(LsmError::AppArmorNotLoaded { profile }) if profile == "cri-validate-apparmor-test-deny-write"),
            "{e:?}"
        );
        // A prefix of a loaded name is not that profile.
        assert!(lsm.check_apparmor_profile("cri-containerd").is_err());
    }

    #[test]
    fn without_apparmor_only_unconfined_is_accepted() {
        let (_d, lsm) = host_with(None, false);
        assert!(!lsm.apparmor_enabled());
        lsm.check_apparmor_profile(APPARMOR_UNCONFINED).unwrap();
        let e = lsm.check_apparmor_profile("lxc-default").unwrap_err();
        assert!(e.to_string().contains("\"lxc-default\""), "{e}");
        assert!(e.to_string().contains("not enabled"), "{e}");
    }

    #[test]
    fn apparmor_module_disabled_counts_as_off() {
        let (d, lsm) = host_with(Some("x (enforce)\n"), false);
        std::fs::write(
            d.path().join("sys/module/apparmor/parameters/enabled"),
            "N\n",
        )
        .unwrap();
        assert!(!lsm.apparmor_enabled());
        assert!(matches!(
            lsm.check_apparmor_profile("x"),
            Err(LsmError::AppArmorDisabled { .. })
        ));
    }

    #[test]
    fn selinux_is_on_only_with_selinuxfs() {
        let (_d, off) = host_with(None, false);
        assert!(matches!(
            off.check_selinux(),
            Err(LsmError::SelinuxDisabled)
        ));
        let (_d2, on) = host_with(None, true);
        on.check_selinux().unwrap();
    }
}
