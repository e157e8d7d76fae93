//! What shims before runc 1.2+'s mount details (lxcri up to 25edccd)
//! wrote, which this init still reads: a pod's shim lives as long as the
//! pod, and after an upgrade it starts its new containers from the new
//! init (see [`crate::InitSpec::pause_after_mounts`]). Such a spec is
//! carried out as that shim's init did; no shim writes these now.

use serde::{Deserialize, Serialize};

/// Flags added to the mount at `destination` (absolute, in the container)
/// with a bind remount keeping what it has, once everything else is made:
/// `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`, `MS_RDONLY` bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemountFlags {
    pub destination: String,
    pub flags: u64,
}

/// The mode `chmod`ed onto the root of the tmpfs at `destination`
/// (absolute, in the container).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TmpfsMode {
    pub destination: String,
    pub mode: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InitSpec, ShareSpec};

    /// The init specs the golden tests held at 25edccd, as those shims
    /// wrote them (tests/fixtures/legacy).
    #[test]
    fn an_older_shims_init_spec_still_parses() {
        let specs = [
            include_str!("../../tests/fixtures/legacy/ctr-busybox.init.json"),
            include_str!("../../tests/fixtures/legacy/resources-v2.init.json"),
            include_str!("../../tests/fixtures/legacy/cri-container.init.json"),
        ];
        let parsed: Vec<InitSpec> = specs
            .iter()
            .map(|text| serde_json::from_str(text).expect("an older shim's init.json"))
            .collect();
        assert_eq!(
            parsed[1].tmpfs_modes,
            [TmpfsMode {
                destination: "/tmp".into(),
                mode: 0o1777
            }]
        );
        // What those fixtures lack: flags on writable binds, `/dev` without
        // a mode of its own.
        let mut spec = serde_json::to_value(&parsed[0]).unwrap();
        spec["remount_flags"] = serde_json::json!([{"destination": "/data", "flags": 2}]);
        spec["dev_tmpfs"].as_object_mut().unwrap().remove("mode");
        let spec: InitSpec = serde_json::from_value(spec).unwrap();
        assert_eq!(spec.remount_flags[0].flags, 2);
        assert_eq!(spec.dev_tmpfs.unwrap().mode, None);
    }

    #[test]
    fn an_older_shims_share_spec_still_parses() {
        let spec: ShareSpec = serde_json::from_str(
            r#"{"init_pid": 42, "mounts": [{"source": "/v", "destination": "/v",
                "readonly": true, "propagation": null, "create": false, "rbind": true,
                "nosuid": true, "nodev": false, "noexec": false}]}"#,
        )
        .unwrap();
        let m = &spec.mounts[0];
        assert!(m.readonly && m.nosuid && !m.nodev && m.flags.is_none());
    }
}
