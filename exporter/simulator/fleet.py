"""A large, reproducible population of objects for benchmarks and soak runs."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace

from exporter.domain.accounts import Account
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.targets import Discovery, Resource, Sweep, SweepKey, Target, TargetKey
from exporter.simulator.cloud import SimulatedCloud
from exporter.simulator.devservers import add_dev_server
from exporter.simulator.faults import BodyShape, Fault, FaultKind

PROJECT_ID = "f1ee7f1ee7f14ee7a1ee7f1ee7f1ee70"
ACCESS_KEY = "FLEETACCESSKEY000001"
SECRET_KEY = "fleet-secret-key-for-the-simulator-only"  # noqa: S105 - opens only the simulator

_SERVER_STATUSES = ("ACTIVE", "BUILDING", "BUILT", "CREATING", "ERROR")
_DEV_SERVER_STATUSES = ("RUNNING", "RUNNING", "RUNNING", "STOPPED", "CREATING", "ERROR")
# Per-request fault odds for soak runs: every fault mode, with most requests healthy.
MIXED_FAULTS = (
    (0.05, Fault(FaultKind.SLOW, delay=0.2)),
    (0.02, Fault(FaultKind.HANG, delay=30.0)),
    (0.03, Fault(FaultKind.STATUS, status=500)),
    (0.03, Fault(FaultKind.THROTTLE, retry_after="0")),
    (0.01, Fault(FaultKind.MALFORMED)),
    (0.01, Fault(FaultKind.TRUNCATED)),
    (0.01, Fault(FaultKind.RESET)),
    (0.01, Fault(FaultKind.HTML)),
    (0.01, Fault(FaultKind.STATUS, status=503, shape=BodyShape.TEXT)),
)


def fleet_keys(size: int) -> list[TargetKey]:
    """``size`` objects, half dev-server images and half image servers, always the same."""
    keys = []
    for n in range(size):
        if n % 2 == 0:
            object_id = str(uuid.UUID(int=n + 1, version=4))
            keys.append(TargetKey(Resource.DEVSERVER_IMAGE, PROJECT_ID, object_id))
        else:
            keys.append(TargetKey(Resource.IMAGE_SERVER, PROJECT_ID, f"fleet-{n:06d}"))
    return keys


def fleet_targets(endpoint: str, size: int) -> tuple[Target, ...]:
    """The exporter's side of the fleet."""
    credentials = AkSkCredentials(ACCESS_KEY, SECRET_KEY)
    return tuple(Target(k, endpoint, credentials) for k in fleet_keys(size))


def populate(cloud: SimulatedCloud, size: int, *, faults: bool = False, seed: int = 1) -> None:
    """Create the fleet's objects (and, for soak runs, give each a random fault mode)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible fixtures, not security
    cloud.add_access_key(ACCESS_KEY, SECRET_KEY)
    for n, key in enumerate(fleet_keys(size)):
        if key.resource is Resource.DEVSERVER_IMAGE:
            body: dict[str, object] = {
                "image_id": key.id, "name": f"image-{n}", "arch": "X86_64", "server_type": "ECS",
                "status": "ACTIVE" if n % 10 else "INACTIVE",
            }  # fmt: skip
        else:
            body = {
                "id": key.id, "name": f"server-{n}",
                "status": _SERVER_STATUSES[n % len(_SERVER_STATUSES)],
                "image_ref": {"image_type": "private"}, "create_time": "2026-01-01T00:00:00.000Z",
                "update_time": "2026-01-01T00:00:00Z",
                "authorize_accounts": [{"account": "a", "account_type": "USER"}],
            }  # fmt: skip
        cloud.put(key.resource, key.project_id, key.id, body)
        if faults:
            odds, fault = MIXED_FAULTS[rng.randrange(len(MIXED_FAULTS))]
            # Each object misbehaves now and then in its own way, so failures move around.
            cloud.faults[(key.resource, key.project_id, key.id)] = replace(
                fault, probability=min(1.0, odds * 10)
            )


def project_ids(projects: int) -> list[str]:
    """The projects of a discovery fleet, always the same."""
    return [f"f1ee7{n:027d}" for n in range(projects)]


def populate_projects(
    cloud: SimulatedCloud, projects: int, servers: int, images: int, dev_servers: int = 0
) -> None:
    """``servers`` image servers, ``images`` dev-server images and ``dev_servers`` dev
    servers (running those images in turn, in varied statuses) in each of ``projects``."""
    cloud.add_access_key(ACCESS_KEY, SECRET_KEY)
    regions = ("cn-north-4", "ap-southeast-3", "la-south-2")
    for p, project in enumerate(project_ids(projects)):
        cloud.add_project(project, f"{regions[p % len(regions)]}_team{p}")  # IAM lists them
        for n in range(servers):
            sid = f"fleet-{p:03d}-{n:06d}"
            cloud.put(Resource.IMAGE_SERVER, project, sid, {
                "id": sid, "name": f"server-{n}",
                "status": _SERVER_STATUSES[n % len(_SERVER_STATUSES)],
                "image_ref": {"image_type": "private"}, "create_time": "2026-01-01T00:00:00.000Z",
                "update_time": "2026-01-01T00:00:00Z",
                "authorize_accounts": [{"account": "a", "account_type": "USER"}],
            })  # fmt: skip
        for n in range(images):
            iid = str(uuid.UUID(int=(p << 32) + n + 1, version=4))
            cloud.put(Resource.DEVSERVER_IMAGE, project, iid, {
                "image_id": iid, "name": f"image-{n}", "arch": "X86_64", "server_type": "ECS",
                "status": "ACTIVE" if n % 10 else "INACTIVE",
            })  # fmt: skip
        image_ids = [str(uuid.UUID(int=(p << 32) + n + 1, version=4)) for n in range(images)]
        for n in range(dev_servers):
            image = {"image_id": image_ids[n % len(image_ids)]} if image_ids else None
            status = _DEV_SERVER_STATUSES[n % len(_DEV_SERVER_STATUSES)]
            add_dev_server(cloud, project, f"ds-{p:03d}-{n:07d}", status, image)


def fleet_sweeps(endpoint: str, projects: int) -> tuple[Sweep, ...]:
    """The exporter's side of a discovery fleet: both kinds swept in every project."""
    credentials = AkSkCredentials(ACCESS_KEY, SECRET_KEY)
    return tuple(
        Sweep(SweepKey(resource, project), endpoint, credentials)
        for project in project_ids(projects)
        for resource in Resource
    )


def fleet_account(endpoint: str) -> Account:
    """The exporter's side of a discovery fleet found through IAM: one account, everything."""
    return Account(
        "fleet",
        AkSkCredentials(ACCESS_KEY, SECRET_KEY),
        iam_endpoint=endpoint,
        endpoints=dict.fromkeys(Resource, endpoint),
        discovery={r: Discovery() for r in Resource},
    )
