//! Image datasets nothing uses any more: complete images without clones
//! and idle for longer than `zfs.image_ttl_secs`, and partial images no
//! fill is working on (a crash left them). Only datasets marked
//! `lxcri:role=image` directly under the images dataset are considered;
//! each is judged and destroyed under its image's lock, so a create that
//! is about to clone it is never cut short.

use std::collections::HashSet;
use std::time::Duration;

use super::image::ImageLock;
use super::{
    now_secs, op, Result, ZfsRootfs, ZfsRootfsError, IMAGE_KEY, IMAGE_PREFIX, LAST_USED,
    PARTIAL_PREFIX, ROLE, ROLE_IMAGE, SNAPSHOT,
};
use crate::rootfs::ImageKey;
use crate::zfs::{DatasetName, ZfsError};

/// What gc decided about one image dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageGc {
    pub dataset: String,
    /// Destroyed (or, in a dry run, would be).
    pub remove: bool,
    /// Why: "unused for 3600 s", "has clones", ...
    pub reason: String,
    /// The destroy failed; its error chain.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageGcReport {
    pub images: Vec<ImageGc>,
}

struct Row {
    name: DatasetName,
    origin: Option<String>,
    role: Option<String>,
    key: Option<String>,
    last_used: Option<u64>,
}

impl ZfsRootfs {
    /// Judges every image dataset and, unless `dry_run`, destroys the
    /// unused ones.
    pub fn gc_images(&self, ttl: Duration, dry_run: bool) -> Result<ImageGcReport> {
        if !self
            .zfs
            .exists(&self.images)
            .map_err(op("looking for the images dataset", &self.images))?
        {
            return Ok(ImageGcReport::default());
        }
        // Clones may live anywhere in the pool: list it all for origins.
        let pool = DatasetName::parse(self.pool.pool()).map_err(ZfsRootfsError::InvalidName)?;
        let rows: Vec<Row> = self
            .zfs
            .list(&pool, &["name", "origin", ROLE, IMAGE_KEY, LAST_USED])
            .map_err(op("listing datasets of", &pool))?
            .into_iter()
            .filter_map(|cols| {
                let [name, origin, role, key, last_used] = <[String; 5]>::try_from(cols).ok()?;
                let set = |v: String| (v != "-").then_some(v);
                Some(Row {
                    name: DatasetName::parse(&name).ok()?,
                    origin: set(origin),
                    role: set(role),
                    key: set(key),
                    last_used: set(last_used).and_then(|v| v.parse().ok()),
                })
            })
            .collect();
        let origins: HashSet<&str> = rows.iter().filter_map(|r| r.origin.as_deref()).collect();
        let prefix = format!("{}/", self.images);
        let mut report = ImageGcReport::default();
        for row in &rows {
            let direct_child = row
                .name
                .as_str()
                .strip_prefix(&prefix)
                .is_some_and(|rest| !rest.contains(['/', '@']));
            if !direct_child || row.role.as_deref() != Some(ROLE_IMAGE) {
                continue;
            }
            let Some(key) = row.key.as_deref().and_then(ImageKey::parse) else {
                continue;
            };
            let leaf = row.name.leaf();
            let (remove, reason) = if leaf.starts_with(PARTIAL_PREFIX) {
                (true, "partial image (its fill did not finish)".to_string())
            } else if leaf.starts_with(IMAGE_PREFIX) {
                let snapshot = format!("{}@{SNAPSHOT}", row.name);
                let idle = now_secs().saturating_sub(row.last_used.unwrap_or(0));
                if origins.contains(snapshot.as_str()) {
                    (false, "has clones".to_string())
                } else if idle < ttl.as_secs() {
                    (
                        false,
                        format!("used {idle} s ago (ttl {} s)", ttl.as_secs()),
                    )
                } else {
                    (true, format!("no clones, unused for {idle} s"))
                }
            } else {
                continue;
            };
            let mut entry = ImageGc {
                dataset: row.name.to_string(),
                remove,
                reason,
                error: None,
            };
            if remove && !dry_run {
                match self.destroy_unused(&row.name, &key) {
                    Ok(None) => {}
                    Ok(Some(why)) => {
                        entry.remove = false;
                        entry.reason = why.into();
                    }
                    Err(e) => entry.error = Some(crate::error_chain(&e)),
                }
            }
            report.images.push(entry);
        }
        Ok(report)
    }

    /// Destroys an image dataset under its lock; `Some(reason)` when it
    /// turned out to be in use after all.
    fn destroy_unused(
        &self,
        dataset: &DatasetName,
        key: &ImageKey,
    ) -> Result<Option<&'static str>> {
        let Some(_lock) = ImageLock::try_acquire(&self.lock_dir, key)? else {
            return Ok(Some("in use (a create holds its lock)"));
        };
        // Not `-R`: a clone made since the listing makes this fail, and
        // the image stays.
        match self.zfs.destroy(dataset, true) {
            Ok(()) => Ok(None),
            Err(ZfsError::DependentClones { .. }) => Ok(Some("has clones")),
            Err(e) => Err(op("destroying image", dataset)(e)),
        }
    }
}
