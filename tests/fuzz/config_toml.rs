//! `/etc/lxcri/config.toml`: whatever the file holds, loading it either
//! fails naming the file or the key, or gives a configuration whose
//! snapshot (what a container is later cleaned up with) loads back to the
//! same configuration.

use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;

use lxcri::config::{Config, SETTINGS};

use crate::{fuzz, hostile, Case};

/// A value for `key` a user might write, or something hostile.
fn value() -> impl Strategy<Value = String> {
    fn quoted(s: String) -> String {
        serde_json::to_string(&s).expect("a string")
    }
    prop_oneof![
        3 => prop_oneof![
            Just("lxc"), Just("pve"), Just("overlay"), Just("zfs"), Just("debug"),
            Just("/run/lxcri"), Just("100-199"), Just("100000-165535"), Just("vmbr0"),
            Just("tank/lxcri"), Just("https://127.0.0.1:8006"), Just("pve1"),
            Just("root@pam!lxcri"), Just("name=eth1,bridge=vmbr0,tag=5"), Just("1G"),
            Just("local-zfs"),
        ]
        .prop_map(|s| quoted(s.to_string())),
        2 => hostile(16).prop_map(quoted),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<bool>().prop_map(|b| b.to_string()),
        1 => hostile(8),
    ]
}

fn config_text() -> impl Strategy<Value = String> {
    let keys: Vec<&'static str> = SETTINGS.iter().map(|s| s.key).collect();
    let key = prop_oneof![
        4 => proptest::sample::select(keys),
        1 => Just("pve.unknown_key"),
        1 => Just("bogus"),
    ];
    vec((key, value()), 0..6).prop_map(|pairs| {
        // Top-level keys first, then one table per section, as TOML wants.
        let mut top = String::new();
        let mut tables: Vec<(String, String)> = Vec::new();
        for (key, value) in pairs {
            match key.split_once('.') {
                None => top.push_str(&format!("{key} = {value}\n")),
                Some((table, name)) => {
                    let line = format!("{name} = {value}\n");
                    match tables.iter_mut().find(|(t, _)| t == table) {
                        Some((_, body)) => body.push_str(&line),
                        None => tables.push((table.to_string(), line)),
                    }
                }
            }
        }
        for (table, body) in tables {
            top.push_str(&format!("[{table}]\n{body}"));
        }
        top
    })
}

#[test]
fn config_files_load_or_fail_naming_what_is_wrong() {
    fuzz(
        "tests/fuzz/regressions/config_toml.txt",
        config_text(),
        20,
        |text| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("config.toml");
            std::fs::write(&path, &text).unwrap();
            let config = match Config::load_with(Some(&path), &|_| None) {
                Ok(c) => c,
                Err(e) => {
                    let msg = lxcri::error_chain(&e);
                    let named = msg.contains(&path.display().to_string())
                        || SETTINGS.iter().any(|s| msg.contains(s.key));
                    prop_assert!(named, "an error naming neither file nor key: {}", msg);
                    return Ok(Case::Refused);
                }
            };
            let snapshot = config.snapshot();
            let again = Config::from_snapshot(Path::new("/fuzz/config.json"), &snapshot)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{snapshot}")))?;
            prop_assert_eq!(again.snapshot(), snapshot);
            Ok(Case::Checked)
        },
    );
}
