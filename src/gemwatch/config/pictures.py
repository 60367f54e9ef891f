"""Zone pictures (``reference_image``, ``case.open_image``): where they are, and reading them.

A relative picture path in ``gemwatch.yml`` is read from the config file's folder (where a store
admin keeps ``refs/``), not from wherever ``gemwatch`` happens to be started; the loader passes
that folder to validation as the ``config_dir`` context, and the validated model holds the
resolved path. Models built in code without that context keep the path as given and are not
checked (tests, ``eval/``).

Pictures are decoded from bytes read in Python (``cv2.imdecode``), not with ``cv2.imread``,
which prints its own ``[ WARN ... imread_ ...]`` line for a missing file on top of our error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: What each picture key is called in messages.
PICTURE_NAMES = {"reference_image": "reference picture", "open_image": "open picture"}


class PictureReadError(ValueError):
    """A picture file is missing, unreadable or not an image; the message is the reason only."""


def read_picture(path: Path) -> np.ndarray:
    """The picture at ``path`` as BGR; raises PictureReadError saying why it cannot be read."""
    import cv2

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PictureReadError("no such file") from None
    except IsADirectoryError:
        raise PictureReadError("this is a folder, not a picture file") from None
    except OSError as exc:
        raise PictureReadError(f"cannot read it: {exc.strerror or exc}") from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise PictureReadError("not a picture OpenCV can decode (save it as PNG or JPEG)")
    out: np.ndarray = image
    return out


def check_picture(value: Path | None, key: str, context: Any) -> Path | None:
    """Validator body for a picture field: with the loader's ``config_dir`` context, resolve a
    relative path against it and check that the file reads as a picture (ValueError if not)."""
    if value is None or not isinstance(context, dict) or "config_dir" not in context:
        return value
    base: Path | None = context["config_dir"]
    path = value.expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    try:
        read_picture(path)
    except PictureReadError as exc:
        shown = str(path) if path == value else f"{value} (read as {path})"
        raise ValueError(f"cannot read the {PICTURE_NAMES[key]} {shown}: {exc}") from None
    return path
