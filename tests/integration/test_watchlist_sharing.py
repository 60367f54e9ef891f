"""Sharing between stores: two store nodes and an HQ over the local Mosquitto broker.

An entry enrolled and approved at store A reaches store B within 5 s; a tampered bundle and
one from an untrusted store are refused with a clear message; a revoked entry disappears
from B. Bundles as files: export at A, import at B, the same checks.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from conftest import DATA_DIR, port_open
from fixtures.watchlist_setup import FACES, enrolled, node
from gemwatch.watchlist.bundle import BundleRejected, export_bundle, import_bundle
from gemwatch.watchlist.crypto import b64, load_or_create_signing_key
from gemwatch.watchlist.gallery import Watchlist
from gemwatch.watchlist.sync import SyncClient, topics
from gemwatch.web.schema import AuditRow

BROKER = ("127.0.0.1", 1883)


def _keys(root: Path, name: str) -> str:
    """Create a node's signing key up front so the others can trust its public key."""
    return load_or_create_signing_key(root / name / "data" / "secrets" / "watchlist-signing.key").public_b64


def _wait(cond, timeout: float = 5.0) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout:.1f} s")


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[dict[str, object]]:
    if not port_open(*BROKER):
        pytest.skip("Mosquitto is not running on 127.0.0.1:1883 (scripts/services.sh starts it)")
    share = tmp_path / "chain-share.key"  # the chain's bundle key, the same file everywhere
    pubs = {n: _keys(tmp_path, n) for n in ("shop-a", "shop-b", "hq", "rogue")}
    base = f"gwtest-{uuid.uuid4().hex[:8]}"  # retained messages of other runs cannot leak in
    trusted = [{"id": n, "public_key": pubs[n]} for n in ("shop-a", "shop-b", "hq")]
    nodes: dict[str, tuple[object, Watchlist]] = {}
    clients: list[SyncClient] = []
    for name, role in (("hq", "hq"), ("shop-a", "store"), ("shop-b", "store")):
        cfg, wl = node(
            tmp_path / name / "data",
            store_id=name,
            share_key_file=share,
            trusted_stores=trusted,
            sync={"role": role, "host": BROKER[0], "port": BROKER[1], "base_topic": base},
        )
        nodes[name] = (cfg, wl)
        assert wl.cfg.sync is not None
        clients.append(SyncClient(wl, wl.cfg.sync).start())
    for c in clients:
        assert c.wait_connected(5.0), "no connection to the broker"
    yield {"nodes": nodes, "clients": dict(zip(("hq", "shop-a", "shop-b"), clients, strict=True)), "base": base,
           "tmp": tmp_path, "share": share, "pubs": pubs}  # fmt: skip
    for c in clients:
        c.stop()


def _ids(wl: Watchlist) -> set[str]:
    return set(wl.snapshot().entry_ids)


def test_entry_reaches_other_store_and_revocation_propagates(chain: dict) -> None:  # type: ignore[type-arg]
    wl_a, wl_b, wl_hq = (chain["nodes"][n][1] for n in ("shop-a", "shop-b", "hq"))
    t0 = time.monotonic()
    entry = enrolled(wl_a, "Ring member 1", [DATA_DIR / FACES / "biden.jpg"])
    took = _wait(lambda: entry in _ids(wl_b), 5.0)
    print(f"entry reached store B {time.monotonic() - t0:.2f} s after approval started ({took:.2f} s wait)")
    assert entry in _ids(wl_hq)  # HQ keeps the chain's list too
    snap = wl_b.snapshot()
    assert snap.labels[snap.entry_ids.index(entry)] == "Ring member 1"
    assert len(snap.positives) == 1  # the embedding travelled (face_matching policy at both)
    # B cannot revoke A's entry; A can, and it disappears from B.
    with pytest.raises(ValueError, match="belongs to store 'shop-a'"):
        wl_b.revoke(entry, "ben", "not ours")
    wl_a.revoke(entry, "anna", "complaint upheld")
    _wait(lambda: entry not in _ids(wl_b), 5.0)
    assert entry not in _ids(wl_hq)


def test_tampered_and_untrusted_bundles_are_refused(chain: dict) -> None:  # type: ignore[type-arg]
    wl_a, wl_b = chain["nodes"]["shop-a"][1], chain["nodes"]["shop-b"][1]
    client_b: SyncClient = chain["clients"]["shop-b"]
    entry = enrolled(wl_a, "Ring member 2", [DATA_DIR / FACES / "alex-lacamoire.png"])
    _wait(lambda: entry in _ids(wl_b))
    good = json.loads(export_bundle(wl_a))
    down = topics(chain["base"])["down"]
    # Tampered: one byte of the ciphertext changed, signature kept.
    bad = dict(good)
    payload = bytearray(bad["payload"].encode())
    payload[10] = ord("A") if payload[10] != ord("A") else ord("B")
    bad["payload"] = payload.decode()
    bad["seq"] = good["seq"] + 1
    client_b.received.clear()
    chain["clients"]["hq"].client.publish(f"{down}/shop-a", json.dumps(bad), qos=1)
    _wait(lambda: client_b.last_error is not None and "signature" in client_b.last_error)
    assert "claiming to be from 'shop-a' failed its signature check" in client_b.last_error
    assert entry in _ids(wl_b)  # nothing changed
    # Untrusted: a store B does not trust, correctly signed with its own key.
    _, rogue = node(chain["tmp"] / "rogue" / "data", store_id="rogue", share_key_file=chain["share"])
    enrolled(rogue, "Someone", [DATA_DIR / FACES / "rose_leslie_img1.jpg"])
    client_b.last_error = None
    chain["clients"]["hq"].client.publish(f"{down}/rogue", export_bundle(rogue), qos=1)
    _wait(lambda: client_b.last_error is not None)
    assert "untrusted store 'rogue' rejected" in client_b.last_error
    assert len(_ids(wl_b)) == 1
    with Session(wl_b.engine) as s:
        reasons = [
            r.detail["reason"]
            for r in s.scalars(select(AuditRow).where(AuditRow.action == "watchlist.import_rejected"))
        ]
    assert any("signature" in r for r in reasons) and any("untrusted" in r for r in reasons)


def test_bundle_file_round_trip_replay_and_wrong_key(tmp_path: Path) -> None:
    pubs = {n: _keys(tmp_path, n) for n in ("shop-a", "shop-b")}
    share = tmp_path / "share.key"
    trusted = [{"id": n, "public_key": pubs[n]} for n in pubs]
    _, wl_a = node(
        tmp_path / "shop-a" / "data", store_id="shop-a", share_key_file=share, trusted_stores=trusted
    )
    _, wl_b = node(
        tmp_path / "shop-b" / "data", store_id="shop-b", share_key_file=share, trusted_stores=trusted
    )
    entry = enrolled(wl_a, "Ring member 3", [DATA_DIR / FACES / "kit_harington_john1.jpeg"])
    first = export_bundle(wl_a)
    result = import_bundle(wl_b, first)
    assert (result.added, result.removed) == (1, 0) and entry in _ids(wl_b)
    assert import_bundle(wl_b, first).stale  # a replay changes nothing
    wl_a.revoke(entry, "anna", "expired evidence")
    second = export_bundle(wl_a)
    assert json.loads(second)["seq"] > json.loads(first)["seq"]
    assert import_bundle(wl_b, second).removed == 1 and entry not in _ids(wl_b)
    assert import_bundle(wl_b, first).stale  # the old bundle cannot bring it back
    # Another chain's share key: the signature is fine, the payload does not open.
    _, wl_c = node(tmp_path / "shop-c" / "data", store_id="shop-c", trusted_stores=trusted)
    with pytest.raises(BundleRejected, match="does not decrypt"):
        import_bundle(wl_c, export_bundle(wl_a))
    # A bundle re-signed by a key that is not the one trusted for its origin.
    forged = json.loads(export_bundle(wl_a))
    forged.pop("sig")
    from gemwatch.watchlist.bundle import canonical

    other = load_or_create_signing_key(tmp_path / "other.key")
    forged["sig"] = b64(other.sign(canonical(forged)))
    with pytest.raises(BundleRejected, match="signature"):
        import_bundle(wl_b, json.dumps(forged))
