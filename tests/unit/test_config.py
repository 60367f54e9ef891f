from __future__ import annotations

import textwrap

import pytest

from gemwatch.config import EXAMPLE_PATH, ConfigError, load, parse
from gemwatch.config.models import ZoneKind

GOOD = """\
store:
  name: Test
  timezone: Europe/London
cameras:
  - id: door
    url: /videos/door.mp4
    zones:
      - id: entrance
        kind: entrance
        polygon: [[0, 0.5], [1, 0.5], [1, 1]]
"""


def test_example_config_is_valid() -> None:
    cfg = load(EXAMPLE_PATH)
    assert cfg.store.timezone == "Europe/London"
    assert {c.id for c in cfg.cameras} == {"front-door", "counter-1"}
    assert any(z.kind is ZoneKind.VAULT for c in cfg.cameras for z in c.zones)


def test_defaults_for_loitering_by_zone_kind() -> None:
    cfg = parse(GOOD)
    zone = cfg.cameras[0].zones[0]
    params = zone.loitering_params()
    assert params is not None and params.dwell_s == 60.0
    assert cfg.storage.resolved_database_url().endswith("gemwatch-data/gemwatch.db")


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "test.yml")
    return [str(p) for p in info.value.problems]


def test_unknown_key_names_path_and_line() -> None:
    text = GOOD.replace("  timezone: Europe/London", "  timezone: Europe/London\n  colour: red")
    assert _problems(text) == [
        "line 4: store.colour: unknown key (not part of the gemwatch config; check the spelling)"
    ]


def test_all_problems_reported_at_once_with_lines() -> None:
    text = """\
store:
  timezone: Mars/Olympus
cameras:
  - id: door
    url: x.mp4
    fps: -1
    zones:
      - id: a
        kind: entrance
        polygon: [[0, 0], [1, 0]]
      - id: b
        kind: counterz
        polygon: [[0, 0], [1, 0], [1, 1.5]]
"""
    problems = _problems(text)
    assert len(problems) == 5, problems
    joined = "\n".join(problems)
    assert "line 2: store.timezone: unknown timezone 'Mars/Olympus'" in joined
    assert "line 6: cameras[0].fps:" in joined
    assert "line 10: cameras[0].zones[0].polygon: a polygon needs at least 3 points, got 2" in joined
    assert "line 12: cameras[0].zones[1].kind:" in joined
    assert "line 13: cameras[0].zones[1].polygon: point 2 (1.0, 1.5) is outside 0..1" in joined


def test_missing_required_key() -> None:
    assert _problems("cameras:\n  - id: door\n") == ["line 2: cameras[0].url: required key is missing"]


def test_yaml_syntax_error_has_line() -> None:
    problems = _problems("store:\n  name: [unclosed\n")
    assert len(problems) == 1 and problems[0].startswith("line ") and "YAML syntax" in problems[0]


def test_detector_plugin_fields_are_validated() -> None:
    problems = _problems(GOOD + "perception:\n  detector: {type: centernet, score_threshold: 2}\n")
    assert problems and "perception.detector" in problems[0] and "score_threshold" in problems[0]
    problems = _problems(GOOD + "perception:\n  detector: {type: magic}\n")
    assert problems and "perception.detector" in problems[0]


def test_a_zone_id_used_twice_is_reported_with_the_other_problems_at_its_line() -> None:
    zones = (
        "  - id: pad\n    url: /videos/pad.mp4\n    zones:\n"
        "      - {id: desk, kind: staff_area, polygon: [[0, 0.7], [0.6, 0.7], [0.6, 1]]}\n"
        "      - id: desk\n        kind: showing_area\n        polygon: [[0.4, 0.5], [0.7, 0.4], [1, 0.8]]\n"
        "        tray: {confirm_s: 1}\n"
    )
    base = GOOD.count("\n")
    assert _problems(GOOD + zones) == [
        f"line {base + 5}: cameras[1].zones[1].id: zone id 'desk' is used twice on camera 'pad'",
        f"line {base + 8}: cameras[1].zones[1].tray: 'tray' parameters apply to tray zones, not showing_area",
    ]
    # alone, at the id's line too (the model's own check named the camera's line)
    alone = zones.replace("        tray: {confirm_s: 1}\n", "")
    assert _problems(GOOD + alone) == [
        f"line {base + 5}: cameras[1].zones[1].id: zone id 'desk' is used twice on camera 'pad'"
    ]


def test_duplicate_ids_and_unknown_presence_zone() -> None:
    dup = GOOD + "  - id: door\n    url: y.mp4\n"
    assert any("camera id 'door' is used twice" in p for p in _problems(dup))
    bad_rule = GOOD + "rules:\n  presence:\n    - id: vault\n      zones: [nowhere]\n"
    assert any("unknown zone(s): nowhere" in p for p in _problems(bad_rule))


def test_env_overrides_storage() -> None:
    cfg = parse(GOOD, env={"GEMWATCH_DATABASE_URL": "sqlite:////tmp/x.db"})
    assert cfg.storage.resolved_database_url() == "sqlite:////tmp/x.db"


def test_missing_file_is_one_clear_problem(tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "nope.yml")
    assert "cannot read" in str(info.value) and "nope.yml" in str(info.value)


def test_empty_or_binary_file_is_an_error_not_an_empty_config(tmp_path) -> None:
    """An empty config (the wrong file, a failed copy) used to be 'OK, 0 cameras'; a picture
    given as the config was an internal UnicodeDecodeError."""
    empty = tmp_path / "empty.yml"
    for text in ("\n  \n", "# only a comment\n"):
        empty.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match="the file is empty"):
            load(empty)
    png = tmp_path / "desk.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(ConfigError, match="not a text file"):
        load(png)


def test_impossible_zone_values_are_refused_at_their_line() -> None:
    """A zone whose points lie on one line watches nothing; a swapped piece size counts nothing;
    each misplaced parameter section is reported on its own key's line, all at once."""
    zones = """\
  - id: pad
    url: /videos/pad.mp4
    zones:
      - id: flat
        kind: showing_area
        polygon: [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]
        showing: {piece_area: [0.5, 0.1]}
      - id: behind
        kind: staff_area
        polygon: [[0.0, 0.7], [0.6, 0.7], [0.6, 1.0]]
        tray: {confirm_s: 1}
        protocol: {max_pieces: 2}
"""
    got = _problems(GOOD + zones)
    base = GOOD.count("\n")
    assert got == [
        f"line {base + 6}: cameras[1].zones[0].polygon: encloses 0 of the picture (points on one line, "
        "or repeated); a zone needs at least 0.0001",
        f"line {base + 7}: cameras[1].zones[0].showing.piece_area: needs 0 < smallest < largest <= 1 "
        "(fractions of the zone's area), got [0.5, 0.1]",
        f"line {base + 11}: cameras[1].zones[1].tray: 'tray' parameters apply to tray zones, not staff_area",
        f"line {base + 12}: cameras[1].zones[1].protocol: 'protocol' parameters apply to counter zones, "
        "not staff_area",
    ], got


# --------------------------------------------------------------------- analyze --zones files


def zones_file(tmp_path, text: str):
    path = tmp_path / "zones.yml"
    path.write_text(text, encoding="utf-8")
    return path


ZONE = """  - id: desk
    kind: showing_area
    polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]
"""


def test_zones_file_as_a_list_or_under_zones(tmp_path) -> None:
    from gemwatch.config.loader import load_zones

    assert [z.id for z in load_zones(zones_file(tmp_path, textwrap.dedent(ZONE)))] == ["desk"]
    assert [z.kind for z in load_zones(zones_file(tmp_path, "zones:\n" + ZONE))] == [ZoneKind.SHOWING_AREA]
    assert load_zones(zones_file(tmp_path, "zones: []\n")) == []


def test_zones_file_with_other_keys_is_an_error_not_no_zones(tmp_path) -> None:
    """A misspelt ``zone:`` or a whole camera config given as the zones file used to analyse the
    video with no zones and say nothing."""
    from gemwatch.config.loader import load_zones

    with pytest.raises(ConfigError) as exc:
        load_zones(zones_file(tmp_path, "# zones\nzone:\n" + ZONE))
    assert [(p.path, p.line) for p in exc.value.problems] == [("zone", 2)]
    with pytest.raises(ConfigError) as exc:
        load_zones(zones_file(tmp_path, "clip: x.mp4\ncamera:\n  zones: []\n"))
    assert {p.path for p in exc.value.problems} == {"clip", "camera"}


def test_zones_file_errors_name_key_and_line(tmp_path) -> None:
    from gemwatch.config.loader import load_zones

    text = (
        "zones:\n"
        + ZONE
        + "    protocl: {alone_s: 3}\n  - id: tray\n    kind: tray_zone\n    polygon: [[0, 0], [1, 0]]\n"
    )
    with pytest.raises(ConfigError) as exc:
        load_zones(zones_file(tmp_path, text))
    got = {(p.path, p.line) for p in exc.value.problems}
    assert ("zones[0].protocl", 5) in got
    assert ("zones[1].kind", 7) in got
    assert all("Extra inputs" not in p.message for p in exc.value.problems)


def test_zones_file_refuses_twice_used_ids_and_empty_files(tmp_path) -> None:
    """check-config refused a zone id used twice on a camera, analyze --zones took it."""
    from gemwatch.config.loader import load_zones

    with pytest.raises(ConfigError) as exc:
        load_zones(zones_file(tmp_path, "zones:\n" + ZONE + ZONE))
    assert [str(p) for p in exc.value.problems] == ["line 5: zones[1].id: zone id 'desk' is used twice"]
    with pytest.raises(ConfigError) as exc:  # with another problem: both at once
        load_zones(zones_file(tmp_path, "zones:\n" + ZONE + ZONE + "    tray: {confirm_s: 1}\n"))
    assert [str(p) for p in exc.value.problems] == [
        "line 5: zones[1].id: zone id 'desk' is used twice",
        "line 8: zones[1].tray: 'tray' parameters apply to tray zones, not showing_area",
    ]
    with pytest.raises(ConfigError, match="the file is empty"):
        load_zones(zones_file(tmp_path, ""))


def test_a_zones_file_as_the_config_and_the_other_way_round_say_so(tmp_path) -> None:
    """A zones file given with -c was 'unknown key ... check the spelling'; a config given as
    --zones listed every top-level key as unknown."""
    from gemwatch.config.loader import load_zones

    hint = "this looks like a zones file (for analyze --zones)"
    for text in ("zones:\n" + ZONE, textwrap.dedent(ZONE)):
        with pytest.raises(ConfigError) as exc:
            load(zones_file(tmp_path, text))
        assert len(exc.value.problems) == 1 and hint in exc.value.problems[0].message
    with pytest.raises(ConfigError) as exc:
        load_zones(zones_file(tmp_path, GOOD))
    assert [p.message.split(" (")[0] for p in exc.value.problems] == ["this looks like a gemwatch config"]


def test_zones_file_yaml_syntax_error_has_line(tmp_path) -> None:
    from gemwatch.config.loader import load_zones

    with pytest.raises(ConfigError) as exc:
        load_zones(zones_file(tmp_path, "zones:\n  - id: desk\n    polygon: [[0, 0], [1, 0]\n  kind: tray\n"))
    assert exc.value.problems[0].line is not None and "YAML syntax" in exc.value.problems[0].message


def test_zones_file_pictures_are_read_from_its_folder(tmp_path, monkeypatch) -> None:
    import cv2
    import numpy as np

    from gemwatch.config.loader import load_zones

    folder = tmp_path / "store"
    folder.mkdir()
    cv2.imwrite(str(folder / "desk.png"), np.full((48, 64, 3), 200, np.uint8))
    monkeypatch.chdir(tmp_path)  # not the zones file's folder
    path = zones_file(folder, "zones:\n" + ZONE + "    reference_image: desk.png\n")
    assert load_zones(path)[0].reference_image == folder.absolute() / "desk.png"
    path.write_text("zones:\n" + ZONE + "    reference_image: gone.png\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_zones(path)
    assert [(p.path, p.line) for p in exc.value.problems] == [("zones[0].reference_image", 5)]


def test_a_wrong_choice_says_what_was_given() -> None:
    text = GOOD.replace("kind: entrance", "kind: staf_area")
    [problem] = _problems(text)
    assert problem.startswith("line 9: cameras[0].zones[0].kind: Input should be 'entrance'")
    assert problem.endswith("(got 'staf_area')")
