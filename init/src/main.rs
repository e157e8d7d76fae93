//! `lxcri-init`: PID 1 of every lxcri container until it becomes the OCI
//! process (no arguments), the host-side helper that runs exec processes
//! (`lxcri-init exec <spec.json>`), and the host-side helper that binds
//! shared volumes into a created container (`lxcri-init share <spec.json>`),
//! the one that runs OCI hooks (`lxcri-init hooks <spec.json>`), and the
//! one that gives a container's mount namespace the host's tree as its
//! root while its create hooks run (`lxcri-init host-view <spec.json>`).
//! The protocol with the shim is documented in `lxcri-init-spec`.
//!
//! Exit codes (see [`status`]):
//! * PID 1 mode: 255 when the init itself fails (before or after `Ready`,
//!   a `startContainer` hook, the process setup or `execve` included), as
//!   runc 1.2+'s init; otherwise the OCI process's status (exit code, or
//!   128 + signal).
//! * exec mode: the process's status; a fatal signal is re-raised so the
//!   shim's `waitpid` sees the same signal. When the process cannot be
//!   started: 125 = setup failed (spec, namespaces, cgroups, rlimits,
//!   identity, capabilities, seccomp, AppArmor, cwd...), 126 = found but
//!   not executable, 127 = not found.
//! * 2 = bad command line.

mod bind_flags;
mod dev_setup;
mod errno_text;
mod exec;
mod hooks;
mod host_view;
mod init_proc;
mod mapping_userns;
mod mount_tree;
mod passwd;
mod path_lookup;
mod pid1;
mod prepare;
mod process;
mod share;
mod signals;
mod spec_file;
mod status;
mod stdio;

use std::ffi::OsString;
use std::path::Path;

const USAGE: &str = "usage: lxcri-init            (PID 1 inside an lxcri container)\n       lxcri-init exec <spec.json>\n       lxcri-init share <spec.json>\n       lxcri-init hooks <spec.json>\n       lxcri-init host-view <spec.json>";

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let code = match args.as_slice() {
        [] => pid1::run(),
        [cmd, spec] if cmd == "exec" => exec::run(Path::new(spec)),
        [cmd, spec] if cmd == "share" => share::run(Path::new(spec)),
        [cmd, spec] if cmd == "hooks" => hooks::run(Path::new(spec)),
        [cmd, spec] if cmd == "host-view" => host_view::run(Path::new(spec)),
        _ => {
            eprintln!("{USAGE}");
            status::EXIT_USAGE
        }
    };
    std::process::exit(code);
}
