use oci_spec::runtime::LinuxSeccomp;

use super::*;

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

fn assert_bpf(p: &SeccompProgram) {
    assert!(!p.bpf.is_empty());
    assert_eq!(p.bpf.len() % 8, 0);
}

#[test]
fn compiles_an_allowlist_with_errno_default() {
    let p = compile_seccomp(&profile(
        r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [
                {"names": ["read", "write", "exit_group", "no_such_syscall_xyz"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["socketcall"], "action": "SCMP_ACT_ALLOW"}
            ]
        }"#,
    ))
    .unwrap();
    assert_bpf(&p);
    assert_eq!(p.flags, FLAG_TSYNC | FLAG_LOG);
}

#[test]
fn unknown_syscall_is_skipped() {
    let with = compile_seccomp(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid", "no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO"}]}"#,
    ))
    .unwrap();
    let without = compile_seccomp(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]}"#,
    ))
    .unwrap();
    assert_eq!(with, without);
}

#[test]
fn errno_ret_changes_the_program() {
    let errno = |n: u32| {
        compile_seccomp(&profile(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": {n}}}]}}"#
        )))
        .unwrap()
    };
    assert_bpf(&errno(1));
    assert_ne!(errno(1).bpf, errno(13).bpf);
}

#[test]
fn argument_filters_compile() {
    // containerd's default profile: personality(0), personality(8), and
    // clone without namespace flags (masked equality).
    let p = compile_seccomp(&profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"},
                          {"index": 1, "value": 3, "op": "SCMP_CMP_LE"}]},
                {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                          {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]}
            ]}"#,
    ))
    .unwrap();
    assert_bpf(&p);
}

#[test]
fn rules_with_the_default_action_are_skipped() {
    let p = compile_seccomp(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap();
    let empty = compile_seccomp(&profile(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#)).unwrap();
    assert_eq!(p, empty);
}

#[test]
fn every_action_compiles() {
    for act in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
    ] {
        let p = compile_seccomp(&profile(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{{"names": ["mkdir"], "action": "{act}"}}]}}"#
        )))
        .unwrap_or_else(|e| panic!("{act}: {e}"));
        assert_bpf(&p);
    }
}

#[test]
fn notify_and_listener_are_unsupported_and_named() {
    let err = compile_seccomp(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("linux.seccomp.syscalls[0].action:"),
        "{err}"
    );

    let err = compile_seccomp(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}"#,
    ))
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("linux.seccomp.listenerPath:"), "{err}");

    let err = compile_seccomp(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
    ))
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("linux.seccomp.flags[0]:"), "{err}");
}

#[test]
fn bad_fields_are_named() {
    let err = compile_seccomp(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}"#,
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("linux.seccomp.syscalls[0].errnoRet:"),
        "{err}"
    );

    let err = compile_seccomp(&profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}"#,
    ))
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("linux.seccomp.defaultErrnoRet:"), "{err}");

    let err = compile_seccomp(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("linux.seccomp.syscalls[0].args[0].index:"),
        "{err}"
    );
}

#[test]
fn unknown_action_or_flag_fails_to_parse() {
    // oci-spec types these as enums; `spec::load_bundle_spec` reports them
    // by field before the typed parse (see spec tests).
    assert!(
        serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction": "SCMP_ACT_BOGUS"}"#).is_err()
    );
    assert!(serde_json::from_str::<LinuxSeccomp>(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}"#
    )
    .is_err());
}

/// The exported program is what the kernel accepts: load it in a forked
/// child (no_new_privs makes this work without privileges).
#[test]
fn exported_bpf_is_loadable_and_enforced() {
    let p = compile_seccomp(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    ))
    .unwrap();
    assert_eq!(
        errnos_under(&p, &[libc::SYS_getppid, libc::SYS_getpid]),
        [13, 0]
    );
}

/// Loads `p` in a forked child and returns, for each raw syscall number,
/// the errno it failed with (0: it succeeded).
fn errnos_under(p: &SeccompProgram, syscalls: &[libc::c_long]) -> Vec<i32> {
    let prog = libc::sock_fprog {
        len: (p.bpf.len() / 8) as u16,
        filter: p.bpf.as_ptr() as *mut libc::sock_filter,
    };
    let mut fds = [0; 2];
    // SAFETY: plain pipe(2) into a local array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only makes raw syscalls, writes and _exits.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            let loaded = libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                && libc::syscall(
                    libc::SYS_seccomp,
                    1, /* SECCOMP_SET_MODE_FILTER */
                    p.flags,
                    &prog as *const libc::sock_fprog,
                ) == 0;
            if !loaded {
                libc::_exit(2);
            }
            for &nr in syscalls {
                let errno: i32 = if libc::syscall(nr, 0, 0, 0, 0) == -1 {
                    *libc::__errno_location()
                } else {
                    0
                };
                libc::write(fds[1], (&errno as *const i32).cast(), 4);
            }
            libc::_exit(0);
        }
        libc::close(fds[1]);
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "status {status:#x}"
        );
        let mut out = Vec::new();
        let mut buf = [0u8; 4];
        while libc::read(fds[0], buf.as_mut_ptr().cast(), 4) == 4 {
            out.push(i32::from_ne_bytes(buf));
        }
        libc::close(fds[0]);
        out
    }
}

/// runc's behaviour: under a denying default, a syscall above every one
/// the profile names fails with ENOSYS (so a libc falls back to an older
/// one), one below it with the default errno.
#[cfg(target_arch = "x86_64")]
#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    let p = compile_seccomp(&profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
              {"names": ["write", "exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["nosuch_syscall"], "action": "SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap();
    // exit_group (231) is the highest named; getuid (102) is below it,
    // fchmodat2 (452) and 232 above.
    let got = errnos_under(&p, &[libc::SYS_getpid, libc::SYS_getuid, 232, 452]);
    assert_eq!(got, [0, libc::EPERM, libc::ENOSYS, libc::ENOSYS]);
}

#[test]
fn only_a_denying_default_gets_the_enosys_prefix() {
    use libseccomp::ScmpAction;
    for (default, wanted) in [
        (ScmpAction::Errno(libc::EPERM), true),
        (ScmpAction::KillProcess, true),
        (ScmpAction::Trap, true),
        (ScmpAction::Errno(libc::ENOSYS), false),
        (ScmpAction::Allow, false),
        (ScmpAction::Log, false),
        (ScmpAction::Trace(1), false),
    ] {
        assert_eq!(super::enosys::needed(default), wanted, "{default:?}");
    }
}

#[test]
fn a_profile_naming_no_known_syscall_gets_no_prefix() {
    use libseccomp::ScmpArch;
    let highest =
        super::enosys::highest_numbers(&[ScmpArch::Native], ["nosuch_syscall"].into_iter());
    assert!(highest.is_empty());
    assert!(super::enosys::prefix(&highest).unwrap().is_empty());
}
