//! A private three-node RabbitMQ cluster on this machine (own node names, ports and data
//! directories), for tests that lose or restart nodes under load.

use crate::node::PrivateNode;
use std::time::Duration;

/// Nodes started and clustered by the test; each is stopped and removed on drop.
#[derive(Debug)]
pub struct PrivateCluster {
    nodes: Vec<PrivateNode>,
}

impl PrivateCluster {
    /// Starts `size` private nodes, joins the others to the first, and waits until every node
    /// sees all of them running.
    ///
    /// The wait matters: a quorum queue takes its members from the nodes running when it is
    /// declared; declared while one node is still joining, it has two members, and losing
    /// either leaves it without a majority (every publish nacked until that node returns).
    ///
    /// # Errors
    /// When a node does not start or join, or the cluster is not whole within 60 s.
    pub async fn start(size: usize) -> anyhow::Result<Self> {
        let mut nodes = Vec::with_capacity(size);
        for _ in 0..size {
            nodes.push(PrivateNode::start().await?);
        }
        if let Some((seed, others)) = nodes.split_first() {
            for node in others {
                node.join(seed).await?;
            }
        }
        let cluster = Self { nodes };
        cluster.wait_whole().await?;
        Ok(cluster)
    }

    /// Waits until every node sees all of them running (after a start, or a node's restart).
    ///
    /// # Errors
    /// When the cluster is not whole within 60 s.
    pub async fn wait_whole(&self) -> anyhow::Result<()> {
        let size = self.nodes.len();
        crate::eventually(
            "every node sees the whole cluster",
            Duration::from_secs(60),
            || async {
                self.nodes
                    .iter()
                    .all(|node| {
                        node.running_nodes()
                            .is_ok_and(|running| running.len() == size)
                    })
                    .then_some(())
            },
        )
        .await
    }

    /// The node most client connections are on: the one to lose for a test that the clients
    /// move (the seed when it cannot tell).
    #[must_use]
    pub fn busiest_node(&self) -> &PrivateNode {
        let on = self.nodes[0].connection_nodes().unwrap_or_default();
        self.nodes
            .iter()
            .max_by_key(|node| on.iter().filter(|n| *n == node.node_name()).count())
            .unwrap_or(&self.nodes[0])
    }

    /// The nodes, the seed first.
    #[must_use]
    pub fn nodes(&self) -> &[PrivateNode] {
        &self.nodes
    }

    /// Every node's AMQP URL, comma-separated: what a client of the whole cluster is given.
    #[must_use]
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(PrivateNode::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}
