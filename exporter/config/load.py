"""Reading a configuration file: YAML parsed, validated against the schema, resolved."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import ValidationError

from exporter.config.errors import ConfigError
from exporter.config.files import MAX_CONFIG_BYTES, parse_yaml, read_text
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
        raise ConfigError(problems(exc, EXAMPLE_FILE, model=ConfigModel)) from None
    return resolve(model, env)


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Settings:
    """Read, validate and resolve a configuration file; raise ConfigError naming each mistake.

    It blocks on file I/O and validation: call it from a worker thread in a running loop."""
    env = os.environ if env is None else env
    name = os.fspath(path)
    data = parse_yaml(read_text(path, MAX_CONFIG_BYTES, "config file"), name)
    if data is None:
        raise ConfigError([f"{name}: is empty; start from {EXAMPLE_FILE}"])
    try:
        return parse_config(data, env)
    except ConfigError as exc:  # every line names the file it is about
        raise ConfigError(f"{name}: {problem}" for problem in exc.problems) from None
