//! Reading a worker's `/metrics` (Prometheus text).

/// The value of the sample `name{labels…}` whose labels include every `(key, value)`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// A worker's `/metrics` text; `None` while it cannot be read.
pub async fn text(worker: &crate::process::Worker) -> Option<String> {
    reqwest::get(worker.url("/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// A worker's `orderflow_deliveries_total` for `queue` and `outcome`; `None` while its
/// `/metrics` cannot be read or has no such sample yet.
pub async fn deliveries(
    worker: &crate::process::Worker,
    queue: &str,
    outcome: &str,
) -> Option<f64> {
    let text = text(worker).await?;
    sample(
        &text,
        "orderflow_deliveries_total",
        &[("queue", queue), ("outcome", outcome)],
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_labelled_counter() {
        let text =
            "# TYPE x counter\norderflow_deliveries_total{queue=\"q\",outcome=\"retryable\"} 2\n";
        assert_eq!(
            super::sample(
                text,
                "orderflow_deliveries_total",
                &[("outcome", "retryable")]
            ),
            Some(2.0)
        );
        assert_eq!(
            super::sample(
                text,
                "orderflow_deliveries_total",
                &[("outcome", "handled")]
            ),
            None
        );
    }
}
