//! Waiting for tasks: success, warnings, failure with log tail, timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::server::{Reply, Request};
use super::{pinned, upid_for};
use crate::pve::client::{PveError, Upid};

/// Answers task status `running` `polls` times, then `stopped` with
/// `exitstatus`; serves a log of `log_lines` lines with PVE's `total`.
fn task_server(
    polls: usize,
    exitstatus: &'static str,
    log_lines: usize,
) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    let count = Arc::new(AtomicUsize::new(0));
    move |req| {
        let path = req.path();
        if path.ends_with("/status") {
            if count.fetch_add(1, Ordering::SeqCst) < polls {
                Reply::data(json!({"status": "running"}))
            } else {
                Reply::data(json!({"status": "stopped", "exitstatus": exitstatus}))
            }
        } else if path.ends_with("/log") {
            let q = super::pairs(req.query());
            let get = |k: &str| {
                q.iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.parse::<usize>().unwrap())
            };
            let (start, limit) = (get("start").unwrap_or(0), get("limit").unwrap_or(50));
            let lines: Vec<_> = (start..log_lines.min(start + limit))
                .map(|i| {
                    let t = if i + 1 == log_lines {
                        format!("TASK ERROR: {exitstatus}")
                    } else {
                        format!("log line {}", i + 1)
                    };
                    json!({"n": i + 1, "t": t})
                })
                .collect();
            Reply::json(200, "OK", json!({"data": lines, "total": log_lines}))
        } else {
            Reply::json(501, "not implemented", json!({"data": null}))
        }
    }
}

#[test]
fn wait_task_polls_until_stopped_ok() {
    let (server, client) = pinned(task_server(3, "OK", 0));
    let upid = Upid::parse(&upid_for("vzstart", "105")).unwrap();
    let exit = client.wait_task(&upid, Duration::from_secs(5)).unwrap();
    assert_eq!((exit.exitstatus.as_str(), exit.warnings), ("OK", 0));
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(
        requests[0].path(),
        format!("/nodes/pve1/tasks/{upid}/status")
    );
    let stats = client
        .stats()
        .get("GET", "/nodes/{node}/tasks/{upid}/status")
        .unwrap();
    assert_eq!(stats.calls, 4);
}

#[test]
fn task_result_looks_once() {
    let (server, client) = pinned(task_server(1, "startup for container '105' failed", 2));
    let upid = Upid::parse(&upid_for("vzstart", "105")).unwrap();
    assert_eq!(client.task_result(&upid).unwrap(), None);
    assert_eq!(server.requests().len(), 1);
    let err = client.task_result(&upid).unwrap_err();
    let PveError::TaskFailed {
        exitstatus, log, ..
    } = err
    else {
        panic!("not TaskFailed: {err:?}")
    };
    assert_eq!(exitstatus, "startup for container '105' failed");
    assert_eq!(log.len(), 2);
    let (_server, client) = pinned(task_server(0, "OK", 0));
    let exit = client.task_result(&upid).unwrap().unwrap();
    assert_eq!(exit.exitstatus, "OK");
    // Nobody waited for it: no task wait is counted.
    let (_, waits) = client.stats().take();
    assert_eq!(waits.buckets.iter().sum::<u64>(), 0);
}

#[test]
fn warnings_are_success() {
    let (_server, client) = pinned(task_server(0, "WARNINGS: 2", 0));
    let upid = Upid::parse(&upid_for("vzcreate", "105")).unwrap();
    let exit = client.wait_task(&upid, Duration::from_secs(5)).unwrap();
    assert_eq!(exit.warnings, 2);
}

#[test]
fn failure_includes_exitstatus_and_log_tail() {
    let (server, client) = pinned(task_server(1, "unable to create CT 105 - storage full", 64));
    let upid = Upid::parse(&upid_for("vzcreate", "105")).unwrap();
    let err = client.wait_task(&upid, Duration::from_secs(5)).unwrap_err();
    let PveError::TaskFailed {
        ref exitstatus,
        ref log,
        ..
    } = err
    else {
        panic!("not TaskFailed: {err:?}")
    };
    assert_eq!(exitstatus, "unable to create CT 105 - storage full");
    assert_eq!(log.len(), 10);
    assert_eq!(log[0], "log line 55");
    assert_eq!(log[9], "TASK ERROR: unable to create CT 105 - storage full");
    let text = err.to_string();
    assert!(
        text.contains(upid.as_str()) && text.contains("log line 63"),
        "{text}"
    );
    // First page, then the tail page found through `total`.
    let logs: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path().ends_with("/log"))
        .collect();
    assert_eq!(logs.len(), 2);
    assert!(logs[1].query().contains("start=54"), "{}", logs[1].query());
}

#[test]
fn short_log_needs_one_call() {
    let (server, client) = pinned(task_server(
        0,
        "command 'lxc-start -F -n 105' failed: exit code 1",
        3,
    ));
    let upid = Upid::parse(&upid_for("vzstart", "105")).unwrap();
    let err = client.wait_task(&upid, Duration::from_secs(5)).unwrap_err();
    let PveError::TaskFailed { log, .. } = err else {
        panic!()
    };
    assert_eq!(
        log,
        [
            "log line 1",
            "log line 2",
            "TASK ERROR: command 'lxc-start -F -n 105' failed: exit code 1"
        ]
    );
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.path().ends_with("/log"))
            .count(),
        1
    );
}

#[test]
fn wait_task_times_out() {
    let (_server, client) = pinned(task_server(usize::MAX, "OK", 0));
    let upid = Upid::parse(&upid_for("vzstop", "105")).unwrap();
    let started = std::time::Instant::now();
    let err = client
        .wait_task(&upid, Duration::from_millis(150))
        .unwrap_err();
    assert!(matches!(err, PveError::TaskTimeout { .. }), "{err:?}");
    assert!(err.to_string().contains(upid.as_str()));
    assert!(started.elapsed() < Duration::from_secs(2));
}
