//! A three-node cluster on this machine: the runtime is given every node's URL; losing the node
//! it is connected to, or restarting every node in turn, loses nothing.

mod common;

use broker::{ConsumerSpec, ExchangeType, QueueSpec, RetryPolicy, Runtime, Topology};
use common::{Recorder, Running, TestEvent, all_succeeded, config, flaky_handler};
use std::time::Duration;
use testkit::{PrivateCluster, eventually};

const MESSAGES: u32 = 600;

fn runtime(url: &str, recorder: &Recorder) -> Runtime {
    Runtime::new(config(url).with_publish_retry_for(Duration::from_secs(120)))
        .unwrap()
        .with_topology(Topology::default().exchange(common::EXCHANGE, ExchangeType::Direct))
        .with_consumer(
            ConsumerSpec::new(
                QueueSpec::new("svc.cluster")
                    .bind(common::EXCHANGE, common::ROUTING_KEY)
                    .with_retry(
                        RetryPolicy::default().with_initial_delay(Duration::from_millis(100)),
                    ),
                flaky_handler(recorder.clone(), Duration::from_millis(2)),
            )
            .with_prefetch(50)
            .with_concurrency(8),
        )
}

/// Publishes ids `0..MESSAGES`, 20 confirmed publishes at a time.
async fn publish_all(publisher: broker::Publisher) {
    for wave in (0..MESSAGES).collect::<Vec<_>>().chunks(20) {
        let publishes = wave.iter().map(|&id| {
            let publisher = publisher.clone();
            async move {
                publisher
                    .publish_event(&TestEvent { id, fail_times: 0 })
                    .await
            }
        });
        for result in futures_util::future::join_all(publishes).await {
            result.expect("a publish survives the loss of a node");
        }
    }
}

async fn wait_for_successes(recorder: &Recorder, at_least: usize) {
    let recorder = recorder.clone();
    eventually("progress", Duration::from_secs(60), || {
        let n = recorder.successes().len();
        async move { (n >= at_least).then_some(()) }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn losing_the_node_the_runtime_uses_loses_nothing() {
    let cluster = PrivateCluster::start(3).await.expect("a 3-node cluster");
    let recorder = Recorder::default();
    let running = Running::start(runtime(&cluster.url(), &recorder)).await;
    let publishing = tokio::spawn(publish_all(running.publisher.clone()));
    wait_for_successes(&recorder, 150).await;

    // The runtime starts with the first address: the seed node.
    cluster.nodes()[0].stop().unwrap();
    publishing.await.unwrap();
    all_succeeded(&recorder, 0..MESSAGES, Duration::from_secs(120)).await;
    running.wait_ready().await;
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_rolling_restart_of_every_node_loses_nothing() {
    let cluster = PrivateCluster::start(3).await.expect("a 3-node cluster");
    let recorder = Recorder::default();
    let running = Running::start(runtime(&cluster.url(), &recorder)).await;
    let publishing = tokio::spawn(publish_all(running.publisher.clone()));
    for (n, node) in cluster.nodes().iter().enumerate() {
        wait_for_successes(&recorder, 100 * (n + 1)).await;
        node.restart().await.unwrap();
    }
    publishing.await.unwrap();
    all_succeeded(&recorder, 0..MESSAGES, Duration::from_secs(120)).await;
    running.wait_ready().await;
    running.shutdown().await.unwrap();
}
