"""Prometheus metrics of alert delivery, on the default registry (the console's /metrics
or ``prometheus_client.start_http_server`` exposes them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY = Histogram(
    "gemwatch_alert_latency_seconds",
    "From the triggering frame's timestamp to the moment the channel's send returned "
    "(clip stage: from the end of the clip's post-roll).",
    ["channel", "stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
)
SENT = Counter("gemwatch_alerts_sent_total", "Deliveries that arrived.", ["channel", "stage"])
FAILURES = Counter(
    "gemwatch_alert_send_failures_total", "Send attempts that failed.", ["channel", "permanent"]
)
PENDING = Gauge("gemwatch_alert_outbox_pending", "Deliveries waiting in the outbox.")
