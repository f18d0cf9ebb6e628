"""Resolved credentials, plain and hashable; secrets are kept out of ``repr``."""

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


Credentials = AkSkCredentials | IamCredentials
