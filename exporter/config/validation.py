"""What the configuration and the web configuration share: a strict base model, and turning
pydantic's errors into lines that name the field and the fix."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, ValidationError


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


def problems(error: ValidationError, reference: str, prefix: str = "") -> list[str]:
    """One line per mistake: ``prefix`` + field path + what to do; ``reference`` names the
    document that lists every key."""
    out = []
    for err in error.errors(include_input=False, include_url=False):
        kind = err["type"]
        if kind in ("extra_forbidden", "unexpected_keyword_argument"):
            msg = f"unknown key; remove it or fix its spelling (every key is in {reference})"
        elif kind == "missing":
            msg = f"required key is missing (see {reference})"
        elif kind == "value_error":
            msg = str(err["ctx"]["error"])
        else:
            msg = err["msg"]
        out.append(f"{prefix}{field_path(err['loc'])}: {msg}")
    return out
