"""What every channel promises: ``send`` returns only once the receiver has the message."""

from __future__ import annotations

from typing import Protocol

from gemwatch.alerts.outbox import Delivery


class DeliveryError(Exception):
    """A send that did not arrive. ``permanent`` ones are not retried (the target is gone
    from the config, the receiver rejects the request as malformed)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    name: str

    def send(self, delivery: Delivery) -> None: ...

    def close(self) -> None: ...
