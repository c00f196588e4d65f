//! Cross-site request forgery: every form carries a token only pages of this server know, and a
//! POST is refused when the browser says it came from another site.

use axum::http::HeaderMap;

/// The form field the token travels in.
pub const FIELD: &str = "csrf";

/// The secret the forms carry (random per start of `orderflow ui`; another site cannot read it).
#[derive(Debug, Clone)]
pub struct Token(String);

impl Token {
    /// 244 random bits.
    #[must_use]
    pub fn random() -> Self {
        Self(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ))
    }

    /// The token, for a hidden form field.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a POST with `headers` and form token `given` may act.
    ///
    /// # Errors
    /// Why not, for the 403 page.
    pub fn check(&self, headers: &HeaderMap, given: &str) -> Result<(), &'static str> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if header("sec-fetch-site").is_some_and(|site| site == "cross-site") {
            return Err("the request came from another site");
        }
        if let (Some(origin), Some(host)) = (header("origin"), header("host")) {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            if origin_host != host {
                return Err("the request came from another origin");
            }
        }
        // Compared in full whatever the first difference, so timing says nothing of the token.
        let same = given.len() == self.0.len()
            && given
                .bytes()
                .zip(self.0.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err("the form's token is missing or stale (reload the page)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_the_servers_token_from_its_own_origin_acts() {
        let token = Token::random();
        let own = headers(&[
            ("host", "127.0.0.1:8089"),
            ("origin", "http://127.0.0.1:8089"),
        ]);
        assert!(token.check(&own, token.as_str()).is_ok());
        assert!(token.check(&HeaderMap::new(), token.as_str()).is_ok());
        assert!(token.check(&own, "").is_err());
        assert!(token.check(&own, &Token::random().0).is_err());
        let foreign = headers(&[
            ("host", "127.0.0.1:8089"),
            ("origin", "https://evil.example"),
        ]);
        assert!(token.check(&foreign, token.as_str()).is_err());
        let opaque = headers(&[("host", "127.0.0.1:8089"), ("origin", "null")]);
        assert!(token.check(&opaque, token.as_str()).is_err());
        let cross = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(token.check(&cross, token.as_str()).is_err());
    }
}
