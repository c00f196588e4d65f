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
