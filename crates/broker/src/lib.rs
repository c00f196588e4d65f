#![doc = include_str!("../README.md")]

mod acks;
pub mod backoff;
mod codec;
pub mod connection;
pub mod consumer;
pub mod copies;
pub mod error;
pub mod event;
pub mod failure;
pub mod handler;
pub mod headers;
pub mod message;
pub mod metrics;
pub mod publish;
pub mod publisher;
#[cfg(feature = "test-util")]
pub mod recording;
pub mod retry;
pub mod runtime;
mod settle;
pub mod tls;
pub mod topology;
pub mod trace;
pub mod trust;
pub mod version;

pub use codec::{Decode, Json, Raw};
pub use connection::{BrokerConfig, Readiness};
pub use consumer::ConsumerSpec;
pub use error::{BrokerError, TopologyError};
pub use event::Event;
pub use failure::{FailedBy, Failure};
pub use handler::{BoxError, Handler, HandlerError};
pub use headers::DeadLetterReason;
pub use lapin;
pub use message::{Message, Meta, Outgoing};
pub use publish::Publish;
pub use publisher::Publisher;
#[cfg(feature = "test-util")]
pub use recording::RecordingPublisher;
pub use retry::{Decision, Outcome, RetryPolicy, decide};
pub use runtime::Runtime;
pub use tls::{Tls, TlsFileError};
pub use topology::{ExchangeType, QueueSpec, QueueType, Topology};
pub use trust::Trust;
pub use version::BrokerVersion;
