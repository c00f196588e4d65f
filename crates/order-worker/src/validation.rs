//! The order request and its validation (the contract's [`contracts::check_order`], which
//! `order.created` events from outside pass too): every error names the field at fault.

use contracts::LineItem;
use serde::{Deserialize, Serialize};

pub use contracts::{CURRENCIES, MAX_ITEMS, MAX_QUANTITY, MAX_UNIT_PRICE_CENTS};

/// `POST /orders` body. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub customer_id: String,
    pub items: Vec<NewItem>,
    /// ISO 4217 code, one of [`CURRENCIES`].
    pub currency: String,
    /// Card token for the payment provider (optional).
    #[serde(default)]
    pub payment_token: Option<String>,
}

/// One requested line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    /// Stock keeping unit.
    pub sku: String,
    /// Units (1 ..= 10,000).
    pub quantity: u32,
    /// Price of one unit in cents.
    pub unit_price_cents: u64,
}

/// A validated order: lines and their total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidOrder {
    pub request: NewOrder,
    /// Lines as they go on the wire.
    pub items: Vec<LineItem>,
    /// Sum of quantity × unit price.
    pub total_cents: u64,
}

/// A field that fails validation: the same type and checks as an `order.created` from outside.
pub type Invalid = contracts::InvalidField;

impl NewOrder {
    /// Checks every field and computes the total.
    ///
    /// # Errors
    /// The first invalid field.
    pub fn validate(self) -> Result<ValidOrder, Invalid> {
        let items: Vec<LineItem> = self
            .items
            .iter()
            .map(|item| LineItem {
                sku: item.sku.clone(),
                quantity: item.quantity,
                unit_price_cents: item.unit_price_cents,
            })
            .collect();
        let total_cents = contracts::check_order(
            &self.customer_id,
            &items,
            &self.currency,
            self.payment_token.as_deref(),
        )?;
        Ok(ValidOrder {
            request: self,
            items,
            total_cents,
        })
    }
}

#[cfg(test)]
impl NewOrder {
    /// A valid request for `quantity` × SKU-1 at 1,250 cents, for tests.
    pub(crate) fn example(quantity: u32) -> Self {
        Self {
            customer_id: "c-42".into(),
            items: vec![NewItem {
                sku: "SKU-1".into(),
                quantity,
                unit_price_cents: 1250,
            }],
            currency: "USD".into(),
            payment_token: Some("tok_visa".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_order_totals_its_lines() {
        let mut request = NewOrder::example(2);
        request.items.push(NewItem {
            sku: "SKU_2".into(),
            quantity: 1,
            unit_price_cents: 99,
        });
        assert_eq!(request.validate().unwrap().total_cents, 2599);
    }

    /// Breaks one field of a good order.
    type Breakage = fn(&mut NewOrder);

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(Breakage, &str)> = vec![
            (|o| o.customer_id = " ".into(), "customer_id"),
            (|o| o.items.clear(), "items"),
            (|o| o.items[0].quantity = 0, "items[0].quantity"),
            (
                |o| o.items[0].quantity = MAX_QUANTITY + 1,
                "items[0].quantity",
            ),
            (|o| o.items[0].sku = "bad sku".into(), "items[0].sku"),
            (
                |o| o.items[0].unit_price_cents = MAX_UNIT_PRICE_CENTS + 1,
                "items[0].unit_price_cents",
            ),
            (|o| o.currency = "XXX".into(), "currency"),
            (|o| o.payment_token = Some(String::new()), "payment_token"),
            (
                |o| o.items = vec![o.items[0].clone(); MAX_ITEMS + 1],
                "items",
            ),
        ];
        for (break_it, field) in cases {
            let mut request = NewOrder::example(2);
            break_it(&mut request);
            assert_eq!(request.validate().unwrap_err().field, field);
        }
    }
}
