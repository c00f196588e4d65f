//! Where the test broker is: `AMQP_URL`, the local default, or a container.

use anyhow::{Context, bail};
use lapin::uri::AMQPUri;
use std::time::Duration;
use tokio::sync::OnceCell;

/// The default broker, as `docs/design.md` §4 names it.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A reachable broker: its AMQP address and its management API.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `amqp://user:pass@host:port` without a vhost.
    pub amqp_base: String,
    /// `http://host:port/api`.
    pub management_api: String,
    /// Login for both.
    pub username: String,
    /// Password for both.
    pub password: String,
}

static SHARED: OnceCell<Endpoint> = OnceCell::const_new();
static CONTAINER: OnceCell<
    testcontainers_modules::testcontainers::ContainerAsync<
        testcontainers_modules::rabbitmq::RabbitMq,
    >,
> = OnceCell::const_new();

impl Endpoint {
    /// The broker for this test process, found once.
    ///
    /// # Panics
    /// When there is no broker and no Docker engine, with instructions.
    pub async fn shared() -> &'static Endpoint {
        SHARED
            .get_or_try_init(Self::discover)
            .await
            .unwrap_or_else(|err| panic!("{err:#}"))
    }

    async fn discover() -> anyhow::Result<Endpoint> {
        if let Ok(url) = std::env::var("AMQP_URL") {
            let endpoint = Self::from_url(&url, std::env::var("RABBITMQ_MANAGEMENT_URL").ok())?;
            endpoint
                .check()
                .await
                .with_context(|| format!("AMQP_URL={url} names a broker that does not answer"))?;
            return Ok(endpoint);
        }
        let local = Self::from_url(
            DEFAULT_AMQP_URL,
            std::env::var("RABBITMQ_MANAGEMENT_URL").ok(),
        )?;
        let why = match local.check().await {
            Ok(()) => return Ok(local),
            Err(err) => err,
        };
        if docker_available() {
            return Self::container().await;
        }
        bail!(
            "no RabbitMQ broker for the tests: at {DEFAULT_AMQP_URL}, {why:#}; and there is no \
             Docker engine for a container.\nStart one with `rabbitmq-server -detached && \
             rabbitmq-plugins enable rabbitmq_management` (or `./deploy/run.sh`), or set AMQP_URL \
             (and RABBITMQ_MANAGEMENT_URL if the management API is not on port 15672)."
        )
    }

    /// An endpoint from an AMQP URL; the management API defaults to the same host, port 15672.
    ///
    /// # Errors
    /// When the URL does not parse.
    pub fn from_url(url: &str, management: Option<String>) -> anyhow::Result<Endpoint> {
        let uri: AMQPUri = url
            .parse()
            .map_err(|err| anyhow::anyhow!("bad AMQP URL {url}: {err}"))?;
        let scheme = if url.starts_with("amqps") {
            "amqps"
        } else {
            "amqp"
        };
        let auth = &uri.authority;
        let (username, password) = (
            auth.userinfo.username.clone(),
            auth.userinfo.password.clone(),
        );
        let amqp_base = format!(
            "{scheme}://{username}:{password}@{}:{}",
            auth.host, auth.port
        );
        let management_api = management
            .map(|m| format!("{}/api", m.trim_end_matches('/').trim_end_matches("/api")))
            .unwrap_or_else(|| format!("http://{}:15672/api", auth.host));
        Ok(Endpoint {
            amqp_base,
            management_api,
            username,
            password,
        })
    }

    /// The AMQP URL of `vhost`.
    #[must_use]
    pub fn url_for(&self, vhost: &str) -> String {
        format!("{}/{}", self.amqp_base, vhost.replace('/', "%2f"))
    }

    /// A management API client.
    ///
    /// # Panics
    /// When the management URL is not http(s).
    #[must_use]
    pub fn management(&self) -> Management {
        // One TLS stack (rustls) with one crypto provider (ring) across the workspace.
        let _ = rustls::crypto::ring::default_provider().install_default();
        rabbitmq_http_client::api::ClientBuilder::new()
            .with_endpoint(self.management_api.clone())
            .with_basic_auth_credentials(self.username.clone(), self.password.clone())
            .build()
            .expect("management URL is http(s)")
    }

    async fn check(&self) -> anyhow::Result<()> {
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            lapin::Connection::connect(&self.url_for("/"), lapin::ConnectionProperties::default()),
        )
        .await
        .context("broker did not answer within 5 s")??;
        let _ = conn.close(200, "probe".into()).await;
        self.management()
            .list_vhosts()
            .await
            .with_context(|| format!("the management API at {} does not answer; run `rabbitmq-plugins enable rabbitmq_management`", self.management_api))?;
        Ok(())
    }

    async fn container() -> anyhow::Result<Endpoint> {
        use testcontainers_modules::testcontainers::runners::AsyncRunner;
        let container = CONTAINER
            .get_or_try_init(|| async {
                testcontainers_modules::rabbitmq::RabbitMq::default()
                    .start()
                    .await
                    .context("starting a RabbitMQ container")
            })
            .await?;
        let host = container.get_host().await?.to_string();
        let amqp = container.get_host_port_ipv4(5672).await?;
        let http = container.get_host_port_ipv4(15672).await?;
        Self::from_url(
            &format!("amqp://guest:guest@{host}:{amqp}/%2f"),
            Some(format!("http://{host}:{http}")),
        )
    }
}

/// The management API client type.
pub type Management = rabbitmq_http_client::api::Client<String, String, String>;

fn docker_available() -> bool {
    std::env::var_os("DOCKER_HOST").is_some()
        || std::path::Path::new("/var/run/docker.sock").exists()
}
