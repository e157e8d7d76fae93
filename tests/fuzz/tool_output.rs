//! What `zfs` and the LXC tools print is read by lxcri: any output is
//! read without a panic, tables come back cell for cell, and dataset names
//! from anywhere are refused unless `zfs` takes them as one argument.

use std::sync::Mutex;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use lxcri::lxc::{LxcTools, LOG_FILE};
use lxcri::zfs::{DatasetName, Zfs, ZfsCommand};

use crate::{fuzz, hostile, mostly_plain, Case};

/// A `zfs` that prints what the case says.
#[derive(Debug)]
struct Printed(Mutex<String>);

impl ZfsCommand for Printed {
    fn run(&self, _args: &[String]) -> lxcri::zfs::Result<String> {
        Ok(self.0.lock().unwrap().clone())
    }
}

fn cell() -> impl Strategy<Value = String> {
    // A cell never holds a tab or a newline: zfs -H separates with them.
    mostly_plain("[a-z0-9/@:._-]{1,12}", 12).prop_map(|s| s.replace(['\t', '\n', '\r'], "_"))
}

#[test]
fn zfs_get_recursive_reads_every_cell() {
    let table = btree_map(cell(), btree_map(cell(), cell(), 1..4), 0..5);
    fuzz(
        "tests/fuzz/regressions/zfs_get.txt",
        (table, hostile(40)),
        1,
        |(table, junk)| {
            let parent = DatasetName::parse("tank/lxcri").unwrap();
            let mut text = String::new();
            for (name, props) in &table {
                for (prop, value) in props {
                    text.push_str(&format!("{name}\t{prop}\t{value}\n"));
                }
            }
            let zfs = Zfs::new(Printed(Mutex::new(text)));
            let read = zfs
                .get_recursive(&parent, &["used"])
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(read, table);
            // Whatever else it prints: no panic.
            let zfs = Zfs::new(Printed(Mutex::new(junk)));
            let _ = zfs.get_recursive(&parent, &["used"]);
            let _ = zfs.get_many(&parent, &["used", "refquota"]);
            let _ = zfs.list(&parent, &["name", "origin"]);
            let _ = zfs.get(&parent, "origin");
            Ok(Case::Checked)
        },
    );
}

#[test]
fn zfs_list_reads_every_row() {
    let rows = vec(vec(cell(), 3), 0..6);
    fuzz("tests/fuzz/regressions/zfs_list.txt", rows, 1, |rows| {
        let parent = DatasetName::parse("tank").unwrap();
        let text: String = rows.iter().map(|r| format!("{}\n", r.join("\t"))).collect();
        let zfs = Zfs::new(Printed(Mutex::new(text)));
        let read = zfs
            .list(&parent, &["name", "origin", "used"])
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(read, rows);
        Ok(Case::Checked)
    });
}

#[test]
fn dataset_names_are_one_safe_argument() {
    let name = prop_oneof![
        mostly_plain(
            "[a-z][a-z0-9]{0,6}(/[a-z0-9._:-]{1,8}){0,3}(@[a-z0-9_-]{1,6})?",
            30
        ),
        any::<String>(),
    ];
    fuzz("tests/fuzz/regressions/zfs_names.txt", name, 10, |text| {
        let Ok(name) = DatasetName::parse(&text) else {
            return Ok(Case::Refused);
        };
        let s = name.as_str();
        prop_assert_eq!(s, text.as_str());
        prop_assert!(s.len() <= 255);
        prop_assert!(!s.starts_with('-'), "would be read as an option: {s}");
        prop_assert!(s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-/@".contains(&b)));
        prop_assert!(!s
            .split(['/', '@'])
            .any(|c| c.is_empty() || c == "." || c == ".."));
        prop_assert!(s.matches('@').count() <= 1);
        Ok(Case::Checked)
    });
}

#[test]
fn lxc_log_errors_are_reported_whatever_the_log_holds() {
    let line = prop_oneof![
        mostly_plain(
            "lxc-start [a-z0-9]{1,6} 2026[0-9]{4} ERROR [a-z]{1,6} - [a-z]{1,6}\\.c:[0-9]{1,3}:[a-z_]{1,8} - [a-zA-Z ]{1,20}",
            40
        ),
        hostile(40),
        any::<String>(),
    ];
    fuzz(
        "tests/fuzz/regressions/lxc_log.txt",
        (vec(line, 0..8), hostile(30)),
        1,
        |(lines, stderr)| {
            let dir = tempfile::tempdir().unwrap();
            let tools = LxcTools::new(dir.path(), "ERROR");
            std::fs::create_dir_all(tools.container_dir("c")).unwrap();
            let log = lines.join("\n");
            std::fs::write(tools.container_dir("c").join(LOG_FILE), &log).unwrap();
            let detail = tools.failure_detail("c", stderr.as_bytes());
            // The first error lines' messages are all in the detail;
            // lxc-start's stderr only stands in for none.
            let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
            for l in errors.iter().take(4) {
                let msg = l.rsplit(" - ").next().unwrap_or(l).trim();
                prop_assert!(detail.contains(msg), "{msg:?} missing from {detail:?}");
            }
            if errors.is_empty() {
                prop_assert_eq!(detail.as_str(), stderr.trim());
            }
            Ok(Case::Checked)
        },
    );
}
