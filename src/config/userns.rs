//! The `[userns]` section: whether lxcri gives every container a user
//! namespace of its own even when its spec asks for none, and the host ids
//! it cuts the per-container ranges from.

use serde::Deserialize;

use super::error::{ConfigError, Origin};
use super::{setting, BackendKind, Field};
use crate::userns::{IdPool, PVE_CT_IDS};

/// Default `userns.pool`: 1024 ranges of 65536 from 1000000, clear of the
/// host's ids and of PVE's own unprivileged range (100000-165535).
pub const DEFAULT_POOL: &str = "1000000-68108863";
/// Default `userns.size`: PVE's 65536 ids per CT.
pub const DEFAULT_SIZE: u32 = 65536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UsernsField {
    Unprivileged,
    Pool,
    Size,
}

/// The `[userns]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernsSettings {
    pub unprivileged: bool,
    /// As written; checked with `size` by [`UsernsSettings::pool`].
    pool: String,
    size: u32,
    /// Where `pool` came from, for the error of a rule between keys.
    pool_origin: Origin,
}

impl Default for UsernsSettings {
    fn default() -> Self {
        Self {
            unprivileged: false,
            pool: DEFAULT_POOL.into(),
            size: DEFAULT_SIZE,
            pool_origin: Origin::Default,
        }
    }
}

impl UsernsSettings {
    /// The pool, valid once the config loaded (checked by `validate`).
    pub fn pool(&self) -> IdPool {
        IdPool::parse(&self.pool, self.size).expect("validated when loaded")
    }

    pub(super) fn apply(
        &mut self,
        field: UsernsField,
        value: &str,
        origin: Origin,
    ) -> Result<(), String> {
        match field {
            UsernsField::Unprivileged => {
                self.unprivileged = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err("must be true or false".into()),
                }
            }
            UsernsField::Pool => {
                IdPool::parse(value, self.size).map_err(|e| e.to_string())?;
                self.pool = value.into();
                self.pool_origin = origin;
            }
            UsernsField::Size => {
                let size = value
                    .parse()
                    .map_err(|_| "not a number of ids".to_string())?;
                IdPool::parse(&self.pool, size).map_err(|e| e.to_string())?;
                self.size = size;
            }
        }
        Ok(())
    }

    /// Rules with the backend: on pve the pool must leave PVE's own CT ids
    /// alone, or a container of lxcri's and a CT PVE made would be the same
    /// host users, each able to reach the other's files.
    pub(super) fn validate(&self, backend: BackendKind) -> Result<(), ConfigError> {
        if backend == BackendKind::Pve
            && self.pool().overlaps(PVE_CT_IDS.host_start, PVE_CT_IDS.len)
        {
            let s = setting(Field::Userns(UsernsField::Pool));
            let last = PVE_CT_IDS.host_start + (PVE_CT_IDS.len - 1);
            return Err(ConfigError::Invalid {
                key: s.key,
                env: s.env,
                value: self.pool.clone(),
                origin: self.pool_origin.clone(),
                reason: format!(
                    "overlaps {}-{last}, the host ids PVE maps its unprivileged CTs to (backend = \"pve\")",
                    PVE_CT_IDS.host_start
                ),
            });
        }
        Ok(())
    }
}

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUserns {
    unprivileged: Option<bool>,
    pool: Option<String>,
    size: Option<u32>,
}

impl RawUserns {
    pub(super) fn values(self) -> Vec<(super::Field, Option<String>)> {
        // Size first: the pool is checked against it.
        [
            (
                UsernsField::Unprivileged,
                self.unprivileged.map(|b| b.to_string()),
            ),
            (UsernsField::Size, self.size.map(|n| n.to_string())),
            (UsernsField::Pool, self.pool),
        ]
        .into_iter()
        .map(|(f, v)| (super::Field::Userns(f), v))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Config;

    const PVE: &str = "backend = \"pve\"\n[pve]\nurl = \"https://pve1:8006\"\nnode = \"pve1\"\n\
        token_id = \"lxcri@pve!shim\"\ntoken_secret_file = \"/etc/lxcri/pve-token\"\n";

    fn load(dir: &Path, file: &str, env: &[(&str, &str)]) -> super::super::Result<Config> {
        let path = dir.join("config.toml");
        std::fs::write(&path, file).unwrap();
        Config::load_with(Some(&path), &|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn on_pve_the_pool_leaves_pves_own_ct_ids_alone() {
        let tmp = tempfile::tempdir().unwrap();
        for pool in ["65536-131071", "165535-231070"] {
            let file = format!("{PVE}[userns]\npool = \"{pool}\"\n");
            let err = load(tmp.path(), &file, &[]).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid userns.pool = \"{pool}\"")),
                "{err}"
            );
            assert!(err.contains("config file") && err.contains("PVE"), "{err}");
        }
        let err = load(tmp.path(), PVE, &[("LXCRI_USERNS_POOL", "65536-2000000")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("from environment variable LXCRI_USERNS_POOL")
                && err.contains("overlaps 100000-165535")
                && err.contains("PVE maps its unprivileged CTs to"),
            "{err}"
        );
        // Just above it: fine; and on the lxc backend there are no PVE CTs.
        let c = load(
            tmp.path(),
            &format!("{PVE}[userns]\npool = \"165536-231071\"\n"),
            &[],
        );
        assert_eq!(c.unwrap().userns.pool().slots(), 1);
        let c = load(tmp.path(), "[userns]\npool = \"65536-131071\"\n", &[]).unwrap();
        assert_eq!(c.userns.pool().slots(), 1);
    }

    /// A container made under an earlier lxcri that took such a pool can
    /// still be cleaned up from its snapshot.
    #[test]
    fn a_snapshot_keeps_the_pool_it_was_made_with() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = load(tmp.path(), PVE, &[]).unwrap();
        c.set("userns.pool", "165536-231071").unwrap();
        let text = c.snapshot().replace("165536-231071", "65536-131071");
        let again = Config::from_snapshot(&tmp.path().join("snap.json"), &text).unwrap();
        assert_eq!(again.userns.pool().range(0).host_start, 65536);
    }
}
