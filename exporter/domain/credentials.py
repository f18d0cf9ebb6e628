"""Resolved credentials, plain and hashable; secrets are kept out of ``repr``.

Permanent access keys and an IAM password are given; temporary access keys are fetched
from a source (an ECS agency through the instance metadata service, CCE pod identity,
OIDC workload identity federation, an IdP's ID token) and renewed before they expire.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AkSkCredentials:
    """Permanent access keys, or temporary ones with their security token."""

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values that must never be shown."""
        return tuple(s for s in (self.secret_key, self.security_token) if s)


@dataclass(frozen=True, slots=True)
class IamCredentials:
    """A password identity exchanged for IAM tokens."""

    username: str
    password: str = field(repr=False)
    domain_name: str
    endpoint: str

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values that must never be shown."""
        return (self.password,)


@dataclass(frozen=True, slots=True)
class MetadataSource:
    """An ECS, BMS or CCE node's agency, through the instance metadata service."""

    endpoint: str = "http://169.254.169.254"


@dataclass(frozen=True, slots=True)
class PodIdentitySource:
    """CCE pod identity: ``uri`` answers keys for the kubelet-rotated token in ``token_file``
    (read at every fetch)."""

    uri: str
    token_file: str


@dataclass(frozen=True, slots=True)
class OidcSource:
    """Workload identity federation: STS exchanges an OIDC ID token (from ``token_file``,
    read at every fetch, or given as ``token``) for an agency's temporary keys."""

    sts_endpoint: str
    provider_urn: str
    agency_urn: str
    token_file: str = ""
    token: str = field(default="", repr=False)
    session_name: str = "oidc-sts-session"
    duration_seconds: int = 3600


@dataclass(frozen=True, slots=True)
class FederatedSource:
    """An identity provider's ID token (from ``token_file``, read at every fetch),
    exchanged with IAM for a token, then for temporary keys."""

    iam_endpoint: str
    idp_id: str
    token_file: str


TemporarySource = MetadataSource | PodIdentitySource | OidcSource | FederatedSource
Credentials = AkSkCredentials | IamCredentials | TemporarySource


def secrets_of(credentials: Credentials) -> tuple[str, ...]:
    """The configured values of ``credentials`` that must never be shown (temporary keys
    are secret too, and join the redactor when fetched)."""
    if isinstance(credentials, AkSkCredentials | IamCredentials):
        return credentials.secrets
    if isinstance(credentials, OidcSource) and credentials.token:
        return (credentials.token,)
    return ()
