//! Output: aligned tables, dead letters and failure groups as text or one JSON object per line,
//! header values, times for people.

use crate::groups::Group;
use crate::letter::{Brief, DeadLetter};
use crate::management::TopologyRow;
use crate::when;
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Map, Value, json};
use std::io::{self, Write};
use std::time::SystemTime;

/// Writes `rows` under `header`, every column padded to its widest cell; numbers right-aligned.
///
/// # Errors
/// When `out` fails.
pub fn table<W: Write>(out: &mut W, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i == 0 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// The `orderflow topology` table.
///
/// # Errors
/// When `out` fails.
pub fn topology<W: Write>(out: &mut W, rows: &[TopologyRow]) -> io::Result<()> {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.queue.clone(),
                r.ready.to_string(),
                r.unacked.to_string(),
                r.consumers.to_string(),
                r.retrying.to_string(),
                r.dead.to_string(),
            ]
        })
        .collect();
    table(
        out,
        &["QUEUE", "READY", "UNACKED", "CONSUMERS", "RETRYING", "DLQ"],
        &cells,
    )
}

/// The `orderflow dlq list` table.
///
/// # Errors
/// When `out` fails.
pub fn dead_letter_queues<W: Write>(out: &mut W, queues: &[(String, u32)]) -> io::Result<()> {
    let cells: Vec<Vec<String>> = queues
        .iter()
        .map(|(name, count)| vec![name.clone(), count.to_string()])
        .collect();
    table(out, &["DLQ", "MESSAGES"], &cells)
}

/// The rows of `orderflow topology` as JSON objects, one per line.
///
/// # Errors
/// When `out` fails.
pub fn topology_json<W: Write>(out: &mut W, rows: &[TopologyRow]) -> io::Result<()> {
    for r in rows {
        let row = json!({"queue": r.queue, "ready": r.ready, "unacked": r.unacked,
            "consumers": r.consumers, "retrying": r.retrying, "dead": r.dead});
        writeln!(out, "{row}")?;
    }
    Ok(())
}

/// One dead letter for a human: properties, when it failed and its group, every header, the
/// broker's death reason, the body.
///
/// # Errors
/// When `out` fails.
pub fn dead_letter<W: Write>(
    out: &mut W,
    number: usize,
    letter: &DeadLetter,
    now: SystemTime,
) -> io::Result<()> {
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    writeln!(out, "--- {} #{number}", letter.queue)?;
    writeln!(out, "message_id:     {}", or_none(&letter.message_id))?;
    writeln!(out, "correlation_id: {}", or_none(&letter.correlation_id))?;
    writeln!(out, "type:           {}", or_none(&letter.kind))?;
    if let Some(at) = letter.failed_at() {
        writeln!(out, "failed:         {}", when::human(at, now))?;
    }
    writeln!(out, "fingerprint:    {}", letter.fingerprint())?;
    if let Some(app_id) = &letter.app_id {
        writeln!(out, "app_id:         {app_id}")?;
    }
    if let Some(timestamp) = letter.timestamp {
        writeln!(out, "timestamp:      {timestamp}")?;
    }
    if let Some(reason) = &letter.death_reason {
        writeln!(out, "x-death reason: {reason}")?;
    }
    writeln!(out, "headers:")?;
    for (name, value) in letter.headers.inner() {
        writeln!(out, "  {}: {}", name.as_str(), value_text(value))?;
    }
    writeln!(out, "body:")?;
    writeln!(out, "{}", String::from_utf8_lossy(&letter.body))?;
    Ok(())
}

/// One dead letter as a JSON object (for `--output json`, one per line).
#[must_use]
pub fn dead_letter_json(letter: &DeadLetter) -> Value {
    json!({
        "queue": letter.queue,
        "message_id": letter.message_id,
        "correlation_id": letter.correlation_id,
        "type": letter.kind,
        "app_id": letter.app_id,
        "timestamp": letter.timestamp,
        "failed_at": letter.failed_at().map(when::rfc3339),
        "error_kind": letter.error_kind(),
        "error_type": letter.error_type(),
        "fingerprint": letter.fingerprint(),
        "death_reason": letter.death_reason,
        "headers": table_json(&letter.headers),
        "body": String::from_utf8_lossy(&letter.body),
    })
}

/// Failure groups for a human, one block each, largest first.
///
/// # Errors
/// When `out` fails.
pub fn groups<W: Write>(out: &mut W, groups: &[Group], now: SystemTime) -> io::Result<()> {
    let join = |set: &std::collections::BTreeSet<String>| {
        set.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let seen =
        |at: Option<SystemTime>| at.map_or_else(|| "-".to_owned(), |at| when::human(at, now));
    for group in groups {
        let kinds = join(&group.kinds);
        writeln!(
            out,
            "{}  {} dead letter{}  {}{}",
            group.fingerprint,
            group.count,
            if group.count == 1 { "" } else { "s" },
            group.error_type.as_deref().unwrap_or("(no error-type)"),
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({kinds})")
            }
        )?;
        writeln!(out, "  queues:     {}", join(&group.queues))?;
        writeln!(out, "  first seen: {}", seen(group.first_seen))?;
        writeln!(out, "  last seen:  {}", seen(group.last_seen))?;
        writeln!(
            out,
            "  example:    {} (message {})",
            group.example_error.as_deref().unwrap_or("-"),
            group.example_message_id.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

/// One failure group as a JSON object.
#[must_use]
pub fn group_json(group: &Group) -> Value {
    json!({
        "fingerprint": group.fingerprint,
        "count": group.count,
        "queues": group.queues,
        "error_kinds": group.kinds,
        "error_type": group.error_type,
        "example_error": group.example_error,
        "example_message_id": group.example_message_id,
        "first_seen": group.first_seen.map(when::rfc3339),
        "last_seen": group.last_seen.map(when::rfc3339),
    })
}

/// One line naming a dead letter an action touched (or, dry, would touch).
///
/// # Errors
/// When `out` fails.
pub fn brief<W: Write>(out: &mut W, verb: &str, brief: &Brief) -> io::Result<()> {
    writeln!(
        out,
        "{verb} {} ({}, order {}, group {}): {}",
        brief.message_id.as_deref().unwrap_or("(no message id)"),
        brief.kind.as_deref().unwrap_or("no type"),
        brief.correlation_id.as_deref().unwrap_or("-"),
        brief.fingerprint,
        brief.error.as_deref().unwrap_or("-")
    )
}

/// An error and its causes as one line, skipping a cause the line already says (lapin repeats
/// its source in its own message).
#[must_use]
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(text.as_str()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace(['\n', '\r'], " ")
}

/// A header value as one line of text.
#[must_use]
pub fn value_text(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::FieldArray(items) => format!(
            "[{}]",
            items
                .as_slice()
                .iter()
                .map(value_text)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        AMQPValue::FieldTable(table) => format!(
            "{{{}}}",
            table
                .inner()
                .iter()
                .map(|(k, v)| format!("{}={}", k.as_str(), value_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => match value_json(other) {
            Value::String(s) => s,
            json => json.to_string(),
        },
    }
}

/// A header table as a JSON object.
#[must_use]
pub fn table_json(table: &FieldTable) -> Value {
    Value::Object(
        table
            .inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), value_json(v)))
            .collect::<Map<_, _>>(),
    )
}

/// A header value as JSON (byte arrays as lossy text, decimals as numbers).
#[must_use]
pub fn value_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Timestamp(n) => json!(n),
        AMQPValue::Float(x) => json!(x),
        AMQPValue::Double(x) => json!(x),
        AMQPValue::DecimalValue(d) => {
            json!(f64::from(d.value) / 10f64.powi(i32::from(d.scale)))
        }
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::ByteArray(b) => json!(String::from_utf8_lossy(b.as_slice())),
        AMQPValue::FieldArray(items) => {
            Value::Array(items.as_slice().iter().map(value_json).collect())
        }
        AMQPValue::FieldTable(table) => table_json(table),
        AMQPValue::Void => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{FieldArray, LongString};

    fn letter() -> DeadLetter {
        let mut headers = FieldTable::default();
        headers.insert("retry-count".into(), AMQPValue::LongLongInt(5));
        headers.insert(
            "error-kind".into(),
            AMQPValue::LongString(LongString::from("retries-exhausted")),
        );
        let mut death = FieldTable::default();
        death.insert(
            "reason".into(),
            AMQPValue::LongString(LongString::from("delivery_limit")),
        );
        death.insert("count".into(), AMQPValue::LongLongInt(1));
        headers.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(death)])),
        );
        DeadLetter {
            queue: "q.dlq".into(),
            message_id: Some("m-1".into()),
            correlation_id: None,
            kind: Some("order.created".into()),
            app_id: None,
            timestamp: None,
            death_reason: Some("delivery_limit".into()),
            headers,
            body: br#"{"a":1}"#.to_vec(),
        }
    }

    #[test]
    fn text_shows_every_header_and_the_body() {
        let mut out = Vec::new();
        dead_letter(&mut out, 1, &letter(), SystemTime::now()).unwrap();
        let text = String::from_utf8(out).unwrap();
        for expected in [
            "message_id:     m-1",
            "correlation_id: -",
            "type:           order.created",
            "x-death reason: delivery_limit",
            "fingerprint:    ",
            "  retry-count: 5",
            "  error-kind: retries-exhausted",
            "  x-death: [{count=1, reason=delivery_limit}]",
            r#"{"a":1}"#,
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn json_keeps_header_types() {
        let value = dead_letter_json(&letter());
        assert_eq!(value["headers"]["retry-count"], json!(5));
        assert_eq!(
            value["headers"]["x-death"][0]["reason"],
            json!("delivery_limit")
        );
        assert_eq!(value["body"], json!(r#"{"a":1}"#));
        assert_eq!(value["correlation_id"], Value::Null);
    }

    #[test]
    fn errors_are_one_line_without_repeated_causes() {
        let io = std::io::Error::other("refused");
        let err = anyhow::Error::new(io)
            .context("IO error: refused")
            .context("cannot connect\nto the broker");
        assert_eq!(
            error_line(&err),
            "cannot connect to the broker: IO error: refused"
        );
    }

    #[test]
    fn tables_align_columns() {
        let mut out = Vec::new();
        dead_letter_queues(
            &mut out,
            &[("a.dlq".into(), 3), ("long.name.dlq".into(), 12)],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "DLQ            MESSAGES\na.dlq                 3\nlong.name.dlq        12\n"
        );
    }
}
