//! The one containerd gRPC call ctr 1.6 lacks: `Tasks.Update` (no
//! `ctr task update` before 1.7). The request is encoded by hand (two
//! protobuf fields) and sent with curl over containerd's unix socket
//! (HTTP/2 with prior knowledge, as gRPC is).

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

/// `containerd.services.tasks.v1.UpdateTaskRequest{container_id, resources:
/// Any{LinuxResources JSON}}` in a gRPC frame.
fn update_request(id: &str, resources_json: &str) -> Vec<u8> {
    let mut any = Vec::new();
    field(1, LINUX_RESOURCES_URL.as_bytes(), &mut any);
    field(2, resources_json.as_bytes(), &mut any);
    let mut msg = Vec::new();
    field(1, id.as_bytes(), &mut msg);
    field(2, &any, &mut msg);
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(&msg);
    frame
}

/// Calls `Tasks.Update` for task `id` with an OCI `LinuxResources` JSON.
/// Returns the gRPC error message when the status is not OK.
pub fn update_task(
    socket: &Path,
    namespace: &str,
    id: &str,
    resources_json: &str,
) -> Result<(), String> {
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
                "http://localhost/containerd.services.tasks.v1.Tasks/Update",
            ]),
        Some(&update_request(id, resources_json)),
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
            "Tasks.Update: grpc-status {code}: {}",
            header("grpc-message").unwrap_or_default()
        )),
        None => Err(format!("Tasks.Update: no grpc-status in reply: {out}")),
    }
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
    fn varints() {
        let mut v = Vec::new();
        varint(300, &mut v);
        assert_eq!(v, [0xac, 0x02]);
    }
}
