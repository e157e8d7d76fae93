//! Mount options that are flags: the per-mount `MS_*` bits runc knows, as
//! mount(8) reads them (the last of a pair wins), and the propagation
//! options, which the mount plan applies itself. Shared by the checks of
//! the spec's `/dev` and `/dev/pts` and by the flags the init sets on binds.

/// Flag options: what each sets, and what it clears.
const FLAGS: [(&str, u64, u64); 17] = [
    ("ro", libc::MS_RDONLY, 0),
    ("rw", 0, libc::MS_RDONLY),
    ("nosuid", libc::MS_NOSUID, 0),
    ("suid", 0, libc::MS_NOSUID),
    ("nodev", libc::MS_NODEV, 0),
    ("dev", 0, libc::MS_NODEV),
    ("noexec", libc::MS_NOEXEC, 0),
    ("exec", 0, libc::MS_NOEXEC),
    ("sync", libc::MS_SYNCHRONOUS, 0),
    ("async", 0, libc::MS_SYNCHRONOUS),
    ("dirsync", libc::MS_DIRSYNC, 0),
    ("nodiratime", libc::MS_NODIRATIME, 0),
    ("diratime", 0, libc::MS_NODIRATIME),
    ("strictatime", libc::MS_STRICTATIME, ATIME),
    ("noatime", libc::MS_NOATIME, ATIME),
    ("relatime", libc::MS_RELATIME, ATIME),
    ("norelatime", 0, libc::MS_RELATIME),
];

const ATIME: u64 = libc::MS_STRICTATIME | libc::MS_NOATIME | libc::MS_RELATIME;

/// Propagation options: the mount plan's, not a filesystem's.
const PROPAGATION: [&str; 8] = [
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
];

/// The `MS_*` bits of `options`' flag options, and the others with their
/// index (propagation left out): what the filesystem itself is given.
pub(super) fn split(options: &[String]) -> (u64, Vec<(usize, &String)>) {
    let mut flags = 0;
    let mut rest = Vec::new();
    for (k, opt) in options.iter().enumerate() {
        if let Some((_, set, clear)) = FLAGS.iter().find(|(name, _, _)| name == opt) {
            flags = (flags & !clear) | set;
        } else if !PROPAGATION.contains(&opt.as_str()) {
            rest.push((k, opt));
        }
    }
    (flags, rest)
}
