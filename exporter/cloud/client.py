"""Typed calls to every Huawei Cloud API the exporter uses (detail and list calls, build jobs,
IAM projects and domains), each with the right authentication."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from functools import partial
from typing import Protocol, TypeVar

from pydantic import BaseModel
from yarl import URL

from exporter.cloud import convert, listing, paging, paths, permissions
from exporter.cloud.answers import AnswerReader
from exporter.cloud.auth import Authenticator, IamTokenAuth
from exporter.cloud.errors import ApiError, snippet
from exporter.cloud.iam import IamCalls
from exporter.cloud.keys.renewal import TemporaryKeyAuth
from exporter.cloud.listing import Listing, Page, PageRead
from exporter.cloud.memo import PageMemo
from exporter.cloud.metrics import ApiMetrics
from exporter.cloud.models import (
    DevServerImageModel,
    ImageServerModel,
    JobListModel,
    ObjectModel,
    SubJobListModel,
)
from exporter.cloud.sanitize import clean
from exporter.cloud.transport import Response, Transport
from exporter.domain.accounts import Account, Project
from exporter.domain.credentials import Credentials
from exporter.domain.jobs import Job, SubJob
from exporter.domain.state import CloudObject
from exporter.domain.targets import (
    DevServerScope,
    ProjectEndpoint,
    Resource,
    Sweep,
    Target,
)
from exporter.domain.usage import DevServer

log = logging.getLogger(__name__)

_M = TypeVar("_M", bound=ObjectModel)
_P = TypeVar("_P", bound=BaseModel)


class _PageRead(Protocol):
    """What is read from one list page and kept by a page memo."""

    @property
    def whole(self) -> bool:
        """Whether every item was usable."""
        ...

    @property
    def weight(self) -> int:
        """About the bytes it holds."""
        ...


_R = TypeVar("_R", bound=_PageRead)

LIST_LIMIT = 100  # the largest page the image-server list serves (a gateway may serve less)
# The dev-server image list comes whole, in one answer; a page of 1,024 dev servers, with
# their network and volume details, is a few MiB.
LIST_MAX_BODY = 16 << 20
PAGE_MAX_BODY = 4 << 20  # a page of 100 objects is a few hundred KiB
# Every user's dev servers may come in one answer (MAX_ALL_DEV_SERVERS of a few KiB each).
ALL_MAX_BODY = 96 << 20
OFF_LOOP_BODY = 1 << 20  # answers larger than this are parsed off the event loop


def _weight(page: _PageRead) -> int:
    return page.weight


class HuaweiCloudClient:
    """Fetches one object per call; returns it, None when it does not exist, or raises ApiError.

    One client serves the exporter for its whole life: authenticators (and the IAM tokens
    they hold) are kept per credentials across reloads, since every needless IAM login costs
    a request and repeated ones can lock the IAM user.
    """

    def __init__(
        self,
        transport: Transport,
        metrics: ApiMetrics,
        authenticator_for: Callable[[Credentials], Authenticator],
        redact: Callable[[str], str] = str,
    ) -> None:
        self._transport = transport
        self._answers = AnswerReader(metrics, redact)
        self._metrics = metrics
        self._authenticator_for = authenticator_for
        self._authenticators: dict[Credentials, Authenticator] = {}
        self._iam = IamCalls(self._call, self._answers)
        self._pages: PageMemo[PageRead] = PageMemo(weigh=_weight)
        # Dev-server pages hold ten times more than others: 1,024 of them are a million
        # servers (160 MB).
        self._server_pages: PageMemo[Page[DevServer]] = PageMemo(1024, weigh=_weight)
        self._reading = asyncio.Lock()

    def retain(self, credentials: Collection[Credentials], *, iam_failure_backoff: float) -> None:
        """Keep the authenticators of ``credentials``, forget those of any others."""
        keep = set(credentials)
        for gone in self._authenticators.keys() - keep:
            auth = self._authenticators.pop(gone)
            if isinstance(auth, TemporaryKeyAuth):
                auth.close()
        self._iam.retain(keep)
        for auth in self._authenticators.values():
            if isinstance(auth, IamTokenAuth):
                auth.failure_backoff = iam_failure_backoff

    async def close(self) -> None:
        """Stop renewing temporary keys."""
        tasks = [
            a.close() for a in self._authenticators.values() if isinstance(a, TemporaryKeyAuth)
        ]
        await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)

    def _auth(self, credentials: Credentials) -> Authenticator:
        auth = self._authenticators.get(credentials)
        if auth is None:
            auth = self._authenticators[credentials] = self._authenticator_for(credentials)
        return auth

    async def get_devserver_image(
        self, target: Target, deadline: float | None = None
    ) -> DevServerImageModel | None:
        """``GET /v1/{project_id}/dev-servers/images/{id}``; None after a 404."""
        return await self._get(target, DevServerImageModel, deadline)

    async def get_image_server(
        self, target: Target, deadline: float | None = None
    ) -> ImageServerModel | None:
        """``GET /v1/{project_id}/image-servers/{server_id}``; None after a 404."""
        return await self._get(target, ImageServerModel, deadline)

    async def fetch(self, target: Target, deadline: float | None = None) -> CloudObject | None:
        """The object a target names, as plain state; None after a 404."""
        if target.key.resource is Resource.DEVSERVER_IMAGE:
            image = await self.get_devserver_image(target, deadline)
            return convert.devserver_image(image) if image is not None else None
        server = await self.get_image_server(target, deadline)
        return convert.image_server(server) if server is not None else None

    async def list_objects(
        self, sweep: Sweep, deadline: float | None = None, slots: asyncio.Semaphore | None = None
    ) -> Listing:
        """Every object of a sweep's project and kind that its discovery wants.

        Image servers are read as ``exporter.cloud.paging`` describes: the first page tells
        the page size and the total, the others are then fetched at once (each holding one
        of ``slots`` while it runs). Any page that fails, after retries, fails the whole
        listing with its ApiError.
        """
        if sweep.key.resource is Resource.DEVSERVER_IMAGE:
            return await self._list_devserver_images(sweep, deadline, slots)
        return await self._list_image_servers(sweep, deadline, slots)

    async def _list_devserver_images(
        self, sweep: Sweep, deadline: float | None, slots: asyncio.Semaphore | None
    ) -> Listing:
        query = sweep.discovery.query(Resource.DEVSERVER_IMAGE)
        read = partial(listing.devserver_images, self._answers)
        page = await self._list_page(sweep, listing.Wanted(sweep), query, read, deadline, slots)
        return Listing(dict(page.objects), 1, page.incomplete)

    async def _list_image_servers(
        self, sweep: Sweep, deadline: float | None, slots: asyncio.Semaphore | None
    ) -> Listing:
        base = {**sweep.discovery.query(Resource.IMAGE_SERVER), "limit": str(LIST_LIMIT)}

        # Objects that moved between pages while the sweep ran are counted once. Each page
        # is converted as it arrives, so its wire models do not outlive it.
        found: dict[str, CloudObject] = {}
        keep = listing.Wanted(sweep)

        async def page(offset: int) -> paging.Positions:
            query = {**base, "offset": str(offset)}
            read = partial(listing.image_servers, self._answers, offset=offset)
            got = await self._list_page(sweep, keep, query, read, deadline, slots)
            found.update(got.objects)
            return paging.Positions(got.ids, got.count)

        read = await paging.read_all(page)
        return Listing(found, read.pages, read.incomplete)

    async def _list_page(
        self,
        sweep: Sweep,
        keep: listing.Wanted,
        query: dict[str, str],
        read: Callable[[Response], PageRead],
        deadline: float | None,
        slots: asyncio.Semaphore | None,
    ) -> PageRead:
        """A page of a sweep's list, read by ``read`` and of which ``keep`` keeps what the
        sweep watches, unless the same bytes were read before for the same sweep (see
        ``exporter.cloud.memo``)."""
        api = f"{sweep.key.resource.value}_list"
        scope = ProjectEndpoint(sweep.key.project_id, sweep.endpoint, sweep.credentials)
        path = paths.listing(sweep.key)
        return await self._read_page(
            self._pages, api, scope, path, query, lambda r: keep(read(r)), deadline, slots,
            memo_key=keep.key,  # another sweep of the same list keeps other objects
        )  # fmt: skip

    async def _read_page(
        self,
        memo: PageMemo[_R],
        api: str,
        scope: ProjectEndpoint,
        path: str,
        query: dict[str, str],
        read: Callable[[Response], _R],
        deadline: float | None,
        slots: asyncio.Semaphore | None,
        memo_key: str = "",
    ) -> _R:
        """A page of a list, read by ``read`` unless the same bytes were read before (see
        ``exporter.cloud.memo``). A page takes up to a few milliseconds to read (1,024 dev
        servers): pages that arrive together are read one per turn of the event loop, so
        that scrapes and probes are answered in between instead of after all of them. A
        large answer is read in a worker thread, which gives the loop its turn every few
        milliseconds while it runs."""
        url, resp = await self._answer(api, scope, path, query, deadline, slots)
        url += memo_key
        digest, kept = memo.recall(url, resp.body)
        if kept is not None:
            return kept
        async with self._reading:
            if len(resp.body) > OFF_LOOP_BODY:  # 14 MB of JSON held the loop for 1.7 s
                kept = await asyncio.to_thread(read, resp)
            else:
                kept = read(resp)
                await asyncio.sleep(0)
        if kept.whole:  # a page with a skipped item is read (and counted) every time
            memo.keep(url, digest, kept)
        return kept

    async def _answer(
        self,
        api: str,
        scope: ProjectEndpoint,
        path: str,
        query: dict[str, str],
        deadline: float | None,
        slots: asyncio.Semaphore | None,
    ) -> tuple[str, Response]:
        """The URL and answer of one page of a list in a project, holding one of ``slots``
        while it runs."""
        url = paths.url(scope.endpoint, path, query.items())
        async with slots or contextlib.nullcontext():
            resp = await self._call(api, url, scope.project_id, scope.credentials, deadline)
        if resp.status == 404:  # a list is never absent: the project or the path is wrong
            raise self._answers.invalid(api, resp, f"list answered 404: {snippet(resp.body)}")
        return str(url), resp

    async def _page(
        self,
        api: str,
        scope: ProjectEndpoint,
        path: str,
        query: dict[str, str],
        model: type[_P],
        deadline: float | None,
        slots: asyncio.Semaphore | None,
    ) -> _P:
        """One page of a list in a project, parsed."""
        _, resp = await self._answer(api, scope, path, query, deadline, slots)
        return self._answers.parse(api, resp, model)

    async def jobs_page(
        self,
        scope: ProjectEndpoint,
        query: dict[str, str],
        deadline: float | None = None,
        slots: asyncio.Semaphore | None = None,
    ) -> Page[Job]:
        """A page of ``GET /v1/{project_id}/image-server-jobs``: each job's ID, type, status
        and begin time, type and status bounded to the documented values and "other"."""
        api = listing.JOB_LIST
        answer = await self._page(
            api, scope, paths.jobs(scope.project_id), query, JobListModel, deadline, slots
        )
        return listing.jobs(self._answers, answer)

    async def sub_jobs_page(
        self,
        scope: ProjectEndpoint,
        query: dict[str, str],
        deadline: float | None = None,
        slots: asyncio.Semaphore | None = None,
    ) -> Page[SubJob]:
        """A page of ``GET /v1/{project_id}/image-server-sub-jobs``."""
        api = listing.SUB_JOB_LIST
        answer = await self._page(
            api, scope, paths.sub_jobs(scope.project_id), query, SubJobListModel, deadline, slots
        )
        return listing.sub_jobs(self._answers, answer)

    async def dev_servers_page(
        self,
        scope: DevServerScope,
        page: tuple[int, int] | None,
        deadline: float | None = None,
        slots: asyncio.Semaphore | None = None,
    ) -> Page[DevServer]:
        """A page of the dev servers (``GET /v1/{project_id}/dev-servers``, or
        ``.../dev-servers/all`` for every user's), ``page`` being (offset, limit), or None
        to ask as the SDK does with no query: each server's ID, status (bounded to the
        documented ones and "other") and image ID."""
        everyone = scope.everyone
        query = {} if page is None else {"limit": str(page[1]), "offset": str(page[0])}
        path = paths.dev_servers(scope.project_id, everyone=everyone)
        api = listing.DEVSERVER_LIST_ALL if everyone else listing.DEVSERVER_LIST
        offset = 0 if page is None else page[0]
        read = partial(listing.dev_servers, self._answers, offset=offset, everyone=everyone)
        return await self._read_page(
            self._server_pages, api, scope, path, query, read, deadline, slots
        )

    async def _get(self, target: Target, model: type[_M], deadline: float | None) -> _M | None:
        api = target.key.resource.value
        url = paths.url(target.endpoint, paths.detail(target.key))
        resp = await self._call(api, url, target.key.project_id, target.credentials, deadline)
        if resp.status == 404:
            return None
        answer = self._answers.parse(api, resp, model)
        if answer.object_id != target.key.id:
            # `{}`, an error envelope with status 200, or another object: not this one.
            raise self._answers.invalid(
                api,
                resp,
                f"answer does not describe {target.key.id!r} (it names "
                f"{clean(answer.object_id or 'no ID', 100)!r}): {snippet(resp.body)}",
            )
        return answer

    async def list_projects(
        self, account: Account, deadline: float | None = None
    ) -> tuple[Project, ...]:
        """The enabled projects ``account`` can see (IAM ``GET /v3/auth/projects``)."""
        return await self._iam.list_projects(account, deadline)

    async def _call(
        self,
        api: str,
        url: URL,
        project_id: str,
        credentials: Credentials,
        deadline: float | None,
        domain_id: str | None = None,
    ) -> Response:
        """A signed or token-authenticated GET; raises the ApiError of a failed answer,
        with every known secret taken out of it."""
        try:
            return await self._get_once(api, url, project_id, credentials, deadline, domain_id)
        except ApiError as exc:
            raise self._answers.redacted(exc) from None

    async def _get_once(
        self,
        api: str,
        url: URL,
        project_id: str,
        credentials: Credentials,
        deadline: float | None,
        domain_id: str | None,
    ) -> Response:
        auth = self._auth(credentials)
        sent: dict[str, str] = {}
        max_body = None  # the transport's cap for a detail answer
        if api == listing.DEVSERVER_LIST_ALL:
            max_body = ALL_MAX_BODY
        elif api in (listing.DEVSERVER_IMAGE_LIST, listing.DEVSERVER_LIST, "iam_projects"):
            max_body = LIST_MAX_BODY
        elif api.endswith(("_list", "_domains")):
            max_body = PAGE_MAX_BODY

        async def headers() -> dict[str, str]:
            sent.update(await auth.headers("GET", url, project_id, deadline, domain_id))
            return sent

        def send() -> Awaitable[Response]:
            return self._transport.request(
                api, "GET", url, headers, deadline=deadline, max_body=max_body
            )

        resp = await send()
        # A 401 with a cached token means it was revoked or expired early: one fresh try,
        # never a loop, and never for a signature (that would count toward the lockout).
        if resp.status == 401 and auth.invalidate(project_id, sent):
            resp = await send()
        if resp.error is not None:
            # Say what to do, in the log and on the status page: what to grant after a
            # 403, what to check after a 401.
            e = resp.error
            why = permissions.hint(api) if resp.status == 403 else None
            if resp.status == 401:
                why = permissions.unauthorized_hint(e.detail)
            if why:
                raise ApiError(
                    e.kind, f"{e.detail}; {why}", status=e.status,
                    error_code=e.error_code, request_id=e.request_id,
                )  # fmt: skip
            raise e
        return resp
