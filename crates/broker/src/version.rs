//! The broker's version, read from its `connection.start` greeting, and the behaviour that
//! differs by version: quorum queues' default delivery limit (4.0) and which negative
//! acknowledgement counts towards it (4.3).

use lapin::types::{AMQPValue, FieldTable};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A RabbitMQ release, e.g. `3.10.8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BrokerVersion {
    /// Major release.
    pub major: u32,
    /// Minor release.
    pub minor: u32,
    /// Patch release.
    pub patch: u32,
}

impl BrokerVersion {
    /// The oldest release the library is tested on; assumed when the version cannot be read.
    pub const OLDEST_SUPPORTED: Self = Self::new(3, 10, 0);

    /// A version from its parts.
    #[must_use]
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses `3.13.7`, `4.0.0-rc.1` or `4.1` (missing parts are 0).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let core = text.trim().split(['-', '+', ' ']).next()?;
        let mut parts = core.split('.').map(str::parse::<u32>);
        let major = parts.next()?.ok()?;
        let minor = parts.next().unwrap_or(Ok(0)).ok()?;
        let patch = parts.next().unwrap_or(Ok(0)).ok()?;
        Some(Self::new(major, minor, patch))
    }

    /// Since 4.0 a quorum queue declared without `x-delivery-limit` gets a limit of 20, so a
    /// queue meant to be unlimited (a DLQ, a retry tier) must say `-1`; before 4.0 absent means
    /// unlimited and `-1` is refused.
    #[must_use]
    pub fn has_default_delivery_limit(self) -> bool {
        self >= Self::new(4, 0, 0)
    }

    /// The `x-delivery-limit` that means "unlimited" on this version (`None`: leave it out).
    #[must_use]
    pub fn unlimited_deliveries(self) -> Option<i64> {
        self.has_default_delivery_limit().then_some(-1)
    }

    /// Whether `basic.nack` with requeue counts towards the delivery limit. Since 4.3 only
    /// `basic.reject` does (a nack means "not processed", not "failed"); before, every return
    /// counted. A failed delivery is therefore always returned with `basic.reject`.
    #[must_use]
    pub fn nack_counts_towards_limit(self) -> bool {
        self < Self::new(4, 3, 0)
    }
}

impl std::fmt::Display for BrokerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// How long reading the greeting may take.
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the version the broker at `url` announces, without logging in: it opens a TCP
/// connection, sends the AMQP 0-9-1 protocol header and reads `connection.start`, whose server
/// properties carry `version`. `None` for `amqps://` URLs (the greeting is behind TLS) and when
/// the broker does not answer in time.
pub async fn detect(url: &str) -> Option<BrokerVersion> {
    let uri: lapin::uri::AMQPUri = url.parse().ok()?;
    if uri.scheme != lapin::uri::AMQPScheme::AMQP {
        return None;
    }
    let address = (uri.authority.host.clone(), uri.authority.port);
    let greeting = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        stream.write_all(b"AMQP\x00\x00\x09\x01").await.ok()?;
        let mut header = [0u8; 7];
        stream.read_exact(&mut header).await.ok()?;
        let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
        let mut payload = vec![0u8; usize::try_from(size).ok()?.min(1 << 20)];
        stream.read_exact(&mut payload).await.ok()?;
        Some(payload)
    };
    let payload = tokio::time::timeout(GREETING_TIMEOUT, greeting)
        .await
        .ok()??;
    version_in_start(&payload)
}

/// The `version` server property of a `connection.start` method frame's payload.
fn version_in_start(payload: &[u8]) -> Option<BrokerVersion> {
    // class 10 (connection), method 10 (start), version-major, version-minor, server-properties.
    let properties = payload.strip_prefix(&[0, 10, 0, 10])?.get(2..)?;
    let (_, table): (_, FieldTable) = lapin::types::parsing::parse_field_table(properties).ok()?;
    match table.inner().get("version")? {
        AMQPValue::LongString(text) => {
            BrokerVersion::parse(&String::from_utf8_lossy(text.as_bytes()))
        }
        AMQPValue::ShortString(text) => BrokerVersion::parse(text.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_strings() {
        assert_eq!(
            BrokerVersion::parse("3.10.8"),
            Some(BrokerVersion::new(3, 10, 8))
        );
        assert_eq!(
            BrokerVersion::parse("4.0.0-rc.1"),
            Some(BrokerVersion::new(4, 0, 0))
        );
        assert_eq!(
            BrokerVersion::parse("4.3"),
            Some(BrokerVersion::new(4, 3, 0))
        );
        assert_eq!(BrokerVersion::parse("banana"), None);
    }

    #[test]
    fn behaviour_per_version() {
        // (version, default delivery limit, "unlimited" argument, nack counts)
        let table = [
            ("3.10.8", false, None, true),
            ("3.13.7", false, None, true),
            ("4.0.5", true, Some(-1), true),
            ("4.2.1", true, Some(-1), true),
            ("4.3.0", true, Some(-1), false),
        ];
        for (text, default_limit, unlimited, nack_counts) in table {
            let v = BrokerVersion::parse(text).unwrap();
            assert_eq!(v.has_default_delivery_limit(), default_limit, "{text}");
            assert_eq!(v.unlimited_deliveries(), unlimited, "{text}");
            assert_eq!(v.nack_counts_towards_limit(), nack_counts, "{text}");
        }
    }

    /// A field table entry `name` = long string `value`, as AMQP encodes it.
    fn entry(name: &str, value: &str) -> Vec<u8> {
        let mut bytes = vec![u8::try_from(name.len()).unwrap()];
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(b'S');
        bytes.extend_from_slice(&u32::try_from(value.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(value.as_bytes());
        bytes
    }

    #[test]
    fn reads_the_version_from_a_start_frame() {
        let entries = [entry("product", "RabbitMQ"), entry("version", "3.13.7")].concat();
        let mut payload = vec![0, 10, 0, 10, 0, 9];
        payload.extend_from_slice(&u32::try_from(entries.len()).unwrap().to_be_bytes());
        payload.extend_from_slice(&entries);
        assert_eq!(
            version_in_start(&payload),
            Some(BrokerVersion::new(3, 13, 7))
        );
        assert_eq!(version_in_start(&[0, 10, 0, 11, 0, 9]), None);
    }
}
