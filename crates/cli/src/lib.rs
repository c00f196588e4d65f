//! The `orderflow` admin CLI: the topology at a glance, dead letters listed, shown, replayed and
//! purged without losing one, and events published by hand.
//!
//! # Layout
//!
//! - [`args`]: the command line (clap, with environment fallbacks).
//! - [`target`]: the broker, vhost and management API the URL names; connections to them.
//! - [`queues`]: `Q` / `Q.dlq` / `Q.retry.N` names as an operator types them.
//! - [`management`]: queue statistics from the management API and the topology report.
//! - [`dead_letters`]: listing, showing (without removing) and purging dead letters.
//! - [`replay`]: moving dead letters back to the queue they failed in.
//! - [`publish`]: publishing a JSON body by hand.
//! - [`outbox`]: the order worker's quarantined outbox rows, listed and released.
//! - [`print`]: tables, dead letters as text or JSON lines.

// Docs say why where it is not obvious; on every item they were filler. `missing_docs` stays
// on for the libraries others build on (broker, contracts).
#![allow(missing_docs)]

pub mod args;
pub mod dead_letters;
pub mod management;
pub mod outbox;
pub mod print;
pub mod publish;
pub mod queues;
pub mod replay;
pub mod target;

use anyhow::Context;
use args::{Args, Command, DlqCommand, OutboxCommand, PublishArgs};
use queues::DeadLetterQueue;
use std::io::{Read, Write};
use target::Target;

/// Runs one command, writing its result to stdout.
///
/// # Errors
/// Whatever the command fails with, as one line for the operator.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::new(&args.amqp_url, args.management_url.as_deref())?;
    let mut out = std::io::stdout().lock();
    match args.command {
        Command::Topology => {
            let rows = management::topology(&management::queues(&target).await?);
            if rows.is_empty() {
                writeln!(
                    out,
                    "no consumer queues (with a `.dlq`) in vhost '{}'",
                    target.vhost
                )?;
            } else {
                print::topology(&mut out, &rows)?;
            }
        }
        Command::Dlq(DlqCommand::List) => {
            let queues = dead_letters::list(&target).await?;
            if queues.is_empty() {
                writeln!(out, "no dead-letter queues in vhost '{}'", target.vhost)?;
            } else {
                print::dead_letter_queues(&mut out, &queues)?;
            }
        }
        Command::Dlq(DlqCommand::Show(show)) => {
            let dlq = DeadLetterQueue::parse(&show.queue)?;
            let (letters, total) = dead_letters::peek(&target, &dlq, show.limit).await?;
            for (n, letter) in letters.iter().enumerate() {
                if show.json {
                    writeln!(out, "{}", print::dead_letter_json(letter))?;
                } else {
                    print::dead_letter(&mut out, n + 1, letter)?;
                }
            }
            if !show.json {
                writeln!(
                    out,
                    "{} of {total} dead letters in '{}' shown; all left in place",
                    letters.len(),
                    dlq.name
                )?;
            }
        }
        Command::Dlq(DlqCommand::Replay(replay)) => {
            let dlq = DeadLetterQueue::parse(&replay.queue)?;
            let selection = match replay.message_id {
                Some(id) => replay::Selection::MessageId(id),
                None => replay::Selection::First(replay.limit),
            };
            let done = replay::replay(&target, &dlq, &selection).await?;
            writeln!(
                out,
                "replayed {} of {} dead letters from '{}'",
                done.count, done.found, dlq.name
            )?;
        }
        Command::Dlq(DlqCommand::Purge(purge)) => {
            let dlq = DeadLetterQueue::parse(&purge.queue)?;
            let removed = dead_letters::purge(&target, &dlq, purge.yes).await?;
            writeln!(out, "purged {removed} dead letters from '{}'", dlq.name)?;
        }
        Command::Publish(publish) => {
            let manual = manual(publish)?;
            let id = publish::publish(&target, &manual).await?;
            writeln!(out, "{id}")?;
        }
        Command::Outbox(OutboxCommand::List { api, json }) => {
            let rows = outbox::list(&api.order_url).await?;
            outbox::print(&mut out, &rows, json)?;
        }
        Command::Outbox(OutboxCommand::Release { message_id, api }) => {
            outbox::release(&api.order_url, &message_id).await?;
            writeln!(out, "released {message_id} for another round of attempts")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn manual(args: PublishArgs) -> anyhow::Result<publish::Manual> {
    let body = match &args.file {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("cannot read the body from {}", path.display()))?,
        None => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .context("cannot read the body from stdin")?;
            body
        }
    };
    Ok(publish::Manual {
        exchange: args.exchange,
        routing_key: args.routing_key,
        body,
        kind: args.kind,
        correlation_id: args.correlation_id,
        message_id: args.message_id,
    })
}
