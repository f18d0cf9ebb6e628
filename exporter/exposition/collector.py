"""A prometheus_client Collector that renders one Snapshot.

Every series is built from the snapshot on each collection, so a target that leaves the
configuration leaves no series behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter.domain.jobs import JobsState
from exporter.domain.state import (
    DEVSERVER_IMAGE_STATUSES,
    IMAGE_SERVER_STATUSES,
    DevServerImage,
    ImageServer,
    Snapshot,
    TargetState,
)
from exporter.domain.targets import Origin, Resource
from exporter.domain.usage import UsageState
from exporter.exposition.families import gauge, polled, state_set
from exporter.exposition.jobs import job_families, latest_families, running_families
from exporter.exposition.usage import usage_families

KEY_LABELS = ["project_id", "id"]
TARGET_LABELS = ["resource", "project_id", "id"]
SWEEP_LABELS = ["resource", "project_id"]


def _devserver_images(
    states: list[tuple[TargetState, DevServerImage]], every: float
) -> Iterator[Metric]:
    info = InfoMetricFamily(
        "huaweicloud_modelarts_devserver_image",
        polled("Descriptive labels of a ModelArts Lite Server (dev-server) image.", every),
        labels=KEY_LABELS,
    )
    status = gauge(
        "huaweicloud_modelarts_devserver_image_status",
        "Status of a dev-server image as a state set: 1 for the current status, 0 for "
        "the other known ones.",
        every,
        [*KEY_LABELS, "status"],
    )
    for t, obj in states:
        key = [t.key.project_id, t.key.id]
        info.add_metric(key, {"name": obj.name, "arch": obj.arch, "server_type": obj.server_type})
        state_set(status, key, obj.status, DEVSERVER_IMAGE_STATUSES)
    yield info
    yield status


def _image_servers(states: list[tuple[TargetState, ImageServer]], every: float) -> Iterator[Metric]:
    info = InfoMetricFamily(
        "huaweicloud_workspace_image_server",
        polled("Descriptive labels of a Workspace image server (image instance).", every),
        labels=KEY_LABELS,
    )
    status = gauge(
        "huaweicloud_workspace_image_server_status",
        "Status of an image server as a state set: 1 for the current status, 0 for the "
        "other known ones; NULL when the API reports none.",
        every,
        [*KEY_LABELS, "status"],
    )
    created = gauge(
        "huaweicloud_workspace_image_server_created_timestamp_seconds",
        "Unix time of the image server's create_time.",
        every,
        KEY_LABELS,
    )
    updated = gauge(
        "huaweicloud_workspace_image_server_updated_timestamp_seconds",
        "Unix time of the image server's update_time.",
        every,
        KEY_LABELS,
    )
    accounts = gauge(
        "huaweicloud_workspace_image_server_authorized_accounts",
        "Number of authorize_accounts entries of each account_type.",
        every,
        [*KEY_LABELS, "account_type"],
    )
    for t, obj in states:
        key = [t.key.project_id, t.key.id]
        info.add_metric(
            key,
            {
                "name": obj.name,
                "image_id": obj.image_id,
                "image_type": obj.image_type,
                "server_id": obj.server_id,
                "instance_id": obj.instance_id,
                "server_group_id": obj.server_group_id,
                "app_group_id": obj.app_group_id,
                "enterprise_project_id": obj.enterprise_project_id,
            },
        )
        state_set(status, key, obj.status, IMAGE_SERVER_STATUSES)
        if obj.created is not None:
            created.add_metric(key, obj.created)
        if obj.updated is not None:
            updated.add_metric(key, obj.updated)
        for account_type, count in obj.accounts:
            accounts.add_metric([*key, account_type], float(count))
    yield from (info, status, created, updated, accounts)


def _targets(states: Iterable[TargetState], every: float) -> Iterator[Metric]:
    up = gauge(
        "huaweicloud_image_exporter_target_up",
        "1 if the last poll of this target got an answer from the API (200, or 404), "
        "0 if it failed.",
        every,
        TARGET_LABELS,
    )
    exists = gauge(
        "huaweicloud_image_exporter_target_exists",
        "1 if the object exists, 0 after the API answered 404.",
        every,
        TARGET_LABELS,
    )
    last_success = gauge(
        "huaweicloud_image_exporter_target_last_success_timestamp_seconds",
        "When the last successful poll of this target finished.",
        every,
        TARGET_LABELS,
    )
    status_since = gauge(
        "huaweicloud_image_exporter_status_last_change_timestamp_seconds",
        "When the exporter first saw the object's current status (first observation "
        "for a status already there when it started).",
        every,
        TARGET_LABELS,
    )
    for t in states:
        labels = [t.key.resource.value, t.key.project_id, t.key.id]
        up.add_metric(labels, 1.0 if t.up else 0.0)
        if t.exists is not None:
            exists.add_metric(labels, 1.0 if t.exists else 0.0)
        if t.last_success is not None:
            last_success.add_metric(labels, t.last_success)
        if t.status_since is not None:
            status_since.add_metric(labels, t.status_since)
    yield from (up, exists, last_success, status_since)


def _summary(snap: Snapshot, latest: bool = True) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "huaweicloud_image_exporter_poll_interval_seconds",
        "Configured interval between poll cycles.",
        value=snap.interval,
    )
    duration = GaugeMetricFamily(
        "huaweicloud_image_exporter_last_poll_duration_seconds",
        "Wall time of the last complete poll cycle.",
    )
    finished = GaugeMetricFamily(
        "huaweicloud_image_exporter_last_poll_timestamp_seconds",
        "When the last poll cycle finished.",
    )
    if snap.last_poll_duration is not None:
        duration.add_metric([], snap.last_poll_duration)
    if snap.last_poll_timestamp is not None:
        finished.add_metric([], snap.last_poll_timestamp)
    yield duration
    yield finished
    calls = GaugeMetricFamily(
        "huaweicloud_image_exporter_last_poll_api_calls",
        "API calls the last complete poll cycle made (list pages and detail calls; retries "
        "not counted).",
    )
    if snap.api_calls is not None:
        calls.add_metric([], float(snap.api_calls))
    yield calls
    targets = GaugeMetricFamily(
        "huaweicloud_image_exporter_targets",
        "Objects watched, by resource and origin: configured by ID, or discovered by a sweep.",
        labels=["resource", "origin"],
    )
    discovered = dict.fromkeys(Resource, 0)
    for t in snap.targets:
        if t.origin is Origin.DISCOVERED:
            discovered[t.key.resource] += 1
    for resource in Resource:
        targets.add_metric(
            [resource.value, Origin.CONFIGURED.value], float(snap.configured.get(resource, 0))
        )
        targets.add_metric([resource.value, Origin.DISCOVERED.value], float(discovered[resource]))
    yield targets
    yield from _sweeps(snap)
    yield from _accounts(snap)
    yield from job_families(snap.jobs, snap.interval, snap.job_counts, latest)
    yield from _transitions(snap)
    shard = InfoMetricFamily(
        "huaweicloud_image_exporter_shard",
        "Which share of the work this process polls (shard 0 of 1: all of it); the value is 1.",
    )
    shard.add_metric([], {"shard": str(snap.shard[0]), "total_shards": str(snap.shard[1])})
    yield shard
    # The same M as a value: PromQL cannot compare a label with a count.
    yield GaugeMetricFamily(
        "huaweicloud_image_exporter_total_shards",
        "How many shards share the work (1 when not sharded).",
        value=float(snap.shard[1]),
    )


def _transitions(snap: Snapshot) -> Iterator[Metric]:
    for resource, name, what in (
        (Resource.IMAGE_SERVER, "huaweicloud_workspace_image_server_status_transitions",
         "Workspace image servers"),
        (Resource.DEVSERVER_IMAGE, "huaweicloud_modelarts_devserver_image_status_transitions",
         "dev-server images"),
    ):  # fmt: skip
        counter = CounterMetricFamily(
            name,
            f"Status changes of {what} seen since the exporter started, by the status before "
            "and after (a documented status, else other).",
            labels=["project_id", "from_status", "to_status"],
        )
        for (kind, project_id, before, after), n in snap.transitions:
            if kind is resource:
                counter.add_metric([project_id, before, after], float(n))
        yield counter


def _accounts(snap: Snapshot) -> Iterator[Metric]:
    every = snap.interval
    info = InfoMetricFamily(
        "huaweicloud_image_exporter_project",
        "A project being watched, configured or found through an account (name, region "
        "and account are empty for a configured one), to join on project_id; the value is 1.",
        labels=["project_id"],
    )
    for p in snap.projects:
        info.add_metric([p.id], {"project_name": p.name, "region": p.region, "account": p.account})
    yield info
    up = gauge(
        "huaweicloud_image_exporter_account_up",
        "1 if the last read of the account's project list succeeded; 0 if it failed and the "
        "last list is still used.",
        every,
        ["account"],
    )
    last_success = gauge(
        "huaweicloud_image_exporter_account_last_success_timestamp_seconds",
        "When the account's project list was last read.",
        every,
        ["account"],
    )
    projects = gauge(
        "huaweicloud_image_exporter_account_projects",
        "Projects of the account being watched (after the region and name filters).",
        every,
        ["account"],
    )
    for a in snap.accounts:
        up.add_metric([a.name], 1.0 if a.up else 0.0)
        if a.last_success is not None:
            last_success.add_metric([a.name], a.last_success)
        if a.projects is not None:
            projects.add_metric([a.name], float(a.projects))
    yield from (up, last_success, projects)


def _sweeps(snap: Snapshot) -> Iterator[Metric]:
    every = snap.interval
    up = gauge(
        "huaweicloud_image_exporter_sweep_up",
        "1 if the last list sweep of this resource in this project read every page, 0 if "
        "a page failed (its objects then keep their last values, marked down).",
        every,
        SWEEP_LABELS,
    )
    last_success = gauge(
        "huaweicloud_image_exporter_sweep_last_success_timestamp_seconds",
        "When the last successful list sweep finished.",
        every,
        SWEEP_LABELS,
    )
    objects = gauge(
        "huaweicloud_image_exporter_sweep_objects",
        "Objects the last successful sweep listed (after name filters).",
        every,
        SWEEP_LABELS,
    )
    pages = gauge(
        "huaweicloud_image_exporter_sweep_pages",
        "List calls the last sweep made.",
        every,
        SWEEP_LABELS,
    )
    complete = gauge(
        "huaweicloud_image_exporter_sweep_complete",
        "0 when the list said it holds more objects than it returned (configured IDs it "
        "lacks are then polled one by one), 1 otherwise.",
        every,
        SWEEP_LABELS,
    )
    allowed = gauge(
        "huaweicloud_image_exporter_sweep_list_allowed",
        "0 when listing is forbidden (HTTP 403: the IAM policy lacks the list action) and "
        "configured IDs are polled one by one instead, 1 otherwise.",
        every,
        SWEEP_LABELS,
    )
    offered = gauge(
        "huaweicloud_image_exporter_sweep_service_available",
        "0 while the service answers that it is not offered in this project (404 "
        "APIGW.0101; asked again hourly, and sweep_up is left out), 1 otherwise.",
        every,
        SWEEP_LABELS,
    )
    for resource, project_id, s in snap.list_sweeps():
        labels = [resource, project_id]
        offered.add_metric(labels, 0.0 if s.unavailable_until else 1.0)
        if not s.unavailable_until:
            up.add_metric(labels, 1.0 if s.up else 0.0)
        allowed.add_metric(labels, 1.0 if s.list_allowed else 0.0)
        pages.add_metric(labels, float(s.pages))
        if s.last_success is not None:
            last_success.add_metric(labels, s.last_success)
        if s.objects is not None:
            objects.add_metric(labels, float(s.objects))
        if s.complete is not None:
            complete.add_metric(labels, 1.0 if s.complete else 0.0)
    yield from (up, last_success, objects, pages, complete, allowed, offered)


class SnapshotCollector(Collector):
    """Yields the cloud-state, per-target and poll series of the snapshot it is given.

    The exposition calls the parts separately: the cloud and per-target families for their
    headers (their lines are written directly, see ``exposition.objects`` and
    ``exposition.render``), the summary a family at a time, and the servers per image a
    project at a time (each kept while its counts hold). ``collect()`` builds every family
    the plain prometheus_client way: it is what any registry would call, and the reference
    the tests hold those faster paths to, byte for byte.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Build every family from the snapshot."""
        yield from self.cloud_families(self.snapshot.targets)
        yield from self.target_families(self.snapshot.targets)
        yield from self.summary_families()
        yield from self.usage_families(self.snapshot.usage)
        yield from self.running_families(self.snapshot.jobs)

    def cloud_families(self, states: Sequence[TargetState]) -> Iterator[Metric]:
        """The families describing objects themselves; they change only when an object does.
        Always the same families in the same order, whichever ``states`` are given: the
        dev-server images' two, then the image servers' five."""
        every = self.snapshot.interval
        yield from _devserver_images(
            [(t, t.obj) for t in states if isinstance(t.obj, DevServerImage)], every
        )
        yield from _image_servers(
            [(t, t.obj) for t in states if isinstance(t.obj, ImageServer)], every
        )

    def target_families(self, states: Sequence[TargetState]) -> Iterator[Metric]:
        """The exporter's own per-target families, which change every cycle."""
        yield from _targets(states, self.snapshot.interval)

    def summary_families(self, latest: bool = True) -> Iterator[Metric]:
        """The families about the poll as a whole (the last-job families without their
        series when not ``latest``: see ``latest_families``)."""
        yield from _summary(self.snapshot, latest)

    def latest_families(self, jobs: Sequence[JobsState]) -> Iterator[Metric]:
        """The latest sub-job of each image server of the projects in ``jobs``, and when it
        ended (rendered a project at a time)."""
        yield from latest_families(jobs, self.snapshot.interval)

    def running_families(self, jobs: Sequence[JobsState]) -> Iterator[Metric]:
        """When each running job of the projects in ``jobs`` began (rendered a few projects
        at a time, last)."""
        yield from running_families(jobs, self.snapshot.interval, self.snapshot.job_counts)

    def usage_families(self, usage: Sequence[UsageState]) -> Iterator[Metric]:
        """The dev servers per image of the projects in ``usage`` (rendered a project at a
        time: 100 projects of 100 images are 10,000 series)."""
        yield from usage_families(usage, self.snapshot.interval)
