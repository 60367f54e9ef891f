"""Refresh the generated sections of README.md (the configuration reference)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from gemwatch.config.reference import markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def render(text: str) -> str:
    block = f"<!-- config:start -->\n<details><summary>All keys</summary>\n\n{markdown()}\n</details>\n<!-- config:end -->"
    return re.sub(r"<!-- config:start -->.*?<!-- config:end -->", lambda _: block, text, flags=re.S)


if __name__ == "__main__":
    new = render(README.read_text(encoding="utf-8"))
    if "--check" in sys.argv:
        sys.exit(0 if new == README.read_text(encoding="utf-8") else 1)
    README.write_text(new, encoding="utf-8")
