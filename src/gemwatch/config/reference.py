"""The configuration reference as Markdown, generated from the pydantic models' descriptions so
the README never drifts from the code (``gemwatch config-reference``; a test checks the README)."""

from __future__ import annotations

import types
from collections.abc import Iterator
from enum import Enum
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from gemwatch.config.models import GemwatchConfig


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in get_args(annotation))
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is tuple:
        return "list"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(str(m.value) for m in annotation)
    if get_origin(annotation) is not None and str(get_origin(annotation)).endswith("Literal"):
        return " \\| ".join(str(a) for a in get_args(annotation))
    if str(annotation).startswith("typing.Annotated"):
        return _type_name(get_args(annotation)[0])
    if str(annotation).startswith("typing.Literal"):
        return " \\| ".join(str(a) for a in get_args(annotation))
    return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "null")


def _default(field: Any) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
        if isinstance(value, Enum):
            value = value.value
        if isinstance(value, BaseModel) or value in ([], {}, None):
            return "" if value is None else str(value)
        return f"`{value}`"
    if field.default_factory is not None:
        return ""
    return "**required**"


def _rows(model: type[BaseModel], prefix: str, seen: set[type[BaseModel]]) -> Iterator[str]:
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
        yield f"| `{path}` | {_type_name(field.annotation)} | {_default(field)} | {desc} |"
        for sub in _models_in(field.annotation):
            if sub in seen:
                continue
            is_list = get_origin(field.annotation) is list or "list[" in str(field.annotation)
            tag = "[]" if is_list else ""
            if "type" in sub.model_fields and len(_models_in(field.annotation)) > 1:
                literal = get_args(sub.model_fields["type"].annotation)
                tag += f"[type={literal[0]}]" if literal else ""
            yield from _rows(sub, f"{path}{tag}.", seen | {sub})


def markdown() -> str:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines.extend(_rows(GemwatchConfig, "", {GemwatchConfig}))
    return "\n".join(lines) + "\n"
