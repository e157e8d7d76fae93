//! `lxcri gc`'s second half: ZFS image datasets nothing uses any more
//! (`rootfs.mode = "zfs"`). The verdicts and the removal are the
//! library's ([`ZfsRootfs::gc_images`]): an image with no clone, unused for
//! `zfs.image_ttl_secs`, and partial images no fill is working on. Without
//! `--force` nothing is destroyed.

use std::time::Duration;

use lxcri::error_chain;
use lxcri::rootfs::zfs::{ImageGc, ZfsRootfs};

/// The image part of a gc run, rendered.
#[derive(Debug)]
pub struct ImageReport {
    pub text: String,
    pub json: serde_json::Value,
    pub failed: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("listing ZFS image datasets: {0}")]
pub struct ImageScanError(String);

pub fn collect(zfs: &ZfsRootfs, ttl: Duration, force: bool) -> Result<ImageReport, ImageScanError> {
    let report = zfs
        .gc_images(ttl, !force)
        .map_err(|e| ImageScanError(error_chain(&e)))?;
    let failed = report.images.iter().any(|i| i.error.is_some());
    Ok(ImageReport {
        text: text(&report.images, force),
        json: json(&report.images, force),
        failed,
    })
}

fn action(i: &ImageGc, force: bool) -> &'static str {
    match (i.remove, force, &i.error) {
        (_, _, Some(_)) => "failed",
        (false, _, None) => "keep",
        (true, false, None) => "would-remove",
        (true, true, None) => "removed",
    }
}

fn text(images: &[ImageGc], force: bool) -> String {
    if images.is_empty() {
        return "no lxcri image datasets\n".to_string();
    }
    let mut lines = vec![["IMAGE DATASET", "ACTION", "REASON"]
        .map(String::from)
        .to_vec()];
    for i in images {
        let reason = match &i.error {
            Some(e) => format!("{}: {e}", i.reason),
            None => i.reason.clone(),
        };
        lines.push(vec![
            i.dataset.clone(),
            action(i, force).to_string(),
            reason,
        ]);
    }
    let mut out = crate::table::render(&lines);
    out.push('\n');
    let n = images.iter().filter(|i| i.remove).count();
    out.push_str(&if n == 0 {
        "no unused images\n".to_string()
    } else if force {
        let failed = images.iter().filter(|i| i.error.is_some()).count();
        format!("removed {} image dataset(s), failed {failed}\n", n - failed)
    } else {
        format!("dry run: nothing removed; `lxcri gc --force` removes the {n} unused image dataset(s)\n")
    });
    out
}

fn json(images: &[ImageGc], force: bool) -> serde_json::Value {
    images
        .iter()
        .map(|i| {
            serde_json::json!({
                "dataset": i.dataset,
                "action": action(i, force),
                "reason": i.reason,
                "error": i.error,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(remove: bool, error: Option<&str>) -> ImageGc {
        ImageGc {
            dataset: "tank/lxcri-images/img-00".into(),
            remove,
            reason: "no clones, unused for 100 s".into(),
            error: error.map(String::from),
        }
    }

    #[test]
    fn actions_and_summaries() {
        let dry = text(&[image(true, None), image(false, None)], false);
        assert!(
            dry.contains("would-remove") && dry.contains("keep"),
            "{dry}"
        );
        assert!(dry.contains("dry run: nothing removed"), "{dry}");
        let done = text(&[image(true, None), image(true, Some("busy"))], true);
        assert!(
            done.contains("removed 1 image dataset(s), failed 1"),
            "{done}"
        );
        assert!(done.contains("failed") && done.contains(": busy"), "{done}");
        assert_eq!(text(&[], true), "no lxcri image datasets\n");
        let j = json(&[image(true, None)], true);
        assert_eq!(j[0]["action"], "removed");
    }
}
