//! A replay tool in fifty lines: moves the dead letters of a queue back into it, each acked in the
//! DLQ only once its copy is confirmed, so a failure half-way loses nothing.
//!
//!     cargo run -p orderflow-broker --example replay -- demo.jobs

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use orderflow_broker::{BrokerConfig, Naming, Publisher, copies};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue = std::env::args().nth(1).ok_or("usage: replay QUEUE")?;
    let url = std::env::var("AMQP_URL").unwrap_or("amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let publisher = Publisher::new(&BrokerConfig::new(&url, "replay"))?;
    let connection =
        lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let naming = Naming::default();
    let dlq = naming.dead_letter_queue(&queue);
    // Only the letters there now: one that fails again at once is not replayed in a loop.
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let waiting = channel
        .queue_declare(dlq.as_str().into(), passive, FieldTable::default())
        .await?
        .message_count();
    let mut replayed = 0;
    for _ in 0..waiting {
        let Some(letter) = channel
            .basic_get(dlq.as_str().into(), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        let delivery = &letter.delivery;
        // Same body and properties, retry count reset, to the queue it failed in.
        let copy = copies::replay(&delivery.data, &delivery.properties, &naming, &queue);
        if let Err(err) = publisher.publish(&copy).await {
            let requeue = BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            };
            delivery.nack(requeue).await?;
            return Err(err.into());
        }
        delivery.ack(BasicAckOptions::default()).await?;
        replayed += 1;
    }
    println!("replayed {replayed} of {waiting} from {dlq}");
    publisher.close().await;
    connection.close(200, "done".into()).await?;
    Ok(())
}
