"""Plain webhooks: the alert as JSON, HMAC-SHA256 signed, with an idempotency key.

Headers: ``X-Gemwatch-Timestamp`` (epoch seconds), ``X-Gemwatch-Signature`` =
``sha256=`` hex HMAC of ``"<timestamp>.<body>"`` with the webhook's secret (or the link secret
when none is configured), and ``Idempotency-Key``. A receiver checks the signature, rejects
old timestamps (replay) and drops a key it has already seen. 2xx is delivered; 408, 429 and
5xx are retried; any other 4xx is a permanent failure (the receiver will never take it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time

import requests

from gemwatch.alerts.channels.base import DeliveryError
from gemwatch.alerts.content import machine_message
from gemwatch.alerts.outbox import Delivery
from gemwatch.alerts.routing import resolve
from gemwatch.config.models import Alerts, WebhookTarget

_RETRY_4XX = frozenset({408, 425, 429})


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def webhook_secret(target: WebhookTarget, fallback: bytes) -> bytes:
    if target.secret_env and os.environ.get(target.secret_env):
        return os.environ[target.secret_env].encode()
    if target.secret_file is not None:
        return target.secret_file.read_text(encoding="utf-8").strip().encode()
    return fallback


class WebhookChannel:
    name = "webhook"

    def __init__(self, alerts: Alerts, link_secret: bytes) -> None:
        self.alerts = alerts
        self.link_secret = link_secret

    def send(self, delivery: Delivery) -> None:
        target = resolve(self.alerts, delivery.target)
        if not isinstance(target, WebhookTarget):
            raise DeliveryError("this webhook is no longer in the config", permanent=True)
        body = json.dumps(machine_message(delivery.key, delivery.stage, delivery.payload)).encode()
        ts = f"{time.time():.3f}"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "gemwatch-alerts/1",
            "Idempotency-Key": delivery.key,
            "X-Gemwatch-Event": delivery.event_id,
            "X-Gemwatch-Stage": delivery.stage,
            "X-Gemwatch-Timestamp": ts,
            "X-Gemwatch-Signature": signature(webhook_secret(target, self.link_secret), ts, body),
        }
        try:
            resp = requests.post(target.url, data=body, headers=headers, timeout=target.timeout_s)
        except requests.RequestException as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        if 200 <= resp.status_code < 300:
            return
        permanent = 400 <= resp.status_code < 500 and resp.status_code not in _RETRY_4XX
        raise DeliveryError(f"HTTP {resp.status_code} {resp.reason}", permanent=permanent)

    def close(self) -> None:
        return None
