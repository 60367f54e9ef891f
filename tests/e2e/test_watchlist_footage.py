"""The watchlist on real footage: short_hamilton_clip.mp4 with two of its people enrolled from
other photos. Each enrolled person raises exactly one hit per appearance; everyone else stays
unknown; and afterwards nothing about a non-enrolled face exists in the database or data
directory (every stored face and embedding is searched)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from ruamel.yaml import YAML
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from conftest import DATA_DIR, data_file
from fixtures.watchlist_setup import FACES, enrolled, node
from gemwatch.analyze import analyze
from gemwatch.perception.faces import FaceAnalyzer, face_distance, load_image
from gemwatch.watchlist.gallery import unpack_embedding
from gemwatch.watchlist.schema import FaceRow, HitRow

pytestmark = pytest.mark.slow
CLIP = f"{FACES}/short_hamilton_clip.mp4"
ENROLL = {
    "Lin-Manuel Miranda": ["lin-manuel-miranda.png"],
    "Barack Obama": ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg"],
}
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TOLERANCE_S = 0.6  # labels are read off contact sheets, about ±0.5 s


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    clip = data_file(CLIP)
    data_dir = tmp_path_factory.mktemp("hamilton") / "data"
    cfg, wl = node(data_dir)
    entries = {
        label: enrolled(wl, label, [DATA_DIR / FACES / p for p in photos]) for label, photos in ENROLL.items()
    }
    # An entrance camera analysed at 10 frames/s (brief appearances need it; see docs/watchlist.md).
    report = analyze(cfg, str(clip), fps=10.0, start_time=START)
    with av.open(str(clip)) as c:
        first = next(c.decode(video=0))
        offset = float(first.pts * first.time_base)  # labels count from the container's zero
    labels = YAML(typ="safe").load((DATA_DIR / "labels.yaml").read_text())["video"][CLIP]["identities"]
    return {"cfg": cfg, "wl": wl, "entries": entries, "report": report, "offset": offset, "labels": labels}


def _hits(run: dict[str, Any]) -> list[tuple[str, float]]:
    by_id = {v: k for k, v in run["entries"].items()}
    hit_rows = {h.id: h for h in run["wl"].hits()}
    out = []
    for ev in run["report"].events:
        if ev.type != "watchlist.hit":
            continue
        t = ev.start_ts - START.timestamp() + run["offset"]
        out.append((by_id[hit_rows[ev.id].entry_id], t))
    return sorted(out, key=lambda x: x[1])


def test_one_hit_per_appearance_of_each_enrolled_person(run: dict[str, Any]) -> None:
    hits = _hits(run)
    appearances = [a for a in run["labels"] if a["name"] in ENROLL]
    assert len(appearances) == 3  # Lin-Manuel Miranda twice, Barack Obama once
    for a in appearances:
        inside = [
            h
            for h in hits
            if h[0] == a["name"] and a["start"] - TOLERANCE_S <= h[1] <= a["end"] + TOLERANCE_S
        ]
        assert len(inside) == 1, f"{a}: hits {hits}"
    assert len(hits) == len(appearances), f"a hit outside the enrolled appearances: {hits}"


def test_hit_event_is_a_prompt_with_evidence(run: dict[str, Any]) -> None:
    events = [e for e in run["report"].events if e.type == "watchlist.hit"]
    assert events and all(e.severity == "high" for e in events)
    for e in events:
        assert "Check before acting" in e.description
        assert e.scores["distance"] <= run["cfg"].watchlist.match_distance
        assert e.scores["shots"] >= 2  # never one lucky frame
        assert e.clip_path is None  # no clip of everyone in view by default
        snap = load_image(e.snapshot_path)
        assert snap.shape[0] > 360  # the frame plus the live | enrolled strip below it
    rows = run["wl"].hits()
    assert {r.id for r in rows} == {e.id for e in events}


def _reference(analyzer: FaceAnalyzer) -> np.ndarray:
    """Embeddings of the enrolled people from their enrollment photos (computed independently)."""
    refs = [
        analyzer.faces(load_image(DATA_DIR / FACES / p))[0].embedding for ps in ENROLL.values() for p in ps
    ]
    return np.stack(refs)


def _belongs(emb: np.ndarray, refs: np.ndarray, limit: float = 0.66) -> bool:
    return bool(face_distance(emb[None], refs).min() <= limit)


def test_no_face_or_embedding_of_a_non_enrolled_person_is_stored(run: dict[str, Any]) -> None:
    wl = run["wl"]
    analyzer = FaceAnalyzer()
    refs = _reference(analyzer)
    engine = wl.engine
    # 1. The database: binary values only in watchlist tables, and every face/embedding there
    #    (decrypted) is one of the enrolled people.
    with Session(engine) as s:
        insp = inspect(engine)
        for table in insp.get_table_names():
            cols = [c["name"] for c in insp.get_columns(table)]
            for row in s.execute(text(f'SELECT * FROM "{table}"')):
                for col, value in zip(cols, row, strict=True):
                    if isinstance(value, bytes | memoryview):
                        assert table.startswith("watchlist_"), f"binary data in {table}.{col}"
                    if isinstance(value, str):
                        assert len(value) < 4000, f"{table}.{col} holds a large text value"
        faces = list(s.scalars(select(FaceRow)))
        hits = list(s.scalars(select(HitRow)))
    embeddings = []
    for f in faces:
        aad = f"watchlist:{f.entry_id}:face:{f.id}"
        if f.embedding_enc is not None:
            embeddings.append(unpack_embedding(wl.sealer.open(f.embedding_enc, aad + ":embedding")))
    for h in hits:
        if h.embedding_enc is not None:
            embeddings.append(
                unpack_embedding(wl.sealer.open(h.embedding_enc, f"watchlist-hit:{h.id}:embedding"))
            )
    assert embeddings
    for e in embeddings:
        assert _belongs(e, refs), "an embedding in the database is not an enrolled person's"
    # 2. The data directory: only the database, keys and snapshots; every face that can be found
    #    in any picture there is an enrolled person's (others are blurred beyond detection).
    data_dir = Path(run["cfg"].storage.data_dir)
    pictures = 0
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(data_dir)
        assert rel.parts[0] in {"snapshots", "secrets", "clips", "live"} or rel.name.startswith(
            "gemwatch.db"
        ), rel
        assert path.suffix not in {".npy", ".npz", ".bin", ".pkl", ".mp4", ".mkv"}, f"unexpected file {rel}"
        if path.suffix.lower() in {".jpg", ".jpeg", ".png"}:
            pictures += 1
            image = load_image(path)
            for shot in analyzer.faces(image, threshold=0.5):
                assert _belongs(shot.embedding, refs), f"{rel}: a non-enrolled face is visible"
    assert pictures >= 3
