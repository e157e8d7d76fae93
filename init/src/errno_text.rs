//! An errno worded as runc words it (Go's `syscall.Errno`: the C library's
//! text, lower-cased at the start, no symbol): a setup failure reads the
//! same on both runtimes, and tools that match runc's messages ("no such
//! file or directory", "permission denied") match ours.

use nix::errno::Errno;

pub fn errno_text(errno: Errno) -> String {
    let desc = errno.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("errno {}", errno as i32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_runc() {
        assert_eq!(errno_text(Errno::ENOENT), "no such file or directory");
        assert_eq!(errno_text(Errno::EACCES), "permission denied");
        assert_eq!(errno_text(Errno::EPERM), "operation not permitted");
    }
}
