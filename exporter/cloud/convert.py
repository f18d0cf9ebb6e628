"""API answers (pydantic wire models) turned into the domain's plain objects."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from functools import lru_cache

from exporter.cloud.models import DevServerImageModel, ImageServerModel, SubJobModel
from exporter.cloud.sanitize import MAX_LABEL, clean
from exporter.domain.jobs import JOB_TYPES, SUB_JOB_STATUSES, SubJob
from exporter.domain.labels import OTHER, known
from exporter.domain.state import (
    ACCOUNT_TYPES,
    DevServerImage,
    ImageServer,
    normalize_status,
)


def label(value: str | None) -> str:
    """A label value from the cloud: absent is empty, anything else cleaned and bounded."""
    if not value:
        return ""
    if value.isascii() and len(value) <= MAX_LABEL:  # nearly every value: nothing to clean
        return value
    return clean(value, MAX_LABEL)


MAX_TIME = 4_102_444_800.0  # 2100-01-01: a time beyond it (or before 1970) is not believed
MAX_TIME_TEXT = 64  # characters: an ISO 8601 time is about 30; a longer one is not one

# A calendar date first, with dashes: Python also reads ISO's compact forms, so a number of
# epoch milliseconds would otherwise parse as a date centuries away.
_ISO_DATE = re.compile(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_timestamp(text: str | None) -> float | None:
    """Unix seconds from any ISO 8601 form the API sends; None when absent or unparsable.

    A time without an offset is UTC, as the API documents its times. A bare number (epoch
    seconds or milliseconds, which the API does not document for these fields) is not
    guessed at: it is left out, as is a time before 1970 or after 2100.
    """
    if not text or len(text) > MAX_TIME_TEXT:  # nor is a huge string kept in the cache
        return None
    return _parse_timestamp(text)


@lru_cache(maxsize=1 << 16)  # every object's times come back unchanged every cycle
def _parse_timestamp(text: str) -> float | None:
    if not _ISO_DATE.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = moment.timestamp()
    return seconds if 0 <= seconds <= MAX_TIME else None


def shared(value: str) -> str:
    """``value`` as the one string object every equal value of a field with few values
    shares (a status, an image type, a group ID): 100,000 objects then hold a handful of
    strings, not 100,000 copies. Interned strings are freed when no longer used."""
    return sys.intern(value)


@lru_cache(maxsize=4096)
def _shared_counts(counts: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    """The first of equal account counts seen, for every object that has the same."""
    return counts


def devserver_image(m: DevServerImageModel) -> DevServerImage:
    """What the exporter keeps of a dev-server image answer."""
    return DevServerImage(
        label(m.name),
        shared(label(m.arch)),
        shared(label(m.server_type)),
        shared(label(normalize_status(m.status))),
    )


def image_server(m: ImageServerModel) -> ImageServer:
    """What the exporter keeps of an image-server answer; accounts are counted by type.

    Account types outside the documented set (and an absent one, "") are counted together
    as "other": one object must not be able to create series without bound."""
    counts = dict.fromkeys(ACCOUNT_TYPES, 0)
    for account in m.authorize_accounts or ():
        kind = account.account_type or ""
        if kind not in counts:
            kind = OTHER if kind else ""
        counts[kind] = counts.get(kind, 0) + 1
    return ImageServer(
        name=label(m.name),
        image_id=shared(label(m.image_id)),
        image_type=shared(label(m.image_ref.image_type)) if m.image_ref else "",
        server_id=label(m.server_id),
        instance_id=label(m.instance_id),
        server_group_id=shared(label(m.server_group_id)),
        app_group_id=shared(label(m.app_group_id)),
        enterprise_project_id=shared(label(m.enterprise_project_id)),
        status=shared(label(normalize_status(m.status))),
        created=parse_timestamp(m.create_time),
        updated=parse_timestamp(m.update_time),
        accounts=_shared_counts(tuple(sorted(counts.items()))),
    )


def sub_job(m: SubJobModel) -> SubJob:
    """What the exporter keeps of a sub-job; its type and status bounded to known values."""
    resource = m.job_resource_info
    execute = m.job_execute_info
    return SubJob(
        id=label(m.id),
        job_id=label(m.job_id),
        job_type=known(m.job_type or "", JOB_TYPES),
        resource_id=label(resource.resource_id) if resource else "",
        resource_name=label(resource.resource_name) if resource else "",
        status=known(m.status or "", SUB_JOB_STATUSES),
        error_code=label(execute.error_code) if execute else "",
        error_message=clean(execute.error_message or "") if execute else "",
        begin=parse_timestamp(m.begin_time),
        end=parse_timestamp(m.end_time),
    )
