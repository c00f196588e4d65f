//! The chain ceiling: the broker's throughput for a bare 3-hop chain of the workers' kind —
//! publish (pipelined confirms) → consume, republish to a fanout with a confirm, ack → two
//! consumers ack — on quorum queues with the workers' prefetch.

use crate::bare::{self, Finish};
use futures_util::StreamExt;
use lapin::ExchangeKind;
use lapin::options::{
    BasicAckOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Messages per second through the chain for `n` messages of `body`, and the CPU ms per
/// message of the broker and of this process (the chain's client).
///
/// # Errors
/// When the broker refuses a declaration or the chain does not finish in 10 minutes.
pub async fn ceiling(
    url: &str,
    n: usize,
    prefetch: u16,
    body: &[u8],
) -> anyhow::Result<(f64, BTreeMap<String, f64>)> {
    let tag = Uuid::new_v4().simple().to_string();
    let (input, fanout) = (format!("bench.{tag}.in"), format!("bench.{tag}.fanout"));
    let outputs = [format!("bench.{tag}.out.1"), format!("bench.{tag}.out.2")];
    let conn = broker::connect(url, &broker::Tls::default(), "orderflow-bench", "ceiling").await?;
    let setup = conn.create_channel().await?;
    let mut quorum = FieldTable::default();
    quorum.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    setup
        .exchange_declare(
            fanout.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    for queue in std::iter::once(&input).chain(&outputs) {
        setup
            .queue_declare(queue.as_str().into(), durable, quorum.clone())
            .await?;
    }
    for queue in &outputs {
        setup
            .queue_bind(
                queue.as_str().into(),
                fanout.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let props = bare::properties();

    // The two sinks.
    let finish = Finish::new(2 * n);
    for queue in &outputs {
        let (channel, mut consumer) = bare::consume(&conn, queue, prefetch).await?;
        let finish = finish.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                finish.one();
            }
            drop(channel);
        });
    }
    // The relay: consume, republish with a confirm, then ack.
    let (relay_in, mut relay) = bare::consume(&conn, &input, prefetch).await?;
    let relay_out = bare::confirm_channel(&conn).await?;
    let relay_fanout = fanout.clone();
    let relay_props = props.clone();
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = relay.next().await {
            let out = relay_out.clone();
            let (exchange, props) = (relay_fanout.clone(), relay_props.clone());
            tokio::spawn(async move {
                let confirm = out
                    .basic_publish(
                        exchange.as_str().into(),
                        "".into(),
                        BasicPublishOptions::default(),
                        &delivery.data,
                        props,
                    )
                    .await;
                if let Ok(confirm) = confirm
                    && confirm.await.is_ok()
                {
                    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                }
            });
        }
        drop(relay_in);
    });

    let publish = bare::confirm_channel(&conn).await?;
    let target = bare::Target {
        exchange: "",
        routing_key: &input,
        body,
    };
    let measured = bare::measure(&publish, n, target, || props.clone(), &finish).await;
    for queue in std::iter::once(&input).chain(&outputs) {
        let _ = setup
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = setup
        .exchange_delete(fanout.as_str().into(), Default::default())
        .await;
    let _ = conn.close(200, "done".into()).await;
    measured
}
