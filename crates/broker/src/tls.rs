//! TLS beyond the `amqps://` of a URL: a private CA to verify the broker's certificate against
//! (without one, the system's roots), and a client certificate to present (for RabbitMQ's
//! `EXTERNAL` mechanism, with `?auth_mechanism=external` in the URL). Plain `amqp://` URLs ignore
//! both.

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use std::path::Path;

/// The PEM a connection's TLS handshake uses, read once at startup.
#[derive(Clone, Default)]
pub struct Tls {
    /// Certificates to trust, besides the system's.
    ca_pem: Option<String>,
    /// The client certificate chain and its private key.
    client: Option<(String, String)>,
}

impl std::fmt::Debug for Tls {
    /// Never prints the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("private_ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.client.is_some())
            .finish()
    }
}

/// A TLS file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {reason}")]
pub struct TlsFileError {
    what: &'static str,
    path: String,
    reason: String,
}

impl Tls {
    /// Reads the CA bundle and the client certificate and key (both or neither), each PEM.
    ///
    /// # Errors
    /// When a file cannot be read, holds no PEM block, or only one of certificate and key is set.
    pub fn from_files(
        ca: Option<&Path>,
        client_certificate: Option<&Path>,
        client_key: Option<&Path>,
    ) -> Result<Self, TlsFileError> {
        let ca_pem = ca.map(|path| read_pem("CA file", path)).transpose()?;
        let client = match (client_certificate, client_key) {
            (Some(cert), Some(key)) => Some((
                read_pem("client certificate", cert)?,
                read_pem("client key", key)?,
            )),
            (None, None) => None,
            (Some(path), None) | (None, Some(path)) => {
                return Err(TlsFileError {
                    what: "client certificate and key go together; only one is set:",
                    path: path.display().to_string(),
                    reason: "set both or neither".to_owned(),
                });
            }
        };
        Ok(Self { ca_pem, client })
    }

    /// The private CA bundle, for other TLS clients of the same broker (its management API).
    #[must_use]
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// lapin's configuration for one handshake.
    pub(crate) fn config(&self) -> OwnedTLSConfig {
        OwnedTLSConfig {
            identity: self.client.as_ref().map(|(pem, key)| OwnedIdentity::PKCS8 {
                pem: pem.clone().into_bytes(),
                key: key.clone().into_bytes(),
            }),
            cert_chain: self.ca_pem.clone(),
        }
    }
}

fn read_pem(what: &'static str, path: &Path) -> Result<String, TlsFileError> {
    let error = |reason: String| TlsFileError {
        what,
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|err| error(err.to_string()))?;
    match String::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN ") => Ok(text),
        _ => Err(error(
            "no PEM block in it (DER? `openssl x509 -inform der` converts it)".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_checked_and_the_key_is_never_printed() {
        let dir = std::env::temp_dir().join(format!("orderflow-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("ca.pem");
        let key = dir.join("client.key");
        let der = dir.join("ca.der");
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::write(&der, [0x30, 0x82]).unwrap();

        let tls = Tls::from_files(Some(&pem), Some(&pem), Some(&key)).unwrap();
        assert!(tls.config().cert_chain.is_some() && tls.config().identity.is_some());
        assert!(!format!("{tls:?}").contains("SECRET"));
        let not_pem = Tls::from_files(Some(&der), None, None).unwrap_err();
        assert!(not_pem.to_string().contains("no PEM block"), "{not_pem}");
        let missing = Tls::from_files(Some(&dir.join("nope.pem")), None, None).unwrap_err();
        assert!(missing.to_string().contains("nope.pem"), "{missing}");
        let half = Tls::from_files(None, Some(&pem), None).unwrap_err();
        assert!(half.to_string().contains("set both or neither"), "{half}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
