//! Connecting to the broker (one node, or the first of a cluster's nodes that answers), reconnect
//! backoff, and the readiness flag.

use crate::tls::Tls;
use lapin::{Connection, ConnectionProperties};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A connection URL (broker or database), or a comma-separated list of them, without its
/// passwords, for messages and logs.
#[must_use]
pub fn redact(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

/// Query parameters that carry a secret in the URL forms the project accepts (PostgreSQL's
/// `?password=`, `sslpassword`).
const SECRET_PARAMETERS: [&str; 3] = ["password", "sslpassword", "pass"];

fn redact_one(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = redact_userinfo(base);
    let Some(query) = query else {
        return base;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_PARAMETERS.contains(&name.to_ascii_lowercase().as_str()) => {
                format!("{name}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// How long closing waits for the broker's confirmation once everything is settled: a broker
/// that never answers must not hold a worker's exit.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `amqp://` or `amqps://` URL, including the vhost; or several, separated by commas (the
    /// nodes of a cluster), tried in turn.
    pub url: String,
    /// The `app_id` stamped on published messages and the connection name's prefix.
    pub app_id: String,
    /// How long in-flight handlers may take to finish on shutdown.
    pub shutdown_timeout: Duration,
    /// How long a publish keeps retrying on connection failures before it fails.
    pub publish_retry_for: Duration,
    /// How long to wait for one publisher confirm.
    pub confirm_timeout: Duration,
    /// Confirm channels the publisher opens at most: publishes in flight at once (each channel
    /// carries one, so a returned message is always told apart).
    pub publish_channels: usize,
    /// The version a failed message's `failed-by` header names beside `app_id`.
    pub app_version: Option<String>,
    /// The host name a failed message's `failed-host` header names.
    pub host: String,
    /// A private CA and a client certificate for `amqps://` URLs.
    pub tls: Tls,
    /// What the library's metric names start with (`<prefix>_deliveries_total`, …).
    pub metric_prefix: String,
}

impl BrokerConfig {
    /// Defaults: 30 s shutdown timeout, 30 s publish retry window, 10 s confirm timeout, 64
    /// publish channels, no app version, this machine's host name.
    #[must_use]
    pub fn new(url: impl Into<String>, app_id: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            app_id: app_id.into(),
            shutdown_timeout: Duration::from_secs(30),
            publish_retry_for: Duration::from_secs(30),
            confirm_timeout: Duration::from_secs(10),
            publish_channels: 64,
            app_version: None,
            // Not configuration but a fact of the machine, like the clock.
            host: whoami::fallible::hostname().unwrap_or_else(|_| "unknown".to_owned()),
            tls: Tls::default(),
            metric_prefix: "orderflow".to_owned(),
        }
    }

    /// Sets what the library's metric names start with (default `orderflow`); describe them with
    /// [`crate::metrics::describe`] and the same prefix.
    #[must_use]
    pub fn with_metric_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.metric_prefix = prefix.into();
        self
    }

    /// Sets the CA and client certificate `amqps://` connections use.
    #[must_use]
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the version named in `failed-by` (a binary passes its `CARGO_PKG_VERSION`).
    #[must_use]
    pub fn with_app_version(mut self, version: impl Into<String>) -> Self {
        self.app_version = Some(version.into());
        self
    }

    /// Sets the host name named in `failed-host` (e.g. a pod name).
    #[must_use]
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets the shutdown timeout.
    #[must_use]
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets how many publishes may be in flight at once (one per confirm channel).
    #[must_use]
    pub fn with_publish_channels(mut self, channels: usize) -> Self {
        self.publish_channels = channels.max(1);
        self
    }

    /// Sets how long publishes retry through connection failures.
    #[must_use]
    pub fn with_publish_retry_for(mut self, window: Duration) -> Self {
        self.publish_retry_for = window;
        self
    }
}

/// Connection properties naming the connection `<app_id>-<role>` in the management UI.
#[must_use]
pub(crate) fn properties(app_id: &str, role: &str) -> ConnectionProperties {
    ConnectionProperties::default().with_connection_name(format!("{app_id}-{role}").into())
}

/// The largest AMQP frame a connection asks for unless its URL names one (`?frame_max=`).
/// lapin keeps 32 frames of send and 32 of receive buffer per connection, all of it touched: at
/// RabbitMQ's default of 128 KiB that is 8 MiB per connection, at 32 KiB it is 2 MiB. Bodies
/// larger than a frame are split, so only the buffer size changes.
pub const DEFAULT_FRAME_MAX: u32 = 32 * 1024;

/// `url` with `frame_max` set to [`DEFAULT_FRAME_MAX`], unless the URL already sets it.
#[must_use]
pub(crate) fn with_frame_max(url: &str) -> String {
    let query = url.split_once('?').map(|(_, query)| query);
    if query.is_some_and(|q| q.split('&').any(|pair| pair.starts_with("frame_max="))) {
        return url.to_owned();
    }
    let separator = if query.is_some() { '&' } else { '?' };
    format!("{url}{separator}frame_max={DEFAULT_FRAME_MAX}")
}

/// Opens one connection (with `tls` when the URL is `amqps://`).
///
/// # Errors
/// When the broker cannot be reached, its certificate is not trusted, or it refuses the login.
pub async fn connect(
    url: &str,
    tls: &Tls,
    app_id: &str,
    role: &str,
) -> Result<Connection, lapin::Error> {
    Connection::connect_with_config(
        &with_frame_max(url),
        properties(app_id, role),
        tls.config(),
        lapin::runtime::default_runtime()?,
    )
    .await
}

/// The user `url` (its first address) logs in as, which RabbitMQ checks a message's `user_id`
/// against; `None` for a certificate login (`auth_mechanism=external`), whose user the broker
/// takes from the certificate.
#[must_use]
pub fn login_user(url: &str) -> Option<String> {
    let first = addresses(url).into_iter().next()?;
    if first
        .to_ascii_lowercase()
        .contains("auth_mechanism=external")
    {
        return None;
    }
    let uri: lapin::uri::AMQPUri = first.parse().ok()?;
    Some(uri.authority.userinfo.username)
}

/// The addresses a configured URL names: one URL, or several separated by commas.
#[must_use]
pub(crate) fn addresses(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .collect()
}

/// Which address the next connection tries first: the one that answered last, so a healthy
/// node keeps its clients and a lost one is left for the next.
#[derive(Debug, Default)]
pub(crate) struct Cursor(AtomicUsize);

/// Opens one connection to the first of `url`'s addresses that answers, starting at `cursor`
/// (left on the one that answered); returns it with that address.
///
/// # Errors
/// The last address's error when none answers.
pub(crate) async fn connect_any(
    url: &str,
    tls: &Tls,
    cursor: &Cursor,
    app_id: &str,
    role: &str,
) -> Result<(Connection, String), lapin::Error> {
    let addresses = addresses(url);
    let count = addresses.len().max(1);
    let start = cursor.0.load(Ordering::Relaxed);
    let mut step = 0;
    loop {
        let index = (start + step) % count;
        let address = addresses.get(index).copied().unwrap_or(url);
        match connect(address, tls, app_id, role).await {
            Ok(connection) => {
                cursor.0.store(index, Ordering::Relaxed);
                if count > 1 {
                    tracing::info!(address = %redact(address), role, "connected");
                }
                return Ok((connection, address.to_owned()));
            }
            Err(err) if step + 1 < count => {
                tracing::warn!(address = %redact(address), role, error = %err, "broker node not reachable; trying the next");
                step += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Delays between reconnect attempts: 100 ms doubling to 5 s, with jitter, for ever.
pub(crate) fn reconnect_backoff() -> impl Iterator<Item = Duration> {
    crate::backoff::jittered(Duration::from_millis(100), Duration::from_secs(5))
}

/// Whether the runtime is connected and consuming; cheap to clone and poll (e.g. from `/readyz`),
/// or to wait on.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Readiness {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(false)))
    }
}

impl Readiness {
    /// True while connected with every consumer running.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once connected with every consumer running (at once if so already): e.g. before
    /// the first publish, whose exchange the runtime declares.
    pub async fn ready(&self) {
        let mut seen = self.0.subscribe();
        // The sender lives in `self`: waiting cannot fail.
        let _ = seen.wait_for(|ready| *ready).await;
    }

    pub(crate) fn set(&self, ready: bool) {
        self.0.send_replace(ready);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_form_loses_its_password() {
        for (url, shown) in [
            ("amqp://u:s3cret@h:5672/%2f", "amqp://u:***@h:5672/%2f"),
            (
                "amqp://u:s3cret@h/%2f?frame_max=4096",
                "amqp://u:***@h/%2f?frame_max=4096",
            ),
            (
                "postgres://u@h/db?password=s3cret&sslmode=require",
                "postgres://u@h/db?password=***&sslmode=require",
            ),
            (
                "postgres://u:p%40ss@h/db?sslpassword=s3cret",
                "postgres://u:***@h/db?sslpassword=***",
            ),
            ("sqlite://data/x.db", "sqlite://data/x.db"),
        ] {
            assert_eq!(redact(url), shown);
        }
    }

    #[test]
    fn a_list_of_urls_names_each_node_and_redacts_each_password() {
        let list = "amqp://u:p1@a:5672/%2f, amqp://u:p2@b:5672/%2f,";
        assert_eq!(
            addresses(list),
            ["amqp://u:p1@a:5672/%2f", "amqp://u:p2@b:5672/%2f"]
        );
        let shown = redact(list);
        assert!(!shown.contains("p1") && !shown.contains("p2"), "{shown}");
        assert_eq!(addresses("amqp://h/%2f"), ["amqp://h/%2f"]);
    }

    #[test]
    fn frame_max_is_added_unless_the_url_sets_it() {
        assert_eq!(
            with_frame_max("amqp://guest:guest@host:5672/%2f"),
            "amqp://guest:guest@host:5672/%2f?frame_max=32768"
        );
        assert_eq!(
            with_frame_max("amqp://host/%2f?heartbeat=10"),
            "amqp://host/%2f?heartbeat=10&frame_max=32768"
        );
        assert_eq!(
            with_frame_max("amqp://host/%2f?heartbeat=10&frame_max=131072"),
            "amqp://host/%2f?heartbeat=10&frame_max=131072"
        );
        let parsed: lapin::uri::AMQPUri = with_frame_max("amqp://host/%2f").parse().unwrap();
        assert_eq!(parsed.query.frame_max, Some(DEFAULT_FRAME_MAX));
    }
}
