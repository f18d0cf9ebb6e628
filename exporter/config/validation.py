"""What the configuration and the web configuration share: a strict base model, and turning
pydantic's errors into lines that name the field and the fix."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable
from typing import Any, get_args, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails


class StrictModel(BaseModel):
    """Unknown keys are mistakes (usually misspellings), and settings never change once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def field_path(loc: Iterable[int | str]) -> str:
    """``('targets', 0, 'region')`` as ``targets[0].region``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def problems(
    error: ValidationError,
    reference: str,
    prefix: str = "",
    model: type[Any] | None = None,
) -> list[str]:
    """One line per mistake, in the project's words: ``prefix`` + field path + what is wrong
    and how to fix it. ``reference`` names the document that lists every key; ``model``,
    when given, lets an unknown key be matched to the known key it most resembles."""
    out = []
    for err in error.errors(include_input=False, include_url=False):
        loc = err["loc"]
        out.append(f"{prefix}{field_path(loc)}: {_message(err, reference, model)}")
    return out


def _message(err: ErrorDetails, reference: str, model: type[Any] | None) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        known = _keys_at(model, err["loc"][:-1]) if model else []
        close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key; {hint}remove it or fix its spelling (every key is in {reference})"
    if kind == "missing":
        return f"required key is missing; add it (see {reference})"
    if kind == "value_error":
        return str(ctx["error"])
    words = _WORDS.get(kind)
    if words is not None:
        return words.format(**ctx)
    return f"{err['msg'][:1].lower()}{err['msg'][1:]} (see {reference})"


_WORDS = {
    "list_type": "expected a list; write each entry on a line of its own starting with '- ', "
    "or [a, b] (one entry is [a])",
    "dict_type": "expected a mapping of keys to values (key: value lines), not a list or a "
    "single value",
    "model_type": "expected a mapping of keys to values (key: value lines), not a list or a "
    "single value",
    "model_attributes_type": "expected a mapping of keys to values (key: value lines)",
    "string_type": "expected text; put the value in quotes",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number, such as 4",
    "int_from_float": "expected a whole number, without a fraction",
    "float_type": "expected a number",
    "float_parsing": "expected a number, such as 2.5",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_too_short": "must not be empty (at least {min_length} characters)",
    "string_too_long": "is too long; at most {max_length} characters",
    "too_short": "needs at least {min_length} entries",
    "too_long": "has too many entries; at most {max_length}",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be {ge} or more",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be {le} or less",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
    "string_pattern_mismatch": "has characters it may not have (it must match {pattern})",
    "finite_number": "must be a finite number",
}


def _fields(cls: type[Any]) -> dict[str, Any]:
    """Key -> type of a pydantic model or a dataclass validated by pydantic."""
    if issubclass(cls, BaseModel):
        return {f.alias or name: f.annotation for name, f in cls.model_fields.items()}
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _keys_at(model: type[Any], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model accepts at ``loc`` (list indices and dict keys skipped)."""
    current: type[Any] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        fields = _fields(current)
        if part in fields:  # else a key of a free-form mapping: the model below is the same
            current = _model_in(fields[part])
    return list(_fields(current)) if current is not None else []


def _model_in(annotation: Any) -> type[Any] | None:
    """The model or dataclass an annotation holds (through Optional, list, dict, Annotated)."""
    if isinstance(annotation, type) and (
        issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
    ):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
