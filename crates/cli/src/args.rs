//! The command line: global options (with environment fallbacks) and the subcommands.

use crate::filter::Filter;
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// The default broker and vhost (`docs/design.md` §4).
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// `orderflow`: inspect the topology, list, show, replay and purge dead letters, publish events.
#[derive(Debug, Parser)]
#[command(name = "orderflow", version, about)]
pub struct Args {
    /// Broker and vhost; the login is used for the management API too.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = DEFAULT_AMQP_URL,
        global = true,
        hide_env_values = true
    )]
    pub amqp_url: String,
    /// PEM file of the CAs an `amqps://` broker (and its `https` management API) is verified
    /// against, besides the system's roots.
    #[arg(long, env = "AMQP_CA_FILE", global = true)]
    pub amqp_ca_file: Option<std::path::PathBuf>,
    /// Management API base URL [default: http://<amqp host>:15672, or https://<host>:15671
    /// for an `amqps://` URL].
    #[arg(
        long,
        env = "RABBITMQ_MANAGEMENT_URL",
        global = true,
        hide_env_values = true
    )]
    pub management_url: Option<String>,
    /// Output format: text for people, json for scripts (one object per line: per item for
    /// listings, one for an action's result).
    #[arg(long, value_enum, default_value_t = Output::Text, global = true)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and sentences.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Per consumer queue: ready, unacked, consumers, messages waiting in retry tiers, dead
    /// letters; `topology apply` declares it all.
    Topology(TopologyArgs),
    /// Dead-letter queues: list, group, show, replay, edit, delete, purge.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Publish a JSON body (from --file or stdin), persistent and confirmed; prints its message id.
    Publish(PublishArgs),
    /// The order worker's quarantined outbox rows: list, release.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Serve the dead-letter page: failure groups, their dead letters, and replay, delete and
    /// edit-and-retry behind a confirmation. It has no login: keep it on loopback or behind an
    /// authenticating proxy.
    Ui(UiArgs),
}

/// `orderflow ui`
#[derive(Debug, ClapArgs)]
pub struct UiArgs {
    /// Address to serve the page on (port 0: any free port, printed at start).
    #[arg(long, env = "UI_ADDR", default_value = "127.0.0.1:8089")]
    pub listen: std::net::SocketAddr,
}

/// The order worker's HTTP API.
#[derive(Debug, ClapArgs)]
pub struct OrderApi {
    /// Base URL of the order worker's HTTP API.
    #[arg(long, env = "ORDER_URL", default_value = "http://127.0.0.1:8080")]
    pub order_url: String,
}

/// `orderflow outbox ...`
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Outbox rows the relay quarantined after repeated refusals (kept, not published).
    List {
        /// The order worker.
        #[command(flatten)]
        api: OrderApi,
        /// Same as `--output json`.
        #[arg(long)]
        json: bool,
    },
    /// Give a quarantined row another round of attempts (e.g. after creating its exchange).
    Release {
        /// The row's `message_id`.
        message_id: String,
        /// The order worker.
        #[command(flatten)]
        api: OrderApi,
    },
}

/// `orderflow dlq ...`
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Every dead-letter queue with its message count.
    List,
    /// Failure groups across every dead-letter queue (or one): count, first and last seen, an
    /// example error; replay one with `dlq replay --group <fingerprint>`.
    Groups(GroupsArgs),
    /// Show dead letters without removing them.
    Show(ShowArgs),
    /// Move dead letters back to the queue they failed in.
    Replay(ReplayArgs),
    /// Fix one dead letter's body (in $EDITOR or from a file), then replay it: the edited body
    /// must be JSON and, for a known event type, that event; the original is removed only once
    /// the copy is confirmed.
    Edit(EditArgs),
    /// Delete exactly one dead letter.
    Delete(DeleteArgs),
    /// Delete the dead letters of a dead-letter queue: all of them, or those a filter selects.
    Purge(PurgeArgs),
}

/// Which dead letters: every criterion given must hold.
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct FilterArgs {
    /// Only the dead letter with this `message_id`.
    #[arg(long)]
    pub message_id: Option<String>,
    /// Only this failure group (`error-fingerprint`, as `dlq groups` lists it).
    #[arg(long, visible_alias = "group")]
    pub fingerprint: Option<String>,
    /// Only this `error-kind`: retries-exhausted, rejected, malformed, delivery-limit.
    #[arg(long)]
    pub error_kind: Option<String>,
    /// Only this `error-type` (e.g. provider-unavailable, invalid-order, retry, panic).
    #[arg(long)]
    pub error_type: Option<String>,
    /// Only this event (the `type` property, e.g. order.created).
    #[arg(long)]
    pub event_type: Option<String>,
    /// Only this order (the `correlation_id`).
    #[arg(long, visible_alias = "order-id")]
    pub correlation_id: Option<String>,
    /// Only those dead-lettered longer ago than this (e.g. 10m, 2h, 1d).
    #[arg(long, value_parser = crate::when::parse_duration)]
    pub older_than: Option<Duration>,
    /// Only those dead-lettered more recently than this (e.g. 10m, 2h, 1d).
    #[arg(long, value_parser = crate::when::parse_duration)]
    pub newer_than: Option<Duration>,
    /// Only those whose error or causes contain this text (case-insensitive).
    #[arg(long)]
    pub error_contains: Option<String>,
}

impl FilterArgs {
    /// The selection these flags make.
    #[must_use]
    pub fn filter(&self) -> Filter {
        Filter {
            message_id: self.message_id.clone(),
            fingerprint: self.fingerprint.clone(),
            error_kind: self.error_kind.clone(),
            error_type: self.error_type.clone(),
            event_type: self.event_type.clone(),
            correlation_id: self.correlation_id.clone(),
            older_than: self.older_than,
            newer_than: self.newer_than,
            error_contains: self.error_contains.clone(),
        }
    }
}

/// `orderflow dlq groups`
#[derive(Debug, ClapArgs)]
pub struct GroupsArgs {
    /// Only this consumer queue `Q` (or `Q.dlq`) [default: every dead-letter queue].
    pub queue: Option<String>,
}

/// `orderflow dlq show`
#[derive(Debug, ClapArgs)]
pub struct ShowArgs {
    /// The consumer queue `Q` or its dead-letter queue `Q.dlq`.
    pub queue: String,
    /// Show at most this many messages.
    #[arg(long, default_value_t = 10)]
    pub limit: u32,
    /// Same as `--output json`.
    #[arg(long)]
    pub json: bool,
    /// Which dead letters.
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// `orderflow dlq replay`
#[derive(Debug, ClapArgs)]
pub struct ReplayArgs {
    /// The consumer queue `Q` or its dead-letter queue `Q.dlq` [default with --group: every
    /// dead-letter queue].
    #[arg(required_unless_present = "fingerprint")]
    pub queue: Option<String>,
    /// Replay at most this many messages [default: all that match].
    #[arg(long, conflicts_with = "message_id")]
    pub limit: Option<u32>,
    /// Print what would be replayed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Which dead letters.
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// `orderflow dlq edit`
#[derive(Debug, ClapArgs)]
pub struct EditArgs {
    /// The consumer queue `Q` or its dead-letter queue `Q.dlq`.
    pub queue: String,
    /// The dead letter's `message_id`.
    #[arg(long)]
    pub message_id: String,
    /// Take the new body from this file instead of opening an editor.
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// The editor command, run with the body's file as its last argument.
    #[arg(long, env = "EDITOR", default_value = "vi")]
    pub editor: String,
}

/// `orderflow dlq delete`
#[derive(Debug, ClapArgs)]
pub struct DeleteArgs {
    /// The consumer queue `Q` or its dead-letter queue `Q.dlq`.
    pub queue: String,
    /// The dead letter's `message_id`.
    #[arg(long)]
    pub message_id: String,
}

/// `orderflow dlq purge`
#[derive(Debug, ClapArgs)]
pub struct PurgeArgs {
    /// The consumer queue `Q` or its dead-letter queue `Q.dlq`.
    pub queue: String,
    /// Confirm that the dead letters are to be deleted for good.
    #[arg(long)]
    pub yes: bool,
    /// Print what would be deleted; change nothing (needs no --yes).
    #[arg(long)]
    pub dry_run: bool,
    /// Which dead letters [default: all].
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// `orderflow topology [apply]`
#[derive(Debug, ClapArgs)]
pub struct TopologyArgs {
    #[command(subcommand)]
    pub action: Option<TopologyAction>,
}

#[derive(Debug, Subcommand)]
pub enum TopologyAction {
    /// Declares every exchange, queue, retry tier, DLQ and binding of the system, with an
    /// administrator's login: the deploy step that lets each worker run as a user that may not
    /// configure. The retry settings must be the workers' (the tiers' delays are queue arguments).
    Apply(RetryArgs),
}

/// The workers' retry settings, read from the same environment variables.
#[derive(Debug, Clone, ClapArgs)]
pub struct RetryArgs {
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
}

/// `orderflow publish`
#[derive(Debug, ClapArgs)]
pub struct PublishArgs {
    /// Target exchange ("" for the default exchange).
    pub exchange: String,
    /// Routing key (a queue name with the default exchange).
    pub routing_key: String,
    /// Read the JSON body from this file instead of stdin.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The `type` property (the event name, e.g. `order.created`).
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// The `correlation_id` property (the order id).
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// The `message_id` property [default: a new UUID].
    #[arg(long)]
    pub message_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn replay_takes_a_message_id_or_a_limit_not_both() {
        let parsed = Args::try_parse_from([
            "orderflow",
            "dlq",
            "replay",
            "q",
            "--limit",
            "1",
            "--message-id",
            "m",
        ]);
        assert!(parsed.is_err());
    }

    #[test]
    fn a_group_replay_needs_no_queue_and_filters_parse() {
        let parsed =
            Args::try_parse_from(["orderflow", "dlq", "replay", "--group", "abc"]).unwrap();
        let Command::Dlq(DlqCommand::Replay(replay)) = parsed.command else {
            panic!("a replay");
        };
        assert_eq!(replay.queue, None);
        assert_eq!(replay.filter.filter().fingerprint.as_deref(), Some("abc"));
        assert!(Args::try_parse_from(["orderflow", "dlq", "replay"]).is_err());
        let parsed = Args::try_parse_from([
            "orderflow",
            "--output",
            "json",
            "dlq",
            "purge",
            "q",
            "--older-than",
            "2h",
            "--order-id",
            "o-1",
            "--dry-run",
        ])
        .unwrap();
        assert_eq!(parsed.output, Output::Json);
        let Command::Dlq(DlqCommand::Purge(purge)) = parsed.command else {
            panic!("a purge");
        };
        let filter = purge.filter.filter();
        assert_eq!(filter.older_than, Some(Duration::from_secs(7200)));
        assert_eq!(filter.correlation_id.as_deref(), Some("o-1"));
        assert!(purge.dry_run && !purge.yes);
        let bad = Args::try_parse_from(["orderflow", "dlq", "show", "q", "--newer-than", "soon"]);
        assert_eq!(bad.unwrap_err().exit_code(), 2);
    }
}
