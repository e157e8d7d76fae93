//! Resolving a mount destination inside the rootfs, the way the path will
//! look from inside the container.
//!
//! Symlinks in the rootfs are followed; an absolute target restarts at the
//! rootfs root (as under chroot). A `..` that would climb above the root,
//! whether written in the destination or produced by a relative symlink
//! target, is rejected rather than clamped: such an image or spec is
//! hostile or broken, and a mount must never land outside the rootfs.
//! Components that do not exist yet are taken as written (LXC creates them
//! with `create=dir|file`).

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Linux's limit on symlinks followed during one lookup (`MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("must be an absolute path")]
    NotAbsolute,
    #[error("escapes the container's rootfs through '..'")]
    Escapes,
    #[error("too many levels of symbolic links")]
    TooManyLinks,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

enum Part {
    Parent,
    Name(OsString),
}

/// Pushes `path`'s components onto the stack so they pop in order.
fn push_parts(stack: &mut Vec<Part>, path: &Path) {
    for c in path.components().rev() {
        match c {
            Component::Normal(name) => stack.push(Part::Name(name.to_os_string())),
            Component::ParentDir => stack.push(Part::Parent),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

/// Resolves the absolute container path `dest` under `root` and returns it
/// relative to `root` (empty for the root itself).
pub fn resolve_in_root(root: &Path, dest: &Path) -> Result<PathBuf, ResolveError> {
    if !dest.is_absolute() {
        return Err(ResolveError::NotAbsolute);
    }
    let mut stack = Vec::new();
    push_parts(&mut stack, dest);
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = stack.pop() {
        let name = match part {
            Part::Parent => {
                if !resolved.pop() {
                    return Err(ResolveError::Escapes);
                }
                continue;
            }
            Part::Name(name) => name,
        };
        let host = root.join(&resolved).join(&name);
        match std::fs::symlink_metadata(&host) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(ResolveError::TooManyLinks);
                }
                let target = std::fs::read_link(&host)
                    .map_err(|source| ResolveError::Io { path: host, source })?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                push_parts(&mut stack, &target);
            }
            Ok(_) => resolved.push(&name),
            // Not there (yet), or a path through a regular file: from here
            // on the rest is taken as written; LXC creates or rejects it.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                resolved.push(&name)
            }
            Err(source) => return Err(ResolveError::Io { path: host, source }),
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for d in ["etc", "usr/lib", "var", "data"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("etc/hosts"), "").unwrap();
        symlink("/usr/lib", r.join("lib")).unwrap(); // absolute, inside
        symlink("../run", r.join("var/run")).unwrap(); // relative, inside
        symlink("../../..", r.join("data/up")).unwrap(); // relative, escapes
        symlink("/../../etc", r.join("abs-up")).unwrap(); // absolute with ..
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        dir
    }

    fn ok(root: &Path, dest: &str) -> String {
        resolve_in_root(root, Path::new(dest))
            .unwrap_or_else(|e| panic!("{dest}: {e}"))
            .to_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn plain_and_missing_paths() {
        let r = rootfs();
        assert_eq!(ok(r.path(), "/etc/hosts"), "etc/hosts");
        assert_eq!(ok(r.path(), "//etc/./hosts/"), "etc/hosts");
        assert_eq!(ok(r.path(), "/new/dir"), "new/dir");
        assert_eq!(ok(r.path(), "/etc/hosts/x"), "etc/hosts/x");
        assert_eq!(ok(r.path(), "/etc/../var"), "var");
        assert_eq!(ok(r.path(), "/"), "");
    }

    #[test]
    fn symlinks_are_followed_inside_the_root() {
        let r = rootfs();
        assert_eq!(ok(r.path(), "/lib/modules"), "usr/lib/modules");
        assert_eq!(ok(r.path(), "/var/run/secrets"), "run/secrets");
    }

    #[test]
    fn escapes_are_rejected() {
        let r = rootfs();
        for dest in [
            "/..",
            "/etc/../../x",
            "/data/up/etc",
            "/abs-up",
            "/new/../../x",
        ] {
            assert!(
                matches!(
                    resolve_in_root(r.path(), Path::new(dest)),
                    Err(ResolveError::Escapes)
                ),
                "{dest}"
            );
        }
    }

    #[test]
    fn relative_destinations_and_loops_are_rejected() {
        let r = rootfs();
        assert!(matches!(
            resolve_in_root(r.path(), Path::new("etc/hosts")),
            Err(ResolveError::NotAbsolute)
        ));
        assert!(matches!(
            resolve_in_root(r.path(), Path::new("/loop1/x")),
            Err(ResolveError::TooManyLinks)
        ));
    }
}
