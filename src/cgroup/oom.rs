//! OOM kills in a container's memory cgroup, watched as containerd's runc
//! shim watches them: it publishes TaskOOM, from which the CRI plugin
//! reports the container as `OOMKilled`. An fd turns readable when there
//! may have been one; both kinds also fire when the cgroup goes.
//!
//! - v1: an eventfd registered through `cgroup.event_control` on
//!   `memory.oom_control`, which the kernel signals when the cgroup runs out
//!   of memory (just before it picks and counts a victim; `under_oom` is
//!   already clear again by then) and once more when the cgroup is removed.
//!   As containerd's v1 watcher, every notification is an OOM, unless it is
//!   the removal's: that one comes only after the cgroup's directory is
//!   gone (offlining the css waits for the rmdir), so signals read while the
//!   directory still exists are OOMs, and two or more read after it went
//!   hold at least one. LXC removes the cgroup as soon as the container
//!   stops, so nothing may wait for files to be read later.
//! - v2: inotify on `memory.events`, which the kernel marks modified on
//!   every event; an OOM kill is `oom_kill` grown (containerd's v2 watcher's
//!   rule). The kernel counts it before it sends SIGKILL.
//!
//! The cgroup watched is the one the processes are in (PVE's `ns` below
//! `lxc/VMID`, which holds the limit): the kernel notifies it and, on v1,
//! counts a kill only in the victim's own cgroup.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::flat_keyed::parse_flat_keyed;
use super::{CgroupVersion, ContainerCgroup};

#[derive(Debug, thiserror::Error)]
pub enum OomWatchError {
    #[error("the container has no memory cgroup: {0}")]
    NoMemoryCgroup(#[source] super::CgroupError),
    #[error("{what} {path}: {source}")]
    Setup {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} has no oom_kill count")]
    NoCount { path: PathBuf },
}

pub type Result<T> = std::result::Result<T, OomWatchError>;

/// What a look at the cgroup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OomCheck {
    /// The cgroup ran out of memory since the last look.
    pub oom: bool,
    /// The cgroup is gone: there is nothing more to watch, unless
    /// `undecided`.
    pub gone: bool,
    /// v1: the cgroup went and one signal came meanwhile, an OOM's or the
    /// removal's: the removal's is still to come if it was an OOM's, so
    /// the next look decides; [`OomWatch::settle`] when none comes.
    pub undecided: bool,
}

enum Wakeup {
    /// Signalled on each OOM and on removal; signals read but not decided.
    V1 { efd: EventFd, pending: u64 },
    /// Watching `memory.events`; the `oom_kill` count seen last.
    V2 { inotify: Inotify, seen: u64 },
}

/// One container's OOM watch.
pub struct OomWatch {
    /// `memory.oom_control` (v1) or `memory.events` (v2).
    file: PathBuf,
    wakeup: Wakeup,
}

impl OomWatch {
    /// Starts watching the memory cgroup `cgroup`'s processes are in; what
    /// happened before is not reported.
    pub fn open(cgroup: &ContainerCgroup) -> Result<Self> {
        let dir = cgroup
            .process_dir("memory")
            .map_err(OomWatchError::NoMemoryCgroup)?;
        match cgroup.version() {
            CgroupVersion::V1 => {
                let file = dir.join("memory.oom_control");
                let efd = register_eventfd(dir, &file)?;
                Ok(Self {
                    file,
                    wakeup: Wakeup::V1 { efd, pending: 0 },
                })
            }
            CgroupVersion::V2 => Self::on_events_file(dir.join("memory.events")),
        }
    }

    fn on_events_file(file: PathBuf) -> Result<Self> {
        let inotify = watch_modified(&file)?;
        let seen = oom_kills(&file)?;
        Ok(Self {
            file,
            wakeup: Wakeup::V2 { inotify, seen },
        })
    }

    /// Readable when there may have been an OOM (or the cgroup went).
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.wakeup {
            Wakeup::V1 { efd, .. } => efd.as_fd(),
            Wakeup::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// Takes what woke the fd (it is non-blocking) and says what happened
    /// since the last look.
    pub fn check(&mut self) -> OomCheck {
        match &mut self.wakeup {
            Wakeup::V1 { efd, pending } => {
                *pending += efd.read().unwrap_or(0);
                // After the read: a removal signal needs the file gone first.
                let gone = !self.file.exists();
                let (oom, undecided) = match (gone, *pending) {
                    (false, n) => (n > 0, false),
                    (true, n) => (n >= 2, n == 1),
                };
                if !undecided {
                    *pending = 0;
                }
                OomCheck {
                    oom,
                    gone,
                    undecided,
                }
            }
            Wakeup::V2 { inotify, seen } => {
                while inotify.read_events().is_ok_and(|e| !e.is_empty()) {}
                match oom_kills(&self.file) {
                    Ok(kills) => {
                        let oom = kills > *seen;
                        *seen = kills;
                        OomCheck {
                            oom,
                            gone: false,
                            undecided: false,
                        }
                    }
                    Err(_) => OomCheck {
                        oom: false,
                        gone: true,
                        undecided: false,
                    },
                }
            }
        }
    }
}

impl OomWatch {
    /// No signal followed an undecided one: it was the removal's.
    pub fn settle(&mut self) {
        if let Wakeup::V1 { pending, .. } = &mut self.wakeup {
            *pending = 0;
        }
    }
}

/// `oom_kill` of a v2 `memory.events`.
fn oom_kills(file: &Path) -> Result<u64> {
    let text = fs::read_to_string(file).map_err(|source| OomWatchError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    oom_kill_count(&text).ok_or_else(|| OomWatchError::NoCount {
        path: file.to_path_buf(),
    })
}

/// `oom_kill` of a `memory.oom_control` (v1) or `memory.events` (v2).
pub fn oom_kill_count(text: &str) -> Option<u64> {
    parse_flat_keyed(text).get("oom_kill").copied()
}

fn register_eventfd(dir: &Path, oom_control: &Path) -> Result<EventFd> {
    let setup = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| OomWatchError::Setup { what, path, source }
    };
    let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
        .map_err(|e: Errno| setup("eventfd for", oom_control)(e.into()))?;
    let control = fs::File::open(oom_control).map_err(setup("opening", oom_control))?;
    let event_control = dir.join("cgroup.event_control");
    // The kernel keeps its own reference: `control` may close after this.
    fs::write(
        &event_control,
        format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
    )
    .map_err(setup("registering with", &event_control))?;
    Ok(efd)
}

fn watch_modified(events: &Path) -> Result<Inotify> {
    let setup = |what, source: Errno| OomWatchError::Setup {
        what,
        path: events.to_path_buf(),
        source: source.into(),
    };
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
        .map_err(|e| setup("inotify for", e))?;
    inotify
        .add_watch(events, AddWatchFlags::IN_MODIFY)
        .map_err(|e| setup("watching", e))?;
    Ok(inotify)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(watch: &OomWatch) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(watch.fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).unwrap() == 1
    }

    fn found(oom: bool, gone: bool, undecided: bool) -> OomCheck {
        OomCheck {
            oom,
            gone,
            undecided,
        }
    }

    const QUIET: OomCheck = OomCheck {
        oom: false,
        gone: false,
        undecided: false,
    };

    #[test]
    fn v2_an_oom_is_a_grown_kill_count_from_the_watchs_start() {
        let tmp = tempfile::tempdir().unwrap();
        let events = tmp.path().join("memory.events");
        fs::write(&events, "low 0\nhigh 0\nmax 12\noom 4\noom_kill 4\n").unwrap();
        let mut watch = OomWatch::on_events_file(events.clone()).unwrap();
        assert_eq!(watch.check(), QUIET);
        // Out of memory, no victim counted yet: not a kill.
        fs::write(&events, "oom 5\noom_kill 4\n").unwrap();
        assert!(readable(&watch));
        assert_eq!(watch.check(), QUIET);
        assert!(!readable(&watch), "a look takes the wakeup");
        fs::write(&events, "oom 6\noom_kill 6\n").unwrap();
        assert_eq!(watch.check(), found(true, false, false));
        assert_eq!(watch.check(), QUIET);
        fs::remove_file(&events).unwrap();
        assert_eq!(watch.check(), found(false, true, false));
    }

    /// A v1 watch on a stand-in `memory.oom_control`, and a way to signal
    /// its eventfd as the kernel does.
    fn v1_watch(control: &Path) -> (OomWatch, impl Fn(&OomWatch, u64)) {
        fs::write(control, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n").unwrap();
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).unwrap();
        let watch = OomWatch {
            file: control.to_path_buf(),
            wakeup: Wakeup::V1 { efd, pending: 0 },
        };
        let signal = |watch: &OomWatch, n: u64| match &watch.wakeup {
            Wakeup::V1 { efd, .. } => {
                efd.write(n).unwrap();
            }
            Wakeup::V2 { .. } => unreachable!(),
        };
        (watch, signal)
    }

    #[test]
    fn v1_signals_while_the_cgroup_is_there_are_ooms() {
        let tmp = tempfile::tempdir().unwrap();
        let control = tmp.path().join("memory.oom_control");
        let (mut watch, signal) = v1_watch(&control);
        assert_eq!(watch.check(), QUIET);
        signal(&watch, 1);
        assert!(readable(&watch));
        assert_eq!(watch.check(), found(true, false, false));
        assert!(!readable(&watch));
        assert_eq!(watch.check(), QUIET);
        // An OOM's signal and the removal's, both read after it went.
        fs::remove_file(&control).unwrap();
        signal(&watch, 2);
        assert_eq!(watch.check(), found(true, true, false));
    }

    #[test]
    fn v1_one_signal_after_the_cgroup_went_waits_for_the_next() {
        let tmp = tempfile::tempdir().unwrap();
        let control = tmp.path().join("memory.oom_control");
        let (mut watch, signal) = v1_watch(&control);
        fs::remove_file(&control).unwrap();
        // An OOM's signal read after the rmdir: the removal's follows.
        signal(&watch, 1);
        assert_eq!(watch.check(), found(false, true, true));
        signal(&watch, 1);
        assert_eq!(watch.check(), found(true, true, false));
        // The removal's own signal, alone: nothing follows.
        signal(&watch, 1);
        assert_eq!(watch.check(), found(false, true, true));
        watch.settle();
        assert_eq!(watch.check(), found(false, true, false));
    }
}
