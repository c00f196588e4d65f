//! TLS on both sides of a worker, each verified against a CA the test made: the broker over
//! `amqps://` (`AMQP_CA_FILE`) and PostgreSQL with `sslmode=verify-full` (`sslrootcert`).

use broker::{BrokerConfig, Publisher, Tls};
use e2e::process::{Kind, Worker, build_binaries};
use sqlx::Connection;
use std::time::Duration;
use testkit::{PrivateNode, PrivatePostgres, TestCa, eventually};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

/// `url` (a database on the private server) verified against `ca`, on the name its certificate
/// has.
fn verified(url: &str, ca: &TestCa) -> String {
    format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        url.replace("127.0.0.1", "localhost"),
        ca.certificate().display()
    )
}

#[tokio::test]
async fn a_worker_talks_tls_to_the_broker_and_to_postgres() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = TestCa::new().unwrap();
    let node = PrivateNode::start_tls(&ca).await.unwrap();
    let postgres = PrivatePostgres::start_tls(&ca).await.unwrap();
    let database = verified(&postgres.create_database("payments").await.unwrap(), &ca);
    build_binaries();
    let dir = std::env::temp_dir().join(format!("orderflow-tls-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = ca.certificate().display().to_string();
    let env = [
        ("AMQP_URL", node.amqps_url()),
        ("AMQP_CA_FILE", ca_file),
        ("DATABASE_URL", database.clone()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let worker = Worker::spawn(
        Kind::Payment,
        0,
        env.map(|(k, v)| (k.to_owned(), v)).to_vec(),
        &dir,
    );
    let http = reqwest::Client::new();
    eventually("the payment worker ready over TLS", WAIT, || async {
        let response = http.get(worker.url("/readyz")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await
    .unwrap_or_else(|err| panic!("{err}; log: {}", worker.log_tail()));

    // An order published over TLS is charged, and the charge stored over TLS.
    let tls = Tls::from_files(Some(&ca.certificate()), None, None).unwrap();
    let publisher =
        Publisher::new(&BrokerConfig::new(node.amqps_url(), "tls-test").with_tls(tls)).unwrap();
    let order_id = Uuid::new_v4();
    let event = e2e::order_created(order_id, "SKU-1", 2, 1250, "tok_visa");
    publisher.publish_event(&event).await.unwrap();
    let url = worker.url(&format!("/payments/{order_id}"));
    let payment = eventually("charged", WAIT, || async {
        let payment: serde_json::Value = http.get(&url).send().await.ok()?.json().await.ok()?;
        (payment["status"] == "charged").then_some(payment)
    })
    .await
    .unwrap_or_else(|err| panic!("{err}; log: {}", worker.log_tail()));
    assert_eq!(payment["charged_cents"], 2500);

    let mut conn = sqlx::PgConnection::connect(&database).await.unwrap();
    let (tls_sessions,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE ssl AND datname = 'payments' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(tls_sessions > 0, "the worker's store connections use TLS");
    let (plain,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE NOT ssl AND datname = 'payments'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(plain, 0, "and none is plain");
    publisher.close().await;
    drop(worker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_server_not_signed_by_a_trusted_ca_is_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = TestCa::new().unwrap();
    let node = PrivateNode::start_tls(&ca).await.unwrap();
    let refused = broker::connect(&node.amqps_url(), &Tls::default(), "tls-test", "probe").await;
    let err = refused.expect_err("the test CA is trusted nowhere");
    assert!(
        format!("{err:?}").contains("UnknownIssuer"),
        "refused for its certificate: {err:?}"
    );
    let trusted = Tls::from_files(Some(&ca.certificate()), None, None).unwrap();
    let accepted = broker::connect(&node.amqps_url(), &trusted, "tls-test", "probe")
        .await
        .unwrap();
    let _ = accepted.close(200, "done".into()).await;

    let postgres = PrivatePostgres::start_tls(&ca).await.unwrap();
    let url = postgres.url("postgres").replace("127.0.0.1", "localhost");
    let unverified = sqlx::PgConnection::connect(&format!("{url}?sslmode=verify-full")).await;
    assert!(unverified.is_err(), "verify-full without the CA is refused");
    let verified = sqlx::PgConnection::connect(&verified(&postgres.url("postgres"), &ca)).await;
    verified.unwrap().close().await.unwrap();
}
