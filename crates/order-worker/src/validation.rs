//! The order request and its validation (the contract's [`contracts::check_order`], which
//! `order.created` events from outside pass too) and pricing from the catalogue: every error
//! names the field at fault.

use crate::catalogue::Prices;
use contracts::LineItem;
use serde::{Deserialize, Serialize};

pub use contracts::{CURRENCIES, MAX_ITEMS, MAX_QUANTITY, MAX_UNIT_PRICE_CENTS};

/// `POST /orders` body. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub customer_id: String,
    pub items: Vec<NewItem>,
    /// ISO 4217 code; the catalogue prices every SKU in one currency, so this is only checked
    /// against it (absent: the catalogue's).
    #[serde(default)]
    pub currency: Option<String>,
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
    /// Price of one unit in cents: the catalogue's, so only checked against it (absent: the
    /// catalogue's).
    #[serde(default)]
    pub unit_price_cents: Option<u64>,
}

/// A validated order: lines and their total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidOrder {
    pub request: NewOrder,
    /// Lines as they go on the wire, priced by the catalogue.
    pub items: Vec<LineItem>,
    /// ISO 4217 code of every line's price.
    pub currency: String,
    /// Sum of quantity × unit price.
    pub total_cents: u64,
}

/// A field that fails validation: the same type and checks as an `order.created` from outside.
pub type Invalid = contracts::InvalidField;

impl NewOrder {
    /// Checks the fields the catalogue has no part in, before it is asked.
    ///
    /// # Errors
    /// The first invalid field.
    pub fn check(&self) -> Result<(), Invalid> {
        let items: Vec<LineItem> = self
            .items
            .iter()
            .map(|item| LineItem {
                sku: item.sku.clone(),
                quantity: item.quantity,
                unit_price_cents: item.unit_price_cents.unwrap_or(0),
            })
            .collect();
        let currency = self.currency.as_deref().unwrap_or(CURRENCIES[0]);
        contracts::check_order(
            &self.customer_id,
            &items,
            currency,
            self.payment_token.as_deref(),
        )?;
        Ok(())
    }

    /// The SKU and quantity of each line, to ask the catalogue.
    #[must_use]
    pub fn lines(&self) -> Vec<(String, u32)> {
        self.items
            .iter()
            .map(|item| (item.sku.clone(), item.quantity))
            .collect()
    }

    /// Prices every line from `prices` (the catalogue's) and checks the whole order.
    ///
    /// # Errors
    /// The first invalid field: also a SKU the catalogue does not list, a price or currency
    /// the client sent that is not the catalogue's, or lines priced in different currencies.
    pub fn price(self, prices: &Prices) -> Result<ValidOrder, Invalid> {
        self.check()?;
        let mut items = Vec::with_capacity(self.items.len());
        let mut currency: Option<&str> = None;
        for (i, item) in self.items.iter().enumerate() {
            let Some(price) = prices.get(&item.sku) else {
                return Err(Invalid::new(
                    format!("items[{i}].sku"),
                    format!("{} is not in the catalogue", item.sku),
                ));
            };
            if let Some(sent) = item
                .unit_price_cents
                .filter(|sent| *sent != price.unit_price_cents)
            {
                return Err(Invalid::new(
                    format!("items[{i}].unit_price_cents"),
                    format!(
                        "{sent} is not the catalogue's price of {}, {}; leave it out to use it",
                        item.sku, price.unit_price_cents
                    ),
                ));
            }
            match currency {
                Some(first) if first != price.currency => {
                    return Err(Invalid::new(
                        format!("items[{i}].sku"),
                        format!(
                            "{} is priced in {}, the order's earlier items in {first}",
                            item.sku, price.currency
                        ),
                    ));
                }
                _ => currency = Some(&price.currency),
            }
            items.push(LineItem {
                sku: item.sku.clone(),
                quantity: item.quantity,
                unit_price_cents: price.unit_price_cents,
            });
        }
        let currency = currency.unwrap_or(CURRENCIES[0]).to_owned();
        if let Some(sent) = self.currency.as_deref().filter(|sent| *sent != currency) {
            return Err(Invalid::new(
                "currency",
                format!("the catalogue prices these items in {currency}, not {sent}"),
            ));
        }
        let total_cents = contracts::check_order(
            &self.customer_id,
            &items,
            &currency,
            self.payment_token.as_deref(),
        )?;
        Ok(ValidOrder {
            request: self,
            items,
            currency,
            total_cents,
        })
    }
}

#[cfg(test)]
impl NewOrder {
    /// A valid request for `quantity` × SKU-1 (priced by [`catalogue`]), for tests.
    pub(crate) fn example(quantity: u32) -> Self {
        Self {
            customer_id: "c-42".into(),
            items: vec![NewItem {
                sku: "SKU-1".into(),
                quantity,
                unit_price_cents: None,
            }],
            currency: Some("USD".into()),
            payment_token: Some("tok_visa".into()),
        }
    }
}

/// The tests' catalogue: SKU-1 at 1,250 and SKU_2 at 99 USD cents, SKU-EUR at 500 EUR cents.
#[cfg(test)]
pub(crate) fn catalogue() -> Prices {
    use crate::catalogue::Price;
    [
        ("SKU-1", 1250, "USD"),
        ("SKU_2", 99, "USD"),
        ("SKU-EUR", 500, "EUR"),
    ]
    .into_iter()
    .map(|(sku, cents, currency)| {
        let price = Price {
            unit_price_cents: cents,
            currency: currency.to_owned(),
        };
        (sku.to_owned(), price)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_order_is_priced_from_the_catalogue_and_totalled() {
        let mut request = NewOrder::example(2);
        request.items.push(NewItem {
            sku: "SKU_2".into(),
            quantity: 1,
            unit_price_cents: Some(99),
        });
        request.currency = None;
        let order = request.price(&catalogue()).unwrap();
        assert_eq!(order.total_cents, 2599);
        assert_eq!(order.currency, "USD");
        assert_eq!(order.items[0].unit_price_cents, 1250);
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
            (|o| o.items[0].sku = "SKU-NONE".into(), "items[0].sku"),
            (
                |o| o.items[0].unit_price_cents = Some(MAX_UNIT_PRICE_CENTS + 1),
                "items[0].unit_price_cents",
            ),
            (
                |o| o.items[0].unit_price_cents = Some(1),
                "items[0].unit_price_cents",
            ),
            (|o| o.currency = Some("XXX".into()), "currency"),
            (|o| o.currency = Some("EUR".into()), "currency"),
            (
                |o| {
                    o.items.push(NewItem {
                        sku: "SKU-EUR".into(),
                        quantity: 1,
                        unit_price_cents: None,
                    });
                },
                "items[1].sku",
            ),
            (|o| o.payment_token = Some(String::new()), "payment_token"),
            (
                |o| o.items = vec![o.items[0].clone(); MAX_ITEMS + 1],
                "items",
            ),
        ];
        for (break_it, field) in cases {
            let mut request = NewOrder::example(2);
            break_it(&mut request);
            assert_eq!(request.price(&catalogue()).unwrap_err().field, field);
        }
    }
}
