//! Replies and acknowledgements made on the runtime's thread, where waiting for room in
//! rumqttc's request channel would wait for the very thread that empties it.
//!
//! With `serve.workers = 0` briefs are answered on that thread, so their replies and
//! acknowledgements are handed to rumqttc without waiting. When the channel is full they queue
//! here instead, and one task sends them in order as room comes. Anything made while this queue
//! is not empty queues behind it, so a brief is never acknowledged before its reply was handed
//! on, and no reply is dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ClientError};
use tokio::sync::Notify;

use crate::telemetry::field::escaped;

/// A reply or an acknowledgement still to be handed to rumqttc.
#[derive(Clone)]
pub(crate) enum Deferred {
    /// A reply (QoS 1) to `topic`.
    Reply {
        topic: String,
        payload: bytes::Bytes,
        properties: PublishProperties,
    },
    /// The acknowledgement of a delivered message.
    Ack(Publish),
}

impl Deferred {
    /// Hands it to `client` now; gives it back when the request channel is full.
    fn try_send(self, client: &AsyncClient) -> Option<Deferred> {
        let sent = match &self {
            Deferred::Reply {
                topic,
                payload,
                properties,
            } => client.try_publish_with_properties(
                topic.clone(),
                QoS::AtLeastOnce,
                false,
                payload.clone(),
                properties.clone(),
            ),
            Deferred::Ack(publish) => client.try_ack(publish),
        };
        match sent {
            Ok(()) => None,
            Err(ClientError::TryRequest(_)) => Some(self),
            Err(error) => {
                self.log_failure(&error);
                None
            }
        }
    }

    /// Hands it to `client`, waiting for room.
    async fn send(&self, client: &AsyncClient) {
        let sent = match self {
            Deferred::Reply {
                topic,
                payload,
                properties,
            } => {
                client
                    .publish_with_properties(
                        topic.clone(),
                        QoS::AtLeastOnce,
                        false,
                        payload.clone(),
                        properties.clone(),
                    )
                    .await
            }
            Deferred::Ack(publish) => client.ack(publish).await,
        };
        if let Err(error) = sent {
            self.log_failure(&error);
        }
    }

    /// Says why it was not handed on: the event loop has ended (packd is shutting down).
    fn log_failure(&self, error: &ClientError) {
        match self {
            Deferred::Reply { topic, .. } => {
                log::warn!("cannot publish reply to {}: {error}", escaped(topic));
            }
            Deferred::Ack(_) => log::warn!("cannot acknowledge a message: {error}"),
        }
    }
}

/// The queue of what found the request channel full, and the task that empties it.
pub(crate) struct Outbox {
    client: AsyncClient,
    /// The front stays queued until it was handed on: while anything is here, so is the front.
    waiting: Mutex<VecDeque<Deferred>>,
    arrived: Notify,
    emptied: Notify,
}

impl Outbox {
    /// An outbox for `client`, with its task on the current runtime.
    pub fn start(client: AsyncClient) -> Arc<Outbox> {
        let outbox = Arc::new(Outbox {
            client,
            waiting: Mutex::new(VecDeque::new()),
            arrived: Notify::new(),
            emptied: Notify::new(),
        });
        tokio::spawn(outbox.clone().run());
        outbox
    }

    fn waiting(&self) -> MutexGuard<'_, VecDeque<Deferred>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands `item` to rumqttc at once if nothing waits before it and there is room; queues it
    /// otherwise. Never waits.
    pub fn send(&self, item: Deferred) {
        let mut waiting = self.waiting();
        if waiting.is_empty() {
            match item.try_send(&self.client) {
                Some(item) => waiting.push_back(item),
                None => return,
            }
        } else {
            waiting.push_back(item);
        }
        drop(waiting);
        self.arrived.notify_one();
    }

    /// Resolves once nothing is queued: what was made so far has been handed to rumqttc.
    pub async fn emptied(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.waiting().is_empty() {
                return;
            }
            emptied.await;
        }
    }

    /// Sends the queue's front, waiting for room, then removes it (it stays in place while it
    /// is sent, so that nothing overtakes it); forever.
    async fn run(self: Arc<Self>) {
        loop {
            let front = self.waiting().front().cloned();
            match front {
                Some(front) => {
                    front.send(&self.client).await;
                    self.waiting().pop_front();
                }
                None => {
                    self.emptied.notify_waiters();
                    self.arrived.notified().await;
                }
            }
        }
    }
}
