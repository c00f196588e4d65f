//! Prices from the stock service's catalogue (`api.StockService/CheckIfItemIsInStock` over
//! gRPC): an order is priced there before it is stored, never by its client.

use grpc::api::stock_service_client::StockServiceClient;
use grpc::api::{CheckIfItemIsInStockRequest, ItemsWithQuantity};
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// How long a price lookup may take before the order is refused as unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

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

/// Where prices come from.
#[derive(Debug, Clone)]
pub enum Catalogue {
    /// The stock service(s), balanced across every URL.
    Stock(StockServiceClient<Channel>),
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
        let endpoints = urls
            .iter()
            .map(|url| {
                Endpoint::from_shared(url.clone())
                    .map(|endpoint| {
                        endpoint
                            .connect_timeout(Duration::from_secs(1))
                            .timeout(CALL_TIMEOUT)
                    })
                    .map_err(|err| anyhow::anyhow!("STOCK_GRPC_URL {url}: {err}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(
            !endpoints.is_empty(),
            "STOCK_GRPC_URL names no stock service"
        );
        Ok(Self::Stock(StockServiceClient::new(Channel::balance_list(
            endpoints.into_iter(),
        ))))
    }

    /// The catalogue's price of each of `lines`' SKUs it lists (unknown SKUs are absent).
    ///
    /// # Errors
    /// When the stock service does not answer in time or fails.
    pub async fn prices(&self, lines: &[(String, u32)]) -> Result<Prices, Unavailable> {
        match self {
            Self::Stock(client) => {
                let items = lines
                    .iter()
                    .map(|(sku, quantity)| ItemsWithQuantity {
                        id: sku.clone(),
                        quantity: i32::try_from(*quantity).unwrap_or(i32::MAX),
                    })
                    .collect();
                let request = service::grpc::traced(CheckIfItemIsInStockRequest { items });
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
            Self::Fixed(prices) => Ok(lines
                .iter()
                .filter_map(|(sku, _)| Some((sku.clone(), prices.get(sku)?.clone())))
                .collect()),
        }
    }
}
