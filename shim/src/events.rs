//! Task events, published in the order they are queued by one forwarder
//! (containerd requires TaskCreate -> TaskStart -> TaskExit -> TaskDelete).
//!
//! Each event is encoded here with its type name spelled out, not through
//! protobuf reflection: the publisher's generic path asks the message for
//! its descriptor, which builds the whole event proto file's descriptor
//! (about 350 KiB of heap, kept for the shim's life) just to read a name.

use containerd_shim::publisher::RemotePublisher;
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim_async::Events;
use containerd_shim_protos::topics;
use containerd_shim_protos::ttrpc::r#async::TtrpcContext;
use lxcri::state::now_ns;
use tokio::sync::mpsc;

use crate::process::timestamp;

/// One event ready to publish.
pub struct Event {
    topic: &'static str,
    body: Any,
}

/// Queues events; cheap to clone.
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::UnboundedSender<Event>,
}

/// The publisher queues a forwarded envelope and sends it with retries.
const PUBLISH_TIMEOUT_NANOS: i64 = 5_000_000_000;

impl EventSender {
    /// Starts the forwarder that publishes queued events to containerd.
    pub fn spawn(publisher: RemotePublisher, namespace: String) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
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
                let ctx = TtrpcContext {
                    mh: Default::default(),
                    metadata: Default::default(),
                    timeout_nano: PUBLISH_TIMEOUT_NANOS,
                };
                if let Err(e) = publisher.forward(&ctx, req).await {
                    tracing::warn!(topic = ev.topic, error = %e, "publishing event failed");
                }
            }
        });
        Self { tx }
    }

    /// A sender whose events are collected by the returned receiver (tests).
    #[cfg(test)]
    pub fn collecting() -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
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
        let _ = self.tx.send(Event { topic, body });
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

#[cfg(test)]
impl Event {
    pub fn topic(&self) -> &'static str {
        self.topic
    }

    pub fn type_url(&self) -> &str {
        &self.body.type_url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
