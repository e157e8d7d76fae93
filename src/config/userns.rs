//! The `[userns]` section: whether lxcri gives every container a user
//! namespace of its own even when its spec asks for none, and the host ids
//! it cuts the per-container ranges from.

use serde::Deserialize;

use crate::userns::IdPool;

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
}

impl Default for UsernsSettings {
    fn default() -> Self {
        Self {
            unprivileged: false,
            pool: DEFAULT_POOL.into(),
            size: DEFAULT_SIZE,
        }
    }
}

impl UsernsSettings {
    /// The pool, valid once the config loaded (checked by `validate`).
    pub fn pool(&self) -> IdPool {
        IdPool::parse(&self.pool, self.size).expect("validated when loaded")
    }

    pub(super) fn apply(&mut self, field: UsernsField, value: &str) -> Result<(), String> {
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
