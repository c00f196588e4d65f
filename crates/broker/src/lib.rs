#![doc = include_str!("../README.md")]
// Every item has one public path: types and the functions that go with them at the root, the
// name constants and free functions of one concern in a public module (`headers`, `topology`,
// `trace`, `copies`, `metrics`, `backoff`).
#![warn(unreachable_pub)]

mod acks;
pub mod backoff;
mod codec;
mod connection;
mod consumer;
pub mod copies;
mod error;
mod event;
mod failure;
mod handler;
pub mod headers;
mod message;
pub mod metrics;
mod naming;
mod publish;
mod publisher;
#[cfg(feature = "test-util")]
mod recording;
mod retry;
mod runtime;
mod settle;
mod tls;
pub mod topology;
pub mod trace;
mod trust;
mod version;

pub use codec::{Decode, Json, Raw};
pub use connection::{
    BrokerConfig, DEFAULT_FRAME_MAX, Readiness, connect, login_user, redact as redact_url,
};
pub use consumer::{ConsumerSpec, OutageCheck};
pub use error::{BrokerError, TopologyError};
pub use event::Event;
pub use failure::{FailedBy, Failure, fingerprint};
pub use handler::{BoxError, Handler, HandlerError};
pub use headers::DeadLetterReason;
pub use message::{Message, Meta, Outgoing, text_headers};
pub use naming::Naming;
pub use publish::Publish;
pub use publisher::Publisher;
#[cfg(feature = "test-util")]
pub use recording::RecordingPublisher;
pub use retry::{Decision, Outcome, RetryPolicy, decide};
pub use runtime::Runtime;
pub use tls::{Tls, TlsFileError};
pub use topology::{ExchangeType, QueueSpec, QueueType, Topology};
pub use trust::Trust;
pub use version::{BrokerVersion, detect as detect_version};
