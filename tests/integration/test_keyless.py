"""The exporter on each keyless source against the simulated cloud, as a user runs it: the
objects exported, the key's expiry served, what goes wrong said plainly, and nothing the
sources hand out shown anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.cloud.transport import RetryPolicy
from exporter.domain.credentials import (
    FederatedSource,
    MetadataSource,
    OidcSource,
    PodIdentitySource,
    TemporarySource,
)
from exporter.domain.targets import Resource
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter, ListenAddress
from exporter.simulator import SimulatorServer
from exporter.simulator.keys import POD_IDENTITY_PATH
from tests.helpers import PROJECT, image_server_body, run_cli, settings, status_page, value

EXPIRY = "huaweicloud_image_exporter_credentials_expiry_timestamp_seconds"


def source(name: str, url: str, token_file: Path) -> TemporarySource:
    token_file.write_text("projected-token-secret-0123")
    sources: dict[str, TemporarySource] = {
        "metadata": MetadataSource(url),
        "pod_identity": PodIdentitySource(url + POD_IDENTITY_PATH, str(token_file)),
        "oidc": OidcSource(url, "urn:p", "urn:a", str(token_file)),
        "id_token": FederatedSource(url, "idp", str(token_file)),
    }
    return sources[name]


@pytest.mark.parametrize("name", ["metadata", "pod_identity", "oidc", "id_token"])
async def test_each_source_exports_the_objects_and_shows_no_secret(
    simulator: SimulatorServer, tmp_path: Path, name: str
) -> None:
    cloud = simulator.cloud
    cloud.put(Resource.IMAGE_SERVER, PROJECT, "srv-1", image_server_body("srv-1"))
    keys = cloud.keys
    keys.pod_token = "projected-token-secret-0123"
    keys.oidc_tokens = keys.idp_tokens = {"projected-token-secret-0123"}
    credentials = source(name, simulator.url, tmp_path / "token")
    state = tmp_path / "state.json"
    e = Exporter(settings(simulator.url, [], ["srv-1"], credentials=credentials),
                 retry_policy=RetryPolicy(retries=0), storage_path=str(state))  # fmt: skip
    await e.start(ListenAddress("127.0.0.1", 0), schedule=False)
    try:
        snap = await e.run_cycle()
        assert [t.up for t in snap.targets] == [True]
        [(issued_by, access_key, expires)] = keys.issued
        assert issued_by == name
        metrics = b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()
        assert value(metrics, EXPIRY, source=name) == pytest.approx(expires, abs=1e-3)
        page = await status_page(e)
    finally:
        await e.stop()
    secret = cloud.access_keys[access_key]
    shown = metrics + page + state.read_text()
    for what in (secret.secret_key, secret.security_token or "", "projected-token-secret-0123"):
        assert what not in shown


async def test_an_instance_without_an_agency_says_what_to_do(simulator: SimulatorServer) -> None:
    simulator.cloud.keys.agency = False
    simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, "srv-1", image_server_body("srv-1"))
    e = Exporter(settings(simulator.url, [], ["srv-1"], credentials=MetadataSource(simulator.url)),
                 retry_policy=RetryPolicy(retries=0))  # fmt: skip
    try:
        [target] = (await e.run_cycle()).targets
    finally:
        await e.stop()
    assert not target.up and target.error_label == "credentials"
    assert target.error == (
        "credentials: metadata: this instance has no agency; in the ECS console open the "
        "instance, then Management Information, Agency, and choose (or create, in IAM: "
        "Agencies, for the ECS service) an agency holding the exporter's policies"
    )


async def test_a_metadata_session_token_that_expired_is_renewed_once(
    simulator: SimulatorServer,
) -> None:
    simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, "srv-1", image_server_body("srv-1"))
    fetcher_cloud = simulator.cloud
    e = Exporter(settings(simulator.url, [], ["srv-1"], credentials=MetadataSource(simulator.url)),
                 retry_policy=RetryPolicy(retries=0))  # fmt: skip
    try:
        await e.run_cycle()
        fetcher_cloud.keys._session_tokens.clear()  # the session token expired
        auth = next(iter(e.client._authenticators.values()))
        key = await auth._fetcher.fetch(None)  # type: ignore[attr-defined]
        assert key.access_key in fetcher_cloud.access_keys
        assert fetcher_cloud.requests[("metadata_token", 200)] == 2  # one new token
        assert fetcher_cloud.requests[("metadata_key", 401)] == 1  # one retry, not a loop
    finally:
        await e.stop()


def config(url: str, credentials: dict[str, Any]) -> dict[str, Any]:
    return {"credentials": credentials,
            "targets": [{"project_id": PROJECT, "workspace_endpoint": url,
                         "image_servers": ["srv-1"]}]}  # fmt: skip


@pytest.mark.parametrize(("credentials", "env", "said"), [
    ({"source": "metadata", "metadata_endpoint": "http://127.0.0.1:9"}, {},
     "credentials: source metadata (configured)"),
    ({}, {"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK"},
     "credentials: source keys (an access key is set)"),
    ({"source": "auto"}, {"HC_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/c",
                          "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/t"},
     "credentials: source pod_identity (auto: HC_CONTAINER_CREDENTIALS_FULL_URI is set"),
    ({}, {"HUAWEICLOUD_OIDC_PROVIDER_URN": "urn:p", "HUAWEICLOUD_OIDC_AGENCY_URN": "urn:a",
          "HUAWEICLOUD_OIDC_TOKEN_FILE": "/t"},
     "credentials: source oidc (auto: HUAWEICLOUD_OIDC_PROVIDER_URN and "
     "HUAWEICLOUD_OIDC_AGENCY_URN are set)"),
    ({}, {}, "credentials: source metadata (auto: no OIDC or key environment, no credentials "
             "file, no pod identity: the instance's agency through its metadata service)"),
])  # fmt: skip
async def test_check_config_says_which_source_and_why(
    tmp_path: Path, credentials: dict[str, Any], env: dict[str, str], said: str
) -> None:
    path = tmp_path / "exporter.yaml"
    path.write_text(yaml.safe_dump(config("http://127.0.0.1:9", credentials)))
    code, out, err = await run_cli(
        "--check-config", "--config.file", str(path), env={"HOME": str(tmp_path), **env}
    )
    assert code == 0, err
    assert said in out


def test_a_profile_gives_keys_or_an_id_token(tmp_path: Path) -> None:
    from exporter.config.load import parse_config

    profile = tmp_path / "credentials"
    profile.write_text("[basic]\nak = PROFILEAK\nsk = profile-secret\n")
    data = config("http://127.0.0.1:9", {"source": "profile", "profile": {"file": str(profile)}})
    [creds] = parse_config(data, {}).credentials
    assert (creds.access_key, creds.secret_key) == ("PROFILEAK", "profile-secret")  # type: ignore[union-attr]
    profile.write_text(
        "[basic]\nidp_id = my-idp\nid_token_file = /t\niam_endpoint = https://iam.x\n"
    )
    [creds] = parse_config(data, {}).credentials
    assert creds == FederatedSource("https://iam.x", "my-idp", "/t")
