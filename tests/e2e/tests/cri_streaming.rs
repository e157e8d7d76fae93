//! Attach and port forwarding through containerd's CRI plugin and its
//! streaming server, side by side with runc: the scenarios of cri-tools'
//! validation suite (`pkg/validate`, `streaming.go` and
//! `streaming_linux.go`) with the same pod and container settings and the
//! same expectations, and what each runtime showed compared. Each test
//! names the cri-tools `It` it mirrors; an attach with a terminal is
//! `kubectl run -it`'s. (Exec over the streaming server is in `cri.rs`.)

use std::net::TcpListener;
use std::time::Duration;

use lxcri_e2e::cri::api::{self, ContainerState};
use lxcri_e2e::cri::pod::{base_pod_config, host_fetch, stream_text, Pod};
use lxcri_e2e::cri::port_forward;
use lxcri_e2e::cri::stream::Attach;
use lxcri_e2e::cri::validate::{remove, run_pod, running, PAUSE, STATE_TIMEOUT};
use lxcri_e2e::{assert_same, runtimes, unique_name, Containerd, Runtime};

const LONG: Duration = Duration::from_secs(60);

/// What an attach showed.
#[derive(Debug, PartialEq)]
struct Attached {
    /// Output before any input (a shell without a terminal prints none).
    before_input: (String, String),
    /// stdout was exactly `hello` after the input, and still after 3 s.
    hello: bool,
    still_hello: bool,
    /// stdout, stderr and status of the whole attach.
    at_close: (String, String, Option<i32>),
    /// The process's exit code once the attach (and with it its stdin,
    /// `stdinOnce`) ended, and what the CRI log has of it.
    exit_code: i32,
    logged_stdout: String,
}

/// A running container `name` of a new pod whose process is a shell with
/// `stdin` and `stdinOnce` (and a terminal with `tty`), and an attach to it
/// (stderr apart only without a terminal, as the kubelet asks).
fn attached<'a>(
    ctd: &'a Containerd,
    rt: Runtime,
    name: &str,
    tty: bool,
) -> (Pod<'a>, String, Attach) {
    let pod = run_pod(ctd, rt, name, Default::default(), &[]);
    let mut c = pod.container(name, &["/bin/sh"]);
    c.stdin = true;
    c.stdin_once = true;
    c.tty = tty;
    let id = running(&pod, c);
    let url = ctd
        .cri()
        .attach(api::AttachRequest {
            container_id: id.clone(),
            stdin: true,
            stdout: true,
            stderr: !tty,
            tty,
        })
        .unwrap_or_else(|e| panic!("{rt}: Attach: {e}\n{}", ctd.log_tail(40)));
    let a = Attach::open(&url, LONG).unwrap_or_else(|e| panic!("{rt}: {e}"));
    (pod, id, a)
}

/// "runtime should support attach" (streaming.go): a `/bin/sh` with
/// `stdin` and `stdinOnce`, no terminal; the attach writes `echo -n hello`
/// to it and sees exactly `hello` on stdout, nothing on stderr. With
/// `stdinOnce` the end of the attach closes the process's stdin
/// (containerd's CloseIO), so the shell then exits 0.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn attach() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let (pod, id, mut a) = attached(&ctd, rt, "attach", false);
        let fail = |e: String| -> ! { panic!("{rt}: attach: {e}\n{}", ctd.log_tail(40)) };
        a.read_until(Duration::from_secs(1), |o, e| {
            !o.is_empty() || !e.is_empty()
        })
        .unwrap_or_else(|e| fail(e));
        let before_input = a.output();
        a.write_stdin(b"echo -n hello\n")
            .unwrap_or_else(|e| fail(e));
        let hello = a
            .read_until(LONG, |o, _| o == b"hello")
            .unwrap_or_else(|e| fail(e));
        // Nothing else may come.
        let changed = a
            .read_until(Duration::from_secs(3), |o, e| {
                o != b"hello" || !e.is_empty()
            })
            .unwrap_or_else(|e| fail(e));
        let at_close = a.close(LONG).unwrap_or_else(|e| fail(e));
        let st = pod.wait_state(&id, ContainerState::ContainerExited, STATE_TIMEOUT);
        let logged_stdout = stream_text(&pod.log("attach"), "stdout");
        remove(&ctd, rt, pod);
        let seen = Attached {
            before_input,
            hello,
            still_hello: !changed,
            at_close,
            exit_code: st.exit_code,
            logged_stdout,
        };
        assert_eq!(seen.before_input, (String::new(), String::new()), "{rt}");
        assert!(seen.hello && seen.still_hello, "{rt}: {seen:?}");
        assert_eq!(
            (seen.at_close.0.as_str(), seen.at_close.1.as_str()),
            ("hello", ""),
            "{rt}"
        );
        assert_eq!(seen.exit_code, 0, "{rt}: {st:?}");
        results.push((rt, seen));
    }
    assert_same("an attach", &results);
}

/// `kubectl run -it`: a shell with a terminal, `stdin` and `stdinOnce`,
/// attached with a terminal (no stderr then). Enter gives a prompt, the
/// client's window size reaches the shell's terminal (`stty size`), and
/// the shell's `exit 3` ends the container with 3.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn attach_with_a_terminal() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let (pod, id, mut a) = attached(&ctd, rt, "attach-tty", true);
        let fail = |e: String| -> ! { panic!("{rt}: attach: {e}\n{}", ctd.log_tail(40)) };
        a.resize(100, 30).unwrap_or_else(|e| fail(e));
        // The shell printed its prompt before the attach (or is about to):
        // like `kubectl run -it`'s user, press enter and wait for one.
        a.write_stdin(b"\n").unwrap_or_else(|e| fail(e));
        let prompt = a
            .read_until(LONG, |o, _| String::from_utf8_lossy(o).contains("# "))
            .unwrap_or_else(|e| fail(e));
        let sized = shows_size(&mut a, 30, 100).unwrap_or_else(|e| fail(e));
        a.write_stdin(b"exit 3\n").unwrap_or_else(|e| fail(e));
        let st = pod.wait_state(&id, ContainerState::ContainerExited, STATE_TIMEOUT);
        let (stdout, stderr, _) = a.close(LONG).unwrap_or_else(|e| fail(e));
        remove(&ctd, rt, pod);
        // How the typed line is echoed depends on whether the shell's line
        // editor was reading yet: only what the commands print is compared.
        let seen = (prompt, sized, stderr, st.exit_code);
        assert_eq!(seen, (true, true, String::new(), 3), "{rt}: {stdout:?}");
        results.push((rt, seen));
    }
    assert_same("an attach with a terminal", &results);
}

/// Whether the shell at the other end of the terminal `session` reports
/// `rows` x `cols` (`stty size`) within [`LONG`].
fn shows_size(session: &mut Attach, rows: u16, cols: u16) -> Result<bool, String> {
    session.write_stdin(b"stty size; echo the-end\n")?;
    let expected = format!("{rows} {cols}\r\nthe-end\r\n");
    session.read_until(LONG, |o, _| String::from_utf8_lossy(o).contains(&expected))
}

/// `kubectl exec -it`: a shell exec with a terminal; the client's window
/// size reaches it after the start (ResizePty of the exec), and its
/// `exit 4` is the exec's status.
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn exec_with_a_terminal_and_a_resize() {
    let ctd = Containerd::start_cri();
    let mut results = Vec::new();
    for rt in runtimes() {
        let pod = run_pod(&ctd, rt, "exec-tty", Default::default(), &[]);
        let id = running(&pod, pod.container("c", PAUSE));
        let url = ctd
            .cri()
            .exec(api::ExecRequest {
                container_id: id.clone(),
                cmd: vec!["sh".into()],
                tty: true,
                stdin: true,
                stdout: true,
                stderr: false,
            })
            .unwrap_or_else(|e| panic!("{rt}: Exec: {e}\n{}", ctd.log_tail(40)));
        let mut s = Attach::open(&url, LONG).unwrap_or_else(|e| panic!("{rt}: {e}"));
        let fail = |e: String| -> ! { panic!("{rt}: exec: {e}\n{}", ctd.log_tail(40)) };
        let prompt = s
            .read_until(LONG, |o, _| String::from_utf8_lossy(o).contains("# "))
            .unwrap_or_else(|e| fail(e));
        s.resize(120, 40).unwrap_or_else(|e| fail(e));
        let sized = shows_size(&mut s, 40, 120).unwrap_or_else(|e| fail(e));
        s.write_stdin(b"exit 4\n").unwrap_or_else(|e| fail(e));
        // The server ends the stream with the exec's status.
        let ended = s.read_until(LONG, |_, _| false);
        let (stdout, stderr, status) = s.close(LONG).unwrap_or_else(|e| fail(e));
        remove(&ctd, rt, pod);
        let seen = (prompt, sized, ended.is_ok(), stderr, status);
        assert_eq!(
            seen,
            (true, true, true, String::new(), Some(4)),
            "{rt}: {stdout:?}"
        );
        results.push((rt, seen));
    }
    assert_same("an exec with a terminal", &results);
}

/// The status line and body of an HTTP answer.
fn status_and_body(answer: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(answer);
    let status = text.lines().next().unwrap_or_default().trim().to_string();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A TCP port nothing on the host listens on right now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A busybox web server serving `forwarded` on `port` in a new pod (on
/// loopback with `host_network`), fetched from the host directly and
/// through PortForward; the two answers, checked.
fn serve_and_forward(
    ctd: &Containerd,
    rt: Runtime,
    host_network: bool,
    port: u16,
) -> (String, String, String) {
    let mut config = base_pod_config(ctd, &unique_name("portforward"), host_network);
    let listen = if host_network {
        format!("127.0.0.1:{port}")
    } else {
        config.port_mappings = vec![api::PortMapping {
            container_port: i32::from(port),
            ..Default::default()
        }];
        port.to_string()
    };
    let pod = Pod::run(ctd, rt, config).unwrap_or_else(|e| panic!("{rt}: RunPodSandbox: {e}"));
    let server = format!(
        "mkdir -p /www && echo forwarded > /www/index.html && exec httpd -f -p {listen} -h /www"
    );
    running(&pod, pod.container("web", &["sh", "-c", &server]));
    let host = if host_network {
        "127.0.0.1".to_string()
    } else {
        pod.ip()
    };
    let direct = host_fetch(&format!("http://{host}:{port}/")).stdout;
    let url = ctd
        .cri()
        .port_forward(&pod.id, &[i32::from(port)])
        .unwrap_or_else(|e| panic!("{rt}: PortForward: {e}\n{}", ctd.log_tail(40)));
    let answer = port_forward::exchange(&url, port, b"GET / HTTP/1.0\r\n\r\n", LONG)
        .unwrap_or_else(|e| panic!("{rt}: {e}\n{}", ctd.log_tail(40)));
    remove(ctd, rt, pod);
    let (status, body) = status_and_body(&answer);
    assert_eq!(direct, "forwarded\n", "{rt}");
    assert!(status.contains(" 200 "), "{rt}: {status:?}");
    assert_eq!(body, "forwarded\n", "{rt}");
    (direct, status, body)
}

/// "runtime should support portforward" (streaming.go): a web server on
/// port 80 of a pod answers on the pod's IP, and through PortForward to
/// port 80 of the pod (containerd dials it inside the pod's network
/// namespace).
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn port_forward_to_the_pod_network() {
    let ctd = Containerd::start_cri();
    let results: Vec<_> = runtimes()
        .into_iter()
        .map(|rt| (rt, serve_and_forward(&ctd, rt, false, 80)))
        .collect();
    assert_same("a port forward into the pod", &results);
}

/// "runtime should support portforward in host network"
/// (streaming_linux.go): a hostNetwork pod's server on a loopback port,
/// reached through PortForward (containerd dials it in the host's network
/// namespace).
#[test]
#[ignore = "needs root, containerd with CRI, CNI and LXC: run by scripts/test"]
fn port_forward_in_host_network() {
    let ctd = Containerd::start_cri();
    let results: Vec<_> = runtimes()
        .into_iter()
        .map(|rt| (rt, serve_and_forward(&ctd, rt, true, free_port())))
        .collect();
    assert_same("a port forward in the host's network", &results);
}
