"""The built-in demo: a small cloud whose objects move through a scripted story.

Timeline (seconds after start), chosen so a few poll cycles show every kind of event:
- an image server sits in BUILDING from the start and never finishes (stuck);
- another goes CREATING, then ACTIVE at 10 s, then ERROR at 20 s;
- a dev-server image is INACTIVE throughout; another is deleted at 40 s (404 from then on);
- one image server is throttled now and then (429, retried) and one dev-server image
  fails with 500 now and then, so the API error panels and alerts have data;
- image build jobs: the stuck server's build has been RUNNING for two hours (far too
  long); the other's creation finishes at 10 s, then its image build fails at 20 s with an
  error message (the failure alert, the landing page's message); a creation waits in the
  team project; an image build of 40 minutes ends at 25 s, so build durations vary;
- two more projects are not configured at all but found through an account (IAM's
  project list, in two regions) and their objects discovered by list calls: a new image
  server appears at 15 s and another is deleted at 30 s (it leaves /metrics after two
  sweeps without it);
- the team project's dev servers run its images: its current image on four servers (one
  more is created at 12 s and RUNNING at 22 s), its retired INACTIVE image still on two
  (the "INACTIVE image still in use" alert), and a third image on none (a clean-up
  candidate, retired at 24 s: INACTIVE, with no alert since no server runs it); one server
  runs an image the exporter does not watch there;
- the gateway serves three items a page whatever the limit, and IAM wants the domain ID
  on signed calls, which the demo account does not configure: the exporter finds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.domain.accounts import Account
from exporter.domain.credentials import AkSkCredentials, MetadataSource
from exporter.domain.targets import Discovery, Resource, Target, TargetKey
from exporter.simulator.cloud import SimulatedCloud
from exporter.simulator.devservers import add_dev_server, set_server_status
from exporter.simulator.faults import Fault, FaultKind
from exporter.simulator.jobs import add_job, finish_job

PROJECT_ID = "0a1b2c3d4e5f40718293a4b5c6d7e8f9"
# Demo-only keys for the in-process simulator; they open nothing anywhere else.
ACCESS_KEY = "DEMOACCESSKEY0000000"
DEMO_KEY_LIFETIME = 15 * 60.0  # the agency's temporary keys: the shortest Huawei issues
SECRET_KEY = "demo-secret-key-not-a-real-one-000000000"  # noqa: S105

IMAGES = {
    "5d2b7c1e-8f4a-4b6e-9c3d-1a2b3c4d5e6f": (
        "Ubuntu-22.04-PyTorch-2.1-ARM",
        "ARM",
        "BMS",
        "ACTIVE",
    ),
    "6e3c8d2f-9a5b-4c7f-8d4e-2b3c4d5e6f70": ("EulerOS-2.10-MindSpore-ARM", "ARM", "HPS", "ACTIVE"),
    "7f4d9e3a-0b6c-4d8a-9e5f-3c4d5e6f7081": (
        "CentOS-7-TensorFlow-X86",
        "X86_64",
        "ECS",
        "INACTIVE",
    ),
    "8a5e0f4b-1c7d-4e9b-af60-4d5e6f708192": ("Ubuntu-20.04-Legacy", "X86", "ECS", "ACTIVE"),
}
DELETED_IMAGE = "8a5e0f4b-1c7d-4e9b-af60-4d5e6f708192"
FLAKY_IMAGE = "6e3c8d2f-9a5b-4c7f-8d4e-2b3c4d5e6f70"

SERVERS = {
    "a1f3c5e7-2b4d-4f6a-8c0e-1d3f5a7c9e0b": ("office-suite", "ACTIVE", "private"),
    "b2e4d6f8-3c5e-4a7b-9d1f-2e4a6b8d0f1c": ("cad-workstation", "BUILDING", "gold"),
    "c3f5e7a9-4d6f-4b8c-ae20-3f5b7c9e1a2d": ("data-science-lab", "CREATING", "public"),
    "d4a6f8b0-5e7a-4c9d-bf31-4a6c8d0f2b3e": ("archive-image", "BUILT", "shared"),
}
FAILING_SERVER = "c3f5e7a9-4d6f-4b8c-ae20-3f5b7c9e1a2d"

TEAM_PROJECT_ID = "1b2c3d4e5f60718293a4b5c6d7e8f90a"  # found through the demo account
ASIA_PROJECT_ID = "2c3d4e5f60718293a4b5c6d7e8f90a1b"
ASIA_SERVER = ("18e0d2f4-9cbe-4ad1-8375-8e0a2c4d6f7d", "singapore-lab", "ACTIVE")
TEAM_SERVERS = {
    "e5b7a9c1-6f8b-4dae-8042-5b7d9e1f3c4a": ("render-farm", "ACTIVE", "private"),
    "f6c8b0d2-7a9c-4ebf-9153-6c8e0f2a4d5b": ("training-sandbox", "BUILT", "private"),
}
TEAM_IMAGE = ("9b6f1a5c-2d8e-4fa0-b171-5e6f708192a3", ("Team-PyTorch-2.3-X86", "X86_64", "ECS"))
# More images of the team project: (name, status), and the dev servers running each.
RETIRED_IMAGE = "a0c71b6d-3e9f-4a1b-8282-6f708192a3b4"
UNUSED_IMAGE = "b1d82c7e-4fa0-4b2c-9393-708192a3b4c5"
TEAM_MORE_IMAGES = {
    RETIRED_IMAGE: ("Team-PyTorch-1.13-X86-retired", "INACTIVE"),
    UNUSED_IMAGE: ("Team-JAX-0.4-X86", "ACTIVE"),
}
DEV_SERVERS = [  # (ID, status, image): the last image is watched in the demo's first project
    ("c2e93d8f-5ab1-4c3d-a4a4-8192a3b4c5d6", "RUNNING", TEAM_IMAGE[0]),
    ("d3fa4e90-6bc2-4d4e-b5b5-92a3b4c5d6e7", "RUNNING", TEAM_IMAGE[0]),
    ("e40b5fa1-7cd3-4e5f-86c6-a3b4c5d6e7f8", "RUNNING", TEAM_IMAGE[0]),
    ("f51c60b2-8de4-4f60-97d7-b4c5d6e7f809", "STOPPED", TEAM_IMAGE[0]),
    ("062d71c3-9ef5-4071-a8e8-c5d6e7f8091a", "RUNNING", RETIRED_IMAGE),
    ("173e82d4-af06-4182-b9f9-d6e7f8091a2b", "RUNNING", RETIRED_IMAGE),
    ("284f93e5-b017-4293-8a0a-e7f8091a2b3c", "RUNNING", "5d2b7c1e-8f4a-4b6e-9c3d-1a2b3c4d5e6f"),
]
NEW_DEV_SERVER = "39509af6-c128-43a4-9b1b-f8091a2b3c4d"
APPEARING_SERVER = ("07d9c1e3-8bad-4fc0-a264-7d9f1b3c5e6c", "new-workstation", "CREATING")
LEAVING_SERVER = "f6c8b0d2-7a9c-4ebf-9153-6c8e0f2a4d5b"
THROTTLED_SERVER = "a1f3c5e7-2b4d-4f6a-8c0e-1d3f5a7c9e0b"


def _image_server(server_id: str, name: str, status: str, image_type: str) -> dict[str, object]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return {
        "id": server_id,
        "name": name,
        "description": f"demo image server {name}",
        "image_ref": {"id": "1", "image_type": image_type, "spce_code": "", "product_id": ""},
        "server_group_id": "sg-" + server_id[:8],
        "app_group_id": "ag-" + server_id[:8],
        "server_id": "aps-" + server_id[:8],
        "instance_id": "ecs-" + server_id[:8],
        "image_id": "img-" + server_id[:8],
        "status": status,
        "authorize_accounts": [
            {"account": "ops-team", "account_type": "USER_GROUP", "domain": "demo.example"},
            {"account": "alice", "account_type": "USER", "domain": "demo.example"},
        ],
        "create_time": now,
        "update_time": now,
        "enterprise_project_id": "0",
    }


@dataclass
class DemoStory:
    """Applies the scripted events that are due each time the simulator is asked."""

    cloud: SimulatedCloud
    started: float = field(default_factory=time.monotonic)
    events: list[tuple[float, Callable[[SimulatedCloud], None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.events.sort(key=lambda event: event[0])

    def tick(self) -> None:
        """Apply every event whose time has come."""
        elapsed = time.monotonic() - self.started
        while self.events and self.events[0][0] <= elapsed:
            _, event = self.events.pop(0)
            event(self.cloud)


def build_demo_cloud() -> SimulatedCloud:
    """A simulator populated with the demo's objects, its story attached."""
    cloud = SimulatedCloud(seed=42)
    cloud.add_access_key(ACCESS_KEY, SECRET_KEY)
    cloud.keys.lifetime = DEMO_KEY_LIFETIME  # renewed every 7.5 minutes, as 15-minute keys are
    # As real gateways may: pages shorter than the limit asked for, and an IAM that wants
    # the domain ID on AK/SK-signed calls (the demo account configures none: it is found).
    cloud.page_cap = 3
    cloud.require_domain_id = True
    for image_id, (name, arch, server_type, status) in IMAGES.items():
        cloud.put(
            Resource.DEVSERVER_IMAGE,
            PROJECT_ID,
            image_id,
            {"image_id": image_id, "name": name, "arch": arch, "server_type": server_type,
             "status": status},
        )  # fmt: skip
    for server_id, (name, status, image_type) in SERVERS.items():
        cloud.put(
            Resource.IMAGE_SERVER,
            PROJECT_ID,
            server_id,
            _image_server(server_id, name, status, image_type),
        )
    for server_id, (name, status, image_type) in TEAM_SERVERS.items():
        body = _image_server(server_id, name, status, image_type)
        cloud.put(Resource.IMAGE_SERVER, TEAM_PROJECT_ID, server_id, body)
    cloud.add_project(TEAM_PROJECT_ID, "cn-north-4_team")
    cloud.add_project(ASIA_PROJECT_ID, "ap-southeast-3")
    asia_id, asia_name, asia_status = ASIA_SERVER
    cloud.put(Resource.IMAGE_SERVER, ASIA_PROJECT_ID, asia_id,
              _image_server(asia_id, asia_name, asia_status, "public"))  # fmt: skip
    image_id, (name, arch, server_type) = TEAM_IMAGE
    cloud.put(Resource.DEVSERVER_IMAGE, TEAM_PROJECT_ID, image_id,
              {"image_id": image_id, "name": name, "arch": arch, "server_type": server_type,
               "status": "ACTIVE"})  # fmt: skip
    for image_id, (name, status) in TEAM_MORE_IMAGES.items():
        cloud.put(Resource.DEVSERVER_IMAGE, TEAM_PROJECT_ID, image_id,
                  {"image_id": image_id, "name": name, "arch": arch, "server_type": server_type,
                   "status": status})  # fmt: skip
    for server_id, status, image_id in DEV_SERVERS:
        add_dev_server(cloud, TEAM_PROJECT_ID, server_id, status, _image_of(cloud, image_id))
    new_id, new_name, new_status = APPEARING_SERVER
    jobs = _demo_jobs(cloud)
    cloud.faults[(Resource.IMAGE_SERVER, PROJECT_ID, THROTTLED_SERVER)] = Fault(
        FaultKind.THROTTLE, retry_after="0", probability=0.3
    )
    cloud.faults[(Resource.DEVSERVER_IMAGE, PROJECT_ID, FLAKY_IMAGE)] = Fault(
        FaultKind.STATUS, status=500, error_code="ModelArts.0010", probability=0.2
    )
    story = DemoStory(
        cloud,
        events=[
            (
                10.0,
                lambda c: c.set_status(Resource.IMAGE_SERVER, PROJECT_ID, FAILING_SERVER, "ACTIVE"),
            ),
            (
                20.0,
                lambda c: c.set_status(Resource.IMAGE_SERVER, PROJECT_ID, FAILING_SERVER, "ERROR"),
            ),
            (
                15.0,
                lambda c: c.put(
                    Resource.IMAGE_SERVER,
                    TEAM_PROJECT_ID,
                    new_id,
                    _image_server(new_id, new_name, new_status, "private"),
                ),
            ),
            (30.0, lambda c: c.delete(Resource.IMAGE_SERVER, TEAM_PROJECT_ID, LEAVING_SERVER)),
            (
                12.0,
                lambda c: add_dev_server(
                    c, TEAM_PROJECT_ID, NEW_DEV_SERVER, "CREATING", _image_of(c, TEAM_IMAGE[0])
                ),
            ),
            (22.0, lambda c: set_server_status(c, TEAM_PROJECT_ID, NEW_DEV_SERVER, "RUNNING")),
            (
                24.0,
                lambda c: c.set_status(
                    Resource.DEVSERVER_IMAGE, TEAM_PROJECT_ID, UNUSED_IMAGE, "INACTIVE"
                ),
            ),
            *jobs,
            (40.0, lambda c: c.delete(Resource.DEVSERVER_IMAGE, PROJECT_ID, DELETED_IMAGE)),
        ],
    )
    cloud.on_request = story.tick
    cloud.on_list_page = lambda *_: story.tick()
    return cloud


def _image_of(cloud: SimulatedCloud, image_id: str) -> dict[str, Any] | None:
    """The image body a dev server carries: that of the image, wherever it is listed."""
    for (resource, _, oid), body in cloud.objects.items():
        if resource is Resource.DEVSERVER_IMAGE and oid == image_id:
            return body
    return None


BUILD_ERROR = (
    "WKS.0500",
    "Image build failed: instance ecs-c3f5e7a9 ran out of disk space (/ at 100%) while "
    "installing packages; free space or choose a larger system disk and build again.",
)


def _demo_jobs(cloud: SimulatedCloud) -> list[tuple[float, Callable[[SimulatedCloud], None]]]:
    """The jobs there at start, and the story's job events."""
    now = time.time()
    server = {sid: (sid, name) for sid, (name, _, _) in SERVERS.items()}
    for sid in ("a1f3c5e7-2b4d-4f6a-8c0e-1d3f5a7c9e0b", "d4a6f8b0-5e7a-4c9d-bf31-4a6c8d0f2b3e"):
        add_job(cloud, PROJECT_ID, "CREATE_SERVER", "SUCCESS", [server[sid]],
                begin=now - 86_400, end=now - 85_000)  # fmt: skip
    add_job(cloud, PROJECT_ID, "BUILD_IMAGE", "RUNNING",
            [server["b2e4d6f8-3c5e-4a7b-9d1f-2e4a6b8d0f1c"]], begin=now - 7_200)  # fmt: skip
    creating = add_job(cloud, PROJECT_ID, "CREATE_SERVER", "RUNNING", [server[FAILING_SERVER]],
                       begin=now - 60)  # fmt: skip
    held: dict[str, dict[str, object]] = {}

    def created(c: SimulatedCloud) -> None:
        finish_job(creating, "SUCCESS", time.time())
        held["build"] = add_job(c, PROJECT_ID, "BUILD_IMAGE", "RUNNING",
                                [server[FAILING_SERVER]], begin=time.time())  # fmt: skip

    def build_failed(c: SimulatedCloud) -> None:
        finish_job(held["build"], "FAILED", time.time(), error=BUILD_ERROR)

    long_build = add_job(cloud, PROJECT_ID, "BUILD_IMAGE", "RUNNING",
                         [server["d4a6f8b0-5e7a-4c9d-bf31-4a6c8d0f2b3e"]],
                         begin=now - 2_400)  # fmt: skip

    def long_build_done(c: SimulatedCloud) -> None:
        finish_job(long_build, "SUCCESS", time.time())

    def queued(c: SimulatedCloud) -> None:
        new_id, new_name, _ = APPEARING_SERVER
        add_job(c, TEAM_PROJECT_ID, "CREATE_SERVER", "WAITING", [(new_id, new_name)],
                begin=time.time())  # fmt: skip

    return [(10.0, created), (19.5, build_failed), (15.0, queued), (25.0, long_build_done)]


def demo_targets(endpoint: str) -> tuple[Target, ...]:
    """The demo's targets, all served by the simulator at ``endpoint``."""
    credentials = AkSkCredentials(ACCESS_KEY, SECRET_KEY)
    images = (TargetKey(Resource.DEVSERVER_IMAGE, PROJECT_ID, i) for i in IMAGES)
    servers = (TargetKey(Resource.IMAGE_SERVER, PROJECT_ID, s) for s in SERVERS)
    return tuple(Target(key, endpoint, credentials) for key in (*images, *servers))


def demo_accounts(endpoint: str) -> tuple[Account, ...]:
    """The demo's account: every project the simulator's IAM lists, everything in each,
    read with an agency's temporary keys from the simulator's metadata service, as on an
    ECS with an agency (``credentials: {source: metadata}``)."""
    return (
        Account(
            "demo",
            MetadataSource(endpoint),
            iam_endpoint=endpoint,
            endpoints=dict.fromkeys(Resource, endpoint),
            discovery={r: Discovery() for r in Resource},
            sts_endpoint=endpoint,
        ),
    )
