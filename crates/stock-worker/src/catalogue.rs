//! The catalogue and initial inventory in `STOCK_FILE`: per SKU its name, its price and the
//! units stocked when the SKU is new. Prices come from here, never from a client.

use contracts::{CURRENCIES, MAX_UNIT_PRICE_CENTS};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One SKU in `STOCK_FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    pub name: String,
    /// Price of one unit in minor units (cents).
    pub price_cents: u64,
    /// ISO 4217 code, one of [`CURRENCIES`].
    pub currency: String,
    /// Units stocked when the SKU is first seen; later starts keep the store's counts.
    pub units: u64,
}

/// `STOCK_FILE`: listings by SKU.
pub type Inventory = BTreeMap<String, Listing>;

/// Reads `STOCK_FILE`'s text: `{"SKU-1": {"name", "price_cents", "currency", "units"}, …}`.
///
/// # Errors
/// What is wrong and where, e.g. `SKU-1: currency XYZ is not one of USD, EUR, …`.
pub fn parse(text: &str) -> Result<Inventory, String> {
    let inventory: Inventory = serde_json::from_str(text).map_err(|err| {
        format!(
            "{err}; expected {{\"SKU-1\": {{\"name\": \"Widget\", \"price_cents\": 1250, \
             \"currency\": \"USD\", \"units\": 100}}, …}}"
        )
    })?;
    for (sku, listing) in &inventory {
        if sku.is_empty()
            || sku.len() > 64
            || !sku
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("SKU {sku:?}: 1 to 64 letters, digits, '-' and '_'"));
        }
        if listing.name.trim().is_empty() {
            return Err(format!("{sku}: name must not be empty"));
        }
        if listing.price_cents > MAX_UNIT_PRICE_CENTS {
            return Err(format!(
                "{sku}: price_cents must be at most {MAX_UNIT_PRICE_CENTS}"
            ));
        }
        if !CURRENCIES.contains(&listing.currency.as_str()) {
            return Err(format!(
                "{sku}: currency {} is not one of {}",
                listing.currency,
                CURRENCIES.join(", ")
            ));
        }
    }
    Ok(inventory)
}

#[cfg(test)]
/// `units` of each SKU at 1,250 USD cents, named after the SKU: the listings tests stock.
pub(crate) fn units(stock: &[(&str, u64)]) -> Inventory {
    stock
        .iter()
        .map(|(sku, units)| {
            let listing = Listing {
                name: (*sku).to_owned(),
                price_cents: 1250,
                currency: "USD".to_owned(),
                units: *units,
            };
            ((*sku).to_owned(), listing)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn the_shipped_stock_file_parses() {
        let inventory = parse(include_str!("../../../deploy/stock.json")).unwrap();
        assert_eq!(inventory["SKU-1"].price_cents, 1250);
    }

    #[test]
    fn a_bad_listing_is_refused_with_where_and_why() {
        let cases = [
            (r#"{"SKU-1": 100}"#, "expected {\"SKU-1\": {\"name\""),
            (
                r#"{"SKU-1": {"name": "W", "price_cents": 1, "currency": "XYZ", "units": 1}}"#,
                "SKU-1: currency XYZ is not one of USD",
            ),
            (
                r#"{"bad sku": {"name": "W", "price_cents": 1, "currency": "USD", "units": 1}}"#,
                "SKU \"bad sku\"",
            ),
            (
                r#"{"SKU-1": {"name": " ", "price_cents": 1, "currency": "USD", "units": 1}}"#,
                "SKU-1: name must not be empty",
            ),
            (
                r#"{"SKU-1": {"name": "W", "price_cents": 100000001, "currency": "USD", "units": 1}}"#,
                "SKU-1: price_cents must be at most",
            ),
            (
                r#"{"SKU-1": {"name": "W", "price": 1, "currency": "USD", "units": 1}}"#,
                "unknown field `price`",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
