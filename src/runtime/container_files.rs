//! Reading what the container's own processes can write: the files of its
//! runtime directory (bind-mounted at `/.lxcri`), such as the init's exit
//! report and last words. Its root can replace any of them with a symlink
//! to a host file, a FIFO or `/dev/zero`; the shim reads them on the host.
//! So: the last component is not followed, only a regular file is read,
//! and at most `limit` bytes of it.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The first `limit` bytes of the regular file `path`, without following a
/// symlink there and without blocking on a FIFO.
pub(super) fn read(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut body = Vec::new();
    f.take(limit).read_to_end(&mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_devices_and_fifos_are_not_read_and_files_are_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = tmp.path().join("secret");
        std::fs::write(&secret, "host secret").unwrap();
        let link = tmp.path().join("exit");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        assert!(read(&link, 4096).is_err());
        let zero = tmp.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(read(&zero, 4096).is_err());
        assert!(read(Path::new("/dev/zero"), 4096).is_err());
        let fifo = tmp.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(read(&fifo, 4096).is_err());
        let big = tmp.path().join("big");
        std::fs::write(&big, vec![b'x'; 10_000]).unwrap();
        assert_eq!(read(&big, 4096).unwrap().len(), 4096);
    }
}
