//! The order worker's gRPC `api.OrderService`: create (priced by the stock service, stored with
//! its outbox row as `POST /orders` does), get, and a customer's cancel. Errors use the standard
//! codes and name the proto field at fault.

use crate::api::Api;
use crate::place::{Refused, place};
use crate::store::{Applied, Order};
use crate::validation::{NewItem, NewOrder};
use contracts::LineItem;
use grpc::api::order_service_server::{OrderService, OrderServiceServer};
use grpc::api::{CreateOrderRequest, GetOrderRequest, Item};
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The service over the worker's API state.
#[derive(Debug, Clone)]
pub struct Orders {
    pub api: Api,
}

impl Orders {
    /// The tonic service to serve.
    #[must_use]
    pub fn server(self) -> OrderServiceServer<Self> {
        OrderServiceServer::new(self)
    }

    /// The order `id` as `customer` may see it: another customer's is `NOT_FOUND` too.
    async fn order(&self, id: &str, customer: &str) -> Result<Order, Status> {
        let order_id: Uuid = id
            .parse()
            .map_err(|_| Status::invalid_argument(format!("OrderID: {id:?} is not a UUID")))?;
        self.api
            .store
            .get(&order_id.to_string())
            .await
            .map_err(service::grpc::internal)?
            .filter(|order| customer.is_empty() || order.customer_id == customer)
            .ok_or_else(|| Status::not_found(format!("no order {order_id}")))
    }
}

/// The order as the contract's `Order`.
fn to_proto(order: Order) -> Result<grpc::api::Order, Status> {
    let lines: Vec<LineItem> =
        serde_json::from_value(order.items).map_err(service::grpc::internal)?;
    let items = lines
        .into_iter()
        .map(|line| {
            let cents = i64::try_from(line.unit_price_cents).unwrap_or(i64::MAX);
            Item {
                price_id: format!("{}/{}/{cents}", line.sku, order.currency),
                id: line.sku,
                name: String::new(),
                quantity: i32::try_from(line.quantity).unwrap_or(i32::MAX),
                unit_price_cents: cents,
                currency: order.currency.clone(),
            }
        })
        .collect();
    Ok(grpc::api::Order {
        id: order.order_id,
        customer_id: order.customer_id,
        status: order.status,
        items,
        payment_link: String::new(),
        total_cents: order.total_cents,
        currency: order.currency,
        reason: order.reason.unwrap_or_default(),
    })
}

/// The request as the REST API's, so both are checked alike.
fn to_new_order(request: CreateOrderRequest) -> NewOrder {
    NewOrder {
        customer_id: request.customer_id,
        items: request
            .items
            .into_iter()
            .map(|line| NewItem {
                sku: line.id,
                // Below 1 fails the quantity check, naming the field.
                quantity: u32::try_from(line.quantity).unwrap_or(0),
                unit_price_cents: None,
            })
            .collect(),
        currency: None,
        payment_token: Some(request.payment_token).filter(|token| !token.is_empty()),
    }
}

#[tonic::async_trait]
impl OrderService for Orders {
    async fn create_order(
        &self,
        request: Request<CreateOrderRequest>,
    ) -> Result<Response<grpc::api::Order>, Status> {
        let key = match request.metadata().get("idempotency-key") {
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .filter(|key| !key.is_empty() && key.len() <= 255)
                    .ok_or_else(|| {
                        Status::invalid_argument(
                            "idempotency-key: 1 to 255 visible ASCII characters",
                        )
                    })?
                    .to_owned(),
            ),
            None => None,
        };
        let new_order = to_new_order(request.into_inner());
        let placed = place(&self.api, new_order, key.as_deref())
            .await
            .map_err(|refused| match refused {
                Refused::Invalid(invalid) => Status::invalid_argument(format!(
                    "{}: {}",
                    grpc::proto_field(&invalid.field),
                    invalid.message
                )),
                Refused::KeyConflict => {
                    Status::invalid_argument(format!("idempotency-key: {}", Refused::KeyConflict))
                }
                Refused::Unavailable(err) => Status::unavailable(err.to_string()),
                Refused::Store(err) => service::grpc::internal(err),
            })?;
        let order = self.order(&placed.order_id.to_string(), "").await?;
        Ok(Response::new(to_proto(order)?))
    }

    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<grpc::api::Order>, Status> {
        let request = request.into_inner();
        let order = self.order(&request.order_id, &request.customer_id).await?;
        Ok(Response::new(to_proto(order)?))
    }

    async fn update_order(
        &self,
        request: Request<grpc::api::Order>,
    ) -> Result<Response<grpc::api::Order>, Status> {
        let wanted = request.into_inner();
        let order = self.order(&wanted.id, &wanted.customer_id).await?;
        if wanted.status != "cancelled" {
            return Err(Status::invalid_argument(format!(
                "Status: only \"cancelled\" may be set (by the customer, on a pending order), not {:?}",
                wanted.status
            )));
        }
        let current = to_proto(order)?;
        let unchanged = |a: &[Item], b: &[Item]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(a, b)| a.id == b.id && a.quantity == b.quantity)
        };
        if !wanted.items.is_empty() && !unchanged(&wanted.items, &current.items) {
            return Err(Status::invalid_argument(
                "Items: an order's items cannot change; cancel it and create another",
            ));
        }
        let order_id: Uuid = current.id.parse().map_err(service::grpc::internal)?;
        let applied = self
            .api
            .store
            .cancel_for_customer(order_id)
            .await
            .map_err(service::grpc::internal)?;
        if applied == Applied::DoneWithEvent {
            self.api.wake.notify_one();
        }
        let order = self.order(&current.id, "").await?;
        if order.status != "cancelled" {
            return Err(Status::failed_precondition(format!(
                "the order is {}: only a pending order can be cancelled",
                order.status
            )));
        }
        Ok(Response::new(to_proto(order)?))
    }
}

#[cfg(test)]
mod tests;
