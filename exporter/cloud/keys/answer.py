"""A temporary key as the credential services answer it, read as the official SDK's
``StsAccessor._process_credential`` reads it, and nothing looser.

The answer is a JSON object, the key either in it or wrapped in a ``credential`` (or
``credentials``) object; each field has the names the SDK knows, taken in its order; the
expiry is ``%Y-%m-%dT%H:%M:%S.%fZ`` in UTC. A key without its secret, token or expiry, or
one that has expired already, is refused with a clear error: never half a key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from exporter.domain.credentials import AkSkCredentials

EXPIRY_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# The names of each field, as the SDK looks them up (the first present wins).
ACCESS = ("access", "accessKeyId", "access_key_id")
SECRET = ("secret", "secretAccessKey", "secret_access_key")
TOKEN = ("securitytoken", "securityToken", "security_token")
EXPIRY = ("expires_at", "expiration")
MAX_FIELD = 16_384  # a security token is a few kilobytes


class KeyAnswerError(ValueError):
    """An answer that holds no usable temporary key; says what is wrong, never a secret."""


@dataclass(frozen=True, slots=True)
class TemporaryKey:
    """An access key, its secret and security token, and when it expires (Unix seconds)."""

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str = field(repr=False)
    expires_at: float

    @property
    def credentials(self) -> AkSkCredentials:
        """The key as request signing takes it."""
        return AkSkCredentials(self.access_key, self.secret_key, self.security_token)

    @property
    def secrets(self) -> tuple[str, str]:
        """What must never be shown."""
        return self.secret_key, self.security_token


def parse_key(body: bytes) -> TemporaryKey:
    """The temporary key in a credential service's answer; KeyAnswerError when there is
    none (the message names what is missing and the shapes that are understood)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise KeyAnswerError("the answer is not JSON") from None
    if not isinstance(data, dict):
        raise KeyAnswerError("the answer is not a JSON object")
    for wrapper in ("credential", "credentials"):
        if wrapper in data:
            data = data[wrapper]
            if not isinstance(data, dict):
                raise KeyAnswerError(f"{wrapper!r} is not a JSON object")
            break
    access, secret, token, expiry = (
        _field(data, names) for names in (ACCESS, SECRET, TOKEN, EXPIRY)
    )
    try:
        moment = datetime.strptime(expiry, EXPIRY_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise KeyAnswerError(
            f"the expiry is not a time like 2022-10-17T18:51:25.231000Z ({len(expiry)} characters)"
        ) from None
    return TemporaryKey(access, secret, token, moment)


def _field(data: dict[str, Any], names: tuple[str, ...]) -> str:
    for name in names:
        value = data.get(name)
        if value:
            if not isinstance(value, str) or len(value) > MAX_FIELD:
                raise KeyAnswerError(f"{name!r} is not a string of at most {MAX_FIELD} characters")
            return value
    raise KeyAnswerError(f"no {' / '.join(repr(n) for n in names)} in the answer")
