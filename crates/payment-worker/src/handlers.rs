//! The payment worker's handlers: charge new orders, refund cancelled ones. Each announces the
//! state it finds, so a redelivery after a crash re-publishes what was lost (with the same
//! deterministic `message_id`) and changes nothing else.

use crate::provider::{ChargeRequest, Provider, Tries, Verdict};
use crate::store::{Payment, PaymentStore, Status};
use broker::{HandlerError, Message, Publish, headers};
use contracts::{OrderCancelled, OrderCreated, OrderPaid, PaymentFailed, PaymentRefunded};
use service::inbox::Claim;
use time::OffsetDateTime;
use uuid::Uuid;

/// Namespace of the v5 payment ids.
const PAYMENT_NAMESPACE: Uuid = Uuid::from_u128(0x7061_796d_656e_7473_0000_0000_0000_0001);

/// The one payment id of `order_id`, and the provider's idempotency key for its charge: every
/// attempt (a retry, a redelivery after a crash, another replica) asks for the same charge.
#[must_use]
pub fn payment_id(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&PAYMENT_NAMESPACE, order_id.as_bytes())
}

/// Handles `order.created`: charges through the provider.
#[derive(Debug, Clone)]
pub struct Charge<B, P> {
    pub store: PaymentStore,
    /// Publisher for `order.paid` / `payment.failed`.
    pub publisher: B,
    /// Who charges the card.
    pub provider: P,
}

impl<B: Publish, P: Provider> broker::Handler<OrderCreated> for Charge<B, P> {
    async fn handle(&self, message: Message<OrderCreated>) -> Result<(), HandlerError> {
        let order = &message.event;
        // Checked like an API request: nothing is charged for an order that breaks the contract.
        order
            .validate()
            .map_err(contracts::InvalidField::into_rejection)?;
        let order_id = order.order_id.to_string();
        let amount = i64::try_from(order.total_cents)
            .map_err(|_| HandlerError::reject("total_cents out of range"))?;
        let meta = &message.meta;
        let mut payment = self
            .store
            .open(&order_id, amount, &order.currency, Claim::of(meta))
            .await?;
        if payment.status == Status::Pending {
            let payment_id = payment_id(order.order_id).to_string();
            let request = ChargeRequest {
                key: &payment_id,
                reference: &order_id,
                amount_cents: payment.amount_cents,
                currency: &payment.currency,
                token: order.payment_token.as_deref(),
                tries: Tries {
                    retry_count: meta.retry_count,
                    replay_count: headers::integer(Some(&meta.headers), headers::REPLAY_COUNT)
                        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                },
            };
            payment = match self.provider.charge(request).await {
                Verdict::Approved => self.store.charge(&order_id, &payment_id).await?,
                Verdict::Declined(reason) => self.store.decline(&order_id, &reason).await?,
                Verdict::Unavailable(why) => return Err(provider_unavailable(why)),
            };
        } else if payment.cancelled_while_open() {
            // An earlier attempt may have died between the provider's charge and its commit, and
            // the cancel found the payment pending: ask the provider, and refund what it charged.
            let payment_id = payment_id(order.order_id).to_string();
            match self.provider.answered(&payment_id).await {
                Ok(Some(Verdict::Approved)) => {
                    payment = self.store.charge(&order_id, &payment_id).await?;
                }
                Ok(_) => {}
                Err(why) => return Err(provider_unavailable(why)),
            }
        }
        announce(&self.publisher, &payment).await
    }
}

/// The provider could not answer now: try again later.
fn provider_unavailable(why: String) -> HandlerError {
    HandlerError::retry(why).with_type("provider-unavailable")
}

/// Handles `order.cancelled`: refunds a charge, or stops a later one.
#[derive(Debug, Clone)]
pub struct Refund<B> {
    pub store: PaymentStore,
    /// Publisher for `payment.refunded`.
    pub publisher: B,
}

impl<B: Publish> broker::Handler<OrderCancelled> for Refund<B> {
    async fn handle(&self, message: Message<OrderCancelled>) -> Result<(), HandlerError> {
        let order_id = message.event.order_id.to_string();
        let meta = &message.meta;
        let payment = self.store.cancel(&order_id, Claim::of(meta)).await?;
        if payment.status == Status::Refunded {
            announce(&self.publisher, &payment).await?;
        }
        Ok(())
    }
}

/// Publishes the event the payment's state implies (nothing for pending or cancelled).
async fn announce(publisher: &impl Publish, payment: &Payment) -> Result<(), HandlerError> {
    let order_id: Uuid = payment
        .order_id
        .parse()
        .map_err(|_| HandlerError::reject("stored order id is not a UUID"))?;
    let payment_id = || -> Result<Uuid, HandlerError> {
        payment
            .payment_id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| HandlerError::reject("charged payment without a payment id"))
    };
    let cents = |value: i64| u64::try_from(value).unwrap_or_default();
    let at = |text: &Option<String>| {
        text.as_deref()
            .map_or_else(OffsetDateTime::now_utc, service::clock::parse)
    };
    match payment.status {
        Status::Charged => {
            let event = OrderPaid {
                order_id,
                payment_id: payment_id()?,
                amount_cents: cents(payment.charged_cents),
                currency: payment.currency.clone(),
                paid_at: at(&payment.charged_at),
            };
            contracts::publish(publisher, &event).await?;
        }
        Status::Declined => {
            let event = PaymentFailed {
                order_id,
                reason: payment.decline_reason.clone().unwrap_or_default(),
                failed_at: OffsetDateTime::now_utc(),
            };
            contracts::publish(publisher, &event).await?;
        }
        Status::Refunded => {
            let event = PaymentRefunded {
                order_id,
                payment_id: payment_id()?,
                amount_cents: cents(payment.refunded_cents),
                currency: payment.currency.clone(),
                refunded_at: at(&payment.refunded_at),
            };
            contracts::publish(publisher, &event).await?;
        }
        Status::Pending | Status::Cancelled => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
