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
}

/// This process's mount table, in mount order; empty when it cannot be read.
pub fn read() -> Vec<MountEntry> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| parse(&text))
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
            })
        })
        .collect()
}

/// The kernel writes space, tab, newline and backslash as octal escapes.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
    }

    #[test]
    fn lines_without_the_separator_are_skipped() {
        assert!(parse("1 2 3 / /x rw\n").is_empty());
        assert!(!read().is_empty() || !std::path::Path::new("/proc/self").exists());
    }
}
