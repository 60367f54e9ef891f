"""Signed one-tap links: genuine ones verify, anything altered, expired or misused does not."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gemwatch.alerts import links
from gemwatch.alerts.links import LinkError, Purpose
from gemwatch.config.models import Alerts

SECRET = b"k" * 32
NOW = 1_800_000_000.0


def _token(**kw: object) -> str:
    args: dict = dict(now=NOW, ttl_s=600, action=None)
    args.update(kw)
    return links.make(SECRET, Purpose.ACT, "ev-1", "manager", **args)


def test_round_trip() -> None:
    claims = links.verify(SECRET, _token(action="lock"), now=NOW + 599, purpose=Purpose.ACT)
    assert (claims.event_id, claims.recipient, claims.action) == ("ev-1", "manager", "lock")


def test_every_link_is_different() -> None:
    assert _token() != _token()  # the nonce makes each action link single-use on its own


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:], "forged"),
        (lambda t: "x" + t, "forged|malformed"),
        (lambda t: t.replace(".", ""), "malformed"),
        (lambda t: "!!!.???", "forged|malformed"),
        (
            lambda t: (
                t.split(".")[0]
                + "."
                + links.make(SECRET, Purpose.ACK, "ev-2", "owner", now=NOW, ttl_s=9).split(".")[1]
            ),
            "forged",
        ),
    ],
)
def test_tampered_tokens_are_refused(mutate, reason: str) -> None:
    with pytest.raises(LinkError) as err:
        links.verify(SECRET, mutate(_token()), now=NOW, purpose=Purpose.ACT)
    assert err.value.reason in reason.split("|")


def test_only_the_canonical_spelling_passes() -> None:
    """The last base64 character of the MAC carries 2 spare bits: flipping them decodes to the
    same bytes. Such a variant must not pass, or a used action link could be used again."""
    import base64

    token = _token(action="lock")
    body, mac = token.split(".")
    raw = base64.urlsafe_b64decode(mac + "=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    variants = [mac[:-1] + c for c in alphabet if c != mac[-1]]
    same_bytes = [v for v in variants if base64.urlsafe_b64decode(v + "=") == raw]
    assert len(same_bytes) == 3
    for v in same_bytes:
        with pytest.raises(LinkError) as err:
            links.verify(SECRET, f"{body}.{v}", now=NOW, purpose=Purpose.ACT)
        assert err.value.reason == "malformed"


def test_expired_wrong_purpose_and_wrong_secret() -> None:
    token = _token()
    with pytest.raises(LinkError, match="expired"):
        links.verify(SECRET, token, now=NOW + 601, purpose=Purpose.ACT)
    with pytest.raises(LinkError) as err:
        links.verify(SECRET, token, now=NOW, purpose=Purpose.ACK)
    assert err.value.reason == "purpose"
    with pytest.raises(LinkError) as err:
        links.verify(b"other", token, now=NOW, purpose=Purpose.ACT)
    assert err.value.reason == "forged"


def test_secret_from_env_file_or_generated(tmp_path: Path) -> None:
    alerts = Alerts()
    assert links.resolve_secret(alerts, tmp_path, {"GEMWATCH_LINK_SECRET": "from-env"}) == b"from-env"
    generated = links.resolve_secret(alerts, tmp_path, {})
    key_file = tmp_path / "secrets" / "alert-links.key"
    assert len(generated) == 64 and key_file.read_text().strip().encode() == generated
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert links.resolve_secret(alerts, tmp_path, {}) == generated  # stable across restarts
    own = tmp_path / "mine.key"
    own.write_text("  file-secret \n")
    assert links.resolve_secret(Alerts(link_secret_file=own), tmp_path, {}) == b"file-secret"
    own.write_text("")
    with pytest.raises(ValueError, match="empty"):
        links.resolve_secret(Alerts(link_secret_file=own), tmp_path, {})
