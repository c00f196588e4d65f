//! End-to-end support: the real worker binaries against a real broker, each test in its own
//! vhost with its own stores (SQLite files in a temp dir, or fresh PostgreSQL databases).
#![allow(missing_docs)]

pub mod metrics;
pub mod otlp;
pub mod process;

use process::{Kind, Worker};
use serde_json::{Value, json};
use service::test_store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use testkit::TestVhost;
use uuid::Uuid;

/// How to start a system.
#[derive(Debug, Clone)]
pub struct Options {
    /// Initial inventory.
    pub stock: Value,
    /// Retries before the DLQ.
    pub retry_max: u32,
    /// First retry delay.
    pub retry_initial_ms: u64,
    /// Replicas of every worker.
    pub replicas: usize,
    /// Use PostgreSQL for payment and stock (required for replicas > 1). The order worker's
    /// store is PostgreSQL too when it has replicas: SQLite serves one process.
    pub postgres: bool,
    /// Each worker logs in as its own broker user that may only publish its events and read its
    /// queues ([`least_privilege`]); the topology is applied with the CLI (`orderflow topology
    /// apply`, as the test's administrator) once every worker has said it is missing; facts are
    /// taken only from their publisher's user (`PUBLISHER_USERS`); the CLI's user is the operator.
    pub own_users: bool,
    /// The PostgreSQL server for payment and stock (a URL of any database on it, e.g. a
    /// `testkit::PrivatePostgres`'s `url("postgres")`); implies `postgres`. Default: the shared
    /// server ([`test_store::admin_url`]).
    pub postgres_server: Option<String>,
    /// Starts the gateway in front of the workers with this environment besides the upstreams'
    /// addresses (API keys, JWT settings, limits, breaker).
    pub gateway: Option<Vec<(&'static str, String)>>,
    /// Environment of every process, workers and gateway (e.g. where to export spans).
    pub env: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            stock: json!({"SKU-1": 100_000, "SKU-SCARCE": 5}),
            retry_max: 3,
            retry_initial_ms: 200,
            replicas: 1,
            postgres: false,
            own_users: false,
            postgres_server: None,
            gateway: None,
            env: Vec::new(),
        }
    }
}

/// A running orderflow: the three workers in their own vhost.
pub struct System {
    pub vhost: TestVhost,
    pub dir: PathBuf,
    /// The order workers; API calls take turns among those running ([`System::order_api`]).
    pub orders: Vec<Worker>,
    /// Counts API calls, to take turns.
    calls: AtomicUsize,
    /// With `own_users`: each worker's (AMQP URL, user name), by binary name.
    pub users: HashMap<&'static str, (String, String)>,
    pub payments: Vec<Worker>,
    pub stocks: Vec<Worker>,
    /// With `Options::gateway`.
    pub gateway: Option<Worker>,
    /// (server admin URL, database) of every database created for this system.
    databases: Vec<(String, String)>,
    http: reqwest::Client,
}

impl System {
    /// Starts every worker and waits until each is ready.
    pub async fn start(options: Options) -> System {
        process::build_binaries();
        let vhost = TestVhost::new().await;
        let dir = std::env::temp_dir().join(format!("orderflow-e2e-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let stock_file = dir.join("stock.json");
        std::fs::write(&stock_file, catalogue(&options.stock).to_string()).unwrap();
        let pg_server = options
            .postgres_server
            .clone()
            .unwrap_or_else(test_store::admin_url);
        let use_postgres = options.postgres || options.postgres_server.is_some();
        let mut databases = Vec::new();
        let mut database = |service: &str| -> String {
            if use_postgres {
                let name = format!("of_{}_{}", service, Uuid::new_v4().simple());
                databases.push((pg_server.clone(), name.clone()));
                name
            } else {
                format!("sqlite://{}/{service}.db", dir.display())
            }
        };
        let payment_db = database("payment");
        let stock_db = database("stock");
        let order_db = if use_postgres && options.replicas > 1 {
            database("order")
        } else {
            format!("sqlite://{}/order.db", dir.display())
        };
        let mut created = Vec::new();
        for name in [&payment_db, &stock_db, &order_db] {
            created.push(if name.starts_with("sqlite:") {
                name.clone()
            } else {
                test_store::create_database(&pg_server, name).await
            });
        }
        let [payment_db, stock_db, order_db]: [String; 3] = created.try_into().unwrap();
        let common = vec![
            ("AMQP_URL".to_owned(), vhost.url.clone()),
            ("RETRY_MAX".to_owned(), options.retry_max.to_string()),
            (
                "RETRY_INITIAL_MS".to_owned(),
                options.retry_initial_ms.to_string(),
            ),
            ("RETRY_MULTIPLIER".to_owned(), "2".to_owned()),
            ("STOCK_FILE".to_owned(), stock_file.display().to_string()),
            (
                "RUST_LOG".to_owned(),
                "info,orderflow_broker=debug".to_owned(),
            ),
        ];
        let shared_env: Vec<(String, String)> = options
            .env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let common = [common, shared_env].concat();
        let mut users = HashMap::new();
        let mut common = common;
        if options.own_users {
            for kind in [Kind::Order, Kind::Payment, Kind::Stock] {
                let role = kind.binary();
                users.insert(role, vhost.user(role, least_privilege(kind)).await);
            }
            let named: Vec<String> = users
                .iter()
                .map(|(role, (_, name))| format!("{role}={name}"))
                .collect();
            common.push(("PUBLISHER_USERS".to_owned(), named.join(",")));
            let operator = testkit::Endpoint::shared().await.username.clone();
            common.push(("OPERATOR_USERS".to_owned(), operator));
        }
        let with = |kind: Kind, db: &str| {
            let mut env = common.clone();
            env.push(("DATABASE_URL".to_owned(), db.to_owned()));
            if let Some((url, _)) = users.get(kind.binary()) {
                env.push(("AMQP_URL".to_owned(), url.clone()));
            }
            env
        };
        // gRPC ports are picked here, not by the workers: the order workers must know the stock
        // workers' before those start, and keep them across restarts.
        let grpc_addr = || format!("127.0.0.1:{}", testkit::port::unclaimed().unwrap());
        let stock_grpc: Vec<String> = (0..options.replicas).map(|_| grpc_addr()).collect();
        let stock_urls: Vec<String> = stock_grpc.iter().map(|a| format!("http://{a}")).collect();
        let orders = (0..options.replicas)
            .map(|i| {
                let mut env = with(Kind::Order, &order_db);
                env.push(("GRPC_ADDR".to_owned(), grpc_addr()));
                env.push(("STOCK_GRPC_URL".to_owned(), stock_urls.join(",")));
                Worker::spawn(Kind::Order, i, env, &dir)
            })
            .collect();
        let payments = (0..options.replicas)
            .map(|i| Worker::spawn(Kind::Payment, i, with(Kind::Payment, &payment_db), &dir))
            .collect();
        let stocks = stock_grpc
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let mut env = with(Kind::Stock, &stock_db);
                env.push(("GRPC_ADDR".to_owned(), addr.clone()));
                Worker::spawn(Kind::Stock, i, env, &dir)
            })
            .collect();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let system = System {
            vhost,
            dir,
            orders,
            calls: AtomicUsize::new(0),
            users,
            payments,
            stocks,
            gateway: None,
            databases,
            http: reqwest::Client::new(),
        };
        if options.own_users {
            system.apply_topology_once_missed(&options).await;
        }
        for worker in system.workers() {
            system.wait_ready(worker).await;
        }
        let mut system = system;
        if let Some(env) = options.gateway {
            let dir = system.dir.clone();
            let env = [env, options.env.clone()].concat();
            system.start_gateway(env, &dir).await;
        }
        system
    }

    /// Starts the gateway in front of the running workers, and waits until it is ready.
    async fn start_gateway(&mut self, env: Vec<(&'static str, String)>, dir: &std::path::Path) {
        let urls = |workers: &[Worker]| {
            let urls: Vec<String> = workers.iter().map(Worker::grpc_url).collect();
            urls.join(",")
        };
        let mut all = vec![
            ("ORDER_GRPC_URL".to_owned(), urls(&self.orders)),
            ("STOCK_GRPC_URL".to_owned(), urls(&self.stocks)),
            ("PAYMENT_HTTP_URL".to_owned(), self.payments[0].url("")),
            ("STOCK_HTTP_URL".to_owned(), self.stocks[0].url("")),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ];
        all.extend(env.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let gateway = Worker::spawn(Kind::Gateway, 0, all, dir);
        self.wait_ready(&gateway).await;
        self.gateway = Some(gateway);
    }

    /// Waits until every worker has logged that it may not declare the topology and names what
    /// is missing, then applies it with the CLI as the administrator.
    async fn apply_topology_once_missed(&self, options: &Options) {
        for worker in self.workers() {
            testkit::eventually(
                &format!("{} saying the topology is missing", worker.name()),
                Duration::from_secs(60),
                || async {
                    let log = worker.log();
                    (log.contains("the topology is not declared, and this user may not declare it")
                        && log.contains("run `orderflow topology apply`"))
                    .then_some(())
                },
            )
            .await
            .unwrap_or_else(|err| panic!("{err}; log: {}", worker.log_tail()));
        }
        let output = tokio::process::Command::new(process::bin_dir().join("orderflow"))
            .args(["--amqp-url", &self.vhost.url, "topology", "apply"])
            .env("RETRY_MAX", options.retry_max.to_string())
            .env("RETRY_INITIAL_MS", options.retry_initial_ms.to_string())
            .env("RETRY_MULTIPLIER", "2")
            .output()
            .await
            .expect("running orderflow topology apply");
        assert!(
            output.status.success(),
            "orderflow topology apply: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The gateway.
    ///
    /// # Panics
    /// When the system runs without one.
    pub fn gateway(&self) -> &Worker {
        self.gateway
            .as_ref()
            .expect("started with Options::gateway")
    }

    fn workers(&self) -> impl Iterator<Item = &Worker> {
        self.orders.iter().chain(&self.payments).chain(&self.stocks)
    }

    /// Waits until `/readyz` of `worker` says ready.
    pub async fn wait_ready(&self, worker: &Worker) {
        let url = worker.url("/readyz");
        let http = self.http.clone();
        testkit::eventually(
            &format!("{} ready", worker.name()),
            Duration::from_secs(60),
            || {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    let response = http.get(&url).send().await.ok()?;
                    response.status().is_success().then_some(())
                }
            },
        )
        .await
        .unwrap_or_else(|err| panic!("{err}; log: {}", worker.log_tail()));
    }

    /// The order worker the next API call goes to: the running ones take turns (replicas share
    /// their store).
    ///
    /// # Panics
    /// When the test has stopped every order worker.
    pub fn order_api(&self) -> &Worker {
        let running: Vec<_> = self.orders.iter().filter(|w| w.running()).collect();
        assert!(!running.is_empty(), "no order worker is running");
        running[self.calls.fetch_add(1, Ordering::Relaxed) % running.len()]
    }

    /// `POST /orders` with any body and headers.
    pub async fn post_order(
        &self,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.order_api().url("/orders"))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("order API answers")
    }

    /// Creates an order of `quantity` × `sku` (the catalogue's price) with `token`; returns its id.
    pub async fn create_order(&self, token: Option<&str>, sku: &str, quantity: u32) -> Uuid {
        let body = json!({
            "customer_id": "c-42",
            "items": [{"sku": sku, "quantity": quantity}],
            "payment_token": token,
        });
        let response = self.post_order(body.to_string(), &[]).await;
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
        let created: Value = response.json().await.unwrap();
        created["order_id"].as_str().unwrap().parse().unwrap()
    }

    /// Publishes an `order.created` of `quantity` × `sku` at [`UNIT_PRICE_CENTS`] as a system
    /// outside the API does (no pricing call: it works while the stock worker is down); returns
    /// the order's id once the broker confirmed it.
    pub async fn publish_order(&self, token: &str, sku: &str, quantity: u32) -> Uuid {
        let id = Uuid::new_v4();
        let event = order_created(id, sku, quantity, UNIT_PRICE_CENTS, token);
        let config = broker::BrokerConfig::new(&self.vhost.url, "e2e");
        let publisher = broker::Publisher::new(&config).unwrap();
        contracts::publish(&publisher, &event).await.unwrap();
        publisher.close().await;
        id
    }

    /// Creates `n` orders, `parallel` at a time.
    pub async fn create_orders(&self, n: usize, token: Option<&str>, sku: &str) -> Vec<Uuid> {
        let mut ids = Vec::with_capacity(n);
        for wave in (0..n).collect::<Vec<_>>().chunks(20) {
            let creates = wave.iter().map(|_| self.create_order(token, sku, 1));
            ids.extend(futures_util::future::join_all(creates).await);
        }
        ids
    }

    /// `GET` a JSON resource of `worker`; `None` on 404.
    pub async fn get(&self, worker: &Worker, path: &str) -> Option<Value> {
        let response = self.http.get(worker.url(path)).send().await.ok()?;
        if response.status() == 404 {
            return None;
        }
        response.json().await.ok()
    }

    /// The order as the API shows it.
    pub async fn order(&self, id: Uuid) -> Value {
        self.get(self.order_api(), &format!("/orders/{id}"))
            .await
            .expect("order exists")
    }

    /// The payment record of an order (from the first payment worker; they share the store).
    pub async fn payment(&self, id: Uuid) -> Option<Value> {
        self.get(&self.payments[0], &format!("/payments/{id}"))
            .await
    }

    /// Stock counts of a SKU.
    pub async fn stock(&self, sku: &str) -> Value {
        self.get(&self.stocks[0], &format!("/stock/{sku}"))
            .await
            .expect("known SKU")
    }

    /// Waits until every order is `completed` or `cancelled`; returns them.
    pub async fn wait_terminal(&self, ids: &[Uuid], timeout: Duration) -> HashMap<Uuid, Value> {
        let deadline = std::time::Instant::now() + timeout;
        let mut done = HashMap::new();
        loop {
            for id in ids
                .iter()
                .filter(|id| !done.contains_key(*id))
                .copied()
                .collect::<Vec<_>>()
            {
                let order = self.order(id).await;
                if order["status"] != "pending" {
                    done.insert(id, order);
                }
            }
            if done.len() == ids.len() {
                return done;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {} orders still pending after {timeout:?}; logs in {}",
                ids.len() - done.len(),
                ids.len(),
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs the admin CLI `orderflow` against this system's vhost; returns (success, stdout).
    pub async fn cli(&self, args: &[&str]) -> (bool, String) {
        let output = tokio::process::Command::new(process::bin_dir().join("orderflow"))
            .arg("--amqp-url")
            .arg(&self.vhost.url)
            .args(args)
            .output()
            .await
            .expect("running orderflow");
        if !output.status.success() {
            eprintln!(
                "orderflow {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }

    /// The order worker's SQLite store, for asserting what was (not) stored.
    pub async fn order_count(&self) -> i64 {
        let url = format!("sqlite://{}/order.db", self.dir.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM orders")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        count.0
    }
}

impl Drop for System {
    fn drop(&mut self) {
        for worker in self
            .orders
            .iter_mut()
            .chain(&mut self.payments)
            .chain(&mut self.stocks)
        {
            worker.kill();
        }
        for (server, database) in &self.databases {
            test_store::drop_database_blocking(server, database);
        }
        if std::thread::panicking() {
            eprintln!("worker logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The price every SKU of a test's stock has, unless the test lists it in full.
pub const UNIT_PRICE_CENTS: u64 = 1250;

/// `STOCK_FILE` for `stock`: a SKU given as a number of units is listed at [`UNIT_PRICE_CENTS`]
/// USD, named after itself; one given as an object is listed as it is.
pub fn catalogue(stock: &Value) -> Value {
    let listings = stock
        .as_object()
        .expect("stock is an object of SKUs")
        .iter()
        .map(|(sku, listing)| {
            let listing = match listing.as_u64() {
                Some(units) => json!({"name": sku, "price_cents": UNIT_PRICE_CENTS,
                    "currency": "USD", "units": units}),
                None => listing.clone(),
            };
            (sku.clone(), listing)
        })
        .collect();
    Value::Object(listings)
}

/// What worker `kind`'s own broker user may do: configure nothing, write to the exchanges it
/// publishes to, the default exchange (its retry copies) and the dead-letter exchange, read only
/// its own queues.
#[must_use]
pub fn least_privilege(kind: Kind) -> testkit::Grants<'static> {
    let (write, read) = match kind {
        Kind::Order => (r"^(orders|amq\.default|orders\.dlx)$", r"^order\.[a-z-]+$"),
        Kind::Payment => (
            r"^(orders|order\.paid|amq\.default|orders\.dlx)$",
            r"^payment\.[a-z-]+$",
        ),
        Kind::Stock => (r"^(orders|amq\.default|orders\.dlx)$", r"^stock\.[a-z-]+$"),
        Kind::Gateway => panic!("the gateway does not use the broker"),
    };
    testkit::Grants {
        configure: "^$",
        write,
        read,
    }
}

/// An `order.created` of one line for order `order_id`, as a system outside the API publishes it.
pub fn order_created(
    order_id: Uuid,
    sku: &str,
    quantity: u32,
    unit_price_cents: u64,
    payment_token: &str,
) -> contracts::OrderCreated {
    contracts::OrderCreated {
        order_id,
        customer_id: "c-outside".into(),
        items: vec![contracts::LineItem {
            sku: sku.into(),
            quantity,
            unit_price_cents,
        }],
        total_cents: u64::from(quantity) * unit_price_cents,
        currency: "EUR".into(),
        payment_token: Some(payment_token.into()),
        created_at: time::OffsetDateTime::now_utc(),
    }
}
