"""AK/SK request signing (SDK-HMAC-SHA256), byte-for-byte as Huawei Cloud's SDK does it.

Written here rather than taken from the SDK because the SDK is synchronous; its signer is
used as the oracle in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

_AUTH_RE = re.compile(
    r"^SDK-HMAC-SHA256\s+Access=(?P<ak>[^,\s]+),\s*SignedHeaders=(?P<headers>[^,\s]+),"
    r"\s*Signature=(?P<sig>[0-9a-f]+)$"
)


def _encode(value: str) -> str:
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """Decode the path, re-encode each segment with unreserved characters kept, end with '/'."""
    uri = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Pairs sorted by key, then value, each side percent-encoded."""
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs))


def signed_header_names(headers: Iterable[str]) -> list[str]:
    """Lower-cased, sorted header names; names containing '_' are never signed."""
    return sorted({name.lower() for name in headers if "_" not in name})


def string_to_sign(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed: list[str],
    body: bytes,
) -> str:
    """The text whose HMAC is the signature."""
    lowered = {k.lower(): str(v).strip() for k, v in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered.get(name, '')}\n" for name in signed)
    payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_BODY_SHA256
    canonical_request = "\n".join(
        (
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            canonical_headers,
            ";".join(signed),
            payload_hash,
        )
    )
    date = lowered.get(DATE_HEADER.lower(), "")
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{date}\n{digest}"


def _hmac_hex(secret_key: str, text: str) -> str:
    return hmac.new(secret_key.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    method: str,
    host: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """Return ``headers`` plus ``Host``, ``X-Sdk-Date`` (unless given) and ``Authorization``.

    ``host`` is the URL's netloc, port included when the URL names one.
    """
    out = dict(headers)
    if not any(k.lower() == DATE_HEADER.lower() for k in out):
        out[DATE_HEADER] = (now or datetime.now(UTC)).strftime(DATE_FORMAT)
    if not any(k.lower() == "host" for k in out):
        out["Host"] = host
    signed = signed_header_names(out)
    signature = _hmac_hex(secret_key, string_to_sign(method, path, query, out, signed, body))
    out["Authorization"] = (
        f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return out


@dataclass(frozen=True, slots=True)
class Authorization:
    """The parts of an ``Authorization: SDK-HMAC-SHA256 ...`` header."""

    access_key: str
    signed_headers: list[str]
    signature: str


def parse_authorization(value: str) -> Authorization | None:
    """Parse an Authorization header, or None when it is not an SDK-HMAC-SHA256 one."""
    m = _AUTH_RE.match(value.strip())
    if not m:
        return None
    return Authorization(m["ak"], m["headers"].split(";"), m["sig"])


def verify(
    auth: Authorization,
    secret_key: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> bool:
    """Check a received request's signature the way the API gateway does."""
    text = string_to_sign(method, path, query, headers, auth.signed_headers, body)
    return hmac.compare_digest(_hmac_hex(secret_key, text), auth.signature)


def parse_sdk_date(value: str) -> datetime | None:
    """The instant an ``X-Sdk-Date`` header names, or None if it is malformed."""
    try:
        return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
