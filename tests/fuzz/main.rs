//! Property-based fuzzing of everything lxcri parses or renders from input
//! it does not control, on stable Rust (proptest): OCI specs through the
//! translation to a rendered LXC config, PVE's `VMID.conf` and property
//! strings, lxcri's config file, annotations, UPIDs, and the output of
//! `zfs` and the LXC tools.
//!
//! Each target runs `PROPTEST_CASES` cases (256 by default, what CI runs);
//! `benches/fuzz.sh` runs them with many more for an hour. A failing case
//! is shrunk and its seed kept in `tests/fuzz/regressions/<target>.txt`,
//! which is replayed first on every later run: commit it, and the find
//! stays a regression test.

mod annotations;
mod config_toml;
mod lxc_reader;
mod pve_file;
mod pve_props;
mod spec_to_lxc;
mod tool_output;
mod upid;

use std::cell::Cell;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

/// What one case did with its input.
pub enum Case {
    /// The input was refused with an error (the right answer for much of
    /// what a fuzzer makes).
    Refused,
    /// The input was taken and the property held.
    Checked,
}

/// Runs `test` over `strategy`; fails when a case fails, or when fewer
/// than one case in `min_checked` got past the refusals, so a generator
/// that only ever makes refused input cannot pass unnoticed.
pub fn fuzz<S: Strategy>(
    regressions: &'static str,
    strategy: S,
    min_checked: u32,
    test: impl Fn(S::Value) -> Result<Case, TestCaseError>,
) {
    let config = Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    };
    let cases = config.cases;
    let checked = Cell::new(0u32);
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |value| {
        if let Case::Checked = test(value)? {
            checked.set(checked.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        checked.get() * min_checked >= cases,
        "only {} of {cases} cases got past the refusals",
        checked.get()
    );
}

/// Characters that end or split a line, a field, an option or a property
/// somewhere lxcri writes, mixed with ordinary ones.
pub const HOSTILE: &str = "[a-z0-9 \\t\\n\\r\\\\#,;=:\"'./*_@%-]";

/// A short string over [`HOSTILE`].
pub fn hostile(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{HOSTILE}{{0,{max}}}")).expect("a valid regex")
}

/// Mostly ordinary, now and then hostile: an input has many such fields,
/// and most inputs should still get past validation.
pub fn mostly_plain(plain: &'static str, max: usize) -> impl Strategy<Value = String> {
    proptest::prop_oneof![
        29 => proptest::string::string_regex(plain).expect("a valid regex"),
        1 => hostile(max),
    ]
}
