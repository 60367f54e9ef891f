"""Signed, expiring one-tap links: acknowledge, act, and fetch an event's snapshot or clip.

A token is ``base64url(claims JSON) . base64url(HMAC-SHA256(secret, claims))``. It carries
the event, the recipient it was sent to and (for actions) the action id, so whoever holds the
link can do exactly that and nothing else, until it expires. The secret comes from the
environment, a file, or is generated once into the data directory (so links survive restarts
and the web console, reading the same config, verifies what the node signed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from gemwatch.config.models import Alerts


class Purpose(StrEnum):
    ACK = "ack"
    ACT = "act"
    CLIP = "clip"
    SNAPSHOT = "snap"


class LinkError(Exception):
    """A token that must be refused; ``reason`` is one of malformed, forged, expired, purpose."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkClaims:
    purpose: str
    event_id: str
    recipient: str
    exp: float
    action: str | None = None
    nonce: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, claims: LinkClaims) -> str:
    body = json.dumps(asdict(claims), separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(secret, body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def make(
    secret: bytes,
    purpose: Purpose,
    event_id: str,
    recipient: str,
    *,
    now: float,
    ttl_s: float,
    action: str | None = None,
) -> str:
    """A fresh token; the nonce makes every action link single-use on its own."""
    claims = LinkClaims(
        str(purpose), event_id, recipient, round(now + ttl_s, 3), action, secrets.token_hex(8)
    )
    return sign(secret, claims)


def verify(secret: bytes, token: str, *, now: float, purpose: Purpose) -> LinkClaims:
    """The claims of a genuine, unexpired token for ``purpose``; raises LinkError otherwise.

    The MAC is checked before the claims are parsed, in constant time.
    """
    try:
        body_b64, mac_b64 = token.split(".")
        body, mac = _unb64(body_b64), _unb64(mac_b64)
    except (ValueError, TypeError):
        raise LinkError("malformed", "this link is damaged (copy the whole link)") from None
    # Only the canonical spelling: base64 has spare bits, and a variant of a used action link
    # would otherwise pass as a new one (single use is checked on the token's hash).
    if _b64(body) != body_b64 or _b64(mac) != mac_b64:
        raise LinkError("malformed", "this link is damaged (copy the whole link)")
    if not hmac.compare_digest(mac, hmac.new(secret, body, hashlib.sha256).digest()):
        raise LinkError("forged", "this link was not issued by this gemwatch")
    try:
        data = json.loads(body)
        claims = LinkClaims(**data)
    except (ValueError, TypeError):
        raise LinkError("malformed", "this link is damaged") from None
    if claims.purpose != str(purpose):
        raise LinkError("purpose", f"this is not a {purpose.value} link")
    if now > claims.exp:
        raise LinkError("expired", "this link has expired; open the event in the console")
    return claims


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def resolve_secret(alerts: Alerts, data_dir: Path, env: Mapping[str, str] | None = None) -> bytes:
    """The link secret: the environment variable, else the configured file, else a file
    generated once (32 random bytes, mode 0600) under ``data_dir/secrets``."""
    environ = os.environ if env is None else env
    value = environ.get(alerts.link_secret_env)
    if value:
        return value.encode()
    path = alerts.link_secret_file or data_dir / "secrets" / "alert-links.key"
    if alerts.link_secret_file is not None or path.exists():
        text = path.read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"link secret file {path} is empty")
        return text.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process (the web console) generated it first
        return path.read_text(encoding="utf-8").strip().encode()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip().encode()
