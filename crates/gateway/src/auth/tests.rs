//! API keys and JWTs: who each credential is, and every way one is refused.

use super::*;
use axum::http::HeaderMap;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

fn jwt() -> JwtSettings {
    JwtSettings {
        hs256_secret: Some(SECRET.to_owned()),
        rs256_public_pem: None,
        issuer: "https://issuer.test".to_owned(),
        audience: "orderflow".to_owned(),
    }
}

fn authenticator(jwt: Option<JwtSettings>) -> Authenticator {
    let keys = vec![
        KeyEntry {
            name: "shop".into(),
            sha256: hash_key("k-shop"),
            scopes: vec![ORDERS_WRITE.into(), ORDERS_READ.into()],
            customer_id: None,
        },
        KeyEntry {
            name: "alice".into(),
            sha256: hash_key("k-alice"),
            scopes: vec![ORDERS_READ.into()],
            customer_id: Some("c-alice".into()),
        },
    ];
    Authenticator::new(keys, jwt).unwrap()
}

fn headers(name: &str, value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
        value.parse().unwrap(),
    );
    headers
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(algorithm: Algorithm, key: &EncodingKey, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).unwrap()
}

fn good_claims() -> serde_json::Value {
    json!({"sub": "c-bob", "scope": "orders:read orders:write", "iss": "https://issuer.test",
           "aud": "orderflow", "exp": now() + 600})
}

#[test]
fn a_known_key_is_its_principal_and_an_unknown_one_is_refused() {
    let auth = authenticator(None);
    let shop = auth.authenticate(&headers("x-api-key", "k-shop")).unwrap();
    assert_eq!(
        (shop.name.as_str(), shop.customer_id.as_deref()),
        ("shop", None)
    );
    assert!(shop.may(ORDERS_WRITE));
    let alice = auth.authenticate(&headers("x-api-key", "k-alice")).unwrap();
    assert_eq!(alice.customer_id.as_deref(), Some("c-alice"));
    assert!(!alice.may(ORDERS_WRITE));
    assert_eq!(
        auth.authenticate(&headers("x-api-key", "k-nobody")),
        Err(Refusal::UnknownKey)
    );
    assert_eq!(auth.authenticate(&HeaderMap::new()), Err(Refusal::Missing));
}

#[test]
fn an_hs256_token_is_its_subject_as_the_customer() {
    let auth = authenticator(Some(jwt()));
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let bearer = format!("Bearer {}", token(Algorithm::HS256, &key, &good_claims()));
    let bob = auth
        .authenticate(&headers("authorization", &bearer))
        .unwrap();
    assert_eq!(bob.customer_id.as_deref(), Some("c-bob"));
    assert!(bob.may(ORDERS_WRITE));

    let mut admin = good_claims();
    admin["scope"] = json!("orders:read admin");
    let bearer = format!("Bearer {}", token(Algorithm::HS256, &key, &admin));
    let admin = auth
        .authenticate(&headers("authorization", &bearer))
        .unwrap();
    assert_eq!(
        admin.customer_id, None,
        "an admin token sees every customer"
    );
}

#[test]
fn a_token_with_a_wrong_claim_signature_or_algorithm_is_refused() {
    let auth = authenticator(Some(jwt()));
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let mut cases = Vec::new();
    for (claim, value) in [
        ("exp", json!(now() - 3600)),
        ("iss", json!("https://other.test")),
        ("aud", json!("someone-else")),
    ] {
        let mut claims = good_claims();
        claims[claim] = value;
        cases.push((claim, token(Algorithm::HS256, &key, &claims)));
    }
    let forged = EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!");
    cases.push((
        "signature",
        token(Algorithm::HS256, &forged, &good_claims()),
    ));
    let hs384 = token(Algorithm::HS384, &key, &good_claims());
    cases.push(("algorithm", hs384));
    cases.push(("garbage", "not.a.token".to_owned()));
    for (what, token) in cases {
        let refused = auth.authenticate(&headers("authorization", &format!("Bearer {token}")));
        assert!(
            matches!(refused, Err(Refusal::BadToken(_))),
            "{what}: {refused:?}"
        );
    }
}

#[test]
fn an_rs256_token_verifies_against_the_public_key() {
    let dir = std::env::temp_dir().join(format!("gateway-rsa-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let private = dir.join("private.pem");
    let public = dir.join("public.pem");
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "openssl {args:?}");
    };
    run(&["genrsa", "-out", private.to_str().unwrap(), "2048"]);
    run(&[
        "rsa",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    let settings = JwtSettings {
        hs256_secret: None,
        rs256_public_pem: Some(std::fs::read(&public).unwrap()),
        ..jwt()
    };
    let auth = authenticator(Some(settings));
    let key = EncodingKey::from_rsa_pem(&std::fs::read(&private).unwrap()).unwrap();
    let bearer = format!("Bearer {}", token(Algorithm::RS256, &key, &good_claims()));
    let bob = auth
        .authenticate(&headers("authorization", &bearer))
        .unwrap();
    assert_eq!(bob.name, "c-bob");
    // An HS256 token is refused when only RS256 is configured (no algorithm confusion).
    let hs = EncodingKey::from_secret(SECRET.as_bytes());
    let bearer = format!("Bearer {}", token(Algorithm::HS256, &hs, &good_claims()));
    assert!(matches!(
        auth.authenticate(&headers("authorization", &bearer)),
        Err(Refusal::BadToken(_))
    ));
    std::fs::remove_dir_all(dir).unwrap();
}
