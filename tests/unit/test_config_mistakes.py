"""A newcomer's first configuration mistakes, and every word the exporter says about them.

Each case is a file a new user could write; the test reads the whole message: one line,
the file's name first, then the field, what is wrong and how to fix it, in the project's
words (never pydantic's).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config.errors import ConfigError
from exporter.config.load import load_config

GOOD: dict[str, Any] = {
    "credentials": {"access_key": "AKREAL000000000000001", "secret_key": "real-secret-key"},
    "poll": {"interval": "60s", "timeout": "10s"},
    "targets": [{"project_id": "0123456789abcdef0123456789abcdef", "region": "cn-north-4",
                 "image_servers": ["srv-1"]}],
}  # fmt: skip
REFERENCE = "(every key is in config/exporter.example.yaml)"
PYDANTIC_WORDS = ("Input should", "valid dictionary", "Field required", "type=", "pydantic",
                  "Extra inputs", "validation error")  # fmt: skip


@dataclass(frozen=True)
class Mistake:
    name: str
    change: Callable[[dict[str, Any]], object] | str  # a change to GOOD, or the file's text
    message: str  # after "<file>: "


def _parent(data: dict[str, Any], path: str) -> tuple[Any, str]:
    """The mapping holding the last key of a dotted ``path``, and that key."""
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    return node, last


def _set(path: str, value: object) -> Callable[[dict[str, Any]], object]:
    def change(data: dict[str, Any]) -> None:
        node, last = _parent(data, path)
        node[last] = value

    return change


def _rename(path: str, new: str) -> Callable[[dict[str, Any]], object]:
    def change(data: dict[str, Any]) -> None:
        node, last = _parent(data, path)
        node[new] = node.pop(last)

    return change


MISTAKES = [
    Mistake("a misspelt section", _rename("poll", "pol"),
            f"pol: unknown key; did you mean 'poll'? remove it or fix its spelling {REFERENCE}"),
    Mistake("a misspelt poll key", _rename("poll.interval", "intervall"),
            "poll.intervall: unknown key; did you mean 'interval'? remove it or fix its "
            f"spelling {REFERENCE}"),
    Mistake("a misspelt target key", _rename("targets.0.region", "regoin"),
            "targets[0].regoin: unknown key; did you mean 'region'? remove it or fix its "
            f"spelling {REFERENCE}"),
    Mistake("a misspelt discovery kind", _set("targets.0.discover", {"image_server": {}}),
            "targets[0].discover.image_server: unknown key; did you mean 'image_servers'? "
            f"remove it or fix its spelling {REFERENCE}"),
    Mistake("one ID where a list belongs", _set("targets.0.image_servers", "srv-1"),
            "targets[0].image_servers: expected a list; write each entry on a line of its own "
            "starting with '- ', or [a, b] (one entry is [a])"),
    Mistake("a target that is not in a list", _set("targets", GOOD["targets"][0]),
            "targets: expected a list; write each entry on a line of its own starting with "
            "'- ', or [a, b] (one entry is [a])"),
    Mistake("credentials as a bare key", _set("credentials", "AKREAL000000000000001"),
            "credentials: expected a mapping of keys to values (key: value lines), not a list "
            "or a single value"),
    Mistake("an interval in words", _set("poll.interval", "often"),
            "poll.interval: 'often' is not a duration; write a number of seconds or a duration "
            "such as 500ms, 90s, 5m or 1h30m"),
    Mistake("concurrency in words", _set("poll.concurrency", "many"),
            "poll.concurrency: expected a whole number, such as 4"),
    Mistake("no concurrency at all", _set("poll.concurrency", 0),
            "poll.concurrency: must be 1 or more"),
    Mistake("a timeout longer than the interval", _set("poll.timeout", "2m"),
            "poll.timeout: 120s is not shorter than poll.interval (60s); make the timeout "
            "shorter or the interval longer"),
    Mistake("a project ID with a space", _set("targets.0.project_id", "my project"),
            "targets[0].project_id: 'my project' is not a project ID (1 to 64 letters, digits "
            "and hyphens); expected something like 0123456789abcdef0123456789abcdef"),
    Mistake("an image name where its ID belongs", _set("targets.0.devserver_images", ["ubuntu"]),
            "targets[0].devserver_images[0]: 'ubuntu' is not a dev-server image ID (a "
            "lower-case UUID); expected something like 2f1a5c8e-6d3b-4c1e-9a7f-0b8e4d2c6a10"),
    Mistake("an endpoint without its scheme",
            _set("targets.0.workspace_endpoint", "appstream.cn-north-4.myhuaweicloud.com"),
            "targets[0].workspace_endpoint: 'appstream.cn-north-4.myhuaweicloud.com' is not an "
            "endpoint URL; write it as https://host[:port], e.g. "
            "https://modelarts.cn-north-4.myhuaweicloud.com"),
    Mistake("keys asked for, none given", _set("credentials", {"source": "keys"}),
            "credentials: none configured; set credentials.access_key and "
            "credentials.secret_key (or HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK), or "
            "credentials.iam, or a keyless credentials.source (metadata, pod_identity, oidc, "
            "id_token, profile, auto)"),
    Mistake("an unknown source", _set("credentials", {"source": "ecs"}),
            "credentials.source: must be one of 'keys', 'iam', 'metadata', 'pod_identity', "
            "'oidc', 'id_token', 'profile' or 'auto'"),
    Mistake("oidc without its environment", _set("credentials", {"source": "oidc"}),
            "credentials: source oidc needs credentials.oidc.provider_urn (or "
            "HUAWEICLOUD_OIDC_PROVIDER_URN), credentials.oidc.agency_urn (or "
            "HUAWEICLOUD_OIDC_AGENCY_URN), credentials.oidc.token_file (or "
            "HUAWEICLOUD_OIDC_TOKEN_FILE)"),
    Mistake("an access key without its secret", lambda d: d["credentials"].pop("secret_key"),
            "credentials.secret_key: missing; set secret_key, secret_key_file or "
            "HUAWEICLOUD_SDK_SK"),
    Mistake("the example's placeholder", _set("credentials.access_key", "YOUR_ACCESS_KEY_ID"),
            "credentials.access_key: 'YOUR_ACCESS_KEY_ID' is the example's placeholder (in the "
            "file or in HUAWEICLOUD_SDK_AK); put your access key ID there"),
    Mistake("a misspelt IAM password key",
            _set("credentials", {"iam": {"username": "u", "pasword": "p", "domain_name": "d"}}),
            "credentials.iam.pasword: unknown key; did you mean 'password'? remove it or fix "
            f"its spelling {REFERENCE}"),
    Mistake("a tab in the indentation", "poll:\n\tinterval: 60s\n",
            "invalid YAML at line 2, column 1: found character '\\t' that cannot start any "
            "token; indent with spaces, not tabs"),
    Mistake("a bracket left open", "poll:\n  interval: 60s\ntargets: [\n",
            "invalid YAML at line 4, column 1: expected the node content, but found "
            "'<stream end>'; check the indentation, colons and quotes"),
    Mistake("an empty file", "", "is empty; start from config/exporter.example.yaml"),
    Mistake("the example's placeholder project",
            _set("targets.0.project_id", "REPLACE-WITH-YOUR-PROJECT-ID"),
            "targets[0].project_id: 'REPLACE-WITH-YOUR-PROJECT-ID' is the example's placeholder; "
            "put your project ID there (32 hexadecimal characters: console, My Credentials, "
            "Projects), and your objects' IDs under it"),
    Mistake("a project's name for its ID", _set("targets.0.project_id", "cn-north-4"),
            "targets[0].project_id: 'cn-north-4' is a project's name, not its ID; the project "
            "ID is 32 hexadecimal characters (console: My Credentials, Projects)"),
    Mistake("a sub-project's name for its ID",
            _set("targets.0.project_id", "ap-southeast-1_team"),
            "targets[0].project_id: 'ap-southeast-1_team' is a project's name, not its ID; the "
            "project ID is 32 hexadecimal characters (console: My Credentials, Projects)"),
    Mistake("true where a mapping belongs", _set("targets.0.discover", {"image_servers": True}),
            "targets[0].discover.image_servers: true is not a mapping; write {} to discover "
            "every one"),
    Mistake("a password to IAM over plain http",
            _set("credentials", {"iam": {"username": "u", "password": "p", "domain_name": "d",
                                         "endpoint": "http://iam.example.com"}}),
            "credentials.iam.endpoint: 'http://iam.example.com' would send the password in "
            "clear text; use https://"),
    Mistake("a temporary key's token over plain http",
            lambda d: (d["credentials"].update(security_token="t"),
                       d["targets"][0].update(workspace_endpoint="http://ws.example.com")),
            "targets[0].workspace_endpoint: 'http://ws.example.com' would send a token in clear "
            "text; use https://"),
]  # fmt: skip


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_a_newcomer_mistake_is_one_clear_line(tmp_path: Path, mistake: Mistake) -> None:
    path = tmp_path / "exporter.yaml"
    if isinstance(mistake.change, str):
        path.write_text(mistake.change)
    else:
        data = copy.deepcopy(GOOD)
        mistake.change(data)
        path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.problems == [f"{path}: {mistake.message}"]
    assert "\n" not in info.value.problems[0]
    assert not any(words in info.value.problems[0] for words in PYDANTIC_WORDS)


def test_plain_http_and_a_secret_file_others_may_read_are_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "sk"
    secret.write_text("real-secret-key")
    secret.chmod(0o644)
    data = copy.deepcopy(GOOD)
    data["credentials"] = {"access_key": "AKREAL000000000000001", "secret_key_file": str(secret)}
    data["targets"][0]["workspace_endpoint"] = "http://ws.example.com"
    path = tmp_path / "exporter.yaml"
    path.write_text(yaml.safe_dump(data))
    load_config(path, env={})  # loads: warned, not refused
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        f"credentials.secret_key_file: {secret} is readable by its group or others (mode "
        f"0644); make it readable by the exporter's user alone: chmod 600 {secret}",
        "targets[0].workspace_endpoint: http://ws.example.com is plain http: answers can be "
        "read and changed on the way; use https://",
    ]
    secret.chmod(0o600)
    caplog.clear()
    data["targets"][0].pop("workspace_endpoint")
    path.write_text(yaml.safe_dump(data))
    load_config(path, env={})
    assert not caplog.records
