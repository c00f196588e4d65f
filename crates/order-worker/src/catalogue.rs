//! Prices from the stock service's catalogue (`api.StockService/CheckIfItemIsInStock` over
//! gRPC): an order is priced there before it is stored, never by its client. Prices are kept
//! for [`FRESH_FOR`] and, while the stock service cannot answer, used for up to [`STALE_FOR`],
//! so that a stock outage (its worker or its database) does not stop orders being taken.

use grpc::api::stock_service_client::StockServiceClient;
use grpc::api::{CheckIfItemIsInStockRequest, ItemsWithQuantity};
use service::grpc::TracedChannel as Channel;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a price lookup may take before the order is refused as unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a price is used without asking again: a catalogue change reaches orders within it.
pub const FRESH_FOR: Duration = Duration::from_secs(30);

/// How old a price may be and still be used while the stock service cannot answer.
pub const STALE_FOR: Duration = Duration::from_secs(15 * 60);

/// One SKU's price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    /// Price of one unit in minor units.
    pub unit_price_cents: u64,
    /// ISO 4217 code.
    pub currency: String,
}

/// Prices by SKU, for the SKUs the catalogue lists.
pub type Prices = BTreeMap<String, Price>;

/// The stock service could not be asked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the stock service cannot price the order now: {0}")]
pub struct Unavailable(String);

/// Prices last given by the stock service, and when.
#[derive(Debug, Default)]
pub struct PriceCache {
    prices: HashMap<String, (Price, Instant)>,
}

impl PriceCache {
    /// The prices of every one of `skus` given within `age` of `now`; `None` if one is missing.
    #[must_use]
    pub fn within(&self, skus: &[&str], age: Duration, now: Instant) -> Option<Prices> {
        skus.iter()
            .map(|sku| {
                let (price, at) = self.prices.get(*sku)?;
                (now.duration_since(*at) <= age).then(|| ((*sku).to_owned(), price.clone()))
            })
            .collect()
    }

    /// Keeps `prices` as given at `now`.
    pub fn keep(&mut self, prices: &Prices, now: Instant) {
        for (sku, price) in prices {
            self.prices.insert(sku.clone(), (price.clone(), now));
        }
    }
}

/// Where prices come from.
#[derive(Debug, Clone)]
pub enum Catalogue {
    /// The stock service(s), balanced across every URL, with the prices they last gave.
    Stock(StockServiceClient<Channel>, Arc<Mutex<PriceCache>>),
    /// A fixed price list, for tests below the stock service.
    #[cfg(test)]
    Fixed(Prices),
}

impl Catalogue {
    /// The stock services at `urls` (`http://host:port`), connected on first use and again
    /// after a failure, the calls spread across those that answer.
    ///
    /// # Errors
    /// When a URL is not one.
    pub fn connect(urls: &[String]) -> anyhow::Result<Self> {
        let channel = service::grpc::balanced_channel("STOCK_GRPC_URL", urls, CALL_TIMEOUT)?;
        let client = StockServiceClient::new(channel);
        Ok(Self::Stock(client, Arc::default()))
    }

    /// The catalogue's price of each of `lines`' SKUs it lists (unknown SKUs are absent): kept
    /// ones younger than [`FRESH_FOR`], else the stock service's answer, else (when it cannot
    /// answer) kept ones younger than [`STALE_FOR`].
    ///
    /// # Errors
    /// When the stock service does not answer in time or fails, and some price is not kept.
    pub async fn prices(&self, lines: &[(String, u32)]) -> Result<Prices, Unavailable> {
        match self {
            Self::Stock(client, cache) => {
                let skus: Vec<&str> = lines.iter().map(|(sku, _)| sku.as_str()).collect();
                let kept = |age| {
                    let cache = cache
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    cache.within(&skus, age, Instant::now())
                };
                if let Some(prices) = kept(FRESH_FOR) {
                    return Ok(prices);
                }
                match ask(client, lines).await {
                    Ok(prices) => {
                        cache
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .keep(&prices, Instant::now());
                        Ok(prices)
                    }
                    Err(err) => match kept(STALE_FOR) {
                        Some(prices) => {
                            tracing::warn!(error = %err, "pricing from kept prices: the stock service cannot answer");
                            Ok(prices)
                        }
                        None => Err(err),
                    },
                }
            }
            #[cfg(test)]
            Self::Fixed(prices) => Ok(lines
                .iter()
                .filter_map(|(sku, _)| Some((sku.clone(), prices.get(sku)?.clone())))
                .collect()),
        }
    }
}

/// Asks the stock service to price `lines`.
async fn ask(
    client: &StockServiceClient<Channel>,
    lines: &[(String, u32)],
) -> Result<Prices, Unavailable> {
    let items = lines
        .iter()
        .map(|(sku, quantity)| ItemsWithQuantity {
            id: sku.clone(),
            quantity: i32::try_from(*quantity).unwrap_or(i32::MAX),
        })
        .collect();
    let request = tonic::Request::new(CheckIfItemIsInStockRequest { items });
    let answer = client
        .clone()
        .check_if_item_is_in_stock(request)
        .await
        .map_err(|status| Unavailable(status.message().to_owned()))?
        .into_inner();
    Ok(answer
        .items
        .into_iter()
        .filter_map(|item| {
            let price = Price {
                unit_price_cents: u64::try_from(item.unit_price_cents).ok()?,
                currency: item.currency,
            };
            Some((item.id, price))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(cents: u64) -> Price {
        Price {
            unit_price_cents: cents,
            currency: "USD".to_owned(),
        }
    }

    #[test]
    fn kept_prices_are_used_only_within_their_age_and_only_all_together() {
        let mut cache = PriceCache::default();
        let start = Instant::now();
        cache.keep(&Prices::from([("A".to_owned(), price(100))]), start);
        let later = start + Duration::from_secs(60);
        cache.keep(&Prices::from([("B".to_owned(), price(200))]), later);

        let both = cache.within(&["A", "B"], Duration::from_secs(120), later);
        assert_eq!(both.unwrap()["A"], price(100));
        assert_eq!(
            cache.within(&["A", "B"], FRESH_FOR, later),
            None,
            "A is too old"
        );
        assert_eq!(
            cache.within(&["B", "C"], STALE_FOR, later),
            None,
            "C was never priced"
        );
        let b = cache.within(&["B"], FRESH_FOR, later).unwrap();
        assert_eq!(b["B"], price(200));
    }
}
