"""A ``credentials`` block resolved: which source gives the keys, and what it needs, from
the file or, as the official SDK reads them, from the environment (the file wins, except
for the top-level block's keys, which ``HUAWEICLOUD_SDK_AK``/``SK`` override as before).

``auto`` follows the SDK's chain (``CredentialProviderChain``): OIDC federation when its
environment is set, then keys from the environment, then the SDK's credentials file, then
the instance's agency (metadata), then CCE pod identity. The chain is decided here, from
what is present, so that ``--check-config`` can say which source it chose and why; one
difference from the SDK, said there too: in a pod with pod identity set up, pod identity is
chosen over the node's metadata service (which would give the node's agency, not the pod's).
"""

from __future__ import annotations

import configparser
import ipaddress
import logging
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from exporter.cloud.regions import DEFAULT_IAM_ENDPOINT
from exporter.config.errors import ConfigError
from exporter.config.files import MAX_SECRET_BYTES, read_text
from exporter.config.schema import CredentialsModel
from exporter.domain.credentials import (
    AkSkCredentials,
    Credentials,
    FederatedSource,
    IamCredentials,
    MetadataSource,
    OidcSource,
    PodIdentitySource,
)

ENV_ACCESS_KEY = "HUAWEICLOUD_SDK_AK"
ENV_SECRET_KEY = "HUAWEICLOUD_SDK_SK"  # noqa: S105 - a variable name
ENV_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"  # noqa: S105 - a variable name
ENV_IAM_PASSWORD = "HUAWEICLOUD_IAM_PASSWORD"  # noqa: S105 - a variable name
ENV_POD_URI = "HC_CONTAINER_CREDENTIALS_FULL_URI"
ENV_POD_TOKEN_FILE = "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE"  # noqa: S105 - a variable name
ENV_OIDC = {
    "provider_urn": "HUAWEICLOUD_OIDC_PROVIDER_URN",
    "agency_urn": "HUAWEICLOUD_OIDC_AGENCY_URN",
    "token_file": "HUAWEICLOUD_OIDC_TOKEN_FILE",
    "token": "HUAWEICLOUD_OIDC_ID_TOKEN",
    "session_name": "HUAWEICLOUD_OIDC_SESSION_NAME",
    "duration_seconds": "HUAWEICLOUD_OIDC_DURATION_SECONDS",
}
ENV_STS_ENDPOINT = "HUAWEICLOUD_SDK_STS_ENDPOINT"
ENV_IDP_ID = "HUAWEICLOUD_SDK_IDP_ID"
ENV_ID_TOKEN_FILE = "HUAWEICLOUD_SDK_ID_TOKEN_FILE"  # noqa: S105 - a variable name
ENV_IAM_ENDPOINT = "HUAWEICLOUD_SDK_IAM_ENDPOINT"
ENV_PROFILE = "HUAWEICLOUD_SDK_CREDENTIALS_FILE"
log = logging.getLogger(__name__)

DEFAULT_STS_ENDPOINT = "https://sts.cn-north-4.myhuaweicloud.com"
PROFILE_SECTION = "basic"  # the SDK's section for project-scoped credentials

# The values config/exporter.example.yaml ships with: a copy used unedited says so at once,
# not with 401s from every API. They are the example's words, not secrets, so they are named.
EXAMPLE_PLACEHOLDERS = frozenset({"YOUR_ACCESS_KEY_ID", "YOUR_SECRET_ACCESS_KEY"})
EXAMPLE_PROJECT_ID = "REPLACE-WITH-YOUR-PROJECT-ID"


def _read_secret(path: Path, where: str, problems: list[str]) -> str | None:
    try:
        value = read_text(path, MAX_SECRET_BYTES, where).strip()
    except ConfigError as exc:
        problems += exc.problems
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = 0
    if mode & 0o077:  # as ssh says of a private key others may read
        log.warning(
            "%s: %s is readable by its group or others (mode %04o); make it readable by the "
            "exporter's user alone: chmod 600 %s", where, path, mode & 0o7777, path,
        )  # fmt: skip
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


def resolve_credentials(
    model: CredentialsModel,
    env: Mapping[str, str],
    where: str,
    problems: list[str],
    *,
    top: bool,
    notes: list[str] | None = None,
) -> Credentials | None:
    """Resolve one credentials block; only the top-level block takes its keys from
    ``HUAWEICLOUD_SDK_AK``/``SK``. ``notes`` gets one line saying which source was chosen."""
    keys_env = env if top else {}
    source: str | None = model.source
    why = "configured"
    if source is None:
        if model.iam is not None:
            source, why = "iam", "credentials.iam is set"
        elif (
            model.access_key
            or model.secret_key
            or model.secret_key_file
            or (keys_env.get(ENV_ACCESS_KEY) or keys_env.get(ENV_SECRET_KEY))
        ):
            source, why = "keys", "an access key is set"
        else:
            source, why = _auto(env)
    elif source == "auto":
        source, why = _auto(env)
    if notes is not None:
        notes.append(f"{where}: source {source} ({why})")
    if source == "iam":
        return _iam(model, env, where, problems, keys_env)
    if source == "keys":
        return _keys(model, keys_env, where, problems)
    if source == "metadata":
        return MetadataSource(model.metadata_endpoint or MetadataSource().endpoint)
    if source == "pod_identity":
        return _pod_identity(model, env, where, problems)
    if source == "oidc":
        return _oidc(model, env, where, problems)
    if source == "id_token":
        return _id_token(model, env, where, problems)
    return _profile(model, env, where, problems)


def _cleartext(endpoint: str) -> bool:
    """Whether ``endpoint`` is plain http to another machine (loopback is for tests)."""
    url = urlsplit(endpoint)
    if url.scheme != "http":
        return False
    try:
        return not ipaddress.ip_address((url.hostname or "").strip("[]")).is_loopback
    except ValueError:
        return url.hostname != "localhost"


def in_clear_only_if_safe(
    endpoint: str, credentials: Credentials, where: str, problems: list[str]
) -> bool:
    """An http:// endpoint to another machine is refused when requests to it would carry a
    token (an IAM token, a temporary key's security token), and warned about otherwise (a
    signature gives no secret away, but every answer can be read and changed on the way)."""
    if not _cleartext(endpoint):
        return True
    if (
        isinstance(credentials, IamCredentials)
        or not isinstance(credentials, AkSkCredentials)
        or (credentials.security_token)
    ):
        problems.append(f"{where}: {endpoint!r} would send a token in clear text; use https://")
        return False
    log.warning(
        "%s: %s is plain http: answers can be read and changed on the way; use https://",
        where, endpoint,
    )  # fmt: skip
    return True


def _auto(env: Mapping[str, str]) -> tuple[str, str]:
    """The SDK chain's choice, and why."""
    if env.get(ENV_OIDC["provider_urn"]) and env.get(ENV_OIDC["agency_urn"]):
        return "oidc", f"auto: {ENV_OIDC['provider_urn']} and {ENV_OIDC['agency_urn']} are set"
    if env.get(ENV_IDP_ID) and env.get(ENV_ID_TOKEN_FILE):
        return "id_token", f"auto: {ENV_IDP_ID} and {ENV_ID_TOKEN_FILE} are set"
    if env.get(ENV_ACCESS_KEY) and env.get(ENV_SECRET_KEY):
        return "keys", f"auto: {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} are set"
    profile = _profile_path(None, env)
    if profile is not None and profile.is_file():
        return "profile", f"auto: the SDK's credentials file {profile} exists"
    if env.get(ENV_POD_URI) and env.get(ENV_POD_TOKEN_FILE):
        return "pod_identity", (
            f"auto: {ENV_POD_URI} is set (a CCE pod with pod identity; the SDK would ask the "
            "node's metadata service first, which gives the node's agency, not the pod's)"
        )
    return "metadata", (
        "auto: no OIDC or key environment, no credentials file, no pod identity: the "
        "instance's agency through its metadata service"
    )


def _keys(
    model: CredentialsModel, env: Mapping[str, str], where: str, problems: list[str]
) -> AkSkCredentials | None:
    before = len(problems)
    access_key = env.get(ENV_ACCESS_KEY) or model.access_key
    secret_key = _one_secret(
        model.secret_key, model.secret_key_file, env.get(ENV_SECRET_KEY),
        f"{where}.secret_key", problems,
    )  # fmt: skip
    token = _one_secret(
        model.security_token, model.security_token_file, env.get(ENV_SECURITY_TOKEN),
        f"{where}.security_token", problems,
    )  # fmt: skip
    if len(problems) > before:
        return None
    if not access_key and not secret_key:
        problems.append(
            f"{where}: none configured; set {where}.access_key and {where}.secret_key "
            f"(or {ENV_ACCESS_KEY} and {ENV_SECRET_KEY}), or {where}.iam, or a keyless "
            f"{where}.source (metadata, pod_identity, oidc, id_token, profile, auto)"
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
    placeholders = [
        f"{where}.{name}: {value!r} is the example's placeholder (in the file or in "
        f"{env_name}); put your {what} there"
        for name, value, what, env_name in (
            ("access_key", access_key, "access key ID", ENV_ACCESS_KEY),
            ("secret_key", secret_key, "secret access key", ENV_SECRET_KEY),
        )
        if value in EXAMPLE_PLACEHOLDERS
    ]
    if placeholders:
        problems += placeholders
        return None
    return AkSkCredentials(access_key, secret_key, token)


def _iam(
    model: CredentialsModel,
    env: Mapping[str, str],
    where: str,
    problems: list[str],
    keys_env: Mapping[str, str],
) -> IamCredentials | None:
    before = len(problems)
    if model.access_key or keys_env.get(ENV_ACCESS_KEY) or keys_env.get(ENV_SECRET_KEY):
        problems.append(
            f"{where}: both access keys (from the file or HUAWEICLOUD_SDK_AK/SK) and "
            f"{where}.iam are set; keep one way of authenticating"
        )
        return None
    iam = model.iam
    if iam is None:
        problems.append(f"{where}.iam: missing; source iam needs username, password, domain_name")
        return None
    password = _one_secret(
        iam.password, iam.password_file, env.get(ENV_IAM_PASSWORD) if keys_env else None,
        f"{where}.iam.password", problems,
    )  # fmt: skip
    if password is None:
        if len(problems) == before:
            problems.append(
                f"{where}.iam.password: missing; set password, password_file or the "
                f"environment variable {ENV_IAM_PASSWORD}"
            )
        return None
    if _cleartext(iam.endpoint):
        problems.append(
            f"{where}.iam.endpoint: {iam.endpoint!r} would send the password in clear text; "
            "use https://"
        )
        return None
    return IamCredentials(iam.username, password, iam.domain_name, iam.endpoint)


def _given(block: object, name: str, env: Mapping[str, str], env_name: str) -> str | None:
    """A source block's field when set (the file wins), else the SDK's environment variable."""
    value = getattr(block, name, None) if block is not None else None
    if value is not None:
        return str(value)
    return env.get(env_name) or None


def _pod_identity(
    model: CredentialsModel, env: Mapping[str, str], where: str, problems: list[str]
) -> PodIdentitySource | None:
    block = model.pod_identity
    uri = _given(block, "uri", env, ENV_POD_URI)
    token_file = _given(block, "token_file", env, ENV_POD_TOKEN_FILE)
    if not uri or not token_file:
        problems.append(
            f"{where}.pod_identity: set uri and token_file, or run in a CCE pod with pod "
            f"identity, which sets {ENV_POD_URI} and {ENV_POD_TOKEN_FILE}"
        )
        return None
    return PodIdentitySource(uri, token_file)


def _oidc(
    model: CredentialsModel, env: Mapping[str, str], where: str, problems: list[str]
) -> OidcSource | None:
    block = model.oidc

    def value(name: str) -> str | None:
        return _given(block, name, env, ENV_OIDC.get(name, ""))

    provider, agency = value("provider_urn"), value("agency_urn")
    token_file, token = value("token_file"), env.get(ENV_OIDC["token"], "")
    missing = [
        f"{where}.oidc.{name} (or {ENV_OIDC[name]})"
        for name, got in (
            ("provider_urn", provider),
            ("agency_urn", agency),
            ("token_file", token_file or token),
        )
        if not got
    ]
    if missing:
        problems.append(f"{where}: source oidc needs {', '.join(missing)}")
        return None
    assert provider is not None
    assert agency is not None
    duration = value("duration_seconds") or "3600"
    if not duration.isdigit() or not 900 <= int(duration) <= 43_200:
        problems.append(
            f"{where}.oidc.duration_seconds: {duration!r} (or {ENV_OIDC['duration_seconds']}) "
            "is not a whole number of seconds from 900 to 43200"
        )
        return None
    sts = value("sts_endpoint") or env.get(ENV_STS_ENDPOINT) or DEFAULT_STS_ENDPOINT
    return OidcSource(
        sts.rstrip("/"), provider, agency, token_file or "", "" if token_file else token,
        value("session_name") or "oidc-sts-session", int(duration),
    )  # fmt: skip


def _id_token(
    model: CredentialsModel, env: Mapping[str, str], where: str, problems: list[str]
) -> FederatedSource | None:
    block = model.id_token
    idp_id = _given(block, "idp_id", env, ENV_IDP_ID)
    token_file = _given(block, "token_file", env, ENV_ID_TOKEN_FILE)
    iam = _given(block, "iam_endpoint", env, ENV_IAM_ENDPOINT)
    if not idp_id or not token_file:
        problems.append(
            f"{where}: source id_token needs {where}.id_token.idp_id and token_file (or "
            f"{ENV_IDP_ID} and {ENV_ID_TOKEN_FILE})"
        )
        return None
    return FederatedSource((iam or DEFAULT_IAM_ENDPOINT).rstrip("/"), idp_id, token_file)


def _profile_path(model: CredentialsModel | None, env: Mapping[str, str]) -> Path | None:
    if model is not None and model.profile is not None and model.profile.file is not None:
        return model.profile.file
    if env.get(ENV_PROFILE):
        return Path(env[ENV_PROFILE])
    home = env.get("HOME")
    return Path(home) / ".huaweicloud" / "credentials" if home else None


def _profile(
    model: CredentialsModel, env: Mapping[str, str], where: str, problems: list[str]
) -> Credentials | None:
    """The SDK's credentials file (INI, section ``[basic]``): keys, or an IdP's ID token."""
    path = _profile_path(model, env)
    if path is None:
        problems.append(f"{where}.profile.file: not set, and neither {ENV_PROFILE} nor HOME is")
        return None
    text = _read_secret(path, f"{where}.profile.file", problems)
    if text is None:
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, str(path))
    except configparser.Error as exc:
        problems.append(f"{where}.profile.file: {path} is not an INI file ({exc.message})")
        return None
    if not parser.has_section(PROFILE_SECTION):
        problems.append(f"{where}.profile.file: {path} has no [{PROFILE_SECTION}] section")
        return None
    p = dict(parser.items(PROFILE_SECTION))
    if p.get("idp_id") and p.get("id_token_file"):
        iam = p.get("iam_endpoint") or DEFAULT_IAM_ENDPOINT
        return FederatedSource(iam.rstrip("/"), p["idp_id"], p["id_token_file"])
    if p.get("ak") and p.get("sk"):
        return AkSkCredentials(p["ak"], p["sk"], p.get("security_token") or None)
    problems.append(
        f"{where}.profile.file: [{PROFILE_SECTION}] of {path} has neither ak and sk nor "
        "idp_id and id_token_file"
    )
    return None
