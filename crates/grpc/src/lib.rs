//! orderflow's gRPC contract, proto package `api` (`proto/api.proto`): the order worker serves
//! [`api::order_service_server::OrderService`], the stock worker
//! [`api::stock_service_server::StockService`]; the gateway and tests use the clients.

/// The generated messages, clients and servers.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod api {
    tonic::include_proto!("api");
}

/// The encoded descriptor set of `api.proto`, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/api_descriptor.bin"));

/// Field names of the REST APIs and of the contract, as errors name them
/// (`items[0].quantity` is `Items[0].Quantity`).
const FIELD_NAMES: [(&str, &str); 6] = [
    ("customer_id", "customerID"),
    ("items", "Items"),
    (".sku", ".ID"),
    (".quantity", ".Quantity"),
    ("payment_token", "PaymentToken"),
    ("order_id", "OrderID"),
];

/// The contract's name of a REST field path.
#[must_use]
pub fn proto_field(rest: &str) -> String {
    FIELD_NAMES
        .iter()
        .fold(rest.to_owned(), |field, (rest, proto)| {
            field.replace(rest, proto)
        })
}

/// The REST name of a contract field path.
#[must_use]
pub fn rest_field(proto: &str) -> String {
    FIELD_NAMES
        .iter()
        .fold(proto.to_owned(), |field, (rest, proto)| {
            field.replace(proto, rest)
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn field_names_translate_both_ways() {
        for (rest, proto) in [
            ("items[3].quantity", "Items[3].Quantity"),
            ("items[0].sku", "Items[0].ID"),
            ("customer_id", "customerID"),
        ] {
            assert_eq!(super::proto_field(rest), proto);
            assert_eq!(super::rest_field(proto), rest);
        }
    }
}
