"""Dev servers (ModelArts Lite Servers) in the simulated cloud, shaped as
``GET /v1/{project_id}/dev-servers`` returns them: paged by ``limit`` (0..1024) and
``offset``, answered ``{"current", "pages", "size", "total", "data"}``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the cloud serves pages through this module
    from exporter.simulator.cloud import SimulatedCloud

MAX_LIMIT = 1024  # the largest page the dev-server list serves
DEFAULT_LIMIT = 10


def add_dev_server(
    cloud: SimulatedCloud,
    project_id: str,
    server_id: str,
    status: str,
    image: dict[str, Any] | None,
    *,
    created: int = 1_700_000_000_000,
) -> None:
    """A dev server running ``image`` (a dev-server image body, or None for one that names
    none), listed after the project's others. ``create_at`` is in milliseconds, as the
    console shows it; the exporter does not read it."""
    server = {
        "id": server_id, "name": f"devserver-{server_id[:8]}", "status": status,
        "flavor": "modelarts.lite.8xlarge", "category": "SERVER", "charging_mode": "POST_PAID",
        "create_at": created, "update_at": created, "vpc_id": "vpc-1", "subnet_id": "subnet-1",
        **({"image": dict(image)} if image is not None else {}),
    }  # fmt: skip
    cloud.dev_servers.setdefault(project_id, []).append(server)


def set_server_status(cloud: SimulatedCloud, project_id: str, server_id: str, status: str) -> None:
    """A dev server changes status."""
    for server in cloud.dev_servers.get(project_id, []):
        if server["id"] == server_id:
            server["status"] = status


def page(
    cloud: SimulatedCloud, project_id: str, query: dict[str, str]
) -> tuple[int, dict[str, Any]] | None:
    """The answer to one page: (offset, body); None when ``limit`` or ``offset`` is not
    one the API accepts."""
    try:
        offset = int(query.get("offset", "0"))
        limit = int(query.get("limit", str(DEFAULT_LIMIT)))
    except ValueError:
        return None
    if offset < 0 or not 0 <= limit <= MAX_LIMIT:
        return None
    if cloud.page_cap is not None:
        limit = min(limit, cloud.page_cap)
    servers = cloud.dev_servers.get(project_id, [])
    data = servers[offset : offset + limit]
    size = max(limit, 1)
    body = {
        "current": offset // size + 1, "pages": max(1, -(-len(servers) // size)),
        "size": len(data), "total": len(servers), "data": data,
    }  # fmt: skip
    return offset, body
