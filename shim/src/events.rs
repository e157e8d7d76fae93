//! Task events, published in the order they are queued by one forwarder
//! (containerd requires TaskCreate -> TaskStart -> TaskExit -> TaskDelete).

use containerd_shim::publisher::RemotePublisher;
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskPaused, TaskResumed,
    TaskStart,
};
use containerd_shim_protos::protobuf::MessageDyn;
use containerd_shim_protos::topics;
use tokio::sync::mpsc;

/// One event ready to publish.
pub struct Event {
    topic: &'static str,
    body: Box<dyn MessageDyn + Send>,
}

/// Queues events; cheap to clone.
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::UnboundedSender<Event>,
}

impl EventSender {
    /// Starts the forwarder that publishes queued events to containerd.
    pub fn spawn(publisher: RemotePublisher, namespace: String) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let ctx = containerd_shim_protos::ttrpc::context::with_timeout(5_000_000_000);
                if let Err(e) = publisher.publish(ctx, ev.topic, &namespace, ev.body).await {
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

    fn send(&self, topic: &'static str, body: Box<dyn MessageDyn + Send>) {
        // The receiver only goes away when the shim exits.
        let _ = self.tx.send(Event { topic, body });
    }

    pub fn create(&self, ev: TaskCreate) {
        self.send(topics::TASK_CREATE_EVENT_TOPIC, Box::new(ev));
    }
    pub fn start(&self, ev: TaskStart) {
        self.send(topics::TASK_START_EVENT_TOPIC, Box::new(ev));
    }
    pub fn exit(&self, ev: TaskExit) {
        self.send(topics::TASK_EXIT_EVENT_TOPIC, Box::new(ev));
    }
    pub fn delete(&self, ev: TaskDelete) {
        self.send(topics::TASK_DELETE_EVENT_TOPIC, Box::new(ev));
    }
    pub fn exec_added(&self, ev: TaskExecAdded) {
        self.send(topics::TASK_EXEC_ADDED_EVENT_TOPIC, Box::new(ev));
    }
    pub fn exec_started(&self, ev: TaskExecStarted) {
        self.send(topics::TASK_EXEC_STARTED_EVENT_TOPIC, Box::new(ev));
    }
    pub fn paused(&self, ev: TaskPaused) {
        self.send(topics::TASK_PAUSED_EVENT_TOPIC, Box::new(ev));
    }
    pub fn resumed(&self, ev: TaskResumed) {
        self.send(topics::TASK_RESUMED_EVENT_TOPIC, Box::new(ev));
    }
}

#[cfg(test)]
impl Event {
    pub fn topic(&self) -> &'static str {
        self.topic
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
