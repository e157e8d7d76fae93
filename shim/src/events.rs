//! Task events, published in the order they are queued by one forwarder
//! (containerd requires TaskCreate -> TaskStart -> TaskExit -> TaskDelete).
//!
//! Each event is encoded here with its type name spelled out, not through
//! protobuf reflection: the publisher's generic path asks the message for
//! its descriptor, which builds the whole event proto file's descriptor
//! (about 350 KiB of heap, kept for the shim's life) just to read a name.

use std::time::Duration;

use containerd_shim::publisher::RemotePublisher;
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim_async::{Client, EventsClient};
use containerd_shim_protos::topics;
use containerd_shim_protos::ttrpc;
use lxcri::state::now_ns;
use tokio::sync::{mpsc, oneshot};

use crate::process::timestamp;

/// One event ready to publish.
pub struct Event {
    topic: &'static str,
    body: Any,
}

/// What the forwarder takes from its queue, in order: an event, or a
/// drain's mark, answered once the events queued before it are done with.
pub enum Queued {
    Event(Event),
    Drained(oneshot::Sender<()>),
}

/// Queues events; cheap to clone.
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::UnboundedSender<Queued>,
}

/// How long containerd may take to take one event (runc's shim: 5 s).
const PUBLISH_TIMEOUT_NANOS: i64 = 5_000_000_000;

/// Sends of one event before it is dropped; the waits between them grow
/// by a second each (1 to 5 s, runc's shim's requeue delays).
const PUBLISH_ATTEMPTS: u64 = 6;

impl EventSender {
    /// Starts the forwarder that publishes queued events to containerd,
    /// on its own connection to containerd's ttrpc address: the shim
    /// library's publisher sends an event that failed again a second later
    /// while the later ones go first, so after a containerd restart the
    /// first event came a second late, after those queued behind it (see
    /// [`Forwarder`]).
    pub fn spawn(publisher: RemotePublisher, namespace: String) -> Self {
        let address = publisher.address.clone();
        // Unused from here: the library's queue task keeps a sender of its
        // own, so it and its connection stay, idle.
        drop(publisher);
        Self::forwarding_to(address, namespace)
    }

    /// Starts the forwarder to containerd's ttrpc socket at `address`.
    fn forwarding_to(address: String, namespace: String) -> Self {
        let mut forwarder = Forwarder {
            address,
            client: None,
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Queued>();
        tokio::spawn(async move {
            while let Some(queued) = rx.recv().await {
                let ev = match queued {
                    Queued::Event(ev) => ev,
                    Queued::Drained(mark) => {
                        let _ = mark.send(());
                        continue;
                    }
                };
                let envelope = Envelope {
                    timestamp: MessageField::some(timestamp(now_ns())),
                    namespace: namespace.clone(),
                    topic: ev.topic.to_string(),
                    event: MessageField::some(ev.body),
                    ..Default::default()
                };
                let req = ForwardRequest {
                    envelope: MessageField::some(envelope),
                    ..Default::default()
                };
                if let Err(e) = forwarder.forward(&req).await {
                    tracing::warn!(topic = ev.topic, error = %e, "publishing event failed: dropped");
                }
            }
        });
        Self { tx }
    }

    /// A sender whose events are collected by the returned receiver (tests).
    #[cfg(test)]
    pub fn collecting() -> (Self, mpsc::UnboundedReceiver<Queued>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }

    /// Waits until every event queued so far was sent (or dropped after
    /// its attempts), at most `deadline`: the shim exits right after the
    /// Shutdown that follows a Delete, and the TaskDelete queued by that
    /// Delete must reach containerd first (runc's shim loses it then;
    /// `ctr events` and anything watching for it never see it). Returns
    /// whether they were.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let (mark, drained) = oneshot::channel();
        if self.tx.send(Queued::Drained(mark)).is_err() {
            return true;
        }
        tokio::time::timeout(deadline, drained)
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Queues `body` as the protobuf message `type_name` (its full name,
    /// which containerd's type registry knows events by).
    fn send(&self, topic: &'static str, type_name: &str, body: &impl Message) {
        let value = match body.write_to_bytes() {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(topic, error = %e, "encoding event failed");
                return;
            }
        };
        let body = Any {
            type_url: type_name.to_string(),
            value,
            ..Default::default()
        };
        // The receiver only goes away when the shim exits.
        let _ = self.tx.send(Queued::Event(Event { topic, body }));
    }

    pub fn create(&self, ev: TaskCreate) {
        self.send(
            topics::TASK_CREATE_EVENT_TOPIC,
            "containerd.events.TaskCreate",
            &ev,
        );
    }
    pub fn start(&self, ev: TaskStart) {
        self.send(
            topics::TASK_START_EVENT_TOPIC,
            "containerd.events.TaskStart",
            &ev,
        );
    }
    pub fn exit(&self, ev: TaskExit) {
        self.send(
            topics::TASK_EXIT_EVENT_TOPIC,
            "containerd.events.TaskExit",
            &ev,
        );
    }
    pub fn delete(&self, ev: TaskDelete) {
        self.send(
            topics::TASK_DELETE_EVENT_TOPIC,
            "containerd.events.TaskDelete",
            &ev,
        );
    }
    pub fn exec_added(&self, ev: TaskExecAdded) {
        self.send(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            "containerd.events.TaskExecAdded",
            &ev,
        );
    }
    pub fn exec_started(&self, ev: TaskExecStarted) {
        self.send(
            topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            "containerd.events.TaskExecStarted",
            &ev,
        );
    }
    pub fn paused(&self, ev: TaskPaused) {
        self.send(
            topics::TASK_PAUSED_EVENT_TOPIC,
            "containerd.events.TaskPaused",
            &ev,
        );
    }
    pub fn resumed(&self, ev: TaskResumed) {
        self.send(
            topics::TASK_RESUMED_EVENT_TOPIC,
            "containerd.events.TaskResumed",
            &ev,
        );
    }
    pub fn oom(&self, ev: TaskOOM) {
        self.send(
            topics::TASK_OOM_EVENT_TOPIC,
            "containerd.events.TaskOOM",
            &ev,
        );
    }
}

/// Sends events to containerd one at a time, in order. A send that fails
/// (containerd restarted and closed the connection) is tried again at
/// once on a new connection, as runc's shim does
/// (`RemoteEventsPublisher.forwardRequest` reconnects on
/// `ttrpc.ErrClosed`); after that, after 1, 2, ... 5 s, holding the later
/// events back so that containerd still sees them in order.
struct Forwarder {
    address: String,
    client: Option<EventsClient>,
}

impl Forwarder {
    async fn forward(&mut self, req: &ForwardRequest) -> Result<(), String> {
        let mut last = String::new();
        let mut wait = Duration::ZERO;
        for attempt in 1..=PUBLISH_ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait = Duration::from_secs(attempt);
            let client = match &self.client {
                Some(c) => c,
                None => match connect(&self.address).await {
                    Ok(c) => self.client.insert(c),
                    Err(e) => {
                        last = e;
                        continue;
                    }
                },
            };
            let ctx = ttrpc::context::with_timeout(PUBLISH_TIMEOUT_NANOS);
            match client.forward(ctx, req).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    self.client = None;
                    if attempt == 1 {
                        wait = Duration::ZERO;
                    }
                    last = e.to_string();
                }
            }
        }
        Err(last)
    }
}

async fn connect(address: &str) -> Result<EventsClient, String> {
    let addr = address.to_string();
    let fd = tokio::task::spawn_blocking(move || containerd_shim::util::connect(addr))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    // SAFETY: a connected unix socket this process just made and owns.
    let client = unsafe { Client::from_raw_unix_socket_fd(fd) };
    Ok(EventsClient::new(client))
}

#[cfg(test)]
impl Queued {
    fn event(&self) -> &Event {
        match self {
            Queued::Event(ev) => ev,
            Queued::Drained(_) => panic!("a drain mark, not an event"),
        }
    }

    pub fn topic(&self) -> &'static str {
        self.event().topic
    }

    pub fn type_url(&self) -> &str {
        &self.event().body.type_url
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::api::Empty;
    use containerd_shim_protos::shim_async::{create_events, Events};
    use containerd_shim_protos::ttrpc::r#async::{Server, TtrpcContext};
    use std::sync::{Arc, Mutex};

    /// containerd's side: the topics it was sent.
    struct Received(Arc<Mutex<Vec<String>>>);

    #[async_trait::async_trait]
    impl Events for Received {
        async fn forward(&self, _: &TtrpcContext, req: ForwardRequest) -> ttrpc::Result<Empty> {
            self.0.lock().unwrap().push(req.envelope.topic.clone());
            Ok(Empty::default())
        }
    }

    async fn containerd(path: &std::path::Path, received: &Arc<Mutex<Vec<String>>>) -> Server {
        let _ = std::fs::remove_file(path);
        let service = create_events(Arc::new(Received(received.clone())));
        let mut server = Server::new()
            .bind(&format!("unix://{}", path.display()))
            .unwrap()
            .register_service(service);
        server.start().await.unwrap();
        server
    }

    fn event(topic: &str) -> ForwardRequest {
        ForwardRequest {
            envelope: MessageField::some(Envelope {
                topic: topic.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_restarted_containerd_gets_the_next_event_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("containerd.sock.ttrpc");
        let received = Arc::new(Mutex::new(Vec::new()));
        let mut server = containerd(&path, &received).await;
        let mut forwarder = Forwarder {
            address: path.to_string_lossy().into_owned(),
            client: None,
        };
        forwarder.forward(&event("/one")).await.unwrap();
        // containerd restarts: the forwarder's connection is a dead one.
        server.shutdown().await.unwrap();
        let _server = containerd(&path, &received).await;
        let started = tokio::time::Instant::now();
        forwarder.forward(&event("/two")).await.unwrap();
        // Not after the second the retries wait.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(*received.lock().unwrap(), ["/one", "/two"]);
    }

    #[tokio::test]
    async fn a_drain_returns_once_containerd_has_every_queued_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("containerd.sock.ttrpc");
        let received = Arc::new(Mutex::new(Vec::new()));
        let _server = containerd(&path, &received).await;
        let events =
            EventSender::forwarding_to(path.to_string_lossy().into_owned(), "default".into());
        events.exit(TaskExit::default());
        events.delete(TaskDelete::default());
        assert!(events.drain(Duration::from_secs(5)).await);
        assert_eq!(*received.lock().unwrap(), ["/tasks/exit", "/tasks/delete"]);
    }

    #[tokio::test]
    async fn a_drain_gives_up_at_its_deadline_without_containerd() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.sock.ttrpc");
        let events =
            EventSender::forwarding_to(path.to_string_lossy().into_owned(), "default".into());
        assert!(
            events.drain(Duration::from_millis(50)).await,
            "nothing queued"
        );
        events.delete(TaskDelete::default());
        let started = tokio::time::Instant::now();
        assert!(!events.drain(Duration::from_millis(300)).await);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn events_leave_in_the_order_they_were_queued() {
        let (tx, mut rx) = EventSender::collecting();
        tx.create(TaskCreate::default());
        tx.start(TaskStart::default());
        tx.exec_added(TaskExecAdded::default());
        tx.exec_started(TaskExecStarted::default());
        tx.exit(TaskExit::default());
        tx.delete(TaskDelete::default());
        let mut topics = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            topics.push(ev.topic());
        }
        assert_eq!(
            topics,
            [
                "/tasks/create",
                "/tasks/start",
                "/tasks/exec-added",
                "/tasks/exec-started",
                "/tasks/exit",
                "/tasks/delete"
            ]
        );
    }
}

#[cfg(test)]
mod type_names {
    use containerd_shim_protos::protobuf::MessageFull;

    use super::*;

    /// The names written by hand are the messages' own (reflection is
    /// fine in a test: its heap goes with the test process).
    #[test]
    fn events_carry_their_message_full_names() {
        let (tx, mut rx) = EventSender::collecting();
        tx.create(TaskCreate::default());
        tx.start(TaskStart::default());
        tx.exit(TaskExit::default());
        tx.delete(TaskDelete::default());
        tx.exec_added(TaskExecAdded::default());
        tx.exec_started(TaskExecStarted::default());
        tx.paused(TaskPaused::default());
        tx.resumed(TaskResumed::default());
        tx.oom(TaskOOM::default());
        let expected = [
            TaskCreate::descriptor().full_name().to_string(),
            TaskStart::descriptor().full_name().to_string(),
            TaskExit::descriptor().full_name().to_string(),
            TaskDelete::descriptor().full_name().to_string(),
            TaskExecAdded::descriptor().full_name().to_string(),
            TaskExecStarted::descriptor().full_name().to_string(),
            TaskPaused::descriptor().full_name().to_string(),
            TaskResumed::descriptor().full_name().to_string(),
            TaskOOM::descriptor().full_name().to_string(),
        ];
        for name in expected {
            assert_eq!(rx.try_recv().expect("an event").type_url(), name);
        }
    }
}
