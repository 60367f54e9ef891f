"""The watchlist from the command line: enroll, four-eyes approve, list, show, subject access,
export, erase, policy — with clear one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from conftest import data_file
from fixtures.watchlist_setup import FACES
from gemwatch.cli import app
from gemwatch.events.store import make_engine
from gemwatch.web.schema import AuditRow

runner = CliRunner()


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "gemwatch.yml"
    path.write_text(
        f"storage:\n  data_dir: {tmp_path / 'data'}\n"
        "watchlist:\n  policy: face_matching\n  jurisdiction: uk\n  dpia_reference: DPIA-2026-01\n  store_id: shop-a\n",
        encoding="utf-8",
    )
    return path


def _ok(*args: str, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_enroll_approve_access_export_erase(tmp_path: Path) -> None:
    cfg = str(_config(tmp_path))
    _ok(
        "user",
        "add",
        "anna",
        "--role",
        "manager",
        "-c",
        cfg,
        "--password-stdin",
        stdin="correct-horse-battery-1\n",
    )
    _ok(
        "user",
        "add",
        "sam",
        "--role",
        "staff",
        "-c",
        cfg,
        "--password-stdin",
        stdin="correct-horse-battery-3\n",
    )
    _ok(
        "user",
        "add",
        "ben",
        "--role",
        "security",
        "-c",
        cfg,
        "--password-stdin",
        stdin="correct-horse-battery-2\n",
    )
    photo = str(data_file(f"{FACES}/biden.jpg"))
    refused = runner.invoke(app, ["enroll", photo, "--name", "J", "--by", "anna", "-c", cfg])
    assert refused.exit_code == 2 and "needs a reason and an evidence reference" in refused.output
    text = _ok(
        "enroll",
        photo,
        "--name",
        "J. Doe",
        "--reason",
        "two thefts",
        "--evidence",
        "INC-42",
        "--by",
        "anna",
        "-c",
        cfg,
    )
    entry = text.split()[1]
    self_approval = runner.invoke(app, ["watchlist", "approve", entry, "--by", "anna", "-c", cfg])
    assert self_approval.exit_code == 2 and "four-eyes" in self_approval.output
    staff = runner.invoke(app, ["watchlist", "approve", entry, "--by", "sam", "-c", cfg])
    assert staff.exit_code == 2 and "may not approve" in staff.output
    _ok("watchlist", "approve", entry, "--by", "ben", "-c", cfg)
    listing = [
        json.loads(line) for line in _ok("watchlist", "list", "--json", "-c", cfg).splitlines() if line
    ]
    assert [(r["id"], r["status"], r["approved_by"]) for r in listing] == [(entry, "active", "ben")]
    assert "J. Doe" not in json.dumps(listing)
    assert "INC-42" in _ok("watchlist", "show", entry, "--by", "ben", "-c", cfg)
    found = json.loads(
        _ok("watchlist", "access", str(data_file(f"{FACES}/biden2.jpg")), "--by", "ben", "-c", cfg)
    )
    assert [m["entry"] for m in found["matches"]] == [entry]
    bundle = tmp_path / "shop-a.bundle.json"
    _ok("watchlist", "export", str(bundle), "--by", "ben", "-c", cfg)
    assert json.loads(bundle.read_text())["origin"] == "shop-a" and "J. Doe" not in bundle.read_text()
    _ok("watchlist", "erase", entry, "--by", "ben", "--reason", "erasure request 7", "-c", cfg)
    assert entry not in _ok("watchlist", "list", "--json", "-c", cfg)
    assert "policy: face_matching; jurisdiction: uk" in _ok("watchlist", "policy", "-c", cfg)
    with Session(make_engine(f"sqlite:///{tmp_path / 'data' / 'gemwatch.db'}")) as s:
        actions = [r.action for r in s.scalars(select(AuditRow)) if r.action.startswith("watchlist.")]
    for action in ("watchlist.enroll", "watchlist.approve", "watchlist.view", "watchlist.subject_access",
                   "watchlist.export", "watchlist.erase"):  # fmt: skip
        assert action in actions
