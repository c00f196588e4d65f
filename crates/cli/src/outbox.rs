//! The order worker's quarantined outbox rows: listed and released through its HTTP API
//! (`GET /outbox/quarantined`, `POST /outbox/quarantined/{message_id}/release`).

use anyhow::{Context, bail};
use contracts::outbox::QuarantinedRow;
use std::io::Write;

fn client() -> reqwest::Client {
    // One TLS stack (rustls) with one crypto provider (ring) across the workspace.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The quarantined rows of the order worker at `order_url`.
///
/// # Errors
/// When the order worker cannot be reached or answers with an error.
pub async fn list(order_url: &str) -> anyhow::Result<Vec<QuarantinedRow>> {
    let url = format!("{}/outbox/quarantined", order_url.trim_end_matches('/'));
    let response = client()
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach the order worker at {url}"))?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    response
        .json()
        .await
        .with_context(|| format!("{url} did not answer a list of rows"))
}

/// Releases the quarantined row `message_id` for another round of attempts.
///
/// # Errors
/// When the row is not quarantined or the order worker cannot be reached.
pub async fn release(order_url: &str, message_id: &str) -> anyhow::Result<()> {
    let url = format!(
        "{}/outbox/quarantined/{message_id}/release",
        order_url.trim_end_matches('/')
    );
    let response = client()
        .post(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach the order worker at {url}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        bail!("no quarantined outbox row {message_id}");
    }
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    Ok(())
}

/// Prints `rows` as a table, or one JSON object per line.
///
/// # Errors
/// When writing fails.
pub fn print(out: &mut impl Write, rows: &[QuarantinedRow], json: bool) -> anyhow::Result<()> {
    if json {
        for row in rows {
            writeln!(out, "{}", serde_json::to_string(row)?)?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no quarantined outbox rows")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<38} {:<16} {:<8} {:<22} LAST ERROR",
        "MESSAGE ID", "EVENT", "ATTEMPTS", "QUARANTINED AT"
    )?;
    for row in rows {
        writeln!(
            out,
            "{:<38} {:<16} {:<8} {:<22} {}",
            row.message_id,
            row.event_type,
            row.attempts,
            row.quarantined_at,
            row.last_error.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}
