//! A scripted stand-in for ovsdb-server: listens on a unix socket in a
//! temporary directory (or on 127.0.0.1), accepts one connection and runs
//! a script against it on a thread. The script's assertions fail the test when it is
//! joined.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::thread::JoinHandle;

use serde_json::{json, Value};

use super::super::OvsdbTarget;

pub struct FakeServer {
    pub target: OvsdbTarget,
    thread: Option<JoinHandle<()>>,
    /// Where the unix socket is.
    _dir: Option<tempfile::TempDir>,
}

/// The server's end of the connection.
pub struct Peer {
    stream: Box<dyn Duplex>,
}

pub trait Duplex: Read + Write + Send {}
impl<T: Read + Write + Send> Duplex for T {}

impl FakeServer {
    pub fn start(script: impl FnOnce(&mut Peer) + Send + 'static) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            script(&mut Peer {
                stream: Box::new(stream),
            });
        });
        Self {
            target: format!("unix:{}", path.display()).parse().unwrap(),
            thread: Some(thread),
            _dir: Some(dir),
        }
    }

    pub fn start_tcp(script: impl FnOnce(&mut Peer) + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            script(&mut Peer {
                stream: Box::new(stream),
            });
        });
        Self {
            target: format!("tcp:{addr}").parse().unwrap(),
            thread: Some(thread),
            _dir: None,
        }
    }

    /// Waits for the script, failing the test if it panicked.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

impl Peer {
    /// The next message from the client.
    pub fn recv(&mut self) -> Value {
        let mut messages =
            serde_json::Deserializer::from_reader(&mut self.stream).into_iter::<Value>();
        messages.next().expect("a message").expect("valid JSON")
    }

    /// Receives a `transact` request and returns its id and params.
    pub fn recv_transact(&mut self) -> (Value, Value) {
        let msg = self.recv();
        assert_eq!(msg["method"], "transact", "{msg}");
        (msg["id"].clone(), msg["params"].clone())
    }

    /// Waits until the client closes the connection, failing if it sends
    /// anything more.
    pub fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "unexpected: {}",
            String::from_utf8_lossy(&rest)
        );
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn send(&mut self, msg: Value) {
        self.send_raw(msg.to_string().as_bytes());
    }

    pub fn reply(&mut self, id: &Value, result: Value) {
        self.send(json!({"id": id, "result": result, "error": null}));
    }
}
