"""Configuration: every kind of mistake names its field and the fix; good files resolve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.cloud import paths
from exporter.config.errors import ConfigError
from exporter.config.load import load_config, parse_config
from exporter.config.settings import PollSettings, parse_duration
from exporter.domain.credentials import AkSkCredentials, IamCredentials
from exporter.domain.targets import Resource

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "2f1a5c8e-6d3b-4c1e-9a7f-0b8e4d2c6a10"
SECRET = "SUPERSECRET-sk-value-4711"


def good(**overrides: Any) -> dict[str, Any]:
    """A valid configuration with some keys replaced."""
    data: dict[str, Any] = {
        "credentials": {"access_key": "AK", "secret_key": SECRET},
        "poll": {"interval": "60s", "timeout": "10s", "concurrency": 4},
        "targets": [
            {"project_id": "0123456789abcdef", "region": "cn-north-4",
             "devserver_images": [IMAGE], "image_servers": ["srv-1"]}
        ],
    }  # fmt: skip
    data.update(overrides)
    return data


def target(**overrides: Any) -> dict[str, Any]:
    t: dict[str, Any] = {
        "project_id": "0123456789abcdef",
        "region": "cn-north-4",
        "devserver_images": [IMAGE],
    }
    t.update(overrides)
    return t


def problems_of(data: Any, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env or {})
    return info.value.problems


def test_good_config_resolves_with_region_endpoints() -> None:
    s = parse_config(good(), {})
    assert s.poll.interval == 60 and s.poll.timeout == 10 and s.poll.concurrency == 4
    kinds = {t.key.resource: t for t in s.targets}
    assert (
        kinds[Resource.DEVSERVER_IMAGE].endpoint == "https://modelarts.cn-north-4.myhuaweicloud.com"
    )
    assert kinds[Resource.IMAGE_SERVER].endpoint == "https://appstream.cn-north-4.myhuaweicloud.com"
    assert (
        paths.detail(kinds[Resource.IMAGE_SERVER].key) == "/v1/0123456789abcdef/image-servers/srv-1"
    )


def test_workspace_region_split_and_modelarts_exception() -> None:
    s = parse_config(good(targets=[target(region="ap-southeast-1", image_servers=["s"])]), {})
    endpoints = {t.key.resource: t.endpoint for t in s.targets}
    assert endpoints[Resource.IMAGE_SERVER] == "https://workspace.ap-southeast-1.myhuaweicloud.com"
    assert (
        endpoints[Resource.DEVSERVER_IMAGE] == "https://modelarts.ap-southeast-1.myhuaweicloud.cn"
    )


def test_endpoint_override_wins_and_unknown_region_is_then_fine() -> None:
    s = parse_config(
        good(targets=[target(region="xx-private-1", modelarts_endpoint="http://127.0.0.1:8/")]), {}
    )
    assert s.targets[0].endpoint == "http://127.0.0.1:8"


def test_environment_credentials_win_over_file() -> None:
    env = {
        "HUAWEICLOUD_SDK_AK": "ENVAK",
        "HUAWEICLOUD_SDK_SK": "ENVSK",
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": "TOK",
    }
    creds = parse_config(good(), env).targets[0].credentials
    assert creds == AkSkCredentials("ENVAK", "ENVSK", "TOK")


def test_credentials_from_environment_alone() -> None:
    data = good()
    del data["credentials"]
    creds = (
        parse_config(data, {"HUAWEICLOUD_SDK_AK": "A", "HUAWEICLOUD_SDK_SK": "B"})
        .targets[0]
        .credentials
    )
    assert creds == AkSkCredentials("A", "B")


def test_secret_files_are_read_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "sk").write_text(SECRET + "\n")
    (tmp_path / "tok").write_text("token-value\n")
    data = good(credentials={"access_key": "AK", "secret_key_file": str(tmp_path / "sk"),
                             "security_token_file": str(tmp_path / "tok")})  # fmt: skip
    assert parse_config(data, {}).targets[0].credentials == AkSkCredentials(
        "AK", SECRET, "token-value"
    )


def test_iam_credentials_with_password_from_env() -> None:
    data = good(credentials={"iam": {"username": "u", "domain_name": "d"}})
    creds = parse_config(data, {"HUAWEICLOUD_IAM_PASSWORD": "pw-secret"}).targets[0].credentials
    assert creds == IamCredentials("u", "pw-secret", "d", "https://iam.myhuaweicloud.com")


def test_per_target_credentials_override_the_default() -> None:
    data = good(
        targets=[
            target(),
            target(project_id="p2", credentials={"access_key": "A2", "secret_key": "S2-long"}),
        ]
    )
    s = parse_config(data, {})
    assert s.targets[0].credentials == AkSkCredentials("AK", SECRET)
    assert s.targets[1].credentials == AkSkCredentials("A2", "S2-long")
    assert set(s.secrets) == {SECRET, "S2-long"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (60, 60.0),
        ("90", 90.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        (2.5, 2.5),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


BAD_CASES: list[tuple[str, dict[str, Any], dict[str, str], str, str]] = [
    # (name, config, env, field path in the message, words of the fix)
    ("oidc without its URNs", good(credentials={"source": "oidc"}), {},
     "credentials: source oidc needs credentials.oidc.provider_urn", "HUAWEICLOUD_OIDC_AGENCY_URN"),
    ("pod identity outside a pod", good(credentials={"source": "pod_identity"}), {},
     "credentials.pod_identity", "HC_CONTAINER_CREDENTIALS_FULL_URI"),
    ("secret key without access key", good(credentials={"secret_key": SECRET}), {},
     "credentials.access_key", "HUAWEICLOUD_SDK_AK"),
    ("access key without secret", good(credentials={"access_key": "AK"}), {},
     "credentials.secret_key", "secret_key_file"),
    ("both secret and secret file", good(credentials={"access_key": "AK", "secret_key": SECRET,
                                                      "secret_key_file": "/x"}), {},
     "credentials.secret_key", "not both"),
    ("unreadable secret file", good(credentials={"access_key": "AK", "secret_key_file": "/nonexistent/sk"}), {},
     "credentials.secret_key_file", "cannot read"),
    ("keys and iam at once", good(credentials={"access_key": "AK", "secret_key": SECRET,
                                               "iam": {"username": "u", "domain_name": "d"}}), {},
     "credentials:", "keep one"),
    ("iam without password", good(credentials={"iam": {"username": "u", "domain_name": "d"}}), {},
     "credentials.iam.password", "HUAWEICLOUD_IAM_PASSWORD"),
    ("wrong type for concurrency", good(poll={"concurrency": "many"}), {}, "poll.concurrency", "expected a whole number"),
    ("zero concurrency", good(poll={"concurrency": 0}), {}, "poll.concurrency", "must be 1 or more"),
    ("bad duration", good(poll={"interval": "soon"}), {}, "poll.interval", "such as 500ms"),
    ("negative duration", good(poll={"interval": -5}), {}, "poll.interval", "longer than zero"),
    ("interval shorter than timeout", good(poll={"interval": "5s", "timeout": "10s"}), {},
     "poll.timeout", "shorter"),
    ("unknown top-level key", {**good(), "polling": {}}, {}, "polling", "fix its spelling"),
    ("unknown nested key", good(poll={"intervall": "5s"}), {}, "poll.intervall", "fix its spelling"),
    ("bad image id", good(targets=[target(devserver_images=["not-a-uuid"])]), {},
     "targets[0].devserver_images[0]", "lower-case UUID"),
    ("upper-case uuid", good(targets=[target(devserver_images=[IMAGE.upper()])]), {},
     "targets[0].devserver_images[0]", "lower-case UUID"),
    ("path traversal in server id", good(targets=[target(image_servers=["../admin"])]), {},
     "targets[0].image_servers[0]", "image-server ID"),
    ("bad project id", good(targets=[target(project_id="has space")]), {},
     "targets[0].project_id", "project ID"),
    ("duplicate ids", good(targets=[target(devserver_images=[IMAGE, IMAGE])]), {},
     "targets[0].devserver_images[1]", "listed already at targets[0].devserver_images[0]"),
    ("duplicate across entries", good(targets=[target(), target()]), {},
     "targets[1].devserver_images[0]", "remove one"),
    ("empty target list", good(targets=[]), {}, "targets:", "add at least one"),
    ("target without ids", good(targets=[{"project_id": "p", "region": "cn-north-4"}]), {},
     "targets[0]:", "add an ID"),
    ("unknown region", good(targets=[target(region="mars-1")]), {},
     "targets[0].region", "modelarts_endpoint"),
    ("no region and no endpoint", good(targets=[{"project_id": "p", "image_servers": ["s"]}]), {},
     "targets[0]:", "workspace_endpoint"),
    ("bad endpoint url", good(targets=[target(modelarts_endpoint="ftp://x")]), {},
     "targets[0].modelarts_endpoint", "https://host"),
    ("missing targets key", {"credentials": {"access_key": "A", "secret_key": SECRET}}, {},
     "targets:", "or an account under accounts"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "data", "env", "path", "fix"), BAD_CASES, ids=[c[0] for c in BAD_CASES]
)
def test_bad_config_names_field_and_fix(
    name: str, data: dict[str, Any], env: dict[str, str], path: str, fix: str
) -> None:
    problems = problems_of(data, env)
    matching = [p for p in problems if p.startswith(path)]
    assert matching, f"no problem names {path!r}: {problems}"
    assert any(fix in p for p in matching), f"no fix {fix!r} in {matching}"
    assert not any(SECRET in p for p in problems)


def test_all_mistakes_reported_at_once() -> None:
    data = good(targets=[target(devserver_images=["bad1", "bad2"], project_id="bad id")])
    assert len(problems_of(data)) == 3


def test_non_mapping_and_yaml_errors(tmp_path: Path) -> None:
    assert problems_of(["a list"])[0].startswith("(top level)")
    broken = tmp_path / "broken.yaml"
    broken.write_text("targets: [\n  - project_id: x\n   bad indent: {\n")
    with pytest.raises(ConfigError, match="invalid YAML at line"):
        load_config(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(empty)
    with pytest.raises(ConfigError, match="config file: cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_example_config_is_valid_and_documents_every_key(tmp_path: Path) -> None:
    example = ROOT / "config" / "exporter.example.yaml"
    with pytest.raises(ConfigError) as info:  # unedited, its placeholders are refused
        load_config(example, env={})
    assert [p.split(": ")[1] for p in info.value.problems] == [
        "credentials.access_key",
        "credentials.secret_key",
        "targets[0].project_id",
    ]
    real = {"HUAWEICLOUD_SDK_AK": "AKREAL000000000000001", "HUAWEICLOUD_SDK_SK": "real-sk"}
    edited = tmp_path / "exporter.yaml"
    edited.write_text(example.read_text().replace("REPLACE-WITH-YOUR-PROJECT-ID", "0" * 32))
    settings = load_config(edited, env=real)
    assert settings.targets
    text = example.read_text()
    from dataclasses import fields

    from exporter.config.schema import (
        AccountModel,
        CredentialsModel,
        DiscoverDevServerImagesModel,
        DiscoverImageServersModel,
        DiscoverModel,
        IamModel,
        TargetModel,
    )

    models = (CredentialsModel, IamModel, TargetModel, DiscoverModel, AccountModel,
              DiscoverDevServerImagesModel, DiscoverImageServersModel)  # fmt: skip
    keys = [(m.__name__, k) for m in models for k in m.model_fields]
    keys += [("PollSettings", f.name) for f in fields(PollSettings)]
    for owner, key in keys:
        assert f"{key}:" in text, f"{owner}.{key} is not documented in {example.name}"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_check_config_cli_exit_codes_and_no_secret(tmp_path: Path) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(good()))
    result = run_cli("--check-config", "--config.file", str(ok))
    assert result.returncode == 0, result.stderr
    assert "configuration OK: 2 targets" in result.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(good(targets=[target(devserver_images=["nope"])], poll={"interval": "x"}))
    )
    result = run_cli("--check-config", "--config.file", str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert all(line.startswith("config error: ") for line in lines)
    assert SECRET not in result.stderr + result.stdout


@pytest.mark.slow
def test_no_config_file_explains_demo() -> None:
    result = run_cli("--check-config")
    assert result.returncode == 1
    assert "--config.file" in result.stderr and "--demo" in result.stderr
