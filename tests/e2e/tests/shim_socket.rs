//! The shim's socket in `/run/containerd/s` goes with the shim. containerd
//! deletes the bundle, where the shim library finds the socket's address,
//! as soon as Shutdown has answered; lxcri's shim removes the socket before
//! it answers, so the socket is gone by the time the delete returns (the
//! library's own removal afterwards raced containerd and, in a benchmark's
//! 100 deletes 8 at a time, left 2 or 3 sockets).

use std::sync::Mutex;

use lxcri_e2e::{cleanup, on_each, require, Containerd, Runtime};

#[test]
#[ignore = "needs root, containerd and LXC: run by scripts/test"]
fn deletes_on_a_busy_node_leave_no_shim_socket() {
    if !require(
        Runtime::Lxcri,
        "deletes_on_a_busy_node_leave_no_shim_socket",
    ) {
        return;
    }
    let ctd = Containerd::start();
    ctd.import_busybox();
    let ids: Vec<String> = (0..80).map(|_| ctd.new_id("sock")).collect();
    on_each(&ids, 8, |id| {
        ctd.run_detached(Runtime::Lxcri, id, &["sleep", "1000"], &[]);
    });
    let left = Mutex::new(Vec::new());
    on_each(&ids, 16, |id| {
        let _ = ctd.kill(id, "SIGKILL");
        ctd.wait_status(id, "STOPPED");
        // `ctr task rm` returns once containerd's delete (Delete, Shutdown,
        // the bundle's removal) is done.
        ctd.ctr(&["task", "rm", id]);
        let socket = cleanup::shim_socket(&ctd.socket(), ctd.namespace(), id);
        if socket.exists() {
            left.lock()
                .unwrap()
                .push(format!("{id}: {}", socket.display()));
        }
        ctd.ctr(&["containers", "rm", id]);
    });
    let left = left.into_inner().unwrap();
    assert_eq!(
        left,
        Vec::<String>::new(),
        "shim sockets there after the delete"
    );
}
