//! A worker in one file: a queue with two retry tiers and a dead-letter queue, a handler that
//! asks for a retry or rejects, a few published jobs, and a clean shutdown once each is settled.
//!
//!     AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run -p orderflow-broker --example worker
//!
//! Job 1 succeeds, job 2 fails once and succeeds on its retry, job 3 is rejected into
//! `demo.jobs.dlq`, with its error in the headers (`orderflow dlq show demo.jobs`, or the
//! `replay` example, brings it back).

use orderflow_broker::{
    BrokerConfig, ConsumerSpec, Event, ExchangeType, HandlerError, Message, QueueSpec, RetryPolicy,
    Runtime, Topology,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Serialize, Deserialize)]
struct Job {
    id: u32,
}

impl Event for Job {
    const TYPE: &'static str = "job.submitted";
    const EXCHANGE: &'static str = "demo";
    const ROUTING_KEY: &'static str = "job.submitted";
    fn correlation_id(&self) -> String {
        self.id.to_string()
    }
}

/// Business logic only: no channel, ack or header in sight.
async fn run_job(message: Message<Job>) -> Result<(), HandlerError> {
    match message.event.id {
        2 if message.meta.retry_count == 0 => Err(HandlerError::retry("the printer is warming up")),
        3 => Err(HandlerError::reject("job 3 cannot be printed").with_type("unprintable")),
        id => {
            println!("job {id} done after {} retries", message.meta.retry_count);
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("AMQP_URL").unwrap_or("amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let queue = QueueSpec::new("demo.jobs")
        .bind("demo", "job.submitted")
        .with_retry(
            RetryPolicy::default()
                .with_max_retries(2)
                .with_initial_delay(Duration::from_millis(200)),
        );
    let (ran, mut runs) = tokio::sync::mpsc::unbounded_channel();
    let handler = move |message: Message<Job>| {
        let ran = ran.clone();
        async move {
            let outcome = run_job(message).await;
            let _ = ran.send(());
            outcome
        }
    };
    let runtime = Runtime::new(BrokerConfig::new(&url, "demo-worker"))?
        .with_topology(
            Topology::default()
                .exchange("demo", ExchangeType::Direct)
                .queue(queue.clone()),
        )
        .with_consumer(ConsumerSpec::new(queue, handler).with_concurrency(4));
    let (publisher, readiness) = (runtime.publisher(), runtime.readiness());
    let stop = Arc::new(Notify::new());
    let stopped = stop.clone();
    // Declares the topology, consumes, and reconnects by itself until `stop` is notified.
    let running = tokio::spawn(runtime.run(async move { stopped.notified().await }));
    readiness.ready().await;
    for id in 1..=3 {
        // Confirmed by the broker (mandatory, persistent) before it returns.
        publisher.publish_event(&Job { id }).await?;
    }
    // Four handler runs settle the three jobs: 1, 2 (failed), 2 (retried), 3 (rejected).
    for _ in 0..4 {
        tokio::time::timeout(Duration::from_secs(30), runs.recv()).await?;
    }
    stop.notify_one();
    running.await??;
    println!("all jobs settled; job 3 waits in demo.jobs.dlq");
    Ok(())
}
