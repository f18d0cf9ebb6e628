"""Where each API lives, and how its URLs are written, exactly as the official SDK writes them.

Path parameters are percent-encoded whole (``quote(value, safe='')``, as the SDK's
``_parse_path_params`` does), so an ID from the cloud can never leave its API path; query
values are encoded with RFC 3986's unreserved characters kept (a space is ``%20``, never
``+``), which is also how the signature's canonical query encodes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from yarl import URL

from exporter.domain.targets import Resource, SweepKey, TargetKey

IAM_TOKENS = "/v3/auth/tokens"
IAM_PROJECTS = "/v3/auth/projects"
IAM_DOMAINS = "/v3/auth/domains"
STS_CALLER = "/v5/caller-identity"


def segment(value: str) -> str:
    """One path segment, every reserved character (``/``, ``?``, ``%``, ...) escaped."""
    return quote(value, safe="")


def detail(key: TargetKey) -> str:
    """The detail API path of one object."""
    project, oid = segment(key.project_id), segment(key.id)
    if key.resource is Resource.DEVSERVER_IMAGE:
        return f"/v1/{project}/dev-servers/images/{oid}"
    return f"/v1/{project}/image-servers/{oid}"


def listing(key: SweepKey) -> str:
    """The list API path of one kind of object in one project."""
    project = segment(key.project_id)
    if key.resource is Resource.DEVSERVER_IMAGE:
        return f"/v1/{project}/dev-servers/images"
    return f"/v1/{project}/image-servers"


def jobs(project_id: str) -> str:
    """The image build job list's path."""
    return f"/v1/{segment(project_id)}/image-server-jobs"


def sub_jobs(project_id: str) -> str:
    """The image build sub-job list's path."""
    return f"/v1/{segment(project_id)}/image-server-sub-jobs"


def dev_servers(project_id: str, *, everyone: bool = False) -> str:
    """The dev-server (Lite Server) list's path: the caller's servers, or every user's."""
    return f"/v1/{segment(project_id)}/dev-servers" + ("/all" if everyone else "")


def query_string(pairs: Iterable[tuple[str, str]]) -> str:
    """A query string as the SDK sends it: ``%20`` for a space, ``%2F`` for a slash."""
    return "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in pairs)


def url(endpoint: str, path: str, query: Iterable[tuple[str, str]] = ()) -> URL:
    """An already-encoded URL: yarl must not encode it again (it would write ``+``)."""
    text = query_string(query)
    return URL(endpoint + path + (f"?{text}" if text else ""), encoded=True)
