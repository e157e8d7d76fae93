//! `VMID.conf`: any text parses or is refused; what parses renders back
//! byte for byte; `set_key` and `set_description` either refuse a value or
//! write one that reads back as itself and touches nothing else.

use proptest::collection::vec;
use proptest::prelude::*;

use lxcri::pve::config::PveConfigFile;

use crate::{fuzz, hostile, mostly_plain, Case};

/// Lines shaped like a CT config, with hostile ones among them.
fn config_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        mostly_plain(
            "(arch|memory|hostname|mp[0-9]|net[0-9]|tags): [a-z0-9=,;:/ .-]{1,12}",
            16
        ),
        mostly_plain("lxc\\.[a-z.]{1,12}(: | = |=)[a-z0-9 /:.=]{0,10}", 16),
        mostly_plain("#[ -~]{0,12}", 12),
        mostly_plain("\\[[a-z][a-z0-9_-]{1,6}\\]", 8),
        Just("[pve:pending]".to_string()),
        Just(String::new()),
        hostile(16),
    ];
    (vec(line, 0..10), any::<bool>()).prop_map(|(lines, newline)| {
        let mut text = lines.join("\n");
        if newline {
            text.push('\n');
        }
        text
    })
}

#[test]
fn vmid_conf_renders_back_byte_for_byte() {
    fuzz(
        "tests/fuzz/regressions/pve_file_render.txt",
        config_text(),
        10,
        |text| {
            let Ok(file) = PveConfigFile::parse(&text) else {
                return Ok(Case::Refused);
            };
            prop_assert_eq!(file.render(), text);
            Ok(Case::Checked)
        },
    );
}

#[test]
fn set_key_writes_exactly_one_value() {
    let key = prop_oneof![
        Just("memory".to_string()),
        Just("mp0".to_string()),
        Just("net1".to_string()),
        Just("tags".to_string()),
        Just("features".to_string()),
        mostly_plain("[a-z]{1,8}[0-9]?", 8),
    ];
    let value = mostly_plain("[a-z0-9=,;:/.-]{1,16}", 16);
    fuzz(
        "tests/fuzz/regressions/pve_file_set_key.txt",
        (config_text(), key, value),
        10,
        |(text, key, value)| {
            let Ok(mut file) = PveConfigFile::parse(&text) else {
                return Ok(Case::Refused);
            };
            let before = file.clone();
            if file.set_key(&key, &value).is_err() {
                prop_assert_eq!(&file, &before, "a refused set_key changed the file");
                return Ok(Case::Refused);
            }
            let back = PveConfigFile::parse(&file.render())
                .map_err(|e| TestCaseError::fail(format!("{e}: {}", file.render())))?;
            prop_assert_eq!(back.get(&key), Some(value.as_str()));
            prop_assert_eq!(back.raw_lines(), before.raw_lines());
            prop_assert_eq!(back.description(), before.description());
            prop_assert_eq!(back.sections().len(), before.sections().len());
            // Sections stay in place, so compare them by position.
            for (s, old) in back.sections().iter().zip(before.sections()) {
                prop_assert_eq!(&s.kind, &old.kind);
                for l in &s.lines {
                    if let Some(k) = l.key().filter(|k| *k != key) {
                        let had = old.lines.iter().any(|x| x == l);
                        prop_assert!(had, "{k} changed: {}", file.render());
                    }
                }
            }
            Ok(Case::Checked)
        },
    );
}

/// What PVE's `write_pct_config` then `parse_pct_config` give for a
/// description: `split(/\n/)` (trailing empty parts dropped), each part a
/// line.
fn pve_description(text: &str) -> String {
    let body = text.trim_end_matches('\n');
    if body.is_empty() {
        return String::new();
    }
    body.split('\n').map(|l| format!("{l}\n")).collect()
}

#[test]
fn description_reads_back_as_pve_would() {
    let text = prop_oneof![hostile(40), any::<String>()];
    fuzz(
        "tests/fuzz/regressions/pve_file_description.txt",
        (config_text(), text),
        10,
        |(file_text, description)| {
            let Ok(mut file) = PveConfigFile::parse(&file_text) else {
                return Ok(Case::Refused);
            };
            let keys_before: Vec<_> = file.sections()[0]
                .lines
                .iter()
                .filter(|l| l.key().is_some())
                .cloned()
                .collect();
            file.set_description(&description);
            let back = PveConfigFile::parse(&file.render())
                .map_err(|e| TestCaseError::fail(format!("{e}: {}", file.render())))?;
            prop_assert_eq!(back.description(), pve_description(&description));
            let keys_after: Vec<_> = back.sections()[0]
                .lines
                .iter()
                .filter(|l| l.key().is_some())
                .cloned()
                .collect();
            prop_assert_eq!(keys_after, keys_before);
            prop_assert_eq!(back.sections().len(), file.sections().len());
            Ok(Case::Checked)
        },
    );
}
