"""The account-wide IAM calls: the projects an account can see, and the domain ID that its
AK/SK-signed calls to IAM (a global service) carry as ``X-Domain-Id``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from yarl import URL

from exporter.cloud import convert, paths
from exporter.cloud.answers import AnswerReader
from exporter.cloud.auth import ACCOUNT_SCOPE
from exporter.cloud.errors import ApiError, snippet
from exporter.cloud.models import CallerIdentityModel, DomainListModel, ProjectListModel
from exporter.cloud.sanitize import clean
from exporter.cloud.transport import Response
from exporter.domain.accounts import Account, Project
from exporter.domain.credentials import Credentials, IamCredentials
from exporter.domain.targets import PROJECT_ID_RE

# A signed or token-authenticated GET (the client's): api, URL, project ID (ACCOUNT_SCOPE),
# credentials, deadline, X-Domain-Id.
Get = Callable[[str, URL, str, Credentials, float | None, str | None], Awaitable[Response]]


class IamCalls:
    """Lists accounts' projects, finding and keeping each account's domain ID."""

    def __init__(self, get: Get, answers: AnswerReader) -> None:
        self._get = get
        self._answers = answers
        # Domain IDs found, by IAM endpoint and credentials.
        self._found: dict[tuple[str, Credentials], str] = {}

    def retain(self, credentials: Collection[Credentials]) -> None:
        """Forget the domain IDs found with credentials no longer in use."""
        for gone in [k for k in self._found if k[1] not in credentials]:
            del self._found[gone]

    async def list_projects(
        self, account: Account, deadline: float | None = None
    ) -> tuple[Project, ...]:
        """The enabled projects ``account`` can see (IAM ``GET /v3/auth/projects``)."""
        api = "iam_projects"
        domain_id = await self._domain_id(account, deadline)
        url = paths.url(account.iam_endpoint, paths.IAM_PROJECTS)
        resp = await self._get(api, url, ACCOUNT_SCOPE, account.credentials, deadline, domain_id)
        if resp.status == 404:
            detail = f"project list answered 404: {snippet(resp.body)}"
            raise self._answers.invalid(api, resp, detail)
        answer = self._answers.parse(api, resp, ProjectListModel)
        projects: dict[str, Project] = {}  # a project listed twice is one project
        for m in answer.projects:
            if not self._answers.usable_id(m.id, PROJECT_ID_RE, api) or m.id is None:
                continue
            if m.enabled is False or m.is_domain:
                continue
            projects.setdefault(m.id, Project(m.id, convert.label(m.name), account.name))
        return tuple(projects.values())

    async def _domain_id(self, account: Account, deadline: float | None) -> str | None:
        """The ``X-Domain-Id`` of an account's IAM calls.

        IAM is a global service: AK/SK-signed calls to it carry the account's domain ID. When
        none is configured it is asked of IAM (``GET /v3/auth/domains``) once per endpoint and
        credentials and kept, as the official SDK does. A token is scoped to its domain
        already and needs none.
        """
        if account.domain_id or isinstance(account.credentials, IamCredentials):
            return account.domain_id
        key = (account.iam_endpoint, account.credentials)
        known_id = self._found.get(key)
        if known_id is not None:
            return known_id
        try:
            found = await self._listed_domain(account, deadline)
            if found is None:  # none listed, or listing forbidden: as the SDK, ask STS
                found = await self._caller_account(account, deadline)
        except ApiError as exc:
            raise ApiError(
                exc.kind,
                f"cannot find the account's domain ID with GET /v3/auth/domains or STS's "
                f"GET /v5/caller-identity ({exc.detail}); set domain_id in the account's "
                "configuration",
                status=exc.status,
                error_code=exc.error_code,
                request_id=exc.request_id,
            ) from None
        self._found[key] = found
        return found

    async def _listed_domain(self, account: Account, deadline: float | None) -> str | None:
        """The first domain IAM lists; None when it lists none or may not be asked."""
        api = "iam_domains"
        url = paths.url(account.iam_endpoint, paths.IAM_DOMAINS)
        try:
            resp = await self._get(api, url, ACCOUNT_SCOPE, account.credentials, deadline, None)
        except ApiError as exc:
            if exc.forbidden:
                return None
            raise
        if resp.status == 404:
            raise self._answers.invalid(api, resp, f"answered 404: {snippet(resp.body)}")
        ids = [d.id for d in self._answers.parse(api, resp, DomainListModel).domains if d.id]
        if not ids:
            return None
        if not PROJECT_ID_RE.fullmatch(ids[0]):
            detail = f"no usable domain ID in the answer ({clean(ids[0], 100)!r})"
            raise self._answers.invalid(api, resp, detail)
        return ids[0]

    async def _caller_account(self, account: Account, deadline: float | None) -> str:
        """The caller's account ID, from STS."""
        api = "sts_caller_identity"
        url = paths.url(account.sts_endpoint, paths.STS_CALLER)
        resp = await self._get(api, url, ACCOUNT_SCOPE, account.credentials, deadline, None)
        found = self._answers.parse(api, resp, CallerIdentityModel).account_id
        if resp.status == 404 or not found or not PROJECT_ID_RE.fullmatch(found):
            shown = clean(found or "none", 100)
            raise self._answers.invalid(api, resp, f"no usable account ID ({shown!r})")
        return found
