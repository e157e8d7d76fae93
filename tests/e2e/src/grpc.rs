//! The containerd gRPC calls ctr 1.6 lacks: `Tasks.Update` (no `ctr task
//! update` before 1.7), `Tasks.Create` and `Tasks.Start` as separate
//! steps (`ctr run` and `ctr task start` always do both), for a task left
//! created, and `Tasks.CloseIO` on its own. Requests are encoded by hand (a few protobuf fields) and sent
//! with curl over containerd's unix socket (HTTP/2 with prior knowledge, as
//! gRPC is).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cmd;

/// type_url containerd registers for `specs.LinuxResources` (JSON value).
const LINUX_RESOURCES_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A length-delimited protobuf field.
fn field(number: u64, data: &[u8], out: &mut Vec<u8>) {
    varint(number << 3 | 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// A gRPC frame: uncompressed, big-endian length, message.
fn frame(msg: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(msg);
    frame
}

/// `containerd.services.tasks.v1.UpdateTaskRequest{container_id, resources:
/// Any{LinuxResources JSON}}` in a gRPC frame.
fn update_request(id: &str, resources_json: &str) -> Vec<u8> {
    let mut any = Vec::new();
    field(1, LINUX_RESOURCES_URL.as_bytes(), &mut any);
    field(2, resources_json.as_bytes(), &mut any);
    let mut msg = Vec::new();
    field(1, id.as_bytes(), &mut msg);
    field(2, &any, &mut msg);
    frame(&msg)
}

/// One rootfs mount of a task (`containerd.types.Mount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsMount {
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// One line of `ctr snapshots mounts`: `mount -t TYPE SOURCE TARGET -o OPTS`.
pub fn parse_mount_command(line: &str) -> Option<RootfsMount> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words[..] {
        ["mount", "-t", kind, source, _target, "-o", options] => Some(RootfsMount {
            kind: kind.to_string(),
            source: source.to_string(),
            options: options.split(',').map(str::to_string).collect(),
        }),
        ["mount", "-t", kind, source, _target] => Some(RootfsMount {
            kind: kind.to_string(),
            source: source.to_string(),
            options: Vec::new(),
        }),
        _ => None,
    }
}

/// The stdio of a task's init as containerd passes it to the shim: URIs
/// (a FIFO path, `file://`, `binary://`) and whether it has a terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskIo {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// `CreateTaskRequest{container_id = 1, rootfs = 3, stdin = 4, stdout = 5,
/// stderr = 6, terminal = 7}`; empty stdio is null IO.
fn create_request(id: &str, rootfs: &[RootfsMount], io: &TaskIo) -> Vec<u8> {
    let mut msg = Vec::new();
    field(1, id.as_bytes(), &mut msg);
    for m in rootfs {
        let mut mount = Vec::new();
        field(1, m.kind.as_bytes(), &mut mount);
        field(2, m.source.as_bytes(), &mut mount);
        for o in &m.options {
            field(4, o.as_bytes(), &mut mount);
        }
        field(3, &mount, &mut msg);
    }
    for (number, uri) in [(4, &io.stdin), (5, &io.stdout), (6, &io.stderr)] {
        if !uri.is_empty() {
            field(number, uri.as_bytes(), &mut msg);
        }
    }
    if io.terminal {
        // Field 7, varint: true.
        msg.extend_from_slice(&[7 << 3, 1]);
    }
    frame(&msg)
}

/// `StartRequest{container_id = 1}`.
fn start_request(id: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    field(1, id.as_bytes(), &mut msg);
    frame(&msg)
}

/// `CloseIORequest{container_id = 1, stdin = 3: true}`.
fn close_stdin_request(id: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    field(1, id.as_bytes(), &mut msg);
    // Field 3, varint: true.
    msg.extend_from_slice(&[3 << 3, 1]);
    frame(&msg)
}

/// `KillRequest{container_id = 1, signal = 3}`: signal 0, the proto3
/// default, is the field left out.
fn kill_request(id: &str, signal: u8) -> Vec<u8> {
    assert!(signal < 0x80, "one varint byte");
    let mut msg = Vec::new();
    field(1, id.as_bytes(), &mut msg);
    if signal != 0 {
        msg.extend_from_slice(&[3 << 3, signal]);
    }
    frame(&msg)
}

/// Calls `containerd.services.tasks.v1.Tasks/<method>` with `request`;
/// the gRPC error message when the status is not OK.
fn call(socket: &Path, namespace: &str, method: &str, request: &[u8]) -> Result<(), String> {
    let out = cmd::run_with_stdin(
        Command::new("curl")
            .args([
                "-sS",
                "--http2-prior-knowledge",
                "--max-time",
                "60",
                "--unix-socket",
            ])
            .arg(socket)
            .args([
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                "-H",
                &format!("containerd-namespace: {namespace}"),
                "--data-binary",
                "@-",
                "-D",
                "-",
                "-o",
                "/dev/null",
                &format!("http://localhost/containerd.services.tasks.v1.Tasks/{method}"),
            ]),
        Some(request),
        Duration::from_secs(70),
    );
    if !out.success() {
        return Err(format!("curl failed: {out}"));
    }
    // Headers and trailers; gRPC status is in `grpc-status`.
    let header = |name: &str| {
        out.stdout.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    match header("grpc-status").as_deref() {
        Some("0") => Ok(()),
        Some(code) => Err(format!(
            "Tasks.{method}: grpc-status {code}: {}",
            header("grpc-message").unwrap_or_default()
        )),
        None => Err(format!("Tasks.{method}: no grpc-status in reply: {out}")),
    }
}

/// Calls `Tasks.Update` for task `id` with an OCI `LinuxResources` JSON.
/// Returns the gRPC error message when the status is not OK.
pub fn update_task(
    socket: &Path,
    namespace: &str,
    id: &str,
    resources_json: &str,
) -> Result<(), String> {
    call(
        socket,
        namespace,
        "Update",
        &update_request(id, resources_json),
    )
}

/// `Tasks.Create` for container `id` on `rootfs` with stdio `io`, without
/// starting it.
pub fn create_task(
    socket: &Path,
    namespace: &str,
    id: &str,
    rootfs: &[RootfsMount],
    io: &TaskIo,
) -> Result<(), String> {
    call(socket, namespace, "Create", &create_request(id, rootfs, io))
}

/// `Tasks.Start` of a created task.
pub fn start_task(socket: &Path, namespace: &str, id: &str) -> Result<(), String> {
    call(socket, namespace, "Start", &start_request(id))
}

/// `Tasks.CloseIO` of the stdin of task `id`'s init.
pub fn close_stdin(socket: &Path, namespace: &str, id: &str) -> Result<(), String> {
    call(socket, namespace, "CloseIO", &close_stdin_request(id))
}

/// `Tasks.Kill` of task `id`'s init with `signal`, which ctr cannot send
/// when it is 0.
pub fn kill_task(socket: &Path, namespace: &str, id: &str, signal: u8) -> Result<(), String> {
    call(socket, namespace, "Kill", &kill_request(id, signal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encoding() {
        let f = update_request("c", "{}");
        // frame header: uncompressed, big-endian length of the rest
        assert_eq!(f[0], 0);
        assert_eq!(
            u32::from_be_bytes([f[1], f[2], f[3], f[4]]) as usize,
            f.len() - 5
        );
        // field 1 (container_id) = "c"
        assert_eq!(&f[5..8], &[0x0a, 1, b'c']);
        // field 2 (resources), then Any.type_url
        assert_eq!(f[8], 0x12);
        assert_eq!(f[10], 0x0a);
        assert!(f.ends_with(b"{}"));
    }

    #[test]
    fn mount_commands() {
        let m = parse_mount_command("mount -t overlay overlay /x -o lowerdir=/a:/b,upperdir=/u")
            .unwrap();
        assert_eq!(m.kind, "overlay");
        assert_eq!(m.options, ["lowerdir=/a:/b", "upperdir=/u"]);
        assert!(parse_mount_command("umount /x").is_none());
        let f = create_request("c", std::slice::from_ref(&m), &TaskIo::default());
        // container_id, then one rootfs mount (field 3), no stdio
        assert_eq!(&f[5..8], &[0x0a, 1, b'c']);
        assert_eq!(f[8], 0x1a);
        assert!(f.ends_with(b"upperdir=/u"));
        let io = TaskIo {
            stdout: "binary:///l".into(),
            terminal: true,
            ..Default::default()
        };
        let f = create_request("c", &[], &io);
        // stdout (field 5), then terminal (field 7) true
        assert_eq!(&f[8..10], &[0x2a, 11]);
        assert!(f.ends_with(b"binary:///l\x38\x01"));
    }

    #[test]
    fn close_stdin_encoding() {
        let f = close_stdin_request("c");
        assert_eq!(&f[5..], &[0x0a, 1, b'c', 0x18, 1]);
    }

    #[test]
    fn varints() {
        let mut v = Vec::new();
        varint(300, &mut v);
        assert_eq!(v, [0xac, 0x02]);
    }
}
