//! Images for one id range (`userns.unprivileged`): a clone of the image's
//! snapshot with every owner shifted into the range, snapshotted in turn,
//! so its containers are clones of it. Only metadata is written: the file
//! data stays the image's. One per (image, range), made once under the
//! shifted key's lock and reused while the range comes round again.
//!
//! It is an image like the others for `lxcri gc` (role `image`, its own
//! key and last-used time); while it exists its base image has a clone and
//! is kept.

use super::image::ImageRef;
use super::{op, Result, ZfsRootfs, ZfsRootfsError};
use crate::rootfs::shift::shift_tree;
use crate::userns::IdRange;

impl ZfsRootfs {
    /// Makes `image`, the image `base` shifted into `range`.
    pub(super) fn make_shifted(
        &self,
        base: &ImageRef,
        image: &ImageRef,
        range: IdRange,
    ) -> Result<()> {
        self.make_keyed(
            image,
            |partial, props| {
                self.zfs
                    .clone_snapshot(&base.snapshot, partial, &props)
                    .map_err(op("cloning the image to shift it as", partial))
            },
            |partial, path| {
                tracing::info!(image = %partial, start = range.host_start, "shifting ZFS image into an id range");
                shift_tree(path, range)
                    .map(drop)
                    .map_err(|e| ZfsRootfsError::Fill {
                        dataset: partial.to_string(),
                        detail: crate::error_chain(&e),
                    })
            },
        )
    }
}
