//! The command line: global options (with environment fallbacks) and the subcommands.

use clap::{Args as ClapArgs, Parser, Subcommand};
use std::path::PathBuf;

/// The default broker and vhost (`docs/design.md` §4).
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// `orderflow`: inspect the topology, list, show, replay and purge dead letters, publish events.
#[derive(Debug, Parser)]
#[command(name = "orderflow", version, about)]
pub struct Args {
    /// Broker and vhost; the login is used for the management API too.
    #[arg(long, env = "AMQP_URL", default_value = DEFAULT_AMQP_URL, global = true)]
    pub amqp_url: String,
    /// Management API base URL [default: http://<amqp host>:15672].
    #[arg(long, env = "RABBITMQ_MANAGEMENT_URL", global = true)]
    pub management_url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Per consumer queue: ready, unacked, consumers, messages waiting in retry tiers, dead letters.
    Topology,
    /// Dead-letter queues: list, show, replay, purge.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Publish a JSON body (from --file or stdin), persistent and confirmed; prints its message id.
    Publish(PublishArgs),
    /// The order worker's quarantined outbox rows: list, release.
    #[command(subcommand)]
    Outbox(OutboxCommand),
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
        /// One JSON object per line.
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
    /// Show dead letters without removing them.
    Show(ShowArgs),
    /// Move dead letters back to the queue they failed in.
    Replay(ReplayArgs),
    /// Delete every message of a dead-letter queue.
    Purge(PurgeArgs),
}

/// `orderflow dlq show`
#[derive(Debug, ClapArgs)]
pub struct ShowArgs {
    /// The consumer queue `Q` or its dead-letter queue `Q.dlq`.
    pub queue: String,
    /// Show at most this many messages.
    #[arg(long, default_value_t = 10)]
    pub limit: u32,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// `orderflow dlq replay`
#[derive(Debug, ClapArgs)]
pub struct ReplayArgs {
    /// The consumer queue `Q` or its dead-letter queue `Q.dlq`.
    pub queue: String,
    /// Replay at most this many messages [default: all].
    #[arg(long, conflicts_with = "message_id")]
    pub limit: Option<u32>,
    /// Replay only the message with this `message_id`; every other one stays in place.
    #[arg(long)]
    pub message_id: Option<String>,
}

/// `orderflow dlq purge`
#[derive(Debug, ClapArgs)]
pub struct PurgeArgs {
    /// The consumer queue `Q` or its dead-letter queue `Q.dlq`.
    pub queue: String,
    /// Confirm that the dead letters are to be deleted for good.
    #[arg(long)]
    pub yes: bool,
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
}
