//! How a body becomes the event a handler takes: JSON by default ([`Json`]), the bytes as they
//! came ([`Raw`]), or any format through [`Decode`] (Protobuf with `prost`, say). A body that does
//! not decode is dead-lettered as `malformed`, byte for byte.

use crate::handler::BoxError;
use serde::de::DeserializeOwned;

/// Decodes message bodies into `E`.
pub trait Decode<E>: Send + Sync + 'static {
    /// The event in `body`, or why it is not one (the dead letter's `error`).
    ///
    /// # Errors
    /// When `body` is not an `E`.
    fn decode(&self, body: &[u8]) -> Result<E, BoxError>;
}

/// JSON through `serde` (what [`ConsumerSpec::new`](crate::ConsumerSpec::new) uses).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<E: DeserializeOwned> Decode<E> for Json {
    fn decode(&self, body: &[u8]) -> Result<E, BoxError> {
        Ok(serde_json::from_slice(body)?)
    }
}

/// The body as it came, for handlers that read it themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Decode<Vec<u8>> for Raw {
    fn decode(&self, body: &[u8]) -> Result<Vec<u8>, BoxError> {
        Ok(body.to_vec())
    }
}

impl<E, F> Decode<E> for F
where
    F: Fn(&[u8]) -> Result<E, BoxError> + Send + Sync + 'static,
{
    fn decode(&self, body: &[u8]) -> Result<E, BoxError> {
        self(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Order {
        id: u32,
    }

    #[test]
    fn json_raw_and_a_closure_decode_and_say_why_not() {
        assert_eq!(
            Decode::<Order>::decode(&Json, br#"{"id": 7}"#).unwrap(),
            Order { id: 7 }
        );
        let refused = Decode::<Order>::decode(&Json, b"{").unwrap_err();
        assert!(refused.to_string().contains("EOF"), "{refused}");
        assert_eq!(Raw.decode(b"\x00\xff").unwrap(), b"\x00\xff");
        let utf8 =
            |body: &[u8]| -> Result<String, BoxError> { Ok(String::from_utf8(body.to_vec())?) };
        assert_eq!(utf8.decode(b"hi").unwrap(), "hi");
        assert!(utf8.decode(b"\xff").is_err());
    }
}
