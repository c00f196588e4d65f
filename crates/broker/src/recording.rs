//! A publisher for tests (feature `test-util`): it keeps what it is given instead of sending it,
//! and can be told to fail, so a test asserts both what a handler published and how it reports a
//! publish that failed.

use crate::error::BrokerError;
use crate::message::Outgoing;
use crate::publish::Publish;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Records every confirmed publish; clones share the record.
#[derive(Debug, Clone)]
pub struct RecordingPublisher {
    app_id: String,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    published: Vec<Outgoing>,
    failures_left: usize,
}

impl RecordingPublisher {
    /// A publisher that stamps `app_id` and confirms everything until told otherwise.
    #[must_use]
    pub fn new(app_id: &str) -> Self {
        Self {
            app_id: app_id.to_owned(),
            state: Arc::default(),
        }
    }

    /// Makes the next `count` publishes fail as if the broker nacked them; they are not recorded.
    pub fn fail_next(&self, count: usize) {
        self.state().failures_left = count;
    }

    /// The messages published so far, in order.
    #[must_use]
    pub fn published(&self) -> Vec<Outgoing> {
        self.state().published.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Publish for RecordingPublisher {
    fn app_id(&self) -> &str {
        &self.app_id
    }

    async fn publish(&self, message: &Outgoing) -> Result<(), BrokerError> {
        let mut state = self.state();
        if state.failures_left > 0 {
            state.failures_left -= 1;
            return Err(BrokerError::Nacked {
                exchange: message.exchange.clone(),
                routing_key: message.routing_key.clone(),
            });
        }
        state.published.push(message.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(routing_key: &str) -> Outgoing {
        Outgoing::json("orders", routing_key, "t", b"{}".to_vec(), "o-1", "test")
    }

    #[tokio::test]
    async fn records_confirmed_publishes_and_fails_as_told() {
        let publisher = RecordingPublisher::new("test");
        publisher.fail_next(1);
        let refused = publisher.publish(&message("a")).await.unwrap_err();
        assert!(
            matches!(refused, BrokerError::Nacked { ref routing_key, .. } if routing_key == "a")
        );
        publisher.publish(&message("b")).await.unwrap();
        let keys: Vec<_> = publisher
            .published()
            .into_iter()
            .map(|m| m.routing_key)
            .collect();
        assert_eq!(keys, ["b"]);
    }
}
