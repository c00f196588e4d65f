//! The order request and its validation: every error names the field at fault.

use contracts::LineItem;
use serde::{Deserialize, Serialize};

/// Currencies the shop accepts (ISO 4217).
pub const CURRENCIES: [&str; 10] = [
    "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "NOK", "DKK",
];
/// Most lines in one order.
pub const MAX_ITEMS: usize = 100;
/// Most units of one line.
pub const MAX_QUANTITY: u32 = 10_000;
/// Highest unit price in cents (one million in the currency's major unit).
pub const MAX_UNIT_PRICE_CENTS: u64 = 100_000_000;

/// `POST /orders` body. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// Who orders.
    pub customer_id: String,
    /// What.
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
    /// The request.
    pub request: NewOrder,
    /// Lines as they go on the wire.
    pub items: Vec<LineItem>,
    /// Sum of quantity × unit price.
    pub total_cents: u64,
}

/// A field that fails validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Path of the field, e.g. `items[0].quantity`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err(invalid(field, format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
        return Err(invalid(
            field,
            format!("{field} is longer than {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{field} contains control characters"),
        ));
    }
    Ok(())
}

impl NewOrder {
    /// Checks every field and computes the total.
    ///
    /// # Errors
    /// The first invalid field.
    pub fn validate(self) -> Result<ValidOrder, Invalid> {
        check_text("customer_id", &self.customer_id, 64)?;
        if self.items.is_empty() {
            return Err(invalid("items", "an order needs at least one item"));
        }
        if self.items.len() > MAX_ITEMS {
            return Err(invalid(
                "items",
                format!("at most {MAX_ITEMS} items per order"),
            ));
        }
        let mut total: u64 = 0;
        for (i, item) in self.items.iter().enumerate() {
            let at = |name: &str| format!("items[{i}].{name}");
            check_text(&at("sku"), &item.sku, 64)?;
            if !item
                .sku
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    at("sku"),
                    "sku may hold letters, digits, '-' and '_' only",
                ));
            }
            if item.quantity == 0 || item.quantity > MAX_QUANTITY {
                return Err(invalid(
                    at("quantity"),
                    format!("quantity must be 1 to {MAX_QUANTITY}"),
                ));
            }
            if item.unit_price_cents > MAX_UNIT_PRICE_CENTS {
                return Err(invalid(
                    at("unit_price_cents"),
                    format!("unit_price_cents must be at most {MAX_UNIT_PRICE_CENTS}"),
                ));
            }
            total += u64::from(item.quantity) * item.unit_price_cents;
        }
        if !CURRENCIES.contains(&self.currency.as_str()) {
            return Err(invalid(
                "currency",
                format!(
                    "unknown currency '{}': use one of {}",
                    self.currency,
                    CURRENCIES.join(", ")
                ),
            ));
        }
        if let Some(token) = &self.payment_token {
            check_text("payment_token", token, 64)?;
        }
        let items = self
            .items
            .iter()
            .map(|item| LineItem {
                sku: item.sku.clone(),
                quantity: item.quantity,
                unit_price_cents: item.unit_price_cents,
            })
            .collect();
        Ok(ValidOrder {
            request: self,
            items,
            total_cents: total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> NewOrder {
        NewOrder {
            customer_id: "c-42".into(),
            items: vec![NewItem {
                sku: "SKU-1".into(),
                quantity: 2,
                unit_price_cents: 1250,
            }],
            currency: "USD".into(),
            payment_token: Some("tok_visa".into()),
        }
    }

    #[test]
    fn a_good_order_totals_its_lines() {
        let mut request = order();
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
            let mut request = order();
            break_it(&mut request);
            assert_eq!(request.validate().unwrap_err().field, field);
        }
    }
}
