#!/usr/bin/env python3
"""Where an order's end-to-end latency goes, hop by hop, from the three workers' SQLite stores.

Every store stamps when a write ran (the statement's `now`, before its group's commit), all on
this machine's clock, so one completed order is a timeline:

  created     orders.created_at            POST /orders stored the order and its outbox row
  relayed     outbox.sent_at               the relay marked the row sent (after the confirm)
  pay.open    payment inbox handled_at     the payment worker opened the payment
  pay.charged provider_charges.created_at  the simulated provider charged (after open committed)
  pay.stored  payments.charged_at          the charge was being stored (order.paid follows)
  stock       stock inbox handled_at       the stock worker began reserving
  o.reserved  order inbox handled_at       the order worker took stock.reserved
  o.paid      order inbox handled_at       the order worker took order.paid
  completed   orders.updated_at            the order turned completed

Usage: bench/hops.py [DATA_DIR] [--since RFC3339]   (DATA_DIR: deploy/run.sh's data/, default)
Prints p50 / p90 / p99 in ms of each hop over the completed orders created since --since.
"""

import sqlite3
import sys
from datetime import datetime

HOPS = [
    ("order -> payment: stored -> payment opened", "created", "pay_open"),
    ("order -> stock: stored -> reserving", "created", "stock"),
    ("payment: opened -> provider charged (open's commit)", "pay_open", "pay_charged"),
    ("payment: provider -> charge stored", "pay_charged", "pay_stored"),
    ("payment -> order: charge stored -> order.paid taken", "pay_stored", "o_paid"),
    ("stock -> order: reserving -> stock.reserved taken", "stock", "o_reserved"),
    ("order: last event taken -> completed", "last_taken", "completed"),
    ("end to end: stored -> completed", "created", "completed"),
]


def stamp(text):
    """RFC 3339 with up to nanoseconds, as seconds since the epoch."""
    if text is None:
        return None
    text = text.replace("Z", "+00:00")
    head, _, tail = text.partition(".")
    if tail:
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    return datetime.fromisoformat(text).timestamp()


def timelines(data, since):
    db = sqlite3.connect(f"file:{data}/order.db?mode=ro", uri=True)
    db.execute(f"ATTACH 'file:{data}/payment.db?mode=ro' AS pay")
    db.execute(f"ATTACH 'file:{data}/stock.db?mode=ro' AS stock")
    rows = db.execute(
        """
        SELECT o.order_id, o.created_at, ob.sent_at,
               (SELECT handled_at FROM pay.inbox WHERE message_id = ob.message_id
                  AND queue = 'payment.order-created'),
               (SELECT created_at FROM pay.provider_charges WHERE reference = o.order_id
                  AND outcome = 'approved' ORDER BY created_at LIMIT 1),
               p.charged_at,
               (SELECT handled_at FROM stock.inbox WHERE message_id = ob.message_id
                  AND queue = 'stock.order-created'),
               (SELECT MIN(handled_at) FROM main.inbox WHERE order_id = o.order_id
                  AND queue = 'order.stock-reserved'),
               (SELECT MIN(handled_at) FROM main.inbox WHERE order_id = o.order_id
                  AND queue = 'order.order-paid'),
               o.updated_at
        FROM orders o
        JOIN outbox ob ON ob.order_id = o.order_id AND ob.event_type = 'order.created'
        JOIN pay.payments p ON p.order_id = o.order_id
        WHERE o.status = 'completed' AND o.created_at >= ?
        """,
        (since,),
    ).fetchall()
    names = ["created", "relayed", "pay_open", "pay_charged", "pay_stored", "stock",
             "o_reserved", "o_paid", "completed"]
    for row in rows:
        times = dict(zip(names, (stamp(t) for t in row[1:])))
        if None in times.values():
            continue
        times["last_taken"] = max(times["o_reserved"], times["o_paid"])
        yield times


def percentile(sorted_values, p):
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def main():
    args = sys.argv[1:]
    since = ""
    if "--since" in args:
        at = args.index("--since")
        since = args[at + 1]
        del args[at : at + 2]
    data = args[0] if args else "data"
    lines = list(timelines(data, since))
    if not lines:
        sys.exit(f"no completed order with every stamp in {data}")
    print(f"{len(lines)} completed orders; ms: p50 / p90 / p99")
    for label, start, end in HOPS:
        spans = sorted((t[end] - t[start]) * 1000 for t in lines)
        figures = " / ".join(f"{percentile(spans, p):7.1f}" for p in (50, 90, 99))
        print(f"  {label:<52} {figures}")


if __name__ == "__main__":
    main()
