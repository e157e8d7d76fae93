//! ZFS pool storages (`--zfs-storage ID=DATASET`): a storage of type `zfspool` whose
//! volumes are real datasets `DATASET/subvol-VMID-disk-N`, made and destroyed with the
//! `zfs` command as PVE's ZFSPoolPlugin does. Nothing of such a storage lives under
//! `DATA_DIR/storage`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The `zfs` binary (zfs-fuse's on the test machine, OpenZFS's on a node).
const ZFS: &str = "/usr/sbin/zfs";
/// PVE's `zfs_delete_zvol` tries a busy dataset this many times, this far apart.
const BUSY_TRIES: u32 = 20;
const BUSY_WAIT: Duration = Duration::from_millis(250);

/// One `--zfs-storage ID=DATASET` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZfsStorageArg {
    pub id: String,
    pub dataset: String,
}

/// Parses `ID=DATASET`: ID is a PVE storage id, DATASET a dataset name of
/// `[A-Za-z0-9_.:/-]` without an empty path component.
pub fn parse_arg(s: &str) -> Result<ZfsStorageArg, String> {
    let (id, dataset) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not ID=DATASET"))?;
    if !valid_storage_id(id) {
        return Err(format!(
            "storage id '{id}' is not a PVE storage id ([A-Za-z][A-Za-z0-9_.-]*)"
        ));
    }
    if !valid_dataset(dataset) {
        return Err(format!(
            "dataset '{dataset}' is not a ZFS dataset name ([A-Za-z0-9_.:/-], \
             no leading, trailing or double '/')"
        ));
    }
    Ok(ZfsStorageArg {
        id: id.to_string(),
        dataset: dataset.to_string(),
    })
}

/// A PVE storage id: `[A-Za-z][A-Za-z0-9_.-]*`.
fn valid_storage_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn valid_dataset(ds: &str) -> bool {
    !ds.is_empty()
        && ds
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:/-".contains(c))
        && ds.split('/').all(|part| !part.is_empty())
}

/// The refquota of a new `STORAGE:SIZE_GiB` subvolume in KiB, as PVE computes it:
/// `int(gib * 1024) * 1024`. 0 means no quota.
pub fn quota_kib(gib: &str) -> u64 {
    let gib = gib.parse::<f64>().unwrap_or(0.0);
    if !gib.is_finite() || gib <= 0.0 {
        return 0;
    }
    ((gib * 1024.0).trunc() as u64) * 1024
}

/// A volume name PVE's ZFS plugin parses (`subvol-100-disk-0`, `vm-...`, `base-...`), as
/// one dataset name below the storage's dataset.
pub fn volume_name_ok(name: &str) -> bool {
    let Some((kind, rest)) = name.split_once('-') else {
        return false;
    };
    let Some((vmid, tail)) = rest.split_once('-') else {
        return false;
    };
    matches!(kind, "subvol" | "vm" | "base" | "basevol")
        && !vmid.is_empty()
        && vmid.chars().all(|c| c.is_ascii_digit())
        && !tail.is_empty()
        && tail
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

/// The direct children of `dataset` in `zfs list -H -o name -r DATASET` output that are
/// volumes `subvol-VMID-disk-N` of `vmid`, by their names below `dataset`.
pub fn children_of(dataset: &str, listing: &str, vmid: u32) -> Vec<String> {
    let prefix = format!("subvol-{vmid}-disk-");
    listing
        .lines()
        .filter_map(|line| line.trim().strip_prefix(dataset)?.strip_prefix('/'))
        .filter(|child| {
            child
                .strip_prefix(&prefix)
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .map(String::from)
        .collect()
}

/// `zfs ARGS...` with `LC_ALL=C`: its stdout, or its stderr (trimmed) when it fails.
fn zfs(args: &[&str]) -> Result<String, String> {
    let out = Command::new(ZFS)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("cannot run {ZFS}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(if err.is_empty() {
            format!("{ZFS} {} failed with {}", args.join(" "), out.status)
        } else {
            err
        })
    }
}

fn missing(err: &str) -> bool {
    err.contains("dataset does not exist")
}

/// PVE retries `dataset is busy`; zfs-fuse reports a busy mount as umount's `target is
/// busy` instead, so that is retried as well.
fn busy(err: &str) -> bool {
    err.contains("dataset is busy") || err.contains("target is busy")
}

/// One `--zfs-storage`: volumes are the datasets `DATASET/NAME`.
#[derive(Debug)]
pub struct ZfsPool {
    id: String,
    dataset: String,
    /// Whether this `zfs` knows `acltype` (OpenZFS does, zfs-fuse does not); only then are
    /// new subvolumes made with PVE's `-o acltype=posixacl -o xattr=sa`.
    posixacl: bool,
}

impl ZfsPool {
    /// Checks that the dataset exists and probes `acltype`, once.
    pub fn open(arg: &ZfsStorageArg) -> Result<ZfsPool, String> {
        zfs(&["list", "-H", "-o", "name", &arg.dataset]).map_err(|e| {
            format!(
                "--zfs-storage {}={}: the dataset is missing ({e}); create it first, \
                 e.g. `zfs create {}`",
                arg.id, arg.dataset, arg.dataset
            )
        })?;
        let posixacl = zfs(&["get", "-H", "-o", "value", "acltype", &arg.dataset]).is_ok();
        Ok(ZfsPool {
            id: arg.id.clone(),
            dataset: arg.dataset.clone(),
            posixacl,
        })
    }

    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// The dataset's `mountpoint` when it is not PVE's assumed `/DATASET` (for
    /// storage.cfg's `mountpoint` option); `None` also when `zfs get` fails.
    pub fn custom_mountpoint(&self) -> Option<String> {
        let out = zfs(&["get", "-H", "-o", "value", "mountpoint", &self.dataset]).ok()?;
        let m = out.trim();
        (m.starts_with('/') && m != format!("/{}", self.dataset)).then(|| m.to_string())
    }

    fn full(&self, name: &str) -> String {
        format!("{}/{name}", self.dataset)
    }

    fn check_name(&self, name: &str) -> Result<(), String> {
        if volume_name_ok(name) {
            Ok(())
        } else {
            Err(format!("unable to parse zfs volume name '{name}'"))
        }
    }

    /// `used` and `avail` of the dataset in bytes, when `zfs get` answers.
    pub fn space(&self) -> Option<(u64, u64)> {
        let out = zfs(&[
            "get",
            "-H",
            "-p",
            "-o",
            "value",
            "used,available",
            &self.dataset,
        ])
        .ok()?;
        let mut it = out.lines().map(|l| l.trim().parse::<u64>());
        match (it.next(), it.next()) {
            (Some(Ok(used)), Some(Ok(avail))) => Some((used, avail)),
            _ => None,
        }
    }

    /// Creates `DATASET/subvol-VMID-disk-N` with the lowest free N, with a refquota of
    /// `gib` (none for 0), and returns the volume id `ID:subvol-VMID-disk-N`.
    pub fn allocate(&self, vmid: u32, gib: &str) -> Result<String, String> {
        let kib = quota_kib(gib);
        for n in 0..1000 {
            let name = format!("subvol-{vmid}-disk-{n}");
            let full = self.full(&name);
            match zfs(&["list", "-H", "-o", "name", &full]) {
                Ok(_) => continue,
                Err(e) if missing(&e) => {}
                Err(e) => return Err(format!("zfs error: {e}")),
            }
            let quota = format!("refquota={kib}k");
            let mut args = vec!["create"];
            if self.posixacl {
                args.extend(["-o", "acltype=posixacl", "-o", "xattr=sa"]);
            }
            if kib > 0 {
                args.extend(["-o", &quota]);
            }
            args.push(&full);
            match zfs(&args) {
                Ok(_) => return Ok(format!("{}:{name}", self.id)),
                // Made by someone else since the check: take the next N.
                Err(e) if e.contains("already exists") => continue,
                Err(e) => return Err(format!("zfs error: {e}")),
            }
        }
        Err(format!(
            "unable to allocate an image name for VM {vmid} in storage '{}'",
            self.id
        ))
    }

    /// The mountpoint of the volume's dataset, mounted first if it is not.
    pub fn resolve(&self, name: &str) -> Result<PathBuf, String> {
        self.check_name(name)?;
        let full = self.full(name);
        let out = zfs(&["get", "-H", "-o", "value", "mountpoint,mounted", &full]).map_err(|e| {
            if missing(&e) {
                format!("volume '{}:{name}' does not exist", self.id)
            } else {
                format!("zfs error: {e}")
            }
        })?;
        let mut lines = out.lines().map(str::trim);
        let mountpoint = lines.next().unwrap_or("");
        let mounted = lines.next().unwrap_or("");
        if !mountpoint.starts_with('/') {
            return Err(format!(
                "pve-sim: volume '{}:{name}' has no mountpoint ('{mountpoint}')",
                self.id
            ));
        }
        if mounted != "yes" {
            zfs(&["mount", &full]).map_err(|e| format!("zfs error: {e}"))?;
        }
        Ok(PathBuf::from(mountpoint))
    }

    /// `zfs destroy -r DATASET/NAME`; a dataset that is gone counts as destroyed, a busy
    /// one is tried again, as PVE does.
    pub fn free(&self, name: &str) -> Result<(), String> {
        self.check_name(name)?;
        let full = self.full(name);
        for attempt in 1..=BUSY_TRIES {
            match zfs(&["destroy", "-r", &full]) {
                Ok(_) => return Ok(()),
                Err(e) if missing(&e) => return Ok(()),
                Err(e) if busy(&e) && attempt < BUSY_TRIES => std::thread::sleep(BUSY_WAIT),
                Err(e) => return Err(format!("zfs error: {e}")),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Volume ids of the `subvol-VMID-disk-N` datasets right below the storage's dataset.
    pub fn owned_by(&self, vmid: u32) -> Vec<String> {
        // zfs-fuse's `zfs list` may not take `-d`: list the whole tree and keep children.
        match zfs(&["list", "-H", "-o", "name", "-r", &self.dataset]) {
            Ok(out) => children_of(&self.dataset, &out, vmid)
                .into_iter()
                .map(|name| format!("{}:{name}", self.id))
                .collect(),
            Err(e) => {
                eprintln!("pve-sim: listing {}: {e}", self.dataset);
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_option() {
        assert_eq!(
            parse_arg("lxcri-zfs=lxe2e1234/data").unwrap(),
            ZfsStorageArg {
                id: "lxcri-zfs".into(),
                dataset: "lxe2e1234/data".into()
            }
        );
        assert_eq!(parse_arg("z.1_a=pool").unwrap().dataset, "pool");
        assert_eq!(parse_arg("z=p/a:b.c_d-e").unwrap().dataset, "p/a:b.c_d-e");
        // The first '=' splits; a dataset cannot hold one.
        assert!(parse_arg("z=p=q").is_err());
        for bad in [
            "",
            "lxcri-zfs",
            "=pool/data",
            "1zfs=pool",
            "-zfs=pool",
            "zf s=pool",
            "zfs:x=pool",
            "zfs=",
            "zfs=/pool",
            "zfs=pool/",
            "zfs=pool//data",
            "zfs=pool data",
            "zfs=pool/da$ta",
            "zfs=pool@snap",
        ] {
            assert!(parse_arg(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_arg("1zfs=pool").unwrap_err().contains("storage id"));
        assert!(parse_arg("zfs=/pool").unwrap_err().contains("dataset"));
    }

    #[test]
    fn quota_in_kib_as_pve_computes_it() {
        assert_eq!(quota_kib("8"), 8 * 1024 * 1024);
        assert_eq!(quota_kib("0"), 0);
        assert_eq!(quota_kib("0.5"), 512 * 1024);
        // int(gib * 1024) drops what is below a MiB.
        assert_eq!(quota_kib("1.0001"), 1024 * 1024);
        assert_eq!(quota_kib("0.0001"), 0);
        assert_eq!(quota_kib("-1"), 0);
        assert_eq!(quota_kib("junk"), 0);
    }

    #[test]
    fn volume_names_like_pve_parses_them() {
        for ok in [
            "subvol-100-disk-0",
            "vm-7-disk-12",
            "base-100-disk-0",
            "subvol-1-x",
        ] {
            assert!(volume_name_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "subvol",
            "subvol-100",
            "subvol-100-",
            "subvol-x-disk-0",
            "disk-100-0",
            "subvol-100-disk-0/x",
            "subvol-100-../x",
            "vztmpl/x.tar.gz",
        ] {
            assert!(!volume_name_ok(bad), "{bad}");
        }
    }

    #[test]
    fn owned_datasets_are_direct_subvol_children() {
        let listing = "\
p/data
p/data/subvol-100-disk-0
p/data/subvol-100-disk-1
p/data/subvol-1000-disk-0
p/data/subvol-100-disk-0/nested
p/data/vm-100-disk-0
p/data/subvol-100-disk-x
p/database/subvol-100-disk-2
p/other/subvol-100-disk-3
";
        assert_eq!(
            children_of("p/data", listing, 100),
            ["subvol-100-disk-0", "subvol-100-disk-1"]
        );
        assert_eq!(children_of("p/data", listing, 1000), ["subvol-1000-disk-0"]);
        assert!(children_of("p/data", listing, 10).is_empty());
    }
}
