//! A three-node cluster on this machine: the runtime is given every node's URL; losing the node
//! it is connected to, or restarting every node in turn, loses nothing.

mod common;

use common::{
    Recorder, Running, all_succeeded, publish_all, recording_runtime, wait_for_successes,
};
use std::time::Duration;
use testkit::PrivateCluster;

const MESSAGES: u32 = 600;

/// A 3-node cluster, a runtime given every node, and [`MESSAGES`] being published to it.
async fn start() -> (
    PrivateCluster,
    Recorder,
    Running,
    tokio::task::JoinHandle<()>,
) {
    let cluster = PrivateCluster::start(3).await.expect("a 3-node cluster");
    let recorder = Recorder::default();
    let running = Running::start(recording_runtime(
        &cluster.url(),
        "svc.cluster",
        &recorder,
        Duration::from_millis(2),
    ))
    .await;
    // Losing a node keeps a majority only if the queue has a member on each of the three.
    testkit::eventually(
        "a member on every node",
        Duration::from_secs(30),
        || async {
            let members = cluster.nodes()[0].queue_members("/", "svc.cluster").ok()?;
            (members.len() == 3).then_some(())
        },
    )
    .await
    .unwrap();
    let publishing = tokio::spawn(publish_all(running.publisher.clone(), MESSAGES, 20));
    (cluster, recorder, running, publishing)
}

#[tokio::test]
async fn losing_the_node_the_runtime_uses_loses_nothing() {
    let (cluster, recorder, running, publishing) = start().await;
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
    let (cluster, recorder, running, publishing) = start().await;
    for (n, node) in cluster.nodes().iter().enumerate() {
        wait_for_successes(&recorder, 100 * (n + 1)).await;
        node.restart().await.unwrap();
    }
    publishing.await.unwrap();
    all_succeeded(&recorder, 0..MESSAGES, Duration::from_secs(120)).await;
    running.wait_ready().await;
    running.shutdown().await.unwrap();
}
