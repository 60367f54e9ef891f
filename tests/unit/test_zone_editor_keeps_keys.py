"""The zone editor's save (web/zones.py ``apply_zones``) rewrites what the editor draws (id,
name, kind, polygon, loitering) and keeps a zone's other keys as written in the file: a counter's
protocol, a pad's showing parameters, a case's pictures. Saving a moved polygon used to delete
them all."""

from __future__ import annotations

from gemwatch.config.loader import parse
from gemwatch.web.zones import apply_zones, validate_zones

CONFIG = """\
cameras:
  - id: cam1
    url: counter.mp4
    zones:
      - id: customer_side
        name: Counter 1
        kind: counter
        counter: c1
        polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.5], [0.1, 0.5]]
        protocol: {alone_s: 3, max_pieces: 2}   # JSA: two pieces out at most
      - id: pad
        kind: showing_area
        counter: c1
        polygon: [[0.3, 0.5], [0.7, 0.5], [0.7, 0.7], [0.3, 0.7]]
        showing: {unattended_s: 4}
"""


def test_moving_a_polygon_keeps_the_zones_other_keys() -> None:
    cam = parse(CONFIG).camera("cam1")
    sent = [z.model_dump(mode="json") for z in cam.zones]  # what the editor posts back
    sent[1]["polygon"] = [[0.25, 0.5], [0.75, 0.5], [0.75, 0.72], [0.25, 0.72]]
    sent[0]["name"] = "Counter one"
    text, cfg = apply_zones(CONFIG, "cam1", validate_zones(sent))
    zones = {z.id: z for z in cfg.camera("cam1").zones}
    assert zones["customer_side"].name == "Counter one"
    assert zones["customer_side"].protocol is not None and zones["customer_side"].protocol.alone_s == 3
    assert zones["customer_side"].counter == "c1" and zones["pad"].counter == "c1"
    assert zones["pad"].showing is not None and zones["pad"].showing.unattended_s == 4
    assert zones["pad"].polygon[0] == (0.25, 0.5)
    assert "# JSA: two pieces out at most" in text


def test_a_zone_the_editor_drops_a_key_of_is_still_rewritten() -> None:
    """Editor keys missing from what is sent are removed (a name cleared, loitering reset)."""
    cam = parse(CONFIG).camera("cam1")
    sent = [z.model_dump(mode="json") for z in cam.zones]
    sent[0]["name"] = None
    text, cfg = apply_zones(CONFIG, "cam1", validate_zones(sent))
    assert cfg.camera("cam1").zones[0].name is None and "Counter 1" not in text
