#!/usr/bin/env python3
"""Draws one trace as an SVG waterfall, from the spans the end-to-end trace test received.

    ORDERFLOW_TRACE_JSON=/tmp/trace.json cargo test -p e2e --test gateway one_orders_spans
    deploy/render-trace.py /tmp/trace.json > docs/trace.svg

Rows are the spans in parent-then-child order, bars their time on a shared axis, coloured by
the service that exported them; a span's events (a retry, a dead-letter) are listed after its
name.
"""

import html
import json
import sys

COLOURS = {
    "gateway": "#6c5ce7",
    "order-worker": "#0984e3",
    "payment-worker": "#00b894",
    "stock-worker": "#e17055",
}
ROW, LABEL, WIDTH = 22, 500, 560


def ordered(spans):
    """Depth-first from the roots, children by start time: (depth, span)."""
    ids = {span["span_id"] for span in spans}
    children = {}
    for span in spans:
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(span)
    out = []

    def walk(parent, depth):
        for span in sorted(children.get(parent, []), key=lambda s: s["start"]):
            out.append((depth, span))
            walk(span["span_id"], depth + 1)

    walk(None, 0)
    return out


def main():
    spans = json.load(open(sys.argv[1]))
    rows = ordered(spans)
    t0 = min(span["start"] for span in spans)
    t1 = max(span["end"] for span in spans)
    scale = WIDTH / max(t1 - t0, 1)
    height = ROW * (len(rows) + 2)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL + WIDTH + 90}" height="{height}" '
        'font-family="monospace" font-size="11">',
        f'<rect width="100%" height="100%" fill="white"/>',
        f'<text x="4" y="14">one order, trace {spans[0]["trace_id"]}: '
        f'{len(spans)} spans, {(t1 - t0) / 1e6:.0f} ms</text>',
    ]
    for i, (depth, span) in enumerate(rows):
        y = ROW * (i + 1) + 4
        colour = COLOURS.get(span["service"], "#636e72")
        name = span["name"]
        if span["events"]:
            name += "  [" + ", ".join(span["events"]) + "]"
        label = html.escape(f'{"  " * depth}{span["service"]}: {name}')
        x = LABEL + (span["start"] - t0) * scale
        w = max((span["end"] - span["start"]) * scale, 1.5)
        ms = (span["end"] - span["start"]) / 1e6
        out.append(f'<text x="4" y="{y + 13}" fill="{colour}" xml:space="preserve">{label}</text>')
        out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{ROW - 8}" fill="{colour}"/>')
        out.append(f'<text x="{x + w + 4:.1f}" y="{y + 13}" fill="#2d3436">{ms:.1f} ms</text>')
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
