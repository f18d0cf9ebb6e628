"""Reading a configuration file: YAML parsed, validated against the schema, resolved."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from exporter.config.errors import ConfigError
from exporter.config.resolve import resolve
from exporter.config.schema import EXAMPLE_FILE, ConfigModel
from exporter.config.settings import Settings
from exporter.config.validation import problems


def parse_config(data: object, env: Mapping[str, str]) -> Settings:
    """Validate already-parsed YAML data and resolve it."""
    if not isinstance(data, dict):
        raise ConfigError(["(top level): expected a mapping with credentials, poll and targets"])
    try:
        model = ConfigModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems(exc, EXAMPLE_FILE)) from None
    return resolve(model, env)


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Settings:
    """Read, validate and resolve a configuration file; raise ConfigError naming each mistake."""
    env = os.environ if env is None else env
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [f"cannot read config file {str(path)!r}: {exc.strerror or exc}"]
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise ConfigError([f"(file): invalid YAML{where}: {problem}"]) from None
    if data is None:
        raise ConfigError([f"(file): is empty; start from {EXAMPLE_FILE}"])
    return parse_config(data, env)
