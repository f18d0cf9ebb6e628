"""API answers (pydantic wire models) turned into the domain's plain objects."""

from __future__ import annotations

from datetime import UTC, datetime

from exporter.cloud.models import DevServerImageModel, ImageServerModel
from exporter.domain.state import ACCOUNT_TYPES, DevServerImage, ImageServer, normalize_status


def parse_timestamp(text: str | None) -> float | None:
    """Unix seconds from any ISO 8601 form the API sends; None when absent or unparsable.

    A time without an offset is UTC, as the API documents its times.
    """
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def devserver_image(m: DevServerImageModel) -> DevServerImage:
    """What the exporter keeps of a dev-server image answer."""
    return DevServerImage(
        m.name or "", m.arch or "", m.server_type or "", normalize_status(m.status)
    )


def image_server(m: ImageServerModel) -> ImageServer:
    """What the exporter keeps of an image-server answer; accounts are counted by type."""
    counts = dict.fromkeys(ACCOUNT_TYPES, 0)
    for account in m.authorize_accounts or ():
        kind = account.account_type or ""
        counts[kind] = counts.get(kind, 0) + 1
    return ImageServer(
        name=m.name or "",
        image_id=m.image_id or "",
        image_type=(m.image_ref.image_type or "") if m.image_ref else "",
        server_id=m.server_id or "",
        instance_id=m.instance_id or "",
        server_group_id=m.server_group_id or "",
        app_group_id=m.app_group_id or "",
        enterprise_project_id=m.enterprise_project_id or "",
        status=normalize_status(m.status),
        created=parse_timestamp(m.create_time),
        updated=parse_timestamp(m.update_time),
        accounts=tuple(sorted(counts.items())),
    )
