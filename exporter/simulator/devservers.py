"""Dev servers (ModelArts Lite Servers) in the simulated cloud, shaped as
``GET /v1/{project_id}/dev-servers`` returns them: paged by ``limit`` (0..1024) and
``offset``, answered ``{"current", "pages", "size", "total", "data"}``.

The API reference does not settle what ``offset`` is, so the simulator serves both readings
(``SimulatedCloud.devserver_offset``): "item", the offset of the first item, with ``current``
counted from 1; or "page", ``page = offset // limit`` with ``current`` counted from 0, as
Huawei's terraform team saw a sibling ModelArts list do. The caller's list holds the servers
whose owner is SELF; every user's (``.../dev-servers/all``) holds them all, whole in one
answer, or, with ``SimulatedCloud.devserver_all_page`` set, a first page of that size unless
``limit`` and ``offset`` ask for another."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the cloud serves pages through this module
    from exporter.simulator.cloud import SimulatedCloud

MAX_LIMIT = 1024  # the largest page the dev-server list serves
DEFAULT_LIMIT = 10
SELF = "exporter"  # the user the simulated cloud's callers are


def add_dev_server(
    cloud: SimulatedCloud,
    project_id: str,
    server_id: str,
    status: str,
    image: dict[str, Any] | None,
    *,
    created: int = 1_700_000_000_000,
    owner: str = SELF,
) -> None:
    """A dev server running ``image`` (a dev-server image body, or None for one that names
    none), listed after the project's others. ``create_at`` is in milliseconds, as the
    console shows it; the exporter does not read it."""
    server = {
        "id": server_id, "name": f"devserver-{server_id[:8]}", "status": status,
        "flavor": "modelarts.lite.8xlarge", "category": "SERVER", "charging_mode": "POST_PAID",
        "create_at": created, "update_at": created, "vpc_id": "vpc-1", "subnet_id": "subnet-1",
        "owner": owner, **({"image": dict(image)} if image is not None else {}),
    }  # fmt: skip
    cloud.dev_servers.setdefault(project_id, []).append(server)


def set_server_status(cloud: SimulatedCloud, project_id: str, server_id: str, status: str) -> None:
    """A dev server changes status."""
    for server in cloud.dev_servers.get(project_id, []):
        if server["id"] == server_id:
            server["status"] = status


def page(
    cloud: SimulatedCloud, project_id: str, query: dict[str, str], *, everyone: bool = False
) -> dict[str, Any] | None:
    """The answer to one page; None when ``limit`` or ``offset`` is not one the API
    accepts."""
    servers = cloud.dev_servers.get(project_id, [])
    if not everyone:
        servers = [s for s in servers if s["owner"] == SELF]
    default = DEFAULT_LIMIT
    if everyone:
        default = cloud.devserver_all_page or max(len(servers), 1)
        if "limit" not in query and "offset" not in query:  # as the SDK asks: all, or a page
            return _answer(servers, 0, default, cloud.devserver_offset)
    try:
        offset = int(query.get("offset", "0"))
        limit = int(query.get("limit", str(default)))
    except ValueError:
        return None
    if offset < 0 or not 0 <= limit <= MAX_LIMIT:
        return None
    if cloud.page_cap is not None:
        limit = min(limit, cloud.page_cap)
    return _answer(servers, offset, limit, cloud.devserver_offset)


def _answer(servers: list[dict[str, Any]], offset: int, limit: int, mode: str) -> dict[str, Any]:
    size = max(limit, 1)
    number = offset // size
    start = number * size if mode == "page" else offset
    data = [{k: v for k, v in s.items() if k != "owner"} for s in servers[start : start + limit]]
    return {
        "current": number if mode == "page" else number + 1,
        "pages": max(1, -(-len(servers) // size)), "size": len(data), "total": len(servers),
        "data": data,
    }  # fmt: skip
