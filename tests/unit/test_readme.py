"""The README's configuration reference is generated from the code and must not go stale."""

from __future__ import annotations

import importlib.util

from conftest import REPO_ROOT


def test_config_reference_in_readme_is_current() -> None:
    spec = importlib.util.spec_from_file_location("update_readme", REPO_ROOT / "scripts" / "update_readme.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert mod.render(text) == text, "README configuration reference is stale: run `make docs`"


def test_two_commands_are_documented_and_ci_runs_the_test_command() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
