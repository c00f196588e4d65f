//! The flags every worker takes, each with an environment fallback (`docs/design.md` §4).

use broker::{BrokerConfig, RetryPolicy};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The default broker.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Broker, store, HTTP and delivery settings shared by the workers.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Broker URL, including the vhost.
    #[arg(long, env = "AMQP_URL", default_value = DEFAULT_AMQP_URL, hide_env_values = true)]
    pub amqp_url: String,
    /// PEM file of the CAs an `amqps://` broker's certificate is verified against, besides the
    /// system's roots.
    #[arg(long, env = "AMQP_CA_FILE")]
    pub amqp_ca_file: Option<PathBuf>,
    /// PEM client certificate for `amqps://` (with `--amqp-client-key-file`), e.g. for the
    /// broker's EXTERNAL mechanism (`?auth_mechanism=external` in the URL).
    #[arg(long, env = "AMQP_CLIENT_CERT_FILE")]
    pub amqp_client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long, env = "AMQP_CLIENT_KEY_FILE")]
    pub amqp_client_key_file: Option<PathBuf>,
    /// The broker user of each worker, `order-worker=USER,payment-worker=USER,stock-worker=USER`:
    /// when set, a fact (every event but `order.created`, which outside systems publish) is
    /// taken only from its publisher's user, checked against the `user_id` the broker validated;
    /// any other is rejected to the DLQ as `untrusted-publisher`.
    #[arg(long, env = "PUBLISHER_USERS", value_delimiter = ',', value_parser = worker_user)]
    pub publisher_users: Vec<(String, String)>,
    /// Broker users whose replays of dead letters are trusted (operators running the CLI).
    #[arg(long, env = "OPERATOR_USERS", value_delimiter = ',')]
    pub operator_users: Vec<String>,
    /// The worker's own store: `sqlite://path.db` or `postgres://…` (default: `sqlite://data/<worker>.db`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Address for the API, `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Retries before a failing message is dead-lettered.
    #[arg(long, env = "RETRY_MAX", default_value_t = 5)]
    pub retry_max: u32,
    /// Delay of the first retry, in milliseconds.
    #[arg(long, env = "RETRY_INITIAL_MS", default_value_t = 1000)]
    pub retry_initial_ms: u64,
    /// Growth of the delay from one retry to the next.
    #[arg(long, env = "RETRY_MULTIPLIER", default_value_t = 5.0)]
    pub retry_multiplier: f64,
    /// Cap of any one retry delay, in milliseconds.
    #[arg(long, env = "RETRY_MAX_DELAY_MS", default_value_t = 600_000)]
    pub retry_max_delay_ms: u64,
    /// Messages the broker may push ahead per consumer.
    #[arg(long, env = "PREFETCH", default_value_t = 128)]
    pub prefetch: u16,
    /// Handlers running at once per consumer. Many in flight keep the store's group commits
    /// full and the broker's frames batched (see the README's Performance section).
    #[arg(long, env = "CONCURRENCY", default_value_t = 64)]
    pub concurrency: usize,
    /// Threads running handlers and HTTP. One suits a small host shared with the broker (fewer
    /// cross-thread wake-ups); raise it for CPU-heavy handlers on a larger machine.
    #[arg(long, env = "WORKER_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: u16,
    /// Seconds in-flight handlers get to finish on shutdown.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
    /// SQLite durability: `full` syncs every commit (survives power loss), `normal` syncs at
    /// checkpoints (survives process crashes; faster).
    #[arg(long, env = "SQLITE_SYNCHRONOUS", default_value = "full", value_parser = ["full", "normal"])]
    pub sqlite_synchronous: String,
    /// On PostgreSQL, commit writes in groups as on SQLite (one transaction per group of
    /// concurrent writes; replicas' groups take turns) rather than one transaction each
    /// (`POSTGRES_GROUP_COMMIT=0`): rows every order updates (a SKU's stock) are then locked
    /// and flushed once per group, not once per write in a queue. SQLite always groups.
    #[arg(
        long,
        env = "POSTGRES_GROUP_COMMIT",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub postgres_group_commit: bool,
    /// Hours inbox claims, sent outbox rows and idempotency keys are kept; 0 keeps them for ever.
    /// A message redelivered, or a request retried, after this long is no longer recognised.
    #[arg(long, env = "RETENTION_HOURS", default_value_t = 168)]
    pub retention_hours: u64,
    /// Log filter, e.g. `info,orderflow_broker=debug`.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
    /// Log one JSON object per line (`LOG_JSON=1`, `true`, `yes` or `on`).
    #[arg(
        long,
        env = "LOG_JSON",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub log_json: bool,
}

/// The command line of a worker that takes only the common flags.
#[derive(Debug, clap::Parser)]
pub struct WorkerCli {
    /// The common flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Parses the command line of worker `app_id` (flags, then environment), installs logging and
/// resolves its settings; `--help` and bad flags exit with clap's message.
#[must_use]
pub fn parse(app_id: &'static str, default_port: u16) -> Settings {
    use clap::{CommandFactory, FromArgMatches};
    let matches = WorkerCli::command()
        .name(app_id)
        .version(env!("CARGO_PKG_VERSION"))
        .about(format!(
            "orderflow's {app_id}; every flag also reads the environment variable shown"
        ))
        .get_matches();
    let cli = WorkerCli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    init_logging_or_exit::<WorkerCli>(&cli.common, app_id);
    cli.common
        .settings(app_id, ([127, 0, 0, 1], default_port).into())
        .unwrap_or_else(|err| {
            WorkerCli::command()
                .error(clap::error::ErrorKind::InvalidValue, err)
                .exit()
        })
}

/// Installs logging from `common`, or exits with `C`'s usage error (an invalid `RUST_LOG`).
pub fn init_logging_or_exit<C: clap::CommandFactory>(common: &CommonArgs, service: &str) {
    if let Err(err) = common.init_logging(service) {
        C::command()
            .error(clap::error::ErrorKind::InvalidValue, err)
            .exit();
    }
}

/// `worker=user`, a worker's name being one of the three.
fn worker_user(text: &str) -> Result<(String, String), String> {
    let (worker, user) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not worker=user"))?;
    let workers = ["order-worker", "payment-worker", "stock-worker"];
    if !workers.contains(&worker) || user.is_empty() {
        return Err(format!(
            "{text:?}: the worker is one of {}, the user not empty",
            workers.join(", ")
        ));
    }
    Ok((worker.to_owned(), user.to_owned()))
}

/// The resolved settings a worker's `run` takes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Broker connection settings.
    pub broker: BrokerConfig,
    /// Store URL.
    pub database_url: String,
    /// SQLite `synchronous` mode (`full` or `normal`).
    pub sqlite_synchronous: String,
    /// Group commits on PostgreSQL too.
    pub postgres_group_commit: bool,
    /// HTTP address.
    pub http_addr: SocketAddr,
    /// Retry policy of every consumer queue (the same in every worker).
    pub retry: RetryPolicy,
    /// Prefetch per consumer.
    pub prefetch: u16,
    /// Concurrency per consumer.
    pub concurrency: usize,
    /// Tokio worker threads.
    pub worker_threads: usize,
    /// How long records that only guard against repeats are kept; `None` keeps them for ever.
    pub retention: Option<Duration>,
    /// Each worker's broker user, when facts are checked against their publisher.
    pub publisher_users: std::collections::BTreeMap<String, String>,
    /// Users whose replays are trusted.
    pub operator_users: Vec<String>,
}

impl CommonArgs {
    /// Installs logging and tracing as the flags and the `OTEL_*` variables say, for the binary
    /// `service`.
    ///
    /// # Errors
    /// When the log filter does not parse, or the OTLP settings cannot be used.
    pub fn init_logging(&self, service: &str) -> Result<(), String> {
        crate::telemetry::init(service, &self.log_filter, self.log_json)
    }

    /// Resolves the flags for worker `app_id` with its default store and address.
    ///
    /// # Errors
    /// When a TLS file cannot be read.
    pub fn settings(
        &self,
        app_id: &str,
        default_addr: SocketAddr,
    ) -> Result<Settings, broker::TlsFileError> {
        let name = app_id.trim_end_matches("-worker");
        let tls = broker::Tls::from_files(
            self.amqp_ca_file.as_deref(),
            self.amqp_client_cert_file.as_deref(),
            self.amqp_client_key_file.as_deref(),
        )?;
        Ok(Settings {
            broker: BrokerConfig::new(&self.amqp_url, app_id)
                .with_tls(tls)
                .with_shutdown_timeout(Duration::from_secs(self.shutdown_timeout_secs))
                // Every crate shares the workspace's version: it names the worker's build.
                .with_app_version(env!("CARGO_PKG_VERSION")),
            database_url: self
                .database_url
                .clone()
                .unwrap_or_else(|| format!("sqlite://data/{name}.db")),
            sqlite_synchronous: self.sqlite_synchronous.clone(),
            postgres_group_commit: self.postgres_group_commit,
            http_addr: self.http_addr.unwrap_or(default_addr),
            retry: RetryPolicy::default()
                .with_max_retries(self.retry_max)
                .with_initial_delay(Duration::from_millis(self.retry_initial_ms))
                .with_multiplier(self.retry_multiplier)
                .with_max_delay(Duration::from_millis(self.retry_max_delay_ms)),
            prefetch: self.prefetch,
            concurrency: self.concurrency,
            worker_threads: usize::from(self.worker_threads),
            retention: (self.retention_hours > 0)
                .then(|| Duration::from_secs(self.retention_hours * 3600)),
            publisher_users: self.publisher_users.iter().cloned().collect(),
            operator_users: self.operator_users.clone(),
        })
    }
}

impl Settings {
    /// The spec of consumer queue `name` with these settings' retry policy, prefetch and concurrency.
    /// With [`Settings::publisher_users`], it takes a fact only from its publisher's user.
    pub fn consumer<E, H>(&self, name: &str, handler: H) -> broker::ConsumerSpec
    where
        E: broker::Event,
        H: broker::Handler<E>,
    {
        let spec =
            broker::ConsumerSpec::new(contracts::topology::queue(name, &self.retry), handler)
                .with_prefetch(self.prefetch)
                .with_concurrency(self.concurrency)
                // A store that does not answer is an outage: hold the message, never fail it.
                .with_outage_check(crate::outage::is_outage);
        match self.trust(E::TYPE) {
            Some(trust) => spec.with_trust(trust),
            None => spec,
        }
    }

    /// Whom a consumer of `event_type` trusts, when publishers are configured and the event is
    /// a fact.
    fn trust(&self, event_type: &str) -> Option<broker::Trust> {
        let publisher = self
            .publisher_users
            .get(contracts::names::publisher_of(event_type)?)?;
        Some(broker::Trust {
            publisher: publisher.clone(),
            own: broker::login_user(&self.broker.url).unwrap_or_default(),
            operators: self.operator_users.clone(),
        })
    }

    /// Opens (and migrates) the worker's store.
    ///
    /// # Errors
    /// When the database cannot be reached or a migration fails.
    pub async fn database(
        &self,
        migrator: &sqlx::migrate::Migrator,
    ) -> anyhow::Result<crate::db::Db> {
        let pool =
            crate::database::open(&self.database_url, &self.sqlite_synchronous, migrator).await?;
        Ok(crate::db::Db::grouped(pool, self.postgres_group_commit))
    }

    /// The broker runtime with the whole system's topology declared.
    ///
    /// # Errors
    /// When the broker URL cannot be used.
    pub fn runtime(&self) -> Result<broker::Runtime, broker::BrokerError> {
        Ok(broker::Runtime::new(self.broker.clone())?
            .with_topology(contracts::topology::system(&self.retry)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str]) -> Settings {
        let cli = WorkerCli::try_parse_from(std::iter::once("worker").chain(args.iter().copied()))
            .unwrap();
        cli.common
            .settings("test-worker", ([127, 0, 0, 1], 0).into())
            .unwrap()
    }

    #[test]
    fn facts_are_trusted_from_their_publishers_user_once_users_are_named() {
        let open = settings(&[]);
        assert_eq!(open.trust("order.paid"), None, "no users named: anyone's");
        let users = "order-worker=u-order,payment-worker=u-pay,stock-worker=u-stock";
        let named = settings(&[
            "--amqp-url",
            "amqp://u-order:secret@h/%2f",
            "--publisher-users",
            users,
            "--operator-users",
            "ops",
        ]);
        let trust = named.trust("order.paid").unwrap();
        assert_eq!(
            (
                trust.publisher.as_str(),
                trust.own.as_str(),
                trust.operators
            ),
            ("u-pay", "u-order", vec!["ops".to_owned()])
        );
        assert_eq!(named.trust("stock.reserved").unwrap().publisher, "u-stock");
        assert_eq!(
            named.trust("order.created"),
            None,
            "outside systems publish it"
        );
        let bad = WorkerCli::try_parse_from(["w", "--publisher-users", "billing=u"]).unwrap_err();
        assert!(bad.to_string().contains("order-worker"), "{bad}");
    }

    #[test]
    fn postgres_groups_its_commits_unless_told_not_to() {
        assert!(settings(&[]).postgres_group_commit);
        for off in ["0", "false", "off"] {
            let args = ["--postgres-group-commit", off];
            assert!(!settings(&args).postgres_group_commit, "{off}");
        }
    }

    #[test]
    fn retention_defaults_to_a_week_and_zero_turns_it_off() {
        assert_eq!(
            settings(&[]).retention,
            Some(Duration::from_secs(7 * 24 * 3600))
        );
        assert_eq!(
            settings(&["--retention-hours", "2"]).retention,
            Some(Duration::from_secs(7200))
        );
        assert_eq!(settings(&["--retention-hours", "0"]).retention, None);
    }
}
