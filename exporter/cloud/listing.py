"""What a list answer holds: one page of a list read into domain objects, and what a whole
sweep found. The HTTP side (asking, paging, remembering pages) is the client's."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from exporter.cloud import convert
from exporter.cloud.answers import AnswerReader
from exporter.cloud.models import (
    AllDevServersModel,
    DevServerImageListModel,
    DevServerListModel,
    ImageServerListModel,
    JobListModel,
    SubJobListModel,
)
from exporter.cloud.transport import Response
from exporter.domain.jobs import JOB_TYPES, SUB_JOB_STATUSES, Job, SubJob
from exporter.domain.labels import known
from exporter.domain.state import CloudObject
from exporter.domain.targets import DEVSERVER_IMAGE_ID_RE, IMAGE_SERVER_ID_RE, Sweep
from exporter.domain.usage import NO_IMAGE, OTHER_IMAGE, SERVER_STATUSES, DevServer

DEVSERVER_IMAGE_LIST = "devserver_image_list"
IMAGE_SERVER_LIST = "image_server_list"
DEVSERVER_LIST = "devserver_list"
DEVSERVER_LIST_ALL = "devserver_list_all"
JOB_LIST = "image_server_job_list"
# A dev server's ID is a UUID; one much longer is kept as its digest (see server_key).
MAX_SERVER_ID = 64
SUB_JOB_LIST = "image_server_sub_job_list"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Page(Generic[_T]):
    """One page of a paged list: its items and the total the API reports (None: not said)."""

    items: list[_T]
    count: int | None
    # Every item's ID in order, those left out too: positions, for paging (empty: the
    # items' IDs are the positions).
    ids: list[str] = field(default_factory=list)
    current: int | None = None  # the page number the answer says it is (when it says)

    @property
    def whole(self) -> bool:
        """Whether every item was usable (nothing skipped, so nothing to count again)."""
        return not self.ids or len(self.items) == len(self.ids)

    @property
    def weight(self) -> int:
        """About the bytes it holds (a dev server's ID, status and image ID: 150)."""
        return 160 * len(self.items) + 8 * len(self.ids)


@dataclass(frozen=True, slots=True)
class PageRead:
    """What one list page held, kept by the page memo: every item's ID in order (positions
    for paging), the usable objects by ID, and the total the page reported."""

    ids: list[str]
    objects: Mapping[str, CloudObject]
    count: int
    incomplete: str | None = None
    skipped: int = 0  # items left out as unusable (counted as invalid)

    @property
    def whole(self) -> bool:
        """Whether every item was usable (nothing skipped, so nothing to count again)."""
        return not self.skipped

    @property
    def weight(self) -> int:
        """About the bytes it holds: 100 a position, 550 an object (an image server's,
        measured)."""
        return 100 * len(self.ids) + 550 * len(self.objects)


@dataclass(frozen=True, slots=True)
class Listing:
    """What one sweep found: wanted objects by ID, the list calls it took, and why it may
    have left objects out (None: it is complete)."""

    objects: dict[str, CloudObject]
    pages: int
    incomplete: str | None = None


class Wanted:
    """What of a page a sweep keeps: the objects its discovery filters keep, and configured
    IDs whatever their name (the rest only as positions, for paging). ``key`` tells apart
    what two sweeps of the same list keep, for the page memo."""

    def __init__(self, sweep: Sweep) -> None:
        self._configured = frozenset(sweep.configured)
        self._wants = sweep.discovery.wants
        self.key = f"#{hash(sweep)}"  # once a sweep: it hashes every configured ID

    def __call__(self, page: PageRead) -> PageRead:
        configured, wants = self._configured, self._wants
        objects = {o: obj for o, obj in page.objects.items() if o in configured or wants(obj.name)}
        return page if len(objects) == len(page.objects) else replace(page, objects=objects)


def devserver_images(answers: AnswerReader, resp: Response) -> PageRead:
    """The dev-server image list, which comes whole in one answer (or says it did not)."""
    answer = answers.parse(DEVSERVER_IMAGE_LIST, resp, DevServerImageListModel)
    data = answer.data
    incomplete = None
    if answer.total is not None and answer.total > len(data):
        incomplete = f"the answer holds {len(data)} of {answer.total} images"
    elif answer.pages is not None and answer.pages > 1:
        incomplete = f"the answer is the first of {answer.pages} pages"
    found = {
        m.image_id: convert.devserver_image(m)
        for m in data
        if answers.usable_id(m.image_id, DEVSERVER_IMAGE_ID_RE, DEVSERVER_IMAGE_LIST)
        and m.image_id is not None
    }
    ids = [convert.label(m.image_id) for m in data]
    return PageRead(ids, found, len(data), incomplete, len(data) - len(found))


def image_servers(answers: AnswerReader, resp: Response, offset: int) -> PageRead:
    """One page of the image-server list, asked for at ``offset``."""
    answer = answers.parse(IMAGE_SERVER_LIST, resp, ImageServerListModel)
    if offset + len(answer.items) > answer.count:
        raise answers.page_error(IMAGE_SERVER_LIST, answer.count, offset, answer.items)
    ids, objects, skipped = [], {}, 0
    for m in answer.items:
        oid = convert.label(m.id)
        ids.append(oid)  # a position all the same: paging checks overlaps with it
        if answers.usable_id(m.id, IMAGE_SERVER_ID_RE, IMAGE_SERVER_LIST):
            objects[oid] = convert.image_server(m)
        else:
            skipped += 1
    return PageRead(ids, objects, answer.count, skipped=skipped)


def dev_servers(
    answers: AnswerReader, resp: Response, offset: int, *, everyone: bool = False
) -> Page[DevServer]:
    """One page of the dev-server list, asked for at ``offset``: each server's ID, status
    (the documented ones, else "other") and image ID (a dev-server image ID, else
    OTHER_IMAGE: nothing else becomes a label). A server without an ID is skipped, and
    counted; a page holding more than its total is refused."""
    api, model = (DEVSERVER_LIST_ALL, AllDevServersModel) if everyone else (
        DEVSERVER_LIST, DevServerListModel
    )  # fmt: skip
    answer = answers.parse(api, resp, model)
    if answer.total is not None and offset + len(answer.data) > answer.total:
        raise answers.page_error(api, answer.total, offset, answer.data)
    ids = [server_key(m.id) for m in answer.data]
    items = []
    for oid, m in zip(ids, answer.data, strict=True):
        if not oid:
            continue
        image = m.image.image_id if m.image else None
        if image and not DEVSERVER_IMAGE_ID_RE.fullmatch(image):
            answers.skipped(api, 1)  # counted as invalid, its server counted under "other"
            image = OTHER_IMAGE
        status = known(m.status or "", SERVER_STATUSES)
        items.append(DevServer(oid, status, convert.shared(image or NO_IMAGE)))
    answers.skipped(api, len(ids) - len(items))
    return Page(items, answer.total, ids, answer.current)


def server_key(oid: str | None) -> str:
    """A dev server's ID as the count of servers keeps it: only ever compared (servers are
    counted, never labelled), so a long one is kept as its digest, not as it came."""
    if not oid:
        return ""
    if len(oid) <= MAX_SERVER_ID:
        return oid
    return "#" + hashlib.blake2b(oid.encode(errors="replace"), digest_size=16).hexdigest()


def jobs(answers: AnswerReader, answer: JobListModel) -> Page[Job]:
    """A page of image build jobs: each job's ID, type, status and begin time, type and
    status bounded to the documented values and "other"; a job without an ID is skipped."""
    items = [
        Job(
            convert.label(m.id),
            known(m.job_type or "", JOB_TYPES),
            known(m.status or "", SUB_JOB_STATUSES),
            convert.parse_timestamp(m.begin_time),
        )
        for m in answer.items
        if m.id
    ]
    answers.skipped(JOB_LIST, len(answer.items) - len(items))
    return Page(items, answer.count)


def sub_jobs(answers: AnswerReader, answer: SubJobListModel) -> Page[SubJob]:
    """A page of image build sub-jobs, the free text of each (error message and code,
    resource name) redacted."""
    items = [
        replace(
            job, error_message=answers.redact(job.error_message),
            error_code=answers.redact(job.error_code),
            resource_name=answers.redact(job.resource_name),
        )
        for job in (convert.sub_job(m) for m in answer.items if m.id)
    ]  # fmt: skip
    answers.skipped(SUB_JOB_LIST, len(answer.items) - len(items))
    return Page(items, answer.count)
