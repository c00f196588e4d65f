//! A private three-node RabbitMQ cluster on this machine (own node names, ports and data
//! directories), for tests that lose or restart nodes under load.

use crate::node::PrivateNode;

/// Nodes started and clustered by the test; each is stopped and removed on drop.
#[derive(Debug)]
pub struct PrivateCluster {
    nodes: Vec<PrivateNode>,
}

impl PrivateCluster {
    /// Starts `size` private nodes and joins the others to the first.
    ///
    /// # Errors
    /// When a node does not start or does not join.
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
        Ok(Self { nodes })
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
