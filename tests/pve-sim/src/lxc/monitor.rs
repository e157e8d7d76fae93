//! The CT state messages PVE's `vm_start` waits for (pve-container src/PVE/LXC.pm
//! `monitor_state_change`, src/PVE/LXC/Monitor.pm). On a node they come from
//! lxc-monitord's socket, which relays what every `lxc-start` writes to the fifo
//! `/run/lxc/LXCPATH/monitor-fifo` (lxc src/lxc/monitor.c `lxc_monitor_fifo_name`,
//! `lxc_monitor_send_state`; `lxc_set_state` in start.c sends each state there). The
//! stand-in has no lxc-monitord: it reads that fifo itself while at least one start
//! waits, and removes it (and the directories it made for it) afterwards.

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// LXC's `lxc_state_t` values (src/lxc/state.h, LXC/Monitor.pm).
pub const STARTING: i32 = 1;
pub const RUNNING: i32 = 2;
pub const STOPPING: i32 = 3;
pub const ABORTING: i32 = 4;
pub const STOPPED: i32 = 0;

/// `struct lxc_msg { int type; char name[NAME_MAX + 1]; int value; }` (monitor.h).
const MSG_SIZE: usize = 4 + 256 + 4;
/// `lxc_msg_state`.
const MSG_STATE: i32 = 0;

struct Fifo {
    fd: OwnedFd,
    path: PathBuf,
    /// Whether this process made the fifo (then it removes it, and the empty
    /// directories above it up to /run/lxc).
    made: bool,
}

#[derive(Default)]
struct Inner {
    fifo: Option<Fifo>,
    watchers: usize,
    /// STATE values per container name, in arrival order, not yet taken.
    events: HashMap<String, Vec<i32>>,
}

/// The state messages of one lxcpath.
pub struct States {
    path: PathBuf,
    inner: Mutex<Inner>,
}

/// One start's view of the messages; the fifo exists while any `Watch` lives.
pub struct Watch<'a> {
    states: &'a States,
    name: String,
}

/// The fifo's directories, made for it and removed after it, stop at this one.
const RUN_LXC: &str = "/run/lxc";

/// `mkdir -p` of the fifo's directory; another stand-in may remove an empty parent at the
/// same time, so a vanished parent is tried again.
fn make_dirs(dir: &Path) -> Result<(), String> {
    for _ in 0..10 {
        match std::fs::create_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("creating {}: {e}", dir.display())),
        }
    }
    Err(format!(
        "creating {}: parents keep vanishing",
        dir.display()
    ))
}

fn open_fifo(path: &Path) -> Result<Fifo, String> {
    let mut made = None;
    for _ in 0..10 {
        if let Some(dir) = path.parent() {
            make_dirs(dir)?;
        }
        match nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)) {
            Ok(()) => made = Some(true),
            Err(nix::errno::Errno::EEXIST) => made = Some(false),
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(format!("mkfifo {}: {e}", path.display())),
        }
        break;
    }
    let made = made.ok_or(format!("mkfifo {}: parents keep vanishing", path.display()))?;
    // Read and write end in one: reads never see EOF when no lxc-start has it open.
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening {}: {e}", path.display()))?;
    Ok(Fifo {
        fd,
        path: path.to_path_buf(),
        made,
    })
}

impl States {
    pub fn new(lxcpath: &Path) -> States {
        // lxc_monitor_fifo_name: "%s/lxc/%s/monitor-fifo" with rundir /run for root.
        let path = PathBuf::from(format!("/run/lxc/{}/monitor-fifo", lxcpath.display()));
        States {
            path,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts listening for `name`'s states (forgetting older ones).
    pub fn watch(&self, name: &str) -> Result<Watch<'_>, String> {
        let mut inner = self.lock();
        if inner.fifo.is_none() {
            inner.fifo = Some(open_fifo(&self.path)?);
        }
        inner.watchers += 1;
        inner.events.remove(name);
        Ok(Watch {
            states: self,
            name: name.to_string(),
        })
    }
}

impl Watch<'_> {
    /// The states that arrived for this container since the last call.
    pub fn poll(&self) -> Vec<i32> {
        let mut inner = self.states.lock();
        let mut buf = [0u8; MSG_SIZE * 16];
        while let Some(fifo) = &inner.fifo {
            let n = match nix::unistd::read(&fifo.fd, &mut buf) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            // Writes of one message are atomic (PIPE_BUF), so reads hold whole ones.
            for msg in buf[..n].chunks_exact(MSG_SIZE) {
                let ty = i32::from_ne_bytes(msg[0..4].try_into().unwrap_or_default());
                let name = &msg[4..260];
                let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(256)];
                let value = i32::from_ne_bytes(msg[260..264].try_into().unwrap_or_default());
                if ty == MSG_STATE {
                    inner
                        .events
                        .entry(String::from_utf8_lossy(name).into_owned())
                        .or_default()
                        .push(value);
                }
            }
        }
        inner.events.remove(&self.name).unwrap_or_default()
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let mut inner = self.states.lock();
        inner.watchers -= 1;
        inner.events.remove(&self.name);
        if inner.watchers > 0 {
            return;
        }
        if let Some(fifo) = inner.fifo.take() {
            drop(fifo.fd);
            if fifo.made {
                let _ = std::fs::remove_file(&fifo.path);
                for d in fifo.path.ancestors().skip(1) {
                    if !d.starts_with(RUN_LXC) || d == Path::new(RUN_LXC) {
                        break;
                    }
                    if std::fs::remove_dir(d).is_err() {
                        break;
                    }
                }
            }
        }
    }
}
