//! The payment provider the worker charges through, and the simulated one it ships with: like a
//! card processor's test tokens, the token decides, and like a card processor it keeps its own
//! record of every charge by idempotency key, so a request repeated after a crash or a
//! redelivery returns the first answer and charges nothing more.

use futures_util::FutureExt;
use service::clock;
use service::db::Db;
use sqlx::Row;
use std::future::Future;
use std::time::Duration;

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    /// Refused for good, with the reason.
    Declined(String),
    /// Could not answer now; try again later.
    Unavailable(String),
}

/// How often this order's charge has been tried.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tries {
    /// The message's `retry-count`.
    pub retry_count: u32,
    /// The message's `replay-count` (set when an operator replays a dead letter).
    pub replay_count: u32,
}

/// One charge request.
#[derive(Debug, Clone, Copy)]
pub struct ChargeRequest<'a> {
    /// The idempotency key: every request for the same charge carries the same key, so the
    /// provider charges it at most once whatever happens between its answer and our commit.
    pub key: &'a str,
    /// What the charge is for (the order id), kept with the provider's record.
    pub reference: &'a str,
    /// Amount in cents.
    pub amount_cents: i64,
    /// ISO 4217 code.
    pub currency: &'a str,
    /// The customer's card token.
    pub token: Option<&'a str>,
    /// How often this charge has been tried (the simulated provider's transient failures use it).
    pub tries: Tries,
}

/// A payment provider: charges a card at most once per idempotency key.
pub trait Provider: Send + Sync + 'static {
    /// Charges `request`. A request whose key the provider has answered before gets that answer
    /// again, and nothing is charged.
    fn charge(&self, request: ChargeRequest<'_>) -> impl Future<Output = Verdict> + Send;

    /// The answer given under `key` before, charging nothing: `Ok(None)` when the key was never
    /// answered, `Err` when the provider cannot be asked now. How a worker that lost track of a
    /// charge (it died between the provider's answer and its own commit) finds out about it.
    fn answered(&self, key: &str) -> impl Future<Output = Result<Option<Verdict>, String>> + Send;
}

/// The provider's answer for `token` on these `tries`, before it records anything.
///
/// | token | answer |
/// |---|---|
/// | none, `tok_visa`, `tok_mastercard` | approved |
/// | `tok_declined` | declined (`card_declined`) |
/// | `tok_insufficient_funds` | declined (`insufficient_funds`) |
/// | `tok_transient_<N>` | unavailable for the first N attempts, then approved |
/// | `tok_outage` | unavailable until an operator replays the dead letter, then approved |
/// | `tok_slow_<ms>` | approved, the answer arriving `<ms>` milliseconds after the charge (see [`pause`]) |
/// | anything else | declined (`invalid_token`) |
#[must_use]
pub fn decide(token: Option<&str>, tries: Tries) -> Verdict {
    let declined = |reason: &str| Verdict::Declined(reason.to_owned());
    match token {
        None | Some("tok_visa" | "tok_mastercard") => Verdict::Approved,
        Some("tok_declined") => declined("card_declined"),
        Some("tok_insufficient_funds") => declined("insufficient_funds"),
        Some("tok_outage") if tries.replay_count == 0 => {
            Verdict::Unavailable("payment provider unavailable (simulated outage)".to_owned())
        }
        Some("tok_outage") => Verdict::Approved,
        Some(token) if pause(Some(token)).is_some() => Verdict::Approved,
        Some(token) => match token.strip_prefix("tok_transient_").map(str::parse::<u32>) {
            Some(Ok(failures)) if tries.retry_count < failures => Verdict::Unavailable(format!(
                "payment provider timed out (simulated, attempt {} of {failures} failing)",
                tries.retry_count + 1
            )),
            Some(Ok(_)) => Verdict::Approved,
            _ => declined("invalid_token"),
        },
    }
}

/// How long the answer to a new charge with `token` takes after the provider recorded it:
/// `tok_slow_<ms>` leaves a window in which the customer is charged and the worker does not
/// know it yet, for tests that crash the worker there.
#[must_use]
pub fn pause(token: Option<&str>) -> Option<Duration> {
    token?
        .strip_prefix("tok_slow_")?
        .parse()
        .ok()
        .map(Duration::from_millis)
}

/// The simulated provider. Its record of charges (`provider_charges`) lives in the worker's
/// database but outside the payments store's transactions: it commits a charge before it
/// answers, as a real provider's books would hold it whatever became of the caller.
#[derive(Debug, Clone)]
pub struct Simulated {
    db: Db,
}

/// What the simulated provider charged: all of it, or for one reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Charges {
    /// Distinct charges made (approved keys).
    pub charges: i64,
    pub charged_cents: i64,
    /// Distinct declined keys.
    pub declines: i64,
}

impl Simulated {
    /// The provider over a migrated database (its `provider_charges` table).
    #[must_use]
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// What was charged, for `reference` or in all.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn charges(&self, reference: Option<&str>) -> Result<Charges, sqlx::Error> {
        let row = sqlx::query(
            "SELECT \
               CAST(COALESCE(SUM(CASE outcome WHEN 'approved' THEN 1 ELSE 0 END), 0) AS BIGINT) AS charges, \
               CAST(COALESCE(SUM(CASE outcome WHEN 'approved' THEN amount_cents ELSE 0 END), 0) AS BIGINT) \
                 AS charged_cents, \
               CAST(COALESCE(SUM(CASE outcome WHEN 'declined' THEN 1 ELSE 0 END), 0) AS BIGINT) AS declines \
             FROM provider_charges WHERE CAST($1 AS TEXT) IS NULL OR reference = $1",
        )
        .bind(reference)
        .fetch_one(self.db.pool())
        .await?;
        Ok(Charges {
            charges: row.try_get("charges")?,
            charged_cents: row.try_get("charged_cents")?,
            declines: row.try_get("declines")?,
        })
    }

    /// The recorded answer to `key`, if the provider answered it before.
    async fn recorded(&self, key: &str) -> Result<Option<Verdict>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT outcome, decline_reason FROM provider_charges WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.as_ref().map(recorded_answer))
    }

    /// Commits `verdict` for the request's key unless an answer is recorded already; returns the
    /// recorded answer (the first one, when two requests with one key race).
    async fn record(
        &self,
        request: &ChargeRequest<'_>,
        verdict: &Verdict,
    ) -> Result<Verdict, sqlx::Error> {
        let (outcome, reason) = match verdict {
            Verdict::Approved => ("approved", None),
            Verdict::Declined(reason) => ("declined", Some(reason.clone())),
            Verdict::Unavailable(_) => return Ok(verdict.clone()),
        };
        let input = (
            request.key.to_owned(),
            request.reference.to_owned(),
            outcome,
            reason,
            request.amount_cents,
            request.currency.to_owned(),
        );
        self.db
            .write(input, |conn, (key, reference, outcome, reason, amount, currency)| {
                async move {
                    sqlx::query(
                        "INSERT INTO provider_charges (idempotency_key, reference, outcome, decline_reason, \
                         amount_cents, currency, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(key)
                    .bind(reference)
                    .bind(*outcome)
                    .bind(reason.as_deref())
                    .bind(*amount)
                    .bind(currency)
                    .bind(clock::now())
                    .execute(&mut *conn)
                    .await?;
                    let row = sqlx::query(
                        "SELECT outcome, decline_reason FROM provider_charges WHERE idempotency_key = $1",
                    )
                    .bind(key)
                    .fetch_one(&mut *conn)
                    .await?;
                    Ok(recorded_answer(&row))
                }
                .boxed()
            })
            .await
    }
}

/// Why the simulated provider could not answer: its books failed.
fn unreachable_books(err: &sqlx::Error) -> String {
    format!("payment provider unavailable: {err}")
}

impl Provider for Simulated {
    async fn charge(&self, request: ChargeRequest<'_>) -> Verdict {
        let unavailable = |err: sqlx::Error| Verdict::Unavailable(unreachable_books(&err));
        match self.recorded(request.key).await {
            Ok(Some(answered)) => return answered,
            Ok(None) => {}
            Err(err) => return unavailable(err),
        }
        let verdict = decide(request.token, request.tries);
        match self.record(&request, &verdict).await {
            Ok(Verdict::Approved) => {
                if let Some(pause) = pause(request.token) {
                    tokio::time::sleep(pause).await;
                }
                Verdict::Approved
            }
            Ok(answered) => answered,
            Err(err) => unavailable(err),
        }
    }

    async fn answered(&self, key: &str) -> Result<Option<Verdict>, String> {
        self.recorded(key)
            .await
            .map_err(|err| unreachable_books(&err))
    }
}

/// The answer a `provider_charges` row records.
fn recorded_answer(row: &sqlx::any::AnyRow) -> Verdict {
    match row.get::<String, _>("outcome").as_str() {
        "approved" => Verdict::Approved,
        _ => Verdict::Declined(
            row.get::<Option<String>, _>("decline_reason")
                .unwrap_or_default(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(retry_count: u32, replay_count: u32) -> Tries {
        Tries {
            retry_count,
            replay_count,
        }
    }

    /// The verdict without the unavailable message, for table comparison.
    fn kind(verdict: &Verdict) -> &str {
        match verdict {
            Verdict::Approved => "approved",
            Verdict::Declined(reason) => reason,
            Verdict::Unavailable(_) => "unavailable",
        }
    }

    #[test]
    fn tokens_behave_as_documented() {
        let table = [
            (None, at(0, 0), "approved"),
            (Some("tok_visa"), at(0, 0), "approved"),
            (Some("tok_declined"), at(0, 0), "card_declined"),
            (
                Some("tok_insufficient_funds"),
                at(3, 0),
                "insufficient_funds",
            ),
            (Some("tok_transient_2"), at(0, 0), "unavailable"),
            (Some("tok_transient_2"), at(1, 0), "unavailable"),
            (Some("tok_transient_2"), at(2, 0), "approved"),
            (Some("tok_transient_0"), at(0, 0), "approved"),
            (Some("tok_outage"), at(5, 0), "unavailable"),
            (Some("tok_outage"), at(0, 1), "approved"),
            (Some("tok_slow_1500"), at(0, 0), "approved"),
            (Some("tok_slow_x"), at(0, 0), "invalid_token"),
            (Some("tok_transient_x"), at(0, 0), "invalid_token"),
            (Some("bogus"), at(0, 0), "invalid_token"),
        ];
        for (token, tries, expected) in table {
            assert_eq!(kind(&decide(token, tries)), expected, "{token:?} {tries:?}");
        }
        assert_eq!(
            pause(Some("tok_slow_1500")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(pause(Some("tok_visa")), None);
    }

    fn request<'a>(key: &'a str, token: &'a str, retry_count: u32) -> ChargeRequest<'a> {
        ChargeRequest {
            key,
            reference: "order-1",
            amount_cents: 2500,
            currency: "EUR",
            token: Some(token),
            tries: at(retry_count, 0),
        }
    }

    /// On SQLite and PostgreSQL: the books' query casts its optional reference for PostgreSQL.
    async fn a_repeated_key_returns_the_first_answer_and_charges_nothing_more(db: Db) {
        let provider = Simulated::new(db);
        assert_eq!(
            provider.charge(request("key-1", "tok_visa", 0)).await,
            Verdict::Approved
        );
        // Whatever the repeat says, the first answer stands and nothing more is charged.
        assert_eq!(
            provider.charge(request("key-1", "tok_declined", 1)).await,
            Verdict::Approved
        );
        let declined = provider.charge(request("key-2", "tok_declined", 0)).await;
        assert_eq!(declined, Verdict::Declined("card_declined".to_owned()));
        assert_eq!(
            provider.charge(request("key-2", "tok_visa", 0)).await,
            declined
        );
        // A transient failure records nothing: the next attempt charges.
        assert!(matches!(
            provider
                .charge(request("key-3", "tok_transient_1", 0))
                .await,
            Verdict::Unavailable(_)
        ));
        assert_eq!(
            provider
                .charge(request("key-3", "tok_transient_1", 1))
                .await,
            Verdict::Approved
        );
        let expected = Charges {
            charges: 2,
            charged_cents: 5000,
            declines: 1,
        };
        assert_eq!(provider.charges(None).await.unwrap(), expected);
        assert_eq!(provider.charges(Some("order-1")).await.unwrap(), expected);
        assert_eq!(
            provider.charges(Some("order-2")).await.unwrap(),
            Charges {
                charges: 0,
                charged_cents: 0,
                declines: 0
            }
        );
    }

    service::store_tests!(crate::MIGRATOR;
        a_repeated_key_returns_the_first_answer_and_charges_nothing_more,
    );
}
