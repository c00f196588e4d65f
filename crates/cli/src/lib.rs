//! The `orderflow` admin CLI: the topology at a glance, dead letters grouped, shown, replayed,
//! edited, deleted and purged without losing one, and events published by hand.
//!
//! # Layout
//!
//! - [`args`]: the command line (clap, with environment fallbacks).
//! - [`target`]: the broker, vhost and management API the URL names; connections to them.
//! - [`queues`]: `Q` / `Q.dlq` / `Q.retry.N` names as an operator types them.
//! - [`apply`]: `topology apply`, declaring the system's topology with an administrator's login.
//! - [`management`]: queue statistics from the management API and the topology report.
//! - [`dlq`]: the `dlq` subcommands, each run and its result written as text or JSON.
//! - [`letter`]: one dead letter and what its failure record says (kind, type, fingerprint).
//! - [`filter`]: which dead letters a command acts on.
//! - [`scan`]: reading a DLQ with a bounded number unacked, only what was there at the start.
//! - [`dead_letters`]: counting, listing, showing (without removing) and purging whole.
//! - [`groups`]: failure groups by fingerprint across every DLQ.
//! - [`replay`]: moving dead letters back to the queue they failed in.
//! - [`edit`]: replaying one dead letter with an edited, validated body.
//! - [`remove`]: deleting one dead letter, or those a filter selects.
//! - [`when`]: times and durations as operators read and type them.
//! - [`exit`]: the exit codes.
//! - [`publish`]: publishing a JSON body by hand.
//! - [`outbox`]: the order worker's quarantined outbox rows, listed and released.
//! - [`print`]: tables, dead letters as text or JSON lines.
//! - [`ui`]: the dead-letter page (`orderflow ui`).

// Docs say why where it is not obvious; on every item they were filler. `missing_docs` stays
// on for the libraries others build on (broker, contracts).
#![allow(missing_docs)]

pub mod apply;
pub mod args;
pub mod dead_letters;
pub mod dlq;
pub mod edit;
pub mod exit;
pub mod filter;
pub mod groups;
pub mod letter;
pub mod management;
pub mod outbox;
pub mod print;
pub mod publish;
pub mod queues;
pub mod remove;
pub mod replay;
pub mod scan;
pub mod target;
pub mod ui;
pub mod when;

use anyhow::Context;
use args::{Args, Command, OutboxCommand, Output, PublishArgs, TopologyAction, TopologyArgs};
use serde_json::json;
use std::io::{Read, Write};
use target::Target;

/// Runs one command, writing its result to stdout.
///
/// # Errors
/// Whatever the command fails with, as one line for the operator; [`exit::Exit::code_of`]
/// gives its exit code.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let tls = broker::Tls::from_files(args.amqp_ca_file.as_deref(), None, None)
        .map_err(|err| exit::Exit::usage(err.to_string()))?;
    let target = Target::new(&args.amqp_url, args.management_url.as_deref())?.with_tls(tls);
    let json = args.output == Output::Json;
    let mut out = std::io::stdout().lock();
    match args.command {
        Command::Topology(TopologyArgs {
            action: Some(TopologyAction::Apply(retry)),
        }) => {
            let applied = apply::apply(&target, &retry).await?;
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"action": "apply", "exchanges": applied.exchanges, "queues": applied.queues})
                )?;
            } else {
                writeln!(
                    out,
                    "declared {} exchanges and {} queues (with their retry tiers and DLQs) in vhost '{}'",
                    applied.exchanges, applied.queues, target.vhost
                )?;
            }
        }
        Command::Topology(TopologyArgs { action: None }) => {
            let rows = management::topology(&management::queues(&target).await?);
            if json {
                print::topology_json(&mut out, &rows)?;
            } else if rows.is_empty() {
                writeln!(
                    out,
                    "no consumer queues (with a `.dlq`) in vhost '{}'",
                    target.vhost
                )?;
            } else {
                print::topology(&mut out, &rows)?;
            }
        }
        Command::Dlq(command) => dlq::run(&target, command, args.output, &mut out).await?,
        Command::Publish(publish) => {
            let manual = manual(publish)?;
            let id = publish::publish(&target, &manual).await?;
            if json {
                writeln!(out, "{}", json!({"action": "publish", "message_id": id}))?;
            } else {
                writeln!(out, "{id}")?;
            }
        }
        Command::Outbox(OutboxCommand::List {
            api,
            json: json_flag,
        }) => {
            let rows = outbox::list(&api.order_url).await?;
            outbox::print(&mut out, &rows, json || json_flag)?;
        }
        Command::Outbox(OutboxCommand::Release { message_id, api }) => {
            outbox::release(&api.order_url, &message_id).await?;
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"action": "release", "message_id": message_id})
                )?;
            } else {
                writeln!(out, "released {message_id} for another round of attempts")?;
            }
        }
        Command::Ui(ui) => {
            drop(out);
            return ui::serve(target, ui.listen).await;
        }
    }
    out.flush()?;
    Ok(())
}

fn manual(args: PublishArgs) -> anyhow::Result<publish::Publication> {
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
    Ok(publish::Publication {
        exchange: args.exchange,
        routing_key: args.routing_key,
        body,
        kind: args.kind,
        correlation_id: args.correlation_id,
        message_id: args.message_id,
    })
}
