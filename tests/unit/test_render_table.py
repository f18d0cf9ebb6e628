"""Table tests in kube-state-metrics' style: one object's state in, its exact lines out.

No HTTP and no poller: each case builds a TargetState, renders a snapshot of it, and
compares every sample line about that object (HELP/TYPE headers and the poll-wide summary
families left aside; the golden files cover those).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from exporter.domain.health import Health
from exporter.domain.state import DevServerImage, ImageServer, Snapshot, TargetState
from exporter.domain.targets import Resource, TargetKey
from exporter.exposition.render import render
from exporter.exposition.textformat import Format

P = "p1"
SUMMARY = ("huaweicloud_image_exporter_poll_", "huaweicloud_image_exporter_last_poll_",
           "huaweicloud_image_exporter_targets", "huaweicloud_image_exporter_shard",
           "huaweicloud_image_exporter_total_shards")  # fmt: skip


def image(status: str = "ACTIVE", name: str = "base") -> DevServerImage:
    return DevServerImage(name, "X86_64", "ECS", status)


def server(status: str = "BUILDING", **kw: object) -> ImageServer:
    fields: dict[str, object] = {
        "name": "lab", "image_id": "img", "image_type": "private", "server_id": "aps",
        "instance_id": "ecs", "server_group_id": "sg", "app_group_id": "ag",
        "enterprise_project_id": "0", "status": status, "created": 100.0, "updated": 200.0,
        "accounts": (("USER", 2), ("USER_GROUP", 0)),
    }  # fmt: skip
    fields.update(kw)
    return ImageServer(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    name: str
    state: TargetState
    want: list[str]


IMG = TargetKey(Resource.DEVSERVER_IMAGE, P, "i1")
SRV = TargetKey(Resource.IMAGE_SERVER, P, "s1")
# Label names in sorted order, as the exposition writes them.
T_IMG = 'id="i1",project_id="p1",resource="devserver_image"'
T_SRV = 'id="s1",project_id="p1",resource="image_server"'
K_IMG = 'id="i1",project_id="p1"'
K_SRV = 'id="s1",project_id="p1"'

CASES = [
    Case("dev-server image, ACTIVE",
         TargetState(IMG, Health(True, 50.0), True, image(), 40.0),
         ['huaweicloud_modelarts_devserver_image_info{arch="X86_64",id="i1",name="base",project_id="p1",server_type="ECS"} 1.0',
          f'huaweicloud_modelarts_devserver_image_status{{{K_IMG},status="ACTIVE"}} 1.0',
          f'huaweicloud_modelarts_devserver_image_status{{{K_IMG},status="INACTIVE"}} 0.0',
          f"huaweicloud_image_exporter_target_up{{{T_IMG}}} 1.0",
          f"huaweicloud_image_exporter_target_exists{{{T_IMG}}} 1.0",
          f"huaweicloud_image_exporter_target_last_success_timestamp_seconds{{{T_IMG}}} 50.0",
          f"huaweicloud_image_exporter_status_last_change_timestamp_seconds{{{T_IMG}}} 40.0"]),
    Case("dev-server image in an undocumented status gets its own series",
         TargetState(IMG, Health(True, 50.0), True, image("FROZEN"), 40.0),
         ['huaweicloud_modelarts_devserver_image_info{arch="X86_64",id="i1",name="base",project_id="p1",server_type="ECS"} 1.0',
          f'huaweicloud_modelarts_devserver_image_status{{{K_IMG},status="ACTIVE"}} 0.0',
          f'huaweicloud_modelarts_devserver_image_status{{{K_IMG},status="INACTIVE"}} 0.0',
          f'huaweicloud_modelarts_devserver_image_status{{{K_IMG},status="FROZEN"}} 1.0',
          f"huaweicloud_image_exporter_target_up{{{T_IMG}}} 1.0",
          f"huaweicloud_image_exporter_target_exists{{{T_IMG}}} 1.0",
          f"huaweicloud_image_exporter_target_last_success_timestamp_seconds{{{T_IMG}}} 50.0",
          f"huaweicloud_image_exporter_status_last_change_timestamp_seconds{{{T_IMG}}} 40.0"]),
    Case("deleted (404): no object series, exists 0, no status clock",
         TargetState(IMG, Health(True, 50.0), False, None, None),
         [f"huaweicloud_image_exporter_target_up{{{T_IMG}}} 1.0",
          f"huaweicloud_image_exporter_target_exists{{{T_IMG}}} 0.0",
          f"huaweicloud_image_exporter_target_last_success_timestamp_seconds{{{T_IMG}}} 50.0"]),
    Case("never answered: only up 0",
         TargetState(IMG, Health(False, None, "timeout", "timeout"), None, None, None),
         [f"huaweicloud_image_exporter_target_up{{{T_IMG}}} 0.0"]),
    Case("image server failing now keeps its last values",
         TargetState(SRV, Health(False, 50.0, "HTTP 500", "http_500"), True, server("ERROR", accounts=()), 45.0),
         ['huaweicloud_workspace_image_server_info{app_group_id="ag",enterprise_project_id="0",id="s1",image_id="img",image_type="private",instance_id="ecs",name="lab",project_id="p1",server_group_id="sg",server_id="aps"} 1.0',
          *(f'huaweicloud_workspace_image_server_status{{{K_SRV},status="{s}"}} {1.0 if s == "ERROR" else 0.0}'
            for s in ("CREATING", "ACTIVE", "BUILDING", "BUILT", "ERROR", "DELETING", "NULL")),
          f"huaweicloud_workspace_image_server_created_timestamp_seconds{{{K_SRV}}} 100.0",
          f"huaweicloud_workspace_image_server_updated_timestamp_seconds{{{K_SRV}}} 200.0",
          f"huaweicloud_image_exporter_target_up{{{T_SRV}}} 0.0",
          f"huaweicloud_image_exporter_target_exists{{{T_SRV}}} 1.0",
          f"huaweicloud_image_exporter_target_last_success_timestamp_seconds{{{T_SRV}}} 50.0",
          f"huaweicloud_image_exporter_status_last_change_timestamp_seconds{{{T_SRV}}} 45.0"]),
    Case("image server without times, accounts by type, label values escaped",
         TargetState(SRV, Health(True, 50.0), True, server("NULL", name='a "b"\\c\nd', created=None, updated=None), 45.0),
         ['huaweicloud_workspace_image_server_info{app_group_id="ag",enterprise_project_id="0",id="s1",image_id="img",image_type="private",instance_id="ecs",name="a \\"b\\"\\\\c\\nd",project_id="p1",server_group_id="sg",server_id="aps"} 1.0',
          *(f'huaweicloud_workspace_image_server_status{{{K_SRV},status="{s}"}} {1.0 if s == "NULL" else 0.0}'
            for s in ("CREATING", "ACTIVE", "BUILDING", "BUILT", "ERROR", "DELETING", "NULL")),
          f'huaweicloud_workspace_image_server_authorized_accounts{{account_type="USER",{K_SRV}}} 2.0',
          f'huaweicloud_workspace_image_server_authorized_accounts{{account_type="USER_GROUP",{K_SRV}}} 0.0',
          f"huaweicloud_image_exporter_target_up{{{T_SRV}}} 1.0",
          f"huaweicloud_image_exporter_target_exists{{{T_SRV}}} 1.0",
          f"huaweicloud_image_exporter_target_last_success_timestamp_seconds{{{T_SRV}}} 50.0",
          f"huaweicloud_image_exporter_status_last_change_timestamp_seconds{{{T_SRV}}} 45.0"]),
]  # fmt: skip


def object_lines(snapshot: Snapshot, fmt: Format) -> list[str]:
    body = b"".join(render(snapshot).chunks(fmt)).decode()
    return [
        line
        for line in body.splitlines()
        if line and not line.startswith("#") and not line.startswith(SUMMARY)
    ]


@pytest.mark.parametrize("fmt", list(Format))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_state_renders_exactly(case: Case, fmt: Format) -> None:
    snapshot = Snapshot((case.state,), {Resource.DEVSERVER_IMAGE: 1}, 60.0)
    assert object_lines(snapshot, fmt) == case.want
