//! Which broker and vhost the CLI works on, and the connections to it (AMQP and management API).

use crate::exit::Exit;
use anyhow::{Context, anyhow};
use broker::redact_url as redact;
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::{Channel, Connection, ErrorKind, uri::AMQPUri};
use std::time::Duration;

/// The `app_id` on what the CLI publishes, and its connections' name prefix.
pub const APP_ID: &str = "orderflow-cli";

/// How long the CLI keeps retrying a publish through connection failures.
const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(10);

/// The management API client type.
pub type Management = rabbitmq_http_client::api::Client<String, String, String>;

/// Where the CLI works: the AMQP URL, its vhost, and the management API with the same login.
#[derive(Debug, Clone)]
pub struct Target {
    /// The AMQP URL as given.
    pub amqp_url: String,
    /// The vhost named by the URL, percent-decoded (`%2f` is `/`).
    pub vhost: String,
    /// `http(s)://host:port/api`.
    pub management_api: String,
    username: String,
    password: String,
    /// The private CA of an `amqps://` broker.
    tls: broker::Tls,
}

impl Target {
    /// Reads the vhost and login from `amqp_url`; the management API defaults to the AMQP host,
    /// `http` on port 15672, or `https` on 15671 when the AMQP URL is `amqps`.
    ///
    /// # Errors
    /// When the AMQP URL does not parse.
    pub fn new(amqp_url: &str, management_url: Option<&str>) -> anyhow::Result<Self> {
        let uri: AMQPUri = amqp_url
            .parse()
            .map_err(|err| anyhow!("bad AMQP URL '{}': {err}", redact(amqp_url)))?;
        let tls = uri.scheme == lapin::uri::AMQPScheme::AMQPS;
        let base = management_url.map_or_else(
            || {
                if tls {
                    format!("https://{}:15671", uri.authority.host)
                } else {
                    format!("http://{}:15672", uri.authority.host)
                }
            },
            |url| {
                url.trim_end_matches('/')
                    .trim_end_matches("/api")
                    .to_owned()
            },
        );
        Ok(Self {
            amqp_url: amqp_url.to_owned(),
            vhost: uri.vhost,
            management_api: format!("{base}/api"),
            username: uri.authority.userinfo.username,
            password: uri.authority.userinfo.password,
            tls: broker::Tls::default(),
        })
    }

    /// Verifies an `amqps://` broker and an `https` management API against `tls`'s CA.
    #[must_use]
    pub fn with_tls(mut self, tls: broker::Tls) -> Self {
        self.tls = tls;
        self
    }

    /// A management API client.
    ///
    /// # Errors
    /// When the management URL is not http(s).
    pub fn management(&self) -> anyhow::Result<Management> {
        // One TLS stack (rustls) with one crypto provider (ring) across the workspace.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut http = reqwest::Client::builder();
        if let Some(pem) = self.tls.ca_pem() {
            for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .context("reading the CA file's certificates")?
            {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .build()
            .context("building the management API's HTTP client")?;
        rabbitmq_http_client::api::ClientBuilder::new()
            .with_client(http)
            .with_endpoint(self.management_api.clone())
            .with_basic_auth_credentials(self.username.clone(), self.password.clone())
            .build()
            .map_err(|err| anyhow!("bad management URL '{}': {err}", self.management_api))
    }

    /// Opens an AMQP connection named `orderflow-cli-admin`.
    ///
    /// # Errors
    /// When the broker cannot be reached or refuses the login or the vhost (exit code 3).
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        broker::connect(&self.amqp_url, &self.tls, APP_ID, "admin")
            .await
            .with_context(|| {
                Exit::unreachable(format!("cannot connect to {}", redact(&self.amqp_url)))
            })
    }

    /// A confirming publisher (on its own connection, opened on first use).
    ///
    /// # Errors
    /// When the URL cannot be used for a connection pool.
    pub fn publisher(&self) -> anyhow::Result<broker::Publisher> {
        let config = broker::BrokerConfig::new(&self.amqp_url, APP_ID)
            .with_publish_retry_for(PUBLISH_RETRY_FOR)
            .with_tls(self.tls.clone());
        broker::Publisher::new(&config).context("cannot set up the publisher")
    }
}

/// An open connection with one channel, closed politely when done.
#[derive(Debug)]
pub struct Session {
    connection: Connection,
    pub channel: Channel,
}

impl Session {
    /// Connects to `target` and opens a channel.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub async fn open(target: &Target) -> anyhow::Result<Self> {
        let connection = target.connect().await?;
        let channel = connection
            .create_channel()
            .await
            .context("cannot open a channel")?;
        Ok(Self {
            connection,
            channel,
        })
    }

    /// A fresh channel on the same connection (a failed passive declare closes a channel).
    ///
    /// # Errors
    /// When the connection is gone.
    pub async fn reopen(&mut self) -> anyhow::Result<()> {
        self.channel = self
            .connection
            .create_channel()
            .await
            .context("cannot open a channel")?;
        Ok(())
    }

    /// Closes the channel and the connection; unacked messages go back to their queues.
    pub async fn close(self) {
        let _ = self.channel.close(200, "done".into()).await;
        let _ = self.connection.close(200, "done".into()).await;
    }
}

/// True when the broker answered NOT_FOUND (no such queue or exchange).
#[must_use]
pub fn is_not_found(err: &lapin::Error) -> bool {
    matches!(err.kind(), ErrorKind::ProtocolError(e)
        if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vhost_is_percent_decoded_and_management_defaults_to_the_amqp_host() {
        let target = Target::new("amqp://guest:guest@rabbit.local:5672/%2f", None).unwrap();
        assert_eq!(target.vhost, "/");
        assert_eq!(target.management_api, "http://rabbit.local:15672/api");
        let tls = Target::new("amqps://guest:guest@rabbit.local/%2f", None).unwrap();
        assert_eq!(
            tls.management_api, "https://rabbit.local:15671/api",
            "TLS for AMQP means TLS for the management API"
        );
        let target = Target::new(
            "amqp://u:p@h/my%2Fvhost",
            Some("https://mgmt.example:443/api/"),
        )
        .unwrap();
        assert_eq!(target.vhost, "my/vhost");
        assert_eq!(target.management_api, "https://mgmt.example:443/api");
        assert_eq!(
            (target.username.as_str(), target.password.as_str()),
            ("u", "p")
        );
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("amqp://guest:secret@h:5672/%2f"),
            "amqp://guest:***@h:5672/%2f"
        );
        assert_eq!(redact("amqp://h/v"), "amqp://h/v");
    }
}
