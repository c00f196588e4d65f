"""Drives one order to `completed` through orderflow's OrderService with stubs generated from
api.proto by grpcio-tools, the way a client of the described system would; prints the order as
JSON. Exits 1 on any surprise."""

import json
import sys
import time

import grpc

import api_pb2
import api_pb2_grpc


def main(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        orders = api_pb2_grpc.OrderServiceStub(channel)
        try:
            orders.CreateOrder(
                api_pb2.CreateOrderRequest(
                    customerID="c-python",
                    Items=[api_pb2.ItemsWithQuantity(ID="SKU-1", Quantity=0)],
                ),
                timeout=10,
            )
            print("a zero quantity was accepted", file=sys.stderr)
            return 1
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
                print(f"zero quantity: {err.code()} {err.details()}", file=sys.stderr)
                return 1
            refused = err.details()
        order = orders.CreateOrder(
            api_pb2.CreateOrderRequest(
                customerID="c-python",
                Items=[api_pb2.ItemsWithQuantity(ID="SKU-1", Quantity=2)],
                PaymentToken="tok_visa",
            ),
            timeout=10,
        )
        deadline = time.monotonic() + 90
        while order.Status != "completed":
            if time.monotonic() > deadline:
                print(f"still {order.Status}", file=sys.stderr)
                return 1
            time.sleep(0.2)
            order = orders.GetOrder(
                api_pb2.GetOrderRequest(OrderID=order.ID, CustomerID="c-python"), timeout=10
            )
        print(
            json.dumps(
                {
                    "ID": order.ID,
                    "Status": order.Status,
                    "TotalCents": order.TotalCents,
                    "Items": [{"ID": i.ID, "Quantity": i.Quantity, "PriceID": i.PriceID} for i in order.Items],
                    "refused": refused,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
