//! A private RabbitMQ node (own name, ports and data directory) for tests that stop, restart or
//! otherwise disturb the broker, so that tests sharing the main broker are never affected.

use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A `rabbitmq-server` node started by the test; stopped and removed on drop.
#[derive(Debug)]
pub struct PrivateNode {
    node: String,
    port: u16,
    /// The Erlang distribution port (`rabbitmqctl` and cluster peers reach the node on it).
    dist_port: u16,
    /// The TLS listener's port, when started with one.
    tls_port: Option<u16>,
    dir: PathBuf,
}

impl PrivateNode {
    /// Starts a node on a free port and waits until it accepts AMQP connections.
    ///
    /// # Errors
    /// When `rabbitmq-server` is not installed or the node does not come up within 60 s.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(None).await
    }

    /// Starts a node with a TLS listener too, its certificate issued by `ca` for `localhost`
    /// (clients need not present one); [`amqps_url`](Self::amqps_url) reaches it.
    ///
    /// # Errors
    /// As [`start`](Self::start), or when the certificate cannot be issued.
    pub async fn start_tls(ca: &crate::tls::TestCa) -> anyhow::Result<Self> {
        Self::start_with(Some(ca)).await
    }

    async fn start_with(ca: Option<&crate::tls::TestCa>) -> anyhow::Result<Self> {
        crate::init_tracing();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let port = crate::port::unclaimed()?;
        let mut dist_port = crate::port::unclaimed()?;
        while dist_port == port {
            dist_port = crate::port::unclaimed()?;
        }
        let dir = std::env::temp_dir().join(format!("orderflow-node-{}", &id[..12]));
        std::fs::create_dir_all(&dir)?;
        let mut conf = format!("listeners.tcp.local = 127.0.0.1:{port}\n");
        let mut tls_port = None;
        if let Some(ca) = ca {
            let issued = ca.issue_server("rabbitmq")?;
            let mut port_tls = crate::port::unclaimed()?;
            while port_tls == port || port_tls == dist_port {
                port_tls = crate::port::unclaimed()?;
            }
            // Copied into the node's directory, which the rabbitmq user is given below.
            for (from, to) in [
                (ca.certificate(), "ca.pem"),
                (issued.certificate, "server.pem"),
                (issued.key, "server.key"),
            ] {
                std::fs::copy(from, dir.join(to))?;
            }
            let at = |name: &str| dir.join(name).display().to_string();
            conf.push_str(&format!(
                "listeners.ssl.default = 127.0.0.1:{port_tls}\n\
                 ssl_options.cacertfile = {}\nssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\nssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n",
                at("ca.pem"),
                at("server.pem"),
                at("server.key"),
            ));
            tls_port = Some(port_tls);
        }
        std::fs::write(dir.join("rabbitmq.conf"), conf)?;
        std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
        // A quorum queue's at-least-once dead-letter worker sends an unconfirmed message again
        // after this long (default 180 s): after a restart a retry tier's expired message can
        // wait that long to reach its queue. Short here, as in RabbitMQ's own test suites, so a
        // fault test settles in seconds (docs/design.md, "Retries after a broker restart").
        std::fs::write(
            dir.join("advanced.config"),
            "[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 10000}]}].\n",
        )?;
        std::fs::write(dir.join("rabbitmq-env.conf"), "")?;
        // The Debian wrapper drops root to the rabbitmq user, which must own the directory.
        let _ = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(&dir)
            .status();
        let node = Self {
            node: format!("orderflow-{}@localhost", &id[..12]),
            port,
            dist_port,
            tls_port,
            dir,
        };
        node.launch().await?;
        Ok(node)
    }

    /// AMQP URL of the node's default vhost.
    #[must_use]
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// AMQPS URL of the node's default vhost, on `localhost` (the name its certificate has).
    ///
    /// # Panics
    /// When the node was started without TLS.
    #[must_use]
    pub fn amqps_url(&self) -> String {
        let port = self.tls_port.expect("a node started with start_tls");
        format!("amqps://guest:guest@localhost:{port}/%2f")
    }

    /// The Erlang node name (`orderflow-…@localhost`), for `rabbitmqctl -n`.
    #[must_use]
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// Force-closes every client connection (`rabbitmqctl close_all_connections`), as an operator
    /// or a failing load balancer would; the node itself keeps running.
    ///
    /// # Errors
    /// When `rabbitmqctl` fails.
    pub fn close_all_connections(&self, reason: &str) -> anyhow::Result<()> {
        self.ctl(&["close_all_connections", reason])
    }

    /// Stops the node (every connection drops), then starts it again on the same data.
    ///
    /// # Errors
    /// When it does not come back within 60 s.
    pub async fn restart(&self) -> anyhow::Result<()> {
        self.stop()?;
        self.launch().await
    }

    /// Starts the node again after [`stop`](Self::stop), on the same data, and waits until it
    /// accepts AMQP connections.
    ///
    /// # Errors
    /// When it does not come back within 60 s.
    pub async fn start_again(&self) -> anyhow::Result<()> {
        self.launch().await
    }

    /// Joins the cluster of `seed` (this node's own data is reset): `stop_app`, `join_cluster`,
    /// `start_app`, then waits until it accepts AMQP connections again.
    ///
    /// # Errors
    /// When `rabbitmqctl` fails or the node does not come back within 60 s.
    pub async fn join(&self, seed: &PrivateNode) -> anyhow::Result<()> {
        self.ctl(&["stop_app"])?;
        self.ctl(&["join_cluster", seed.node_name()])?;
        self.ctl(&["start_app"])?;
        self.wait_until_up().await
    }

    /// The nodes this node sees running in its cluster (`cluster_status`), itself included.
    ///
    /// # Errors
    /// When `rabbitmqctl` fails or prints something else than the JSON it documents.
    pub fn running_nodes(&self) -> anyhow::Result<Vec<String>> {
        let status = self.ctl_json(&["cluster_status"])?;
        Ok(names(&status["running_nodes"]))
    }

    /// The node of every client connection its cluster has (`list_connections node`).
    ///
    /// # Errors
    /// When `rabbitmqctl` fails or prints something else than the JSON it documents.
    pub fn connection_nodes(&self) -> anyhow::Result<Vec<String>> {
        let connections = self.ctl_json(&["list_connections", "node"])?;
        Ok(connections
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|c| c["node"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The members of quorum queue `queue` in `vhost` (`list_queues members`); empty when it
    /// is not there or not a quorum queue.
    ///
    /// # Errors
    /// When `rabbitmqctl` fails or prints something else than the JSON it documents.
    pub fn queue_members(&self, vhost: &str, queue: &str) -> anyhow::Result<Vec<String>> {
        let queues = self.ctl_json(&["list_queues", "-p", vhost, "name", "members"])?;
        Ok(queues
            .as_array()
            .and_then(|all| all.iter().find(|q| q["name"] == queue))
            .map(|q| names(&q["members"]))
            .unwrap_or_default())
    }

    /// Every message each queue of `vhost` holds: ready ones, ones delivered and not yet acked,
    /// and in a quorum queue those dead-lettered (at least once) and not yet confirmed by their
    /// target. A passive declare counts the first kind only, and on RabbitMQ 3.10 `list_queues
    /// messages` leaves out the last, so a quorum queue's count is read from its Raft state
    /// (`rabbit_fifo:overview/1`, `num_messages`) on its leader.
    ///
    /// # Errors
    /// When `rabbitmqctl` fails, or a quorum queue's leader does not answer.
    pub fn queue_messages(&self, vhost: &str) -> anyhow::Result<BTreeMap<String, u64>> {
        let vhost = vhost.replace(['\\', '"'], "");
        let expression = format!(
            "lists:foreach(fun(Q) -> \
               {{resource, _, queue, Name}} = amqqueue:get_name(Q), \
               Held = case amqqueue:get_type(Q) of \
                 rabbit_quorum_queue -> \
                   case ra:local_query(amqqueue:get_pid(Q), fun rabbit_fifo:overview/1) of \
                     {{ok, {{_, #{{num_messages := N}}}}, _}} -> N; _ -> unknown end; \
                 _ -> proplists:get_value(messages, rabbit_amqqueue:info(Q, [messages])) \
               end, \
               io:format(\"~s\\t~p~n\", [Name, Held]) \
             end, rabbit_amqqueue:list(<<\"{vhost}\">>))."
        );
        let stdout = self.ctl_output(&["eval", &expression])?;
        let mut counts = BTreeMap::new();
        for line in String::from_utf8_lossy(&stdout).lines() {
            let Some((name, count)) = line.split_once('\t') else {
                continue;
            };
            let count = count
                .parse()
                .with_context(|| format!("queue {name} on {}: no count ({count})", self.node))?;
            counts.insert(name.to_owned(), count);
        }
        Ok(counts)
    }

    /// `rabbitmqctl -n <this node> <args> --formatter json`, parsed.
    fn ctl_json(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let stdout = self.ctl_output(&[args, &["--formatter", "json"]].concat())?;
        serde_json::from_slice(&stdout)
            .with_context(|| format!("reading rabbitmqctl {}", args.join(" ")))
    }

    /// Runs `rabbitmqctl -n <this node> <args>`.
    fn ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        self.ctl_output(args).map(drop)
    }

    /// Runs `rabbitmqctl -n <this node> <args>`; its standard output.
    fn ctl_output(&self, args: &[&str]) -> anyhow::Result<Vec<u8>> {
        let output = Command::new("rabbitmqctl")
            .args(["-n", &self.node])
            .args(args)
            .output()
            .context("running rabbitmqctl")?;
        if !output.status.success() {
            bail!(
                "rabbitmqctl {} on {} failed: {}",
                args.join(" "),
                self.node,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(output.stdout)
    }

    /// Stops the node and waits until its port is closed.
    ///
    /// # Errors
    /// When `rabbitmqctl` fails.
    pub fn stop(&self) -> anyhow::Result<()> {
        self.ctl(&["stop"])
    }

    async fn launch(&self) -> anyhow::Result<()> {
        let env = |name: &str| self.dir.join(name);
        let status = Command::new("rabbitmq-server")
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", env("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", env("advanced.config"))
            .env("RABBITMQ_CONF_ENV_FILE", env("rabbitmq-env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", env("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", env("mnesia"))
            .env("RABBITMQ_LOG_BASE", env("log"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .status()
            .context("rabbitmq-server is not installed: `apt-get install rabbitmq-server`")?;
        if !status.success() {
            bail!("rabbitmq-server -detached failed for {}", self.node);
        }
        self.wait_until_up().await
    }

    async fn wait_until_up(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = self.url();
        loop {
            let probe = lapin::Connection::connect(&url, lapin::ConnectionProperties::default());
            if let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(2), probe).await {
                let _ = conn.close(200, "probe".into()).await;
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "private node {} did not start; see {}",
                    self.node,
                    self.dir.join("log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for PrivateNode {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = remove_dir(&self.dir);
    }
}

/// The strings of a JSON array (node names).
fn names(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn remove_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::remove_dir_all(dir)
}
