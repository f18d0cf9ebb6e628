"""The shipped IAM policies: valid, made of documented actions, and exactly what each kind of
configuration needs according to --check-config."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from exporter.cloud.permissions import ACTIONS, hint
from exporter.domain.accounts import Account
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.targets import Discovery, Resource, Sweep, SweepKey
from exporter.polling.budget import actions_needed
from tests.helpers import AK, PROJECT, SK, image_id, settings

IAM = Path(__file__).resolve().parents[2] / "deploy" / "iam"
URL = "https://example.invalid"
CREDS = AkSkCredentials(AK, SK)
SWEEP = Sweep(SweepKey(Resource.IMAGE_SERVER, PROJECT), URL, CREDS)
IMAGES = Sweep(SweepKey(Resource.DEVSERVER_IMAGE, PROJECT), URL, CREDS)
ACCOUNT = Account("prod", CREDS, URL, discovery={r: Discovery() for r in Resource})


def actions(name: str, kind: str = "identity-policy") -> tuple[str, ...]:
    doc = json.loads((IAM / f"{name}.{kind}.json").read_text())
    assert doc["Version"] == ("5.0" if kind == "identity-policy" else "1.1")
    [statement] = doc["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement.get("Resource", ["*"]) == ["*"]
    return tuple(statement["Action"])


@pytest.mark.parametrize("name", ["by-id", "discovery", "full"])
def test_every_policy_is_documented_actions_in_both_forms(name: str) -> None:
    assert actions(name) == actions(name, "role-policy")
    assert set(actions(name)) <= {a for a in ACTIONS.values() if a}
    assert list(actions(name)) == sorted(actions(name))


def test_each_policy_is_what_its_kind_of_configuration_needs() -> None:
    by_id = settings(URL, [image_id(1)], ["srv-1"])
    discovery = replace(settings(URL, [image_id(1)]), sweeps=(SWEEP, IMAGES))
    accounts = replace(settings(URL), accounts=(ACCOUNT,))
    quick = replace(discovery, poll=replace(discovery.poll, transitional_interval=5.0))
    both = replace(by_id, sweeps=(SWEEP, IMAGES))
    assert actions_needed(by_id) == actions("by-id")
    assert actions_needed(discovery) == actions_needed(accounts) == actions("discovery")
    assert actions_needed(quick) == actions_needed(both) == actions("full")
    assert actions_needed(settings(URL, [image_id(1)])) == ()  # dev-server images need none
    # Counting only the caller's own dev servers needs only the per-user list.
    mine = Sweep(IMAGES.key, URL, CREDS, Discovery(servers="mine"))
    assert actions_needed(replace(settings(URL), sweeps=(mine,))) == (
        "modelarts:devserver:listByUser",
    )


def test_a_403_names_what_to_grant() -> None:
    assert hint("image_server_list") == "the IAM user needs the action workspace:imageServer:list"
    assert "ModelArts CommonOperations" in hint("devserver_image")
    assert hint("devserver_list_all") == "the IAM user needs the action modelarts:devserver:list"
    assert hint("devserver_list") == (
        "the IAM user needs the action modelarts:devserver:listByUser"
    )


@pytest.mark.parametrize(("said", "hint_given"), [
    ("Incorrect IAM authentication information: verify aksk signature fail.",
     "check the secret key (it must belong to the access key) and this machine's clock "
     "(the cloud refuses signatures more than 15 minutes off)"),
    ("Incorrect IAM authentication information: calc ak sk signature fail:signature expired.",
     "the temporary key expired before it was renewed; see the credentials log lines"),
    ("Incorrect IAM authentication information: The access key does not exist.",
     "the access key ID is not known: check it, and that it was not deleted"),
    ("The token is invalid or has expired.",
     "the IAM token was refused: check the password, domain name and IAM endpoint"),
    ("something nobody documented", None),
])  # fmt: skip
def test_a_401_says_what_to_check(said: str, hint_given: str | None) -> None:
    from exporter.cloud.permissions import unauthorized_hint

    assert unauthorized_hint(said) == hint_given
