"""What the console shows of alert delivery, and the Prometheus metrics endpoint.

Delivery states come from the alerts package's outbox (``Outbox(engine).states``), one row per
recipient, channel target, stage and escalation level, so a manager can see on the event page
who was told, by what, whether it arrived, and why not. ``/metrics`` serves the default
Prometheus registry (the alert latency histogram, sends, failures, outbox depth) to a
logged-in user or API token with the ``audit`` permission (owner, auditor): the metrics name
recipients' channels and show how busy the store is, so they are never anonymous, whatever
address the console is bound to. A Prometheus scraper uses an auditor's API token
(``authorization: {credentials: gw_…}`` in its scrape config).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gemwatch.web.api import visible_event
from gemwatch.web.auth import Perm, Principal
from gemwatch.web.deps import WebContext, ctx_of, require
from gemwatch.web.queries import local_text

router = APIRouter()

RETRYING = "retrying"


class DeliveryOut(BaseModel):
    stage: str = Field(description="alert (the first message, with the snapshot), clip, end, ack or action")
    level: int = Field(description="escalation level (0 = the route's own recipients)")
    recipient: str
    channel: str = Field(description="apprise, webhook or mqtt")
    state: str = Field(description="pending, retrying, sent, failed or cancelled")
    attempts: int
    last_error: str | None
    queued_local: str
    sent_local: str | None
    latency_s: float | None = Field(
        description="triggering frame (clip stage: end of post-roll) to the send returning"
    )


def shown_state(state: str, attempts: int) -> str:
    """A pending delivery that has already failed at least once is waiting for its retry."""
    return RETRYING if state == "pending" and attempts > 0 else state


def delivery_states(ctx: WebContext, event_id: str) -> list[DeliveryOut]:
    """Every delivery of one event, oldest first; empty when the alerts package is absent.

    The caller has already checked that the principal may see the event (``visible_event``),
    so the watchlist rule (staff never learn of watchlist events) holds here too.
    """
    try:
        from gemwatch.alerts.outbox import Outbox
    except ImportError:
        return []
    tz = ctx.tz
    return [
        DeliveryOut(
            stage=d.stage,
            level=d.level,
            recipient=d.recipient_id,
            channel=d.channel,
            state=shown_state(d.state, d.attempts),
            attempts=d.attempts,
            last_error=d.last_error,
            queued_local=local_text(d.created_ts, tz),
            sent_local=local_text(d.sent_ts, tz) or None,
            latency_s=None if d.latency_s is None else round(d.latency_s, 3),
        )
        for d in Outbox(ctx.store.engine).states(event_id)
    ]


@router.get("/api/v1/events/{event_id}/deliveries", response_model=list[DeliveryOut], tags=["events"])
def deliveries(
    request: Request, event_id: str, p: Annotated[Principal, Depends(require(Perm.VIEW))]
) -> list[DeliveryOut]:
    """Delivery state of the event's alerts per recipient and channel (404 like the event)."""
    ctx = ctx_of(request)
    with ctx.session() as s:
        visible_event(ctx, s, event_id, p)
    return delivery_states(ctx, event_id)


@router.get("/metrics", include_in_schema=False)
def metrics(_: Annotated[Principal, Depends(require(Perm.AUDIT))]) -> Response:
    """Prometheus text format of the default registry (owner and auditor only)."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    import gemwatch.alerts.metrics  # noqa: F401  (registers the alert metrics even before a send)

    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
