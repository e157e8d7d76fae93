//! Tests of the pure parts of the process setup.

use super::*;
use lxcri_init_spec::{CapabilitySets, Rlimit, SeccompProgram};
use nix::sys::resource::Resource;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn rlimit_names() {
    assert_eq!(
        rlimit_resource("RLIMIT_NOFILE"),
        Some(Resource::RLIMIT_NOFILE)
    );
    assert_eq!(
        rlimit_resource("RLIMIT_RTTIME"),
        Some(Resource::RLIMIT_RTTIME)
    );
    assert_eq!(rlimit_resource("NOFILE"), None);
}

#[test]
fn command_validates_the_spec() {
    let mut spec = ProcessSpec {
        args: names(&["sh", "-c", "true"]),
        env: names(&["PATH=/bin"]),
        cwd: "/".into(),
        capabilities: CapabilitySets {
            bounding: names(&["CAP_KILL"]),
            ..Default::default()
        },
        rlimits: vec![Rlimit {
            resource: "RLIMIT_NOFILE".into(),
            soft: 1024,
            hard: 4096,
        }],
        seccomp: Some(SeccompProgram {
            bpf: vec![6, 0, 0, 0, 0, 0, 0xff, 0x7f],
            flags: 0,
        }),
        ..Default::default()
    };
    let cmd = Command::new(&spec, Path::new("/bin/sh")).unwrap();
    assert_eq!(cmd.caps.bounding, 1 << 5);
    assert_eq!(cmd.umask, 0o022);
    assert_eq!(cmd.rlimits, vec![(Resource::RLIMIT_NOFILE, 1024, 4096)]);

    spec.env.push("BAD=\0".into());
    assert_eq!(
        Command::new(&spec, Path::new("/bin/sh")).err(),
        Some(SpecError::Nul {
            field: "process.env"
        })
    );
    spec.env.pop();
    spec.rlimits[0].resource = "RLIMIT_BOGUS".into();
    assert_eq!(
        Command::new(&spec, Path::new("/bin/sh")).err(),
        Some(SpecError::Rlimit("RLIMIT_BOGUS".into()))
    );
    spec.args.clear();
    assert_eq!(
        Command::new(&spec, Path::new("/bin/sh")).err(),
        Some(SpecError::NoArgs)
    );
}

/// Runs `check` in a forked child, so this test process keeps what the
/// check changes (its affinity, its session keyring); asserts it held.
pub(super) fn in_child(check: impl FnOnce() -> bool) {
    // SAFETY: the child only makes syscalls and exits.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let ok = check();
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
        }
    }
}
