//! The system under test, all of it private to one soak run: its own RabbitMQ node (or a
//! three-node cluster), the workers (one or more replicas of each) with their stores (SQLite
//! files in the run's dir, or databases on a private PostgreSQL server), the inventory file, and
//! the faults done to them.

use super::chaos::{Fault, Scheduled};
use super::workers::{Role, Worker};
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testkit::{PrivateCluster, PrivateNode, PrivatePostgres};

/// How long a worker may take to be ready again after a fault.
const RECOVERY: Duration = Duration::from_secs(120);

/// The workers' retry settings: small, so retries and dead letters happen within a run.
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    /// `RETRY_MAX`: tiers before the DLQ.
    pub max: u32,
    /// `RETRY_INITIAL_MS`.
    pub initial_ms: u64,
    /// `RETRY_MULTIPLIER`.
    pub multiplier: u32,
}

/// What the system is started with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the binaries are (`target/<profile>`).
    pub bin_dir: PathBuf,
    /// The run's directory: stores, logs, inventory.
    pub dir: PathBuf,
    /// Initial stock per SKU.
    pub inventory: BTreeMap<String, i64>,
    /// Retry settings of every worker.
    pub retry: RetrySettings,
    /// Stores on a private PostgreSQL server instead of SQLite files.
    pub postgres: bool,
    /// Replicas of each worker (more than one needs `postgres`).
    pub replicas: usize,
    /// A three-node cluster instead of one node.
    pub cluster: bool,
    /// The workers' `RUST_LOG`.
    pub log: String,
}

/// The broker of a run.
pub enum Brokers {
    /// One private node.
    Node(PrivateNode),
    /// A private cluster.
    Cluster(PrivateCluster),
}

impl Brokers {
    /// Every node, the seed first.
    #[must_use]
    pub fn nodes(&self) -> &[PrivateNode] {
        match self {
            Brokers::Node(node) => std::slice::from_ref(node),
            Brokers::Cluster(cluster) => cluster.nodes(),
        }
    }

    /// The workers' `AMQP_URL`: every node's.
    #[must_use]
    pub fn url(&self) -> String {
        match self {
            Brokers::Node(node) => node.url(),
            Brokers::Cluster(cluster) => cluster.url(),
        }
    }

    /// One node's URL, for the soak's own reads and the CLI (every node is up between faults).
    #[must_use]
    pub fn first_url(&self) -> String {
        self.nodes()[0].url()
    }

    /// Messages the queues `names` hold that a passive declare does not count (`ready`: what it
    /// counted): delivered and not yet acked, or dead-lettered and not yet confirmed by their
    /// target. Asked of the first node that answers.
    ///
    /// # Errors
    /// When no node answers.
    pub fn unsettled(&self, ready: &BTreeMap<String, u32>) -> anyhow::Result<u64> {
        let mut failed = None;
        for node in self.nodes() {
            match node.queue_messages("/") {
                Ok(held) => {
                    return Ok(ready
                        .iter()
                        .map(|(name, &ready)| {
                            held.get(name)
                                .map_or(0, |&all| all.saturating_sub(u64::from(ready)))
                        })
                        .sum());
                }
                Err(err) => failed = Some(err),
            }
        }
        Err(failed.unwrap_or_else(|| anyhow::anyhow!("no broker node")))
    }

    /// Waits until a cluster is whole again after a node came back; a single node is.
    async fn settle(&self) -> anyhow::Result<()> {
        match self {
            Brokers::Node(_) => Ok(()),
            Brokers::Cluster(cluster) => cluster.wait_whole().await,
        }
    }
}

/// A running system.
pub struct System {
    /// The private broker node or cluster.
    pub brokers: Brokers,
    /// Every worker replica, by role in [`Role::ALL`] order.
    pub workers: Vec<Worker>,
    /// Each worker's `DATABASE_URL`, by role.
    pub databases: BTreeMap<Role, String>,
    /// The private PostgreSQL server, when the stores are on one.
    pub postgres: Option<PrivatePostgres>,
    settings: Settings,
    http: reqwest::Client,
}

impl System {
    /// Starts the node, writes the inventory, starts the workers and waits until all are ready.
    ///
    /// # Errors
    /// When the node or a worker does not come up.
    pub async fn start(settings: Settings, http: reqwest::Client) -> anyhow::Result<Self> {
        anyhow::ensure!(
            settings.replicas <= 1 || settings.postgres,
            "replicas share a store: --replicas above 1 needs --store postgres"
        );
        let brokers = if settings.cluster {
            Brokers::Cluster(PrivateCluster::start(3).await?)
        } else {
            Brokers::Node(PrivateNode::start().await?)
        };
        let stock_file = settings.dir.join("stock.json");
        std::fs::write(
            &stock_file,
            super::plan::stock_file(&settings.inventory).to_string(),
        )?;
        let postgres = if settings.postgres {
            Some(PrivatePostgres::start().await?)
        } else {
            None
        };
        let mut databases = BTreeMap::new();
        for role in Role::ALL {
            let url = match &postgres {
                Some(server) => server.create_database(role.short()).await?,
                None => {
                    let db = settings.dir.join(format!("{}.db", role.short()));
                    format!("sqlite://{}", db.display())
                }
            };
            databases.insert(role, url);
        }
        let retry = settings.retry;
        let common = [
            ("AMQP_URL", brokers.url()),
            ("RETRY_MAX", retry.max.to_string()),
            ("RETRY_INITIAL_MS", retry.initial_ms.to_string()),
            ("RETRY_MULTIPLIER", retry.multiplier.to_string()),
            ("STOCK_FILE", stock_file.display().to_string()),
            ("RUST_LOG", settings.log.clone()),
        ];
        // Picked here and kept across restarts: the order workers are told the stock workers'.
        let grpc_addr = || anyhow::Ok(format!("127.0.0.1:{}", testkit::port::unclaimed()?));
        let stock_grpc = (0..settings.replicas.max(1))
            .map(|_| grpc_addr())
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut workers = Vec::new();
        for role in Role::ALL {
            let mut env: Vec<(String, String)> = common
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            env.push(("DATABASE_URL".to_owned(), databases[&role].clone()));
            if role == Role::Order {
                let urls: Vec<String> = stock_grpc.iter().map(|a| format!("http://{a}")).collect();
                env.push(("STOCK_GRPC_URL".to_owned(), urls.join(",")));
            }
            for (replica, stock_addr) in stock_grpc.iter().enumerate() {
                let mut env = env.clone();
                let grpc = match role {
                    Role::Order => Some(grpc_addr()?),
                    Role::Stock => Some(stock_addr.clone()),
                    Role::Payment => None,
                };
                env.extend(grpc.map(|addr| ("GRPC_ADDR".to_owned(), addr)));
                let worker = Worker::spawn(role, replica, &settings.bin_dir, env, &settings.dir)?;
                workers.push(worker);
            }
        }
        let system = Self {
            brokers,
            workers,
            databases,
            postgres,
            settings,
            http,
        };
        system.wait_ready().await?;
        Ok(system)
    }

    /// The replicas playing `role`.
    pub fn replicas(&self, role: Role) -> impl Iterator<Item = &Worker> {
        self.workers.iter().filter(move |w| w.role == role)
    }

    /// The run's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.settings.dir
    }

    /// Waits until every worker is ready.
    ///
    /// # Errors
    /// When one is not ready within two minutes.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        for worker in &self.workers {
            worker.wait_ready(&self.http, RECOVERY).await?;
        }
        Ok(())
    }

    /// Restarts every worker that exited on its own; returns how many had.
    ///
    /// # Errors
    /// When one cannot be started again.
    pub fn revive(&mut self) -> anyhow::Result<usize> {
        let mut revived = 0;
        for worker in &mut self.workers {
            revived += usize::from(worker.revive_if_exited()?);
        }
        Ok(revived)
    }

    /// Exits nobody asked for, per worker binary.
    #[must_use]
    pub fn unexpected_exits(&self) -> BTreeMap<&'static str, usize> {
        let mut exits = BTreeMap::new();
        for worker in self.workers.iter().filter(|w| w.unexpected_exits > 0) {
            *exits.entry(worker.role.binary()).or_default() += worker.unexpected_exits;
        }
        exits
    }

    /// Injects `scheduled`, brings the system back and waits until every worker is ready.
    ///
    /// # Errors
    /// When the fault cannot be injected or the system does not recover.
    pub async fn inject(&mut self, scheduled: &Scheduled) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        eprintln!(
            "soak: injecting {} (due at {:.0} % of the orders)",
            scheduled.fault.name(),
            scheduled.at * 100.0
        );
        match scheduled.fault {
            Fault::Kill(role) => {
                let replicas: Vec<usize> = (0..self.workers.len())
                    .filter(|i| self.workers[*i].role == role)
                    .collect();
                let worker = &mut self.workers[replicas[scheduled.target % replicas.len()]];
                eprintln!("soak: killing {}", worker.name());
                worker.kill();
                tokio::time::sleep(scheduled.down_for).await;
                worker.restart()?;
            }
            Fault::BrokerRestart | Fault::NodeLoss => {
                // The node the workers are on: their consumers and publishers must move.
                let node = match &self.brokers {
                    Brokers::Node(node) => node,
                    Brokers::Cluster(cluster) => {
                        tokio::task::block_in_place(|| cluster.busiest_node())
                    }
                };
                eprintln!("soak: stopping {}", node.node_name());
                tokio::task::block_in_place(|| node.stop())?;
                tokio::time::sleep(scheduled.down_for).await;
                node.start_again().await?;
                self.brokers.settle().await?;
            }
            Fault::RollingRestart => {
                for node in self.brokers.nodes() {
                    eprintln!("soak: restarting {}", node.node_name());
                    tokio::task::block_in_place(|| node.stop())?;
                    node.start_again().await?;
                    self.brokers.settle().await?;
                }
            }
            Fault::CloseConnections => {
                for node in self.brokers.nodes() {
                    tokio::task::block_in_place(|| node.close_all_connections("soak: chaos"))?;
                }
            }
            Fault::PostgresOutage => {
                let server = self
                    .postgres
                    .as_ref()
                    .context("a PostgreSQL outage without PostgreSQL")?;
                tokio::task::block_in_place(|| server.stop())?;
                tokio::time::sleep(scheduled.down_for).await;
                server.start_again().await?;
            }
        }
        self.wait_ready().await?;
        eprintln!(
            "soak: {} done, every worker ready after {:.1} s",
            scheduled.fault.name(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Replays every dead letter of `dlq` with the `orderflow` CLI; returns how many it moved.
    ///
    /// # Errors
    /// When the CLI fails.
    pub fn replay(&self, dlq: &str) -> anyhow::Result<u32> {
        let output = Command::new(self.settings.bin_dir.join("orderflow"))
            .args([
                "--amqp-url",
                &self.brokers.first_url(),
                "dlq",
                "replay",
                dlq,
            ])
            .output()
            .context("running orderflow dlq replay")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        anyhow::ensure!(
            output.status.success(),
            "orderflow dlq replay {dlq} failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("soak: {}", stdout.trim());
        // "replayed N of M ..." or similar: the first number is what moved.
        Ok(stdout
            .split(|c: char| !c.is_ascii_digit())
            .find(|part| !part.is_empty())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }
}
