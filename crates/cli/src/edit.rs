//! Fixing a dead letter's body and replaying it: the body is edited away from the broker (in
//! `$EDITOR` or from a file), checked as its event, published like a replay, and the original
//! acked only once the copy is confirmed.

use crate::exit::Exit;
use crate::filter::Filter;
use crate::queues::DeadLetterQueue;
use crate::replay::move_back;
use crate::scan::touch;
use crate::target::Target;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Where the new body comes from.
#[derive(Debug, Clone)]
pub enum NewBody {
    /// This file, as it is.
    File(PathBuf),
    /// The original body, edited with this command (run through `sh`, the file appended).
    Editor(String),
    /// These bytes (the dead-letter page's text area).
    Given(Vec<u8>),
}

/// What an edit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// The dead letter's `message_id`.
    pub message_id: String,
    /// The queue the edited copy went to.
    pub target_queue: String,
    /// Whether the body differs from the original.
    pub changed: bool,
}

/// Replays dead letter `message_id` of `dlq` with a new body.
///
/// The dead letter is read and handed back while the body is edited, so no message is held
/// unacked for as long as an editor stays open; it is then taken again, the copy published and
/// confirmed, and only then acked.
///
/// # Errors
/// When the message is not there (exit code 1, before or after the edit), the new body does
/// not validate (exit code 2: nothing published, the dead letter stays), or the copy is not
/// confirmed (the dead letter stays).
pub async fn edit(
    target: &Target,
    dlq: &DeadLetterQueue,
    message_id: &str,
    new_body: &NewBody,
) -> anyhow::Result<Edited> {
    let filter = Filter::message_id(message_id);
    let original = read_once(target, dlq, &filter).await?.ok_or_else(|| {
        Exit::nothing_matched(format!(
            "no dead letter with message id '{message_id}' in '{}'; nothing published",
            dlq.name
        ))
    })?;
    let body = match new_body {
        NewBody::File(path) => std::fs::read(path)
            .with_context(|| format!("cannot read the new body from {}", path.display()))?,
        NewBody::Editor(editor) => edit_in(editor, message_id, &original.body)?,
        NewBody::Given(body) => body.clone(),
    };
    contracts::check_body(original.kind.as_deref(), &body).map_err(|why| {
        Exit::usage(format!(
            "the edited body is {why}; nothing published, the dead letter stays in '{}'",
            dlq.name
        ))
    })?;

    let publisher = target.publisher()?;
    let undone = "nothing published (replayed or deleted meanwhile?)";
    let replayed = touch(
        target,
        dlq,
        &filter,
        Some(1),
        undone,
        async |delivery, _| {
            move_back(&publisher, dlq, &delivery, &body).await?;
            Ok(None)
        },
    )
    .await;
    publisher.close().await;
    replayed?;
    Ok(Edited {
        message_id: message_id.to_owned(),
        target_queue: broker::headers::text(Some(&original.headers), broker::headers::SOURCE_QUEUE)
            .unwrap_or_else(|| dlq.source.clone()),
        changed: body != original.body,
    })
}

/// The dead letter `filter` selects from `dlq`, read and handed back.
pub(crate) async fn read_once(
    target: &Target,
    dlq: &DeadLetterQueue,
    filter: &Filter,
) -> anyhow::Result<Option<crate::letter::DeadLetter>> {
    Ok(crate::dead_letters::show(target, dlq, filter, 1)
        .await?
        .letters
        .into_iter()
        .next())
}

/// Writes `body` to a temporary file, runs `editor` on it and reads it back.
fn edit_in(editor: &str, message_id: &str, body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let safe: String = message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = std::env::temp_dir().join(format!(
        "orderflow-edit-{safe}-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, body)
        .with_context(|| format!("cannot write the body to {}", path.display()))?;
    let edited = run_editor(editor, &path).and_then(|()| {
        std::fs::read(&path).with_context(|| format!("cannot read back {}", path.display()))
    });
    let _ = std::fs::remove_file(&path);
    edited
}

/// Runs `editor` (a command line, as `$EDITOR` may hold `code --wait`) on `path`.
fn run_editor(editor: &str, path: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("orderflow-editor")
        .arg(path)
        .status()
        .with_context(|| format!("cannot run the editor '{editor}'"))?;
    if !status.success() {
        return Err(Exit::usage(format!(
            "the editor '{editor}' exited with {status}; nothing published"
        ))
        .into());
    }
    Ok(())
}
