//! An errno worded as runc words it (Go's `syscall.Errno`, whose table is
//! the C library's text lower-cased at the start, no symbol): a setup
//! failure reads the same on both runtimes, and tools that match runc's
//! messages ("no such file or directory", "permission denied") match ours.
//! nix's own descriptions follow the kernel's comments instead ("out of
//! memory", "too many symbolic links encountered"), so the common ones are
//! listed here; any other gets nix's, lower-cased.

use nix::errno::Errno;

/// Go's texts where nix's differ or may differ.
const GO_TEXTS: [(Errno, &str); 40] = [
    (Errno::EPERM, "operation not permitted"),
    (Errno::ENOENT, "no such file or directory"),
    (Errno::ESRCH, "no such process"),
    (Errno::EINTR, "interrupted system call"),
    (Errno::EIO, "input/output error"),
    (Errno::ENXIO, "no such device or address"),
    (Errno::E2BIG, "argument list too long"),
    (Errno::ENOEXEC, "exec format error"),
    (Errno::EBADF, "bad file descriptor"),
    (Errno::ECHILD, "no child processes"),
    (Errno::EAGAIN, "resource temporarily unavailable"),
    (Errno::ENOMEM, "cannot allocate memory"),
    (Errno::EACCES, "permission denied"),
    (Errno::EFAULT, "bad address"),
    (Errno::ENOTBLK, "block device required"),
    (Errno::EBUSY, "device or resource busy"),
    (Errno::EEXIST, "file exists"),
    (Errno::EXDEV, "invalid cross-device link"),
    (Errno::ENODEV, "no such device"),
    (Errno::ENOTDIR, "not a directory"),
    (Errno::EISDIR, "is a directory"),
    (Errno::EINVAL, "invalid argument"),
    (Errno::ENFILE, "too many open files in system"),
    (Errno::EMFILE, "too many open files"),
    (Errno::ENOTTY, "inappropriate ioctl for device"),
    (Errno::ETXTBSY, "text file busy"),
    (Errno::EFBIG, "file too large"),
    (Errno::ENOSPC, "no space left on device"),
    (Errno::ESPIPE, "illegal seek"),
    (Errno::EROFS, "read-only file system"),
    (Errno::EMLINK, "too many links"),
    (Errno::EPIPE, "broken pipe"),
    (Errno::ERANGE, "numerical result out of range"),
    (Errno::ENAMETOOLONG, "file name too long"),
    (Errno::ENOSYS, "function not implemented"),
    (Errno::ENOTEMPTY, "directory not empty"),
    (Errno::ELOOP, "too many levels of symbolic links"),
    (Errno::EOVERFLOW, "value too large for defined data type"),
    (Errno::EOPNOTSUPP, "operation not supported"),
    (Errno::EDQUOT, "disk quota exceeded"),
];

pub fn errno_text(errno: Errno) -> String {
    if let Some((_, text)) = GO_TEXTS.iter().find(|(e, _)| *e == errno) {
        return (*text).to_string();
    }
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
        assert_eq!(
            errno_text(Errno::ELOOP),
            "too many levels of symbolic links"
        );
        assert_eq!(errno_text(Errno::ENOMEM), "cannot allocate memory");
        // Not in the table: nix's, lower-cased.
        assert!(errno_text(Errno::ENOLINK).starts_with(|c: char| c.is_lowercase()));
    }
}
