//! How a container's PID 1 ended, seen from the host.
//!
//! The OCI process is PID 1 of its container and a child of LXC's monitor
//! (or of `pve-container@VMID.service`'s `lxc-start`), never of the shim;
//! `lxc-start` does not pass the status on. Two ways to learn it:
//!
//! - pidfs (Linux 6.15, `PIDFD_INFO_EXIT`) keeps a reaped process's exit
//!   status for its pidfds: the shim holds one pidfd per watched process
//!   and asks it once the process is gone. Nothing else on the node pays.
//! - Before that, the kernel's process-events connector, which reports
//!   the exit of any process to a root listener in the initial namespaces.
//!   The shim listens with a socket filter that lets through only the
//!   exits of the pids it watches (the kernel sends the event in the same
//!   exit path that makes the process's pidfd readable, just after it:
//!   after that readiness the event is there, or on its way). Every
//!   process event on the node goes past every listener, though: with 300
//!   shims a fork, exec or exit costs the forking process about 60 us more
//!   (docs/benchmarks.md).

use std::collections::BTreeMap;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::pidfd;

/// `NETLINK_CONNECTOR` multicast group and id of the process connector.
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
/// `PROC_CN_MCAST_LISTEN`.
const MCAST_LISTEN: u32 = 1;
/// `PROC_EVENT_EXIT`.
const EVENT_EXIT: u32 = 0x8000_0000;

/// `struct nlmsghdr`.
const NLMSG_HDR: usize = 16;
/// `struct cn_msg`: id (idx, val), seq, ack, len (u16), flags (u16).
const CN_MSG: usize = 20;
/// Offsets in a message of `struct proc_event`: what (u32), cpu (u32),
/// timestamp (u64), then `exit_proc_event`: pid, tgid, exit_code,
/// exit_signal, parent pid, parent tgid.
const EVENT: usize = NLMSG_HDR + CN_MSG;
const WHAT: usize = EVENT;
const EXIT_PID: usize = EVENT + 16;
const EXIT_TGID: usize = EVENT + 20;
const EXIT_CODE: usize = EVENT + 24;
const EXIT_LEN: usize = EVENT + 40;

/// One thread's exit, as the connector reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitEvent {
    pub pid: i32,
    /// The process (thread group) it belonged to.
    pub tgid: i32,
    /// The wait status: `code << 8`, or the signal (| 0x80 with a core).
    pub wait_status: u32,
}

impl ExitEvent {
    /// As containerd reports it: the exit code, or 128 + the signal.
    pub fn exit_status(&self) -> u32 {
        let signal = self.wait_status & 0x7f;
        if signal == 0 {
            (self.wait_status >> 8) & 0xff
        } else {
            128 + signal
        }
    }
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    buf.get(at..at + 4)
        .map(|b| u32::from_ne_bytes(b.try_into().expect("four bytes")))
}

/// The exit events of one datagram (one or more netlink messages).
pub fn parse_exits(datagram: &[u8]) -> Vec<ExitEvent> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while rest.len() >= NLMSG_HDR {
        let len = u32_at(rest, 0).unwrap_or(0) as usize;
        if len < NLMSG_HDR || len > rest.len() {
            break;
        }
        let msg = &rest[..len];
        if msg.len() >= EXIT_LEN && u32_at(msg, WHAT) == Some(EVENT_EXIT) {
            out.push(ExitEvent {
                pid: u32_at(msg, EXIT_PID).unwrap_or(0) as i32,
                tgid: u32_at(msg, EXIT_TGID).unwrap_or(0) as i32,
                wait_status: u32_at(msg, EXIT_CODE).unwrap_or(0),
            });
        }
        // Messages are 4-byte aligned (NLMSG_ALIGN).
        let next = (len + 3) & !3;
        rest = rest.get(next..).unwrap_or_default();
    }
    out
}

/// A classic BPF program that accepts exit events of the watched thread
/// groups and drops everything else. Loads of 32-bit words read network
/// byte order, so constants are compared as the bytes the kernel wrote.
pub fn exit_filter(tgids: &[i32]) -> Vec<libc::sock_filter> {
    let drop = bpf(libc::BPF_RET | libc::BPF_K, 0, 0, 0);
    let n = tgids.len();
    if n == 0 {
        return vec![drop];
    }
    let ld = |at: usize| bpf(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, at as u32);
    let wire = |v: u32| u32::from_be_bytes(v.to_ne_bytes());
    let jeq = |k: u32, jt: usize, jf: usize| {
        bpf(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            jt as u8,
            jf as u8,
            k,
        )
    };
    // 0: what; 1: an exit, or to the drop; 2: tgid; 3..3+n: one check per
    // tgid, to the accept at 3+n; the drop at 4+n.
    let mut prog = vec![ld(WHAT), jeq(wire(EVENT_EXIT), 0, n + 2), ld(EXIT_TGID)];
    for (i, tgid) in tgids.iter().enumerate() {
        let last = i + 1 == n;
        prog.push(jeq(wire(*tgid as u32), n - i - 1, usize::from(last)));
    }
    prog.push(bpf(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX));
    prog.push(drop);
    prog
}

fn bpf(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The most pids one filter checks: a jump spans at most 255
/// instructions; far more than a pod's containers.
const MAX_WATCHED: usize = 250;

/// Watches processes for their exit status (see the module docs).
#[derive(Debug)]
pub struct ExitMonitor {
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// A pidfd per watched process.
    Pidfs(Mutex<BTreeMap<i32, OwnedFd>>),
    Connector(Connector),
}

impl ExitMonitor {
    /// pidfs where the kernel keeps exit statuses, else the connector
    /// (root, initial namespaces).
    pub fn open() -> io::Result<Self> {
        let source = if pidfd::keeps_exit_status() {
            Source::Pidfs(Mutex::new(BTreeMap::new()))
        } else {
            Source::Connector(Connector::open()?)
        };
        Ok(Self { source })
    }

    /// The connector even where pidfs would do: its tests, on any kernel.
    #[cfg(test)]
    fn connector() -> io::Result<Self> {
        Connector::open().map(|c| Self {
            source: Source::Connector(c),
        })
    }

    /// Whether exits come from pidfs rather than the connector.
    pub fn uses_pidfs(&self) -> bool {
        matches!(self.source, Source::Pidfs(_))
    }

    /// Starts recording the exit of `pid` (a process, i.e. a thread
    /// group). One already reaped has no known status.
    pub fn watch(&self, pid: i32) -> io::Result<()> {
        match &self.source {
            Source::Pidfs(fds) => {
                let fd = match pidfd::pidfd_open(pid) {
                    Ok(fd) => fd,
                    // Reaped already: its status is not known, as when the
                    // connector's event came before the watch.
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
                    Err(e) => return Err(e),
                };
                let mut fds = fds.lock().unwrap_or_else(|e| e.into_inner());
                if fds.len() >= MAX_WATCHED {
                    return Err(io::Error::other("too many watched processes"));
                }
                fds.insert(pid, fd);
                Ok(())
            }
            Source::Connector(c) => c.watch(pid),
        }
    }

    /// The exit of `pid`, waiting up to `wait` for it to be known (call it
    /// once the process is gone: its pidfd readable), and stops watching
    /// it. `None` when it did not become known in time.
    pub fn take_exit(&self, pid: i32, wait: Duration) -> io::Result<Option<ExitEvent>> {
        match &self.source {
            Source::Pidfs(fds) => {
                let fd = fds.lock().unwrap_or_else(|e| e.into_inner()).remove(&pid);
                let Some(fd) = fd else {
                    return Ok(None);
                };
                reaped_exit(&fd, pid, wait)
            }
            Source::Connector(c) => c.take_exit(pid, wait),
        }
    }
}

/// How often to ask pidfs while a gone process waits to be reaped (its
/// parent, LXC's monitor, reaps it at once).
const REAP_POLL: Duration = Duration::from_millis(1);

fn reaped_exit(fd: &OwnedFd, pid: i32, wait: Duration) -> io::Result<Option<ExitEvent>> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(wait_status) = pidfd::reaped_exit_status(fd)? {
            return Ok(Some(ExitEvent {
                pid,
                tgid: pid,
                wait_status,
            }));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(REAP_POLL);
    }
}

/// A listener on the process-events connector, for a set of pids.
#[derive(Debug)]
struct Connector {
    fd: OwnedFd,
    /// Watched thread groups and the last exit seen of each.
    watched: Mutex<BTreeMap<i32, Option<ExitEvent>>>,
}

impl Connector {
    fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2); a non-negative return is an fd we own.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_CONNECTOR,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let monitor = Self {
            fd,
            watched: Mutex::new(BTreeMap::new()),
        };
        // Nothing passes until a pid is watched.
        monitor.set_filter(&[])?;
        // SAFETY: a zeroed sockaddr_nl is valid; we fill the fields.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_groups = CN_IDX_PROC;
        check(unsafe {
            // SAFETY: addr is a valid sockaddr_nl of the given size.
            libc::bind(
                raw,
                (&addr as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as u32,
            )
        })?;
        let mut msg = Vec::with_capacity(NLMSG_HDR + CN_MSG + 4);
        let total = (NLMSG_HDR + CN_MSG + 4) as u32;
        msg.extend_from_slice(&total.to_ne_bytes());
        msg.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&std::process::id().to_ne_bytes());
        msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&0u32.to_ne_bytes()); // ack
        msg.extend_from_slice(&4u16.to_ne_bytes()); // len
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(&MCAST_LISTEN.to_ne_bytes());
        // SAFETY: msg is a valid buffer of its length.
        let sent = unsafe { libc::send(raw, msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(monitor)
    }

    /// Starts recording the exit of `pid` (a process, i.e. a thread group).
    fn watch(&self, pid: i32) -> io::Result<()> {
        let mut watched = self.lock();
        if watched.len() >= MAX_WATCHED {
            return Err(io::Error::other("too many watched processes"));
        }
        watched.insert(pid, None);
        self.set_filter(&watched.keys().copied().collect::<Vec<_>>())
    }

    /// The exit of `pid`, waiting up to `wait` for its event (call it once
    /// the process is gone: the kernel sends the event just after the
    /// pidfd turns readable), and stops watching it. `None` when no event
    /// came.
    fn take_exit(&self, pid: i32, wait: Duration) -> io::Result<Option<ExitEvent>> {
        let deadline = Instant::now() + wait;
        let seen = loop {
            self.drain()?;
            let seen = self.lock().get(&pid).copied().flatten();
            let left = deadline.saturating_duration_since(Instant::now());
            if seen.is_some() || left.is_zero() {
                break seen;
            }
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        };
        let mut watched = self.lock();
        watched.remove(&pid);
        self.set_filter(&watched.keys().copied().collect::<Vec<_>>())?;
        Ok(seen)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, Option<ExitEvent>>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads every queued event. A lost event (the queue overflowed) is
    /// an error: the caller cannot know an exit status then.
    fn drain(&self) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: buf is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(libc::EAGAIN) => Ok(()),
                    Some(libc::EINTR) => continue,
                    _ => Err(e),
                };
            }
            let mut watched = self.lock();
            for event in parse_exits(&buf[..n as usize]) {
                if let Some(slot) = watched.get_mut(&event.tgid) {
                    // The last thread of the group carries its status.
                    *slot = Some(event);
                }
            }
        }
    }

    fn set_filter(&self, tgids: &[i32]) -> io::Result<()> {
        let prog = exit_filter(tgids);
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: fprog points at `prog`, alive for the call.
        check(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&fprog as *const libc::sock_fprog).cast(),
                size_of::<libc::sock_fprog>() as u32,
            )
        })
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An exit message as the kernel writes it.
    fn exit_message(pid: i32, tgid: i32, code: u32) -> Vec<u8> {
        let mut m = vec![0u8; EXIT_LEN];
        m[..4].copy_from_slice(&(EXIT_LEN as u32).to_ne_bytes());
        m[WHAT..WHAT + 4].copy_from_slice(&EVENT_EXIT.to_ne_bytes());
        m[EXIT_PID..EXIT_PID + 4].copy_from_slice(&(pid as u32).to_ne_bytes());
        m[EXIT_TGID..EXIT_TGID + 4].copy_from_slice(&(tgid as u32).to_ne_bytes());
        m[EXIT_CODE..EXIT_CODE + 4].copy_from_slice(&code.to_ne_bytes());
        m
    }

    /// Runs the subset of classic BPF the filter uses.
    fn run(prog: &[libc::sock_filter], packet: &[u8]) -> u32 {
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            let code = u32::from(i.code);
            if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                let at = i.k as usize;
                a = u32::from_be_bytes(packet[at..at + 4].try_into().unwrap());
                pc += 1;
            } else if code == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K {
                pc += 1 + usize::from(if a == i.k { i.jt } else { i.jf });
            } else if code == libc::BPF_RET | libc::BPF_K {
                return i.k;
            } else {
                panic!("unexpected instruction {code:#x}");
            }
        }
    }

    #[test]
    fn exits_are_parsed_and_statuses_read_like_wait() {
        let mut datagram = exit_message(7, 7, 3 << 8);
        datagram.extend(exit_message(9, 8, 9));
        let events = parse_exits(&datagram);
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].pid, events[0].tgid), (7, 7));
        assert_eq!(events[0].exit_status(), 3);
        assert_eq!(events[1].exit_status(), 137);
        // SIGSEGV with a core dump: 128 + 11.
        let core = ExitEvent {
            pid: 1,
            tgid: 1,
            wait_status: 11 | 0x80,
        };
        assert_eq!(core.exit_status(), 139);
        // Other events and truncated messages are skipped.
        let mut fork = exit_message(1, 1, 0);
        fork[WHAT..WHAT + 4].copy_from_slice(&1u32.to_ne_bytes());
        assert!(parse_exits(&fork).is_empty());
        assert!(parse_exits(&datagram[..EXIT_LEN - 1]).is_empty());
    }

    /// Both sources, where this test can open them: pidfs on Linux 6.15+,
    /// the connector as root (CI runs the unit tests as root).
    #[test]
    fn a_watched_process_exit_status_is_known_once_it_is_reaped() {
        let mut tried = 0;
        match ExitMonitor::open() {
            Ok(m) => {
                assert_eq!(m.uses_pidfs(), pidfd::keeps_exit_status());
                exits_are_known(&m);
                tried += 1;
            }
            Err(e) => assert!(!pidfd::keeps_exit_status(), "pidfs cannot fail: {e}"),
        }
        match ExitMonitor::connector() {
            Ok(m) => {
                exits_are_known(&m);
                tried += 1;
            }
            Err(e) => eprintln!("the connector is not open to this test ({e}): not root"),
        }
        if tried == 0 {
            eprintln!("skipped: no pidfs exit status and no connector here");
        }
    }

    fn exits_are_known(monitor: &ExitMonitor) {
        // Each ends only after it is watched (the connector sees later
        // exits only).
        let mut code = std::process::Command::new("sh")
            .args(["-c", "read x; exit 3"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut killed = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        monitor.watch(code.id() as i32).unwrap();
        monitor.watch(killed.id() as i32).unwrap();
        drop(code.stdin.take());
        killed.kill().unwrap();
        code.wait().unwrap();
        killed.wait().unwrap();
        let wait = Duration::from_secs(5);
        let exit = monitor.take_exit(code.id() as i32, wait).unwrap().unwrap();
        assert_eq!((exit.tgid, exit.exit_status()), (code.id() as i32, 3));
        let exit = monitor
            .take_exit(killed.id() as i32, wait)
            .unwrap()
            .unwrap();
        assert_eq!(exit.exit_status(), 128 + 9);
        // No longer watched.
        assert_eq!(
            monitor.take_exit(code.id() as i32, Duration::ZERO).unwrap(),
            None
        );
    }

    #[test]
    fn the_filter_passes_only_watched_exits() {
        let prog = exit_filter(&[100, 4242]);
        assert_eq!(run(&prog, &exit_message(4242, 4242, 0)), u32::MAX);
        assert_eq!(run(&prog, &exit_message(4243, 100, 0)), u32::MAX);
        assert_eq!(run(&prog, &exit_message(5, 5, 0)), 0);
        let mut fork = exit_message(100, 100, 0);
        fork[WHAT..WHAT + 4].copy_from_slice(&1u32.to_ne_bytes());
        assert_eq!(run(&prog, &fork), 0);
        assert_eq!(run(&exit_filter(&[]), &exit_message(100, 100, 0)), 0);
    }
}
