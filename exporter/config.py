"""Configuration: a YAML file validated by pydantic, resolved into plain typed settings.

Shape and types are checked by the pydantic models; everything that relates two fields
(regions and endpoints, duplicates, credentials, secret files) is checked while resolving,
so that every problem is reported with the path of the field that has to change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)

from exporter.credentials import AkSkCredentials, Credentials, IamCredentials
from exporter.regions import DEFAULT_IAM_ENDPOINT, MODELARTS_ENDPOINTS, WORKSPACE_ENDPOINTS
from exporter.targets import Resource, Target, TargetKey

ENV_ACCESS_KEY = "HUAWEICLOUD_SDK_AK"
ENV_SECRET_KEY = "HUAWEICLOUD_SDK_SK"  # noqa: S105 - a variable name
ENV_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"  # noqa: S105 - a variable name
ENV_IAM_PASSWORD = "HUAWEICLOUD_IAM_PASSWORD"  # noqa: S105 - a variable name

EXAMPLE_FILE = "config/exporter.example.yaml"

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_PROJECT_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# The seed documents no pattern for image-server IDs; the ID goes into a URL path, so only
# characters that need no escaping and cannot form "." or ".." segments are allowed.
_IMAGE_SERVER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` has one line per mistake."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def parse_duration(value: object) -> float:
    """Seconds from a number or a Prometheus-style duration string such as ``90s`` or ``1m30s``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 60, 90s or 5m, got a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_RE.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(
                    f"{value!r} is not a duration; write a number of seconds or a duration "
                    "such as 500ms, 90s, 5m or 1h30m"
                ) from None
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise ValueError("expected a duration such as 60, 90s or 5m")
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    return seconds


def _check_pattern(pattern: re.Pattern[str], what: str, example: str) -> Any:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}; expected something like {example}")
        return value

    return check


def _check_endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{value!r} is not an endpoint URL; write it as https://host[:port], "
            "e.g. https://modelarts.cn-north-4.myhuaweicloud.com"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r}: an endpoint takes no query string or fragment")
    return value.rstrip("/")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Endpoint = Annotated[str, AfterValidator(_check_endpoint)]
ProjectId = Annotated[
    str,
    AfterValidator(
        _check_pattern(
            _PROJECT_ID_RE,
            "a project ID (1 to 64 letters, digits and hyphens)",
            "0123456789abcdef0123456789abcdef",
        )
    ),
]
DevServerImageId = Annotated[
    str,
    AfterValidator(
        _check_pattern(
            _UUID_RE,
            "a dev-server image ID (a lower-case UUID)",
            "2f1a5c8e-6d3b-4c1e-9a7f-0b8e4d2c6a10",
        )
    ),
]
ImageServerId = Annotated[
    str,
    AfterValidator(
        _check_pattern(
            _IMAGE_SERVER_ID_RE,
            "an image-server ID (letters, digits, '-' and '_', up to 128)",
            "9a3e1c7b-52d4-4f0e-8b6a-1d2c3e4f5a6b",
        )
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IamModel(_Strict):
    """``credentials.iam``: a password identity exchanged for IAM tokens."""

    username: str = Field(min_length=1)
    password: SecretStr | None = None
    password_file: Path | None = None
    domain_name: str = Field(min_length=1)
    endpoint: Endpoint = DEFAULT_IAM_ENDPOINT


class CredentialsModel(_Strict):
    """``credentials``: AK/SK (optionally temporary) or an IAM identity."""

    access_key: str | None = None
    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None
    security_token: SecretStr | None = None
    security_token_file: Path | None = None
    iam: IamModel | None = None


class PollModel(_Strict):
    """``poll``: how often and how hard the APIs are called."""

    interval: Duration = 60.0
    timeout: Duration = 10.0
    concurrency: int = Field(default=16, ge=1, le=1024)
    retries: int = Field(default=2, ge=0, le=10)
    max_requests_per_second: float | None = Field(default=None, gt=0)


class TargetModel(_Strict):
    """One entry of ``targets``: the objects of one project."""

    project_id: ProjectId
    region: str | None = None
    modelarts_endpoint: Endpoint | None = None
    workspace_endpoint: Endpoint | None = None
    devserver_images: list[DevServerImageId] = Field(default_factory=list)
    image_servers: list[ImageServerId] = Field(default_factory=list)
    credentials: CredentialsModel | None = None


class ConfigModel(_Strict):
    """The whole configuration file."""

    credentials: CredentialsModel = Field(default_factory=CredentialsModel)
    poll: PollModel = Field(default_factory=PollModel)
    targets: list[TargetModel]


@dataclass(frozen=True, slots=True)
class PollSettings:
    """How the scheduler polls."""

    interval: float = 60.0
    timeout: float = 10.0
    concurrency: int = 16
    retries: int = 2
    max_requests_per_second: float | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """A validated, resolved configuration."""

    poll: PollSettings
    targets: tuple[Target, ...]

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so that logging can redact them should one ever slip through."""
        return tuple({s for t in self.targets for s in t.credentials.secrets})


def field_path(loc: Iterable[int | str]) -> str:
    """``('targets', 0, 'region')`` as ``targets[0].region``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _pydantic_problems(error: ValidationError) -> list[str]:
    problems = []
    for err in error.errors(include_input=False, include_url=False):
        path = field_path(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = f"unknown key; remove it or fix its spelling (every key is in {EXAMPLE_FILE})"
        elif kind == "missing":
            msg = f"required key is missing (see {EXAMPLE_FILE})"
        elif kind == "value_error":
            msg = str(err["ctx"]["error"])
        else:
            msg = err["msg"]
        problems.append(f"{path}: {msg}")
    return problems


def _read_secret(path: Path, where: str, problems: list[str]) -> str | None:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        problems.append(f"{where}: cannot read {str(path)!r}: {exc.strerror or exc}")
        return None
    if not value:
        problems.append(f"{where}: {str(path)!r} is empty; put the secret in it")
        return None
    return value


def _one_secret(
    value: SecretStr | None,
    file: Path | None,
    env: str | None,
    where: str,
    problems: list[str],
) -> str | None:
    if env:
        return env
    if value is not None and file is not None:
        problems.append(f"{where}: set either {where.rsplit('.', 1)[-1]} or its _file, not both")
        return None
    if file is not None:
        return _read_secret(file, f"{where}_file", problems)
    return value.get_secret_value() if value is not None else None


def _resolve_credentials(
    model: CredentialsModel, env: Mapping[str, str], where: str, problems: list[str]
) -> Credentials | None:
    """Resolve one credentials block; ``env`` is empty for per-target blocks."""
    before = len(problems)
    access_key = env.get(ENV_ACCESS_KEY) or model.access_key
    secret_key = _one_secret(
        model.secret_key,
        model.secret_key_file,
        env.get(ENV_SECRET_KEY),
        f"{where}.secret_key",
        problems,
    )
    token = _one_secret(
        model.security_token,
        model.security_token_file,
        env.get(ENV_SECURITY_TOKEN),
        f"{where}.security_token",
        problems,
    )
    if model.iam is not None:
        if access_key or secret_key:
            problems.append(
                f"{where}: both access keys (from the file or HUAWEICLOUD_SDK_AK/SK) and "
                f"{where}.iam are set; keep one way of authenticating"
            )
            return None
        iam = model.iam
        password = _one_secret(
            iam.password,
            iam.password_file,
            env.get(ENV_IAM_PASSWORD),
            f"{where}.iam.password",
            problems,
        )
        if password is None:
            if len(problems) == before:
                problems.append(
                    f"{where}.iam.password: missing; set password, password_file or the "
                    f"environment variable {ENV_IAM_PASSWORD}"
                )
            return None
        return IamCredentials(iam.username, password, iam.domain_name, iam.endpoint)
    if len(problems) > before:
        return None
    if not access_key and not secret_key:
        problems.append(
            f"{where}: none configured; set {where}.access_key and {where}.secret_key "
            f"(or {ENV_ACCESS_KEY} and {ENV_SECRET_KEY}), or {where}.iam"
        )
        return None
    if not access_key:
        problems.append(f"{where}.access_key: missing; set it or {ENV_ACCESS_KEY}")
        return None
    if not secret_key:
        problems.append(
            f"{where}.secret_key: missing; set secret_key, secret_key_file or {ENV_SECRET_KEY}"
        )
        return None
    return AkSkCredentials(access_key, secret_key, token)


def _endpoint(
    override: str | None,
    region: str | None,
    table: Mapping[str, str],
    where: str,
    key: str,
    problems: list[str],
) -> str | None:
    if override:
        return override
    if region is None:
        problems.append(f"{where}: set region (e.g. cn-north-4) or {key}")
        return None
    if region not in table:
        problems.append(
            f"{where}.region: {region!r} has no known {key.split('_', maxsplit=1)[0]} endpoint; "
            "set "
            f"{where}.{key}, or use one of: {', '.join(sorted(table))}"
        )
        return None
    return table[region]


def _resolve_targets(
    models: list[TargetModel], default: Credentials | None, problems: list[str]
) -> tuple[Target, ...]:
    targets: list[Target] = []
    seen: dict[TargetKey, str] = {}
    if not models:
        problems.append("targets: the list is empty; add at least one project with IDs to poll")
    for i, t in enumerate(models):
        where = f"targets[{i}]"
        if not t.devserver_images and not t.image_servers:
            problems.append(f"{where}: lists no devserver_images and no image_servers; add an ID")
            continue
        credentials = default
        if t.credentials is not None:
            credentials = _resolve_credentials(t.credentials, {}, f"{where}.credentials", problems)
        groups = (
            (Resource.DEVSERVER_IMAGE, t.devserver_images, t.modelarts_endpoint,
             MODELARTS_ENDPOINTS, "modelarts_endpoint", "devserver_images"),
            (Resource.IMAGE_SERVER, t.image_servers, t.workspace_endpoint,
             WORKSPACE_ENDPOINTS, "workspace_endpoint", "image_servers"),
        )  # fmt: skip
        for resource, ids, override, table, key, list_name in groups:
            if not ids:
                continue
            endpoint = _endpoint(override, t.region, table, where, key, problems)
            for j, object_id in enumerate(ids):
                target_key = TargetKey(resource, t.project_id, object_id)
                here = f"{where}.{list_name}[{j}]"
                if target_key in seen:
                    problems.append(
                        f"{here}: {object_id!r} in project {t.project_id!r} is listed already "
                        f"at {seen[target_key]}; remove one"
                    )
                    continue
                seen[target_key] = here
                if endpoint is not None and credentials is not None:
                    targets.append(Target(target_key, endpoint, credentials))
    return tuple(targets)


def resolve(model: ConfigModel, env: Mapping[str, str]) -> Settings:
    """Turn a validated model into settings, reading secret files and checking cross-field rules."""
    problems: list[str] = []
    credentials = None
    needs_default = not model.targets or any(t.credentials is None for t in model.targets)
    if needs_default or model.credentials != CredentialsModel():
        credentials = _resolve_credentials(model.credentials, env, "credentials", problems)
    poll = model.poll
    if poll.timeout >= poll.interval:
        problems.append(
            f"poll.timeout: {poll.timeout:g}s is not shorter than poll.interval "
            f"({poll.interval:g}s); make the timeout shorter or the interval longer"
        )
    targets = _resolve_targets(model.targets, credentials, problems)
    if problems:
        raise ConfigError(problems)
    return Settings(
        poll=PollSettings(
            interval=poll.interval,
            timeout=poll.timeout,
            concurrency=poll.concurrency,
            retries=poll.retries,
            max_requests_per_second=poll.max_requests_per_second,
        ),
        targets=targets,
    )


def parse_config(data: object, env: Mapping[str, str]) -> Settings:
    """Validate already-parsed YAML data and resolve it."""
    if not isinstance(data, dict):
        raise ConfigError(["(top level): expected a mapping with credentials, poll and targets"])
    try:
        model = ConfigModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_pydantic_problems(exc)) from None
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
