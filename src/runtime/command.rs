//! External commands behind a narrow interface, so backend logic is
//! testable with a recording fake.

use std::ffi::OsString;
use std::process::{Command, Output, Stdio};

/// Runs a program to completion and returns its output.
pub trait CommandRunner: Send + Sync {
    fn run(&self, program: &str, args: &[OsString]) -> std::io::Result<Output>;
}

/// The real thing: `std::process::Command` with stdin from /dev/null.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemCommands;

impl CommandRunner for SystemCommands {
    fn run(&self, program: &str, args: &[OsString]) -> std::io::Result<Output> {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
    }
}

/// Renders a command line for error messages.
pub fn display(program: &str, args: &[OsString]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}
