//! The kernel's mount table, `/proc/self/mountinfo`, parsed.

use std::path::PathBuf;

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub path: PathBuf,
    /// The directory of the mounted filesystem shown there (`/` unless a
    /// bind of a subdirectory).
    pub root: String,
    pub fstype: String,
    pub source: String,
    /// The filesystem's options as the kernel shows them, still escaped:
    /// split them on `,` before unescaping a value (see [`Self::super_option`]).
    pub super_options: String,
}

impl MountEntry {
    /// The value of the filesystem option `key=value`, unescaped (overlay's
    /// `upperdir`, for one).
    pub fn super_option(&self, key: &str) -> Option<String> {
        self.super_options
            .split(',')
            .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
            .map(unescape)
    }
}

/// This process's mount table, in mount order; empty when it cannot be read.
/// A path that is not UTF-8 spoils its own line only (the kernel escapes
/// just space, tab, newline and backslash; other bytes come as they are).
pub fn read() -> Vec<MountEntry> {
    std::fs::read("/proc/self/mountinfo")
        .map(|bytes| parse(&String::from_utf8_lossy(&bytes)))
        .unwrap_or_default()
}

/// `/proc/self/mountinfo` lines: `ID PARENT DEV ROOT PATH OPTIONS
/// [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = 6 + fields.get(6..)?.iter().position(|f| *f == "-")?;
            Some(MountEntry {
                path: PathBuf::from(unescape(fields.get(4)?)),
                root: unescape(fields.get(3)?),
                fstype: fields.get(sep + 1)?.to_string(),
                source: unescape(fields.get(sep + 2)?),
                super_options: fields.get(sep + 3).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// The kernel writes space, tab, newline and backslash (and, in a
/// filesystem's options, a comma) as `\ooo` octal escapes.
fn unescape(s: &str) -> String {
    crate::escaped_text::decode(s, b'\\', 3, 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(
            unescape("/a\\134040"),
            "/a\\040",
            "an escaped backslash stays one"
        );
        assert_eq!(unescape("/x\\011\\012\\054"), "/x\t\n,");
        assert_eq!(unescape("/plain\\9\\04"), "/plain\\9\\04", "not an escape");
        assert_eq!(unescape(r"/a\040b\\c"), r"/a b\\c");
        assert_eq!(unescape(r"/x\134y"), r"/x\y");
    }

    #[test]
    fn super_options_split_before_unescaping() {
        let m = &parse(
            "100 30 0:51 / /run/my\\040dir rw - overlay overlay rw,lowerdir=/l,upperdir=/up\\054per,workdir=/w\n",
        )[0];
        assert_eq!(m.path, PathBuf::from("/run/my dir"));
        assert_eq!(m.super_option("upperdir").as_deref(), Some("/up,per"));
        assert_eq!(m.super_option("upper"), None);
        assert_eq!(m.super_option("rw"), None);
    }

    #[test]
    fn lines_without_the_separator_are_skipped() {
        assert!(parse("1 2 3 / /x rw\n").is_empty());
        assert!(!read().is_empty() || !std::path::Path::new("/proc/self").exists());
    }
}
