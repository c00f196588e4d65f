//! The `orderflow dlq` subcommands: each runs its operation and writes its result as text or
//! JSON.

use crate::args::{DlqCommand, Output, ReplayArgs};
use crate::edit::NewBody;
use crate::exit::Exit;
use crate::queues::DeadLetterQueue;
use crate::target::Target;
use crate::{dead_letters, edit, groups, print, remove, replay};
use serde_json::json;
use std::io::Write;
use std::time::SystemTime;

/// Runs `command` on `target`, writing to `out`.
///
/// # Errors
/// Whatever the command fails with (see [`Exit`] for the codes).
pub async fn run(
    target: &Target,
    command: DlqCommand,
    output: Output,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let json = output == Output::Json;
    let now = SystemTime::now();
    match command {
        DlqCommand::List => {
            let queues = dead_letters::list(target).await?;
            if json {
                for (queue, messages) in &queues {
                    writeln!(out, "{}", json!({"queue": queue, "messages": messages}))?;
                }
            } else if queues.is_empty() {
                writeln!(out, "no dead-letter queues in vhost '{}'", target.vhost)?;
            } else {
                print::dead_letter_queues(out, &queues)?;
            }
        }
        DlqCommand::Groups(args) => {
            let only = args
                .queue
                .as_deref()
                .map(DeadLetterQueue::parse)
                .transpose()?;
            let found = groups::collect(target, only.as_ref()).await?;
            if json {
                for group in &found {
                    writeln!(out, "{}", print::group_json(group))?;
                }
            } else if found.is_empty() {
                writeln!(out, "no dead letters in vhost '{}'", target.vhost)?;
            } else {
                print::groups(out, &found, now)?;
                writeln!(
                    out,
                    "{} group{}; replay one with `orderflow dlq replay --group <fingerprint>`",
                    found.len(),
                    if found.len() == 1 { "" } else { "s" }
                )?;
            }
        }
        DlqCommand::Show(show) => {
            let dlq = DeadLetterQueue::parse(&show.queue)?;
            let filter = show.filter.filter();
            let shown = dead_letters::show(target, &dlq, &filter, show.limit).await?;
            let json = json || show.json;
            for (n, letter) in shown.letters.iter().enumerate() {
                if json {
                    writeln!(out, "{}", print::dead_letter_json(letter))?;
                } else {
                    print::dead_letter(out, n + 1, letter, now)?;
                }
            }
            if !json {
                let matching = if filter.is_everything() {
                    ""
                } else {
                    "matching "
                };
                writeln!(
                    out,
                    "{} {matching}of {} dead letters in '{}' shown; all left in place",
                    shown.letters.len(),
                    shown.present,
                    dlq.name
                )?;
            }
        }
        DlqCommand::Replay(args) => replay(target, &args, json, out).await?,
        DlqCommand::Edit(args) => {
            let dlq = DeadLetterQueue::parse(&args.queue)?;
            let new_body = match args.body_file {
                Some(path) => NewBody::File(path),
                None => NewBody::Editor(args.editor),
            };
            let edited = edit::edit(target, &dlq, &args.message_id, &new_body).await?;
            if json {
                let line = json!({"action": "edit", "queue": dlq.name,
                    "message_id": edited.message_id, "replayed_to": edited.target_queue,
                    "changed": edited.changed});
                writeln!(out, "{line}")?;
            } else {
                writeln!(
                    out,
                    "replayed message {} to '{}' with the {} body; removed from '{}'",
                    edited.message_id,
                    edited.target_queue,
                    if edited.changed {
                        "edited"
                    } else {
                        "unchanged"
                    },
                    dlq.name
                )?;
            }
        }
        DlqCommand::Delete(args) => {
            let dlq = DeadLetterQueue::parse(&args.queue)?;
            let filter = crate::filter::Filter::message_id(&args.message_id);
            remove::remove(target, &dlq, &filter, Some(1), false).await?;
            if json {
                let line = json!({"action": "delete", "queue": dlq.name,
                    "message_id": args.message_id, "deleted": 1});
                writeln!(out, "{line}")?;
            } else {
                writeln!(
                    out,
                    "deleted message {} from '{}'",
                    args.message_id, dlq.name
                )?;
            }
        }
        DlqCommand::Purge(purge) => {
            let dlq = DeadLetterQueue::parse(&purge.queue)?;
            let filter = purge.filter.filter();
            if !purge.dry_run {
                dead_letters::confirm_purge(&dlq, purge.yes)?;
            }
            let (removed, found, letters) = if filter.is_everything() && !purge.dry_run {
                let removed = dead_letters::purge_all(target, &dlq).await?;
                (removed, removed, Vec::new())
            } else {
                let done = remove::remove(target, &dlq, &filter, None, purge.dry_run).await?;
                let count = u32::try_from(done.letters.len()).unwrap_or(u32::MAX);
                (count, done.found, done.letters)
            };
            if json {
                let line = json!({"action": "purge", "queue": dlq.name, "found": found,
                    "purged": removed, "dry_run": purge.dry_run, "messages": letters});
                writeln!(out, "{line}")?;
            } else if purge.dry_run {
                for letter in &letters {
                    print::brief(out, "would purge", letter)?;
                }
                writeln!(
                    out,
                    "would purge {removed} of {found} dead letters from '{}'; nothing changed",
                    dlq.name
                )?;
            } else {
                writeln!(out, "purged {removed} dead letters from '{}'", dlq.name)?;
            }
        }
    }
    Ok(())
}

/// `dlq replay`: one queue, or with `--group` and no queue every dead-letter queue.
async fn replay(
    target: &Target,
    args: &ReplayArgs,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let filter = args.filter.filter();
    let only = args
        .queue
        .as_deref()
        .map(DeadLetterQueue::parse)
        .transpose()?;
    let mut total = 0;
    for done in replay::everywhere(target, only.as_ref(), &filter, args.limit, args.dry_run).await?
    {
        total += done.letters.len();
        if json {
            let line = json!({"action": "replay", "queue": done.queue, "found": done.found,
                "replayed": done.letters.len(), "dry_run": args.dry_run, "messages": done.letters});
            writeln!(out, "{line}")?;
        } else if args.dry_run {
            for letter in &done.letters {
                print::brief(out, "would replay", letter)?;
            }
            writeln!(
                out,
                "would replay {} of {} dead letters from '{}'; nothing changed",
                done.letters.len(),
                done.found,
                done.queue
            )?;
        } else if args.queue.is_some() || !done.letters.is_empty() {
            writeln!(
                out,
                "replayed {} of {} dead letters from '{}'",
                done.letters.len(),
                done.found,
                done.queue
            )?;
        }
    }
    if let (None, Some(group)) = (&args.queue, &filter.fingerprint)
        && total == 0
    {
        return Err(Exit::nothing_matched(format!(
            "no dead letter in group '{group}' in any dead-letter queue of vhost '{}'; nothing replayed",
            target.vhost
        ))
        .into());
    }
    Ok(())
}
