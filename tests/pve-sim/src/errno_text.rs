//! Perl's `$!` in PVE's messages: the C library's text of an errno.

/// The text of `e`'s errno, without Rust's "(os error N)".
pub fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}
