//! Golden tests: `tests/fixtures/spec/X.json` renders to `X.lxc` and
//! `X.init.json`; `LXCRI_BLESS=1` rewrites the expectations.

use std::fs;
use std::path::{Path, PathBuf};

use super::env;
use crate::cgroup::CgroupVersion;
use crate::plan::plan_container;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spec")
}

fn check_golden(path: &Path, actual: &str, mismatches: &mut Vec<String>) {
    if std::env::var_os("LXCRI_BLESS").is_some_and(|v| v == "1") {
        fs::write(path, actual).unwrap();
        return;
    }
    match fs::read_to_string(path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => mismatches.push(format!(
            "{} differs (LXCRI_BLESS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        )),
        Err(e) => mismatches.push(format!(
            "{}: {e} (LXCRI_BLESS=1 writes it)",
            path.display()
        )),
    }
}

#[test]
fn golden_fixtures() {
    let mut names: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.to_string_lossy().ends_with(".init.json")
        })
        .collect();
    names.sort();
    assert!(names.len() >= 4, "fixtures missing: {names:?}");
    let mut mismatches = Vec::new();
    for json_path in names {
        let stem = json_path.file_stem().unwrap().to_str().unwrap().to_string();
        let cgroup = if stem.ends_with("-v1") {
            CgroupVersion::V1
        } else {
            CgroupVersion::V2
        };
        let env = env();
        let spec = env.spec_from(&fs::read_to_string(&json_path).unwrap());
        let mut plan = plan_container(&spec, &env.ctx(cgroup))
            .unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
        let lxc = env.scrub(&plan.lxc.render().unwrap());
        check_golden(
            &fixtures_dir().join(format!("{stem}.lxc")),
            &lxc,
            &mut mismatches,
        );

        // The BPF bytes depend on the libseccomp version; they are checked
        // in security::seccomp. Keep only their presence and flags here.
        if let Some(s) = &mut plan.init.process.seccomp {
            assert!(!s.bpf.is_empty() && s.bpf.len() % 8 == 0);
            s.bpf.clear();
        }
        let init = env.scrub(&serde_json::to_string_pretty(&plan.init).unwrap()) + "\n";
        check_golden(
            &fixtures_dir().join(format!("{stem}.init.json")),
            &init,
            &mut mismatches,
        );
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}
