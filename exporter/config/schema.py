"""The configuration file's schema: pydantic models of its shape, types and formats.

Only what one field can say about itself is checked here; rules that relate fields
(regions and endpoints, duplicates, credentials, secret files) are checked by ``resolve``,
so that every problem is reported with the path of the field that has to change.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator

from exporter.cloud.regions import DEFAULT_IAM_ENDPOINT
from exporter.config.settings import PollSettings
from exporter.config.validation import StrictModel
from exporter.domain.targets import DEVSERVER_IMAGE_ID_RE, IMAGE_SERVER_ID_RE, PROJECT_ID_RE

EXAMPLE_FILE = "config/exporter.example.yaml"


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


Endpoint = Annotated[str, AfterValidator(_check_endpoint)]
# A region ID, or a project's name (a region, or <region>_<suffix>): what a newcomer copies
# from the console's project list instead of the ID beside it.
_PROJECT_NAME = re.compile(r"[a-z]{2,}-[a-z]+-[0-9]+(?:_[A-Za-z0-9_-]*)?")


def _not_a_project_name(value: str) -> str:
    if _PROJECT_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is a project's name, not its ID; the project ID is 32 hexadecimal "
            "characters (console: My Credentials, Projects)"
        )
    return value


ProjectId = Annotated[
    str,
    AfterValidator(_not_a_project_name),  # first: a name is said to be one, not a bad ID
    AfterValidator(
        _check_pattern(
            PROJECT_ID_RE,
            "a project ID (1 to 64 letters, digits and hyphens)",
            "0123456789abcdef0123456789abcdef",
        )
    ),
]
DevServerImageId = Annotated[
    str,
    AfterValidator(
        _check_pattern(
            DEVSERVER_IMAGE_ID_RE,
            "a dev-server image ID (a lower-case UUID)",
            "2f1a5c8e-6d3b-4c1e-9a7f-0b8e4d2c6a10",
        )
    ),
]
ImageServerId = Annotated[
    str,
    AfterValidator(
        _check_pattern(
            IMAGE_SERVER_ID_RE,
            "an image-server ID (letters, digits, '-' and '_', up to 128)",
            "9a3e1c7b-52d4-4f0e-8b6a-1d2c3e4f5a6b",
        )
    ),
]


class IamModel(StrictModel):
    """``credentials.iam``: a password identity exchanged for IAM tokens."""

    username: str = Field(min_length=1)
    password: SecretStr | None = None
    password_file: Path | None = None
    domain_name: str = Field(min_length=1)
    endpoint: Endpoint = DEFAULT_IAM_ENDPOINT


class PodIdentityModel(StrictModel):
    """``credentials.pod_identity``: CCE pod identity (defaults from the environment CCE
    sets in the pod)."""

    uri: Endpoint | None = None
    token_file: Path | None = None


class OidcModel(StrictModel):
    """``credentials.oidc``: workload identity federation (defaults from the SDK's
    ``HUAWEICLOUD_OIDC_*`` environment)."""

    provider_urn: str | None = Field(default=None, min_length=1, max_length=512)
    agency_urn: str | None = Field(default=None, min_length=1, max_length=512)
    token_file: Path | None = None
    session_name: str | None = Field(default=None, min_length=1, max_length=64)
    duration_seconds: int | None = Field(default=None, ge=900, le=43_200)
    sts_endpoint: Endpoint | None = None


class IdTokenModel(StrictModel):
    """``credentials.id_token``: an identity provider's ID token exchanged with IAM
    (defaults from ``HUAWEICLOUD_SDK_IDP_ID``, ``HUAWEICLOUD_SDK_ID_TOKEN_FILE``)."""

    idp_id: str | None = Field(default=None, min_length=1, max_length=128)
    token_file: Path | None = None
    iam_endpoint: Endpoint | None = None


class ProfileModel(StrictModel):
    """``credentials.profile``: the SDK's credentials file."""

    file: Path | None = None


CredentialSource = Literal[
    "keys", "iam", "metadata", "pod_identity", "oidc", "id_token", "profile", "auto"
]


class CredentialsModel(StrictModel):
    """``credentials``: where the keys come from (``source``; by default ``keys`` when an
    access key is set, ``iam`` with an ``iam`` block, else ``auto``) and what that source
    needs."""

    source: CredentialSource | None = None
    access_key: str | None = None
    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None
    security_token: SecretStr | None = None
    security_token_file: Path | None = None
    iam: IamModel | None = None
    metadata_endpoint: Endpoint | None = None
    pod_identity: PodIdentityModel | None = None
    oidc: OidcModel | None = None
    id_token: IdTokenModel | None = None
    profile: ProfileModel | None = None


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(
            f"{value!r} is not a regular expression ({exc}); it is matched against the whole "
            "name, as in Prometheus relabelling, e.g. 'prod-.*'"
        ) from None
    return value


Regex = Annotated[str, AfterValidator(_check_regex)]


class DiscoverDevServerImagesModel(StrictModel):
    """``discover.devserver_images``: which listed dev-server images to watch."""

    server_type: Literal["BMS", "ECS", "HPS"] | None = None
    # Whose dev servers are counted per image: every user's (GET /dev-servers/all, for an
    # account with ModelArts admin rights) or the exporter's IAM user's own.
    servers: Literal["all", "mine"] = "all"
    name_include: Regex | None = None
    name_exclude: Regex | None = None


class DiscoverImageServersModel(StrictModel):
    """``discover.image_servers``: which listed image servers to watch."""

    enterprise_project_id: str | None = Field(default=None, min_length=1, max_length=64)
    name_include: Regex | None = None
    name_exclude: Regex | None = None


class DiscoverModel(StrictModel):
    """``discover``: find a project's objects with list calls; ``{}`` for a kind means all."""

    devserver_images: DiscoverDevServerImagesModel | None = None
    image_servers: DiscoverImageServersModel | None = None

    @field_validator("devserver_images", "image_servers", mode="before")
    @classmethod
    def _present_means_all(cls, value: object) -> object:
        # `image_servers:` with every option commented out is YAML null: it still asks
        # for discovery (an absent key, which pydantic does not validate, asks for none).
        if value is True:
            raise ValueError("true is not a mapping; write {} to discover every one")
        return {} if value is None else value


class TargetModel(StrictModel):
    """One entry of ``targets``: the objects of one project, listed by ID or discovered."""

    project_id: ProjectId
    region: str | None = None
    modelarts_endpoint: Endpoint | None = None
    workspace_endpoint: Endpoint | None = None
    devserver_images: list[DevServerImageId] = Field(default_factory=list)
    image_servers: list[ImageServerId] = Field(default_factory=list)
    discover: DiscoverModel | None = None
    credentials: CredentialsModel | None = None


class AccountModel(StrictModel):
    """One entry of ``accounts``: every project these credentials can see."""

    name: str = Field(min_length=1, max_length=64)
    credentials: CredentialsModel | None = None
    domain_id: str | None = Field(default=None, min_length=1, max_length=64)
    iam_endpoint: Endpoint = DEFAULT_IAM_ENDPOINT
    sts_endpoint: Endpoint | None = None  # default: HUAWEICLOUD_SDK_STS_ENDPOINT, else cn-north-4
    regions: list[str] | None = None
    project_include: Regex | None = None
    project_exclude: Regex | None = None
    modelarts_endpoint: Endpoint | None = None
    workspace_endpoint: Endpoint | None = None
    discover: DiscoverModel | None = None


class TlsConfigModel(StrictModel):
    """``http_client.tls_config``: which certificates are trusted."""

    ca_file: Path | None = None
    insecure_skip_verify: bool = False


class HttpClientModel(StrictModel):
    """``http_client``: how every call to the cloud crosses the network, as Prometheus'
    HTTP client configuration says it."""

    proxy_url: Endpoint | None = None
    no_proxy: str | None = None  # comma-separated hosts, domains, IP networks
    tls_config: TlsConfigModel = Field(default_factory=TlsConfigModel)


class ConfigModel(StrictModel):
    """The whole configuration file."""

    credentials: CredentialsModel = Field(default_factory=CredentialsModel)
    http_client: HttpClientModel = Field(default_factory=HttpClientModel)
    poll: PollSettings = Field(default_factory=PollSettings)
    targets: list[TargetModel] = Field(default_factory=list)
    accounts: list[AccountModel] = Field(default_factory=list)
