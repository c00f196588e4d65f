//! Submitting the planned orders through `POST /orders` at a bounded concurrency, each retried
//! with its own `Idempotency-Key` until the order worker answers: a POST that failed while the
//! worker was being killed (or whose answer was lost) is sent again and must return the same
//! order, never a second one.

use super::plan::PlannedOrder;
use futures_util::{StreamExt, stream};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How one planned order went in.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// The API gave it this id, after this many attempts; `replayed` when an attempt was
    /// answered from its idempotency key.
    Created {
        /// The order id.
        order_id: Uuid,
        /// POSTs sent.
        attempts: u32,
        /// Whether the answer was an idempotent replay of an earlier attempt.
        replayed: bool,
    },
    /// The API refused it for good (a 4xx) or never answered within the deadline.
    Failed {
        /// The last status or error.
        error: String,
        /// POSTs sent.
        attempts: u32,
    },
}

/// Where to submit and how hard to try.
#[derive(Debug, Clone)]
pub struct Submitter {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// `http://addr/orders` of every order worker replica: attempts take turns, so an attempt
    /// that failed on a killed replica is sent again to the next.
    pub urls: Vec<String>,
    /// The run's seed (part of every idempotency key).
    pub seed: u64,
    /// Orders in flight at once.
    pub concurrency: usize,
    /// Orders per second at most (0: as fast as the API takes them).
    pub rate: f64,
    /// How long one order may keep failing before it is given up.
    pub give_up_after: Duration,
}

impl Submitter {
    /// Submits every order; `progress` counts those answered (created or failed). Returns one
    /// outcome per order, in plan order.
    pub async fn submit_all(
        self: Arc<Self>,
        orders: Arc<Vec<PlannedOrder>>,
        progress: Arc<AtomicUsize>,
    ) -> Vec<Submitted> {
        let start = Instant::now();
        let concurrency = self.concurrency.max(1);
        let mut outcomes: Vec<(usize, Submitted)> = stream::iter(0..orders.len())
            .map(|index| {
                let (this, orders, progress) = (self.clone(), orders.clone(), progress.clone());
                async move {
                    if this.rate > 0.0 {
                        let due = start + Duration::from_secs_f64(index as f64 / this.rate);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let outcome = this.submit(&orders[index]).await;
                    progress.fetch_add(1, Ordering::Relaxed);
                    (index, outcome)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        outcomes.sort_by_key(|(index, _)| *index);
        outcomes.into_iter().map(|(_, outcome)| outcome).collect()
    }

    /// One order: POST until created, refused (4xx) or out of time; connection errors and 5xx
    /// are retried with the same key and body after a growing pause (50 ms to 2 s).
    pub async fn submit(&self, order: &PlannedOrder) -> Submitted {
        let key = order.idempotency_key(self.seed);
        let body = order.body();
        let deadline = Instant::now() + self.give_up_after;
        let mut pauses =
            broker::backoff::jittered(Duration::from_millis(50), Duration::from_secs(2));
        let mut attempts = 0;
        // Spreads first attempts over the replicas.
        let key_turn = key.bytes().map(usize::from).sum::<usize>();
        loop {
            attempts += 1;
            let sent = self
                .http
                .post(&self.urls[(key_turn + attempts as usize) % self.urls.len()])
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(body.clone())
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            let error = match sent {
                Ok(response) if response.status().is_success() => {
                    let replayed = response.headers().contains_key("idempotent-replayed");
                    match response
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| order_id(&v))
                    {
                        Some(order_id) => {
                            return Submitted::Created {
                                order_id,
                                attempts,
                                replayed,
                            };
                        }
                        // The body was cut off (the worker died while answering): ask again.
                        None => "a success without a readable order id".to_owned(),
                    }
                }
                Ok(response) if response.status().is_client_error() => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    return Submitted::Failed {
                        error: format!("{status}: {text}"),
                        attempts,
                    };
                }
                Ok(response) => format!("status {}", response.status()),
                Err(err) => err.to_string(),
            };
            let pause = pauses.next().unwrap_or(Duration::from_secs(2));
            if Instant::now() + pause > deadline {
                return Submitted::Failed { error, attempts };
            }
            tokio::time::sleep(pause).await;
        }
    }
}

fn order_id(body: &Value) -> Option<Uuid> {
    body.get("order_id")?.as_str()?.parse().ok()
}
