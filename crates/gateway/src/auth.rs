//! Who is calling: an API key (`X-Api-Key`, looked up by its SHA-256, never stored in clear) or a
//! JWT bearer token (HS256 or RS256; issuer, audience and expiry checked), and what it may do.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// May create and cancel orders.
pub const ORDERS_WRITE: &str = "orders:write";
/// May read orders.
pub const ORDERS_READ: &str = "orders:read";
/// May read stock.
pub const STOCK_READ: &str = "stock:read";
/// A JWT scope that lifts the customer restriction (an operator or a back office).
pub const ADMIN: &str = "admin";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's name or the token's subject: what rate limits and logs key on.
    pub name: String,
    pub scopes: Vec<String>,
    /// The customer it acts for: it sees and changes only that customer's orders. `None` for a
    /// service key or an admin token.
    pub customer_id: Option<String>,
}

impl Principal {
    /// Whether it holds `scope`.
    #[must_use]
    pub fn may(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| held == scope)
    }
}

/// One entry of `API_KEYS` / `API_KEYS_FILE`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub name: String,
    /// Hex SHA-256 of the key (`gateway hash-key <key>` prints it).
    pub sha256: String,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
}

/// The hex SHA-256 of `key`, as `API_KEYS` stores it.
#[must_use]
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The JWT settings: at least one key, and the issuer and audience every token must name.
#[derive(Clone)]
pub struct JwtSettings {
    pub hs256_secret: Option<String>,
    pub rs256_public_pem: Option<Vec<u8>>,
    pub issuer: String,
    pub audience: String,
}

#[derive(Clone)]
struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

/// Every way in.
#[derive(Clone, Default)]
pub struct Authenticator {
    keys: HashMap<String, KeyEntry>,
    verifiers: Vec<(Algorithm, Verifier)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.keys.len())
            .field(
                "jwt_algorithms",
                &self.verifiers.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why a credential was refused (said to the client as a 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("send an API key (X-Api-Key) or a bearer token (Authorization: Bearer)")]
    Missing,
    #[error("unknown API key")]
    UnknownKey,
    #[error("invalid bearer token: {0}")]
    BadToken(String),
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: String,
}

impl Authenticator {
    /// Keys from `entries`; JWTs when `jwt` is set.
    ///
    /// # Errors
    /// A malformed hash, two entries with one hash, or an unreadable RS256 key.
    pub fn new(entries: Vec<KeyEntry>, jwt: Option<JwtSettings>) -> anyhow::Result<Self> {
        let mut keys = HashMap::new();
        for entry in entries {
            let hash = entry.sha256.to_ascii_lowercase();
            anyhow::ensure!(
                hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "API key {}: sha256 must be 64 hex digits",
                entry.name
            );
            let name = entry.name.clone();
            anyhow::ensure!(
                keys.insert(hash, entry).is_none(),
                "API key {name}: another entry has the same sha256"
            );
        }
        let mut verifiers = Vec::new();
        if let Some(jwt) = jwt {
            let validation = |algorithm| {
                let mut validation = Validation::new(algorithm);
                validation.set_issuer(&[&jwt.issuer]);
                validation.set_audience(&[&jwt.audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.leeway = 30;
                validation
            };
            if let Some(secret) = &jwt.hs256_secret {
                anyhow::ensure!(
                    secret.len() >= 32,
                    "JWT_HS256_SECRET must be at least 32 bytes"
                );
                let key = DecodingKey::from_secret(secret.as_bytes());
                let verifier = Verifier {
                    key,
                    validation: validation(Algorithm::HS256),
                };
                verifiers.push((Algorithm::HS256, verifier));
            }
            if let Some(pem) = &jwt.rs256_public_pem {
                let key = DecodingKey::from_rsa_pem(pem)
                    .map_err(|err| anyhow::anyhow!("JWT RS256 public key: {err}"))?;
                let verifier = Verifier {
                    key,
                    validation: validation(Algorithm::RS256),
                };
                verifiers.push((Algorithm::RS256, verifier));
            }
            anyhow::ensure!(
                !verifiers.is_empty(),
                "JWT_ISSUER is set: give JWT_HS256_SECRET or JWT_RS256_PUBLIC_KEY_FILE too"
            );
        }
        Ok(Self { keys, verifiers })
    }

    /// The caller of a request with these headers.
    ///
    /// # Errors
    /// No credential, an unknown key, or a token that fails verification.
    pub fn authenticate(&self, headers: &axum::http::HeaderMap) -> Result<Principal, Refusal> {
        if let Some(key) = headers.get("x-api-key") {
            let key = key.to_str().map_err(|_| Refusal::UnknownKey)?;
            let entry = self.keys.get(&hash_key(key)).ok_or(Refusal::UnknownKey)?;
            return Ok(Principal {
                name: entry.name.clone(),
                scopes: entry.scopes.clone(),
                customer_id: entry.customer_id.clone(),
            });
        }
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(Refusal::Missing)?;
        self.verify(token.trim())
    }

    fn verify(&self, token: &str) -> Result<Principal, Refusal> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|err| Refusal::BadToken(err.to_string()))?;
        let (_, verifier) = self
            .verifiers
            .iter()
            .find(|(algorithm, _)| *algorithm == header.alg)
            .ok_or_else(|| {
                Refusal::BadToken(format!("{:?} tokens are not accepted", header.alg))
            })?;
        let claims = jsonwebtoken::decode::<Claims>(token, &verifier.key, &verifier.validation)
            .map_err(|err| Refusal::BadToken(err.to_string()))?
            .claims;
        let scopes: Vec<String> = claims.scope.split_whitespace().map(str::to_owned).collect();
        let customer_id = (!scopes.iter().any(|s| s == ADMIN)).then(|| claims.sub.clone());
        Ok(Principal {
            name: claims.sub,
            scopes,
            customer_id,
        })
    }
}

#[cfg(test)]
mod tests;
