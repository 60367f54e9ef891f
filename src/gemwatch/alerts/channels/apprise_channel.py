"""People's phones, watches and inboxes through Apprise: one URL per delivery, so a push
service that is down never holds back the e-mail, and each is retried on its own.

Apprise reports failure as ``False`` and explains it in its log; a per-thread log handler
is kept as the delivery's ``last_error``. Silent by default: services with a
'no sound' option get it (see :func:`gemwatch.alerts.routing.silence`) unless the route asks
for sound. Attachments: the snapshot with the first stage, the clip with the second when the
service takes attachments and the clip is under ``alerts.max_attachment_mb``; a signed link
to the clip is always in the text.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import apprise

from gemwatch.alerts.channels.base import DeliveryError
from gemwatch.alerts.content import render_text
from gemwatch.alerts.outbox import Delivery
from gemwatch.alerts.routing import Stage, resolve, silence
from gemwatch.config.models import Alerts


class _RecentWarnings(logging.Handler):
    """Apprise's recent warnings with their time and source file. Apprise sends on its own
    executor threads, so a failed send's explanation is found by time window and by the
    plugin's module (the e-mail plugin's lines for an e-mail); where sends to the same kind of
    service overlap, a neighbour's line may show too: it is diagnostic only."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: deque[tuple[float, str, str]] = deque(maxlen=200)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            self.lines.append((record.created, record.pathname, record.getMessage()))

    def since(self, t0: float, source: str | None) -> list[str]:
        with self._guard:
            lines = [(path, msg) for ts, path, msg in self.lines if ts >= t0]
        mine = [msg for path, msg in lines if source and path == source]
        return mine or [msg for _, msg in lines]


_warnings = _RecentWarnings()
logging.getLogger("apprise").addHandler(_warnings)
_ASSET = apprise.AppriseAsset(storage_mode="memory")


def with_timeouts(url: str, timeout_s: float) -> str:
    """Add Apprise's connect/read timeouts (``cto``/``rto``) unless the URL sets them."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("cto", f"{timeout_s:g}")
    query.setdefault("rto", f"{timeout_s:g}")
    return urlunsplit(parts._replace(query=urlencode(query)))


class AppriseChannel:
    name = "apprise"

    def __init__(self, alerts: Alerts, tz: ZoneInfo) -> None:
        self.alerts = alerts
        self.tz = tz

    def _attachments(self, delivery: Delivery) -> list[str]:
        p = delivery.payload
        paths: list[str] = []
        if delivery.stage in (Stage.ALERT, Stage.ACTION) and p.get("snapshot_path"):
            paths.append(p["snapshot_path"])
        if p.get("clip_path") and delivery.stage in (Stage.CLIP, Stage.ALERT):
            try:
                if os.path.getsize(p["clip_path"]) <= self.alerts.max_attachment_mb * 1e6:
                    paths.append(p["clip_path"])
            except OSError:
                pass
        return [path for path in paths if os.path.exists(path)]

    def send(self, delivery: Delivery) -> None:
        url = resolve(self.alerts, delivery.target)
        if not isinstance(url, str):
            raise DeliveryError("this Apprise URL is no longer in the config", permanent=True)
        if delivery.payload.get("silent", True):
            url = silence(url)
        url = with_timeouts(url, self.alerts.send_timeout_s)
        notifier = apprise.Apprise(asset=_ASSET)
        if not notifier.add(url):
            raise DeliveryError("Apprise does not understand this URL (check its scheme)", permanent=True)
        plugin = notifier[0]
        headers = getattr(plugin, "headers", None)
        if isinstance(headers, dict):
            headers["X-Gemwatch-Key"] = delivery.key
        title, body = render_text(delivery.stage, delivery.payload, self.tz)
        attach = None
        if getattr(plugin, "attachment_support", False):
            paths = self._attachments(delivery)
            if paths:
                attach = apprise.AppriseAttachment(paths, asset=_ASSET)
        t0 = time.time()
        ok = notifier.notify(body=body, title=title, attach=attach, body_format=apprise.NotifyFormat.TEXT)
        if not ok:
            module = sys.modules.get(type(plugin).__module__)
            lines = _warnings.since(t0, getattr(module, "__file__", None))
            raise DeliveryError("; ".join(lines[-3:]) or "Apprise could not deliver")

    def warm(self) -> None:
        """Load the plugins of every configured URL now (the first load costs ~0.2 s), so the
        first alert does not pay for it."""
        for recipient in self.alerts.recipients:
            for url in recipient.apprise:
                apprise.Apprise(asset=_ASSET).add(url)

    def close(self) -> None:
        return None
