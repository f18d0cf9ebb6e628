"""Dev servers per image, in memory: counting, bounding, and which images are watched."""

from __future__ import annotations

import asyncio

import pytest

from exporter.cloud.errors import ApiError, ErrorKind
from exporter.cloud.listing import Page
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.health import Health
from exporter.domain.sharding import Shard, sweep_unit
from exporter.domain.state import DevServerImage, TargetState, observe_answer
from exporter.domain.targets import DevServerScope, Resource, Sweep, SweepKey, TargetKey
from exporter.domain.usage import (
    MAX_IMAGES,
    OTHER_IMAGE,
    DevServer,
    ImageUse,
    UsageState,
    count_images,
)
from exporter.polling.assignment import assign, hashed_targets
from exporter.polling.merge import usage_of_watched
from exporter.polling.usage import UsageWatcher

P = "0123456789abcdef0123456789abcdef"
CREDS = AkSkCredentials("ak", "sk")


def servers(*entries: tuple[str, str]) -> dict[str, DevServer]:
    return {f"ds-{n}": DevServer(f"ds-{n}", status, image) for n, (image, status) in
            enumerate(entries)}  # fmt: skip


def test_servers_are_counted_per_image_most_used_first() -> None:
    found = count_images(servers(("b", "RUNNING"), ("a", "STOPPED"), ("a", "RUNNING"),
                                 ("a", "RUNNING"), ("", "CREATING")))  # fmt: skip
    assert found == (
        ImageUse("a", (("RUNNING", 2), ("STOPPED", 1))),
        ImageUse("", (("CREATING", 1),)),
        ImageUse("b", (("RUNNING", 1),)),
    )


def test_images_past_the_cap_share_one_series() -> None:
    many = servers(*((f"img-{n:05d}", "RUNNING") for n in range(MAX_IMAGES + 5)),
                   ("img-00000", "STOPPED"))  # fmt: skip
    found = count_images(many)
    assert len(found) == MAX_IMAGES + 1
    assert found[0] == ImageUse("img-00000", (("RUNNING", 1), ("STOPPED", 1)))
    assert found[-1] == ImageUse(OTHER_IMAGE, (("RUNNING", 5),))
    assert sum(n for i in found for _, n in i.servers) == len(many)


def test_a_watched_image_is_never_folded_and_other_is_one_series_per_status() -> None:
    # A watched image one server runs, among more than MAX_IMAGES busier ones; servers whose
    # image ID was not one (listed as OTHER_IMAGE) join the folded images' counts.
    busy = [(f"img-{n:05d}", "RUNNING") for n in range(MAX_IMAGES + 200) for _ in range(2)]
    many = servers(*busy, ("watched", "RUNNING"), (OTHER_IMAGE, "RUNNING"),
                   (OTHER_IMAGE, "STOPPED"))  # fmt: skip
    found = count_images(many, {"watched", "not-running"})
    by_image = {i.image_id: i for i in found}
    assert by_image["watched"].servers == (("RUNNING", 1),)
    assert len(found) == MAX_IMAGES + 1 and [i.image_id for i in found].count(OTHER_IMAGE) == 1
    assert by_image[OTHER_IMAGE].servers == (("RUNNING", 201 * 2 + 1), ("STOPPED", 1))
    assert sum(n for i in found for _, n in i.servers) == len(many)


def test_a_deleted_server_is_not_a_use() -> None:
    assert ImageUse("a", (("DELETED", 2), ("DELETING", 1), ("RUNNING", 1))).in_use == 1


def image_state(project: str, image: str, exists: bool = True) -> TargetState:
    key = TargetKey(Resource.DEVSERVER_IMAGE, project, image)
    obj = DevServerImage("n", "X86", "ECS", "ACTIVE") if exists else None
    return observe_answer(None, key, obj, Health(True, 1.0))


async def test_merging_marks_watched_images_and_names_those_no_server_runs() -> None:
    usage = UsageState(P, Health(True, 1.0), objects=2, in_use=(
        ImageUse("used", (("RUNNING", 1),)), ImageUse("stranger", (("RUNNING", 1),))))  # fmt: skip
    states = [image_state(P, "used"), image_state(P, "idle"), image_state(P, "gone", False),
              image_state("other-project", "elsewhere")]  # fmt: skip
    [merged] = await usage_of_watched({P: usage, "unswept": usage}, [P], states)
    assert [(i.image_id, i.watched) for i in merged.in_use] == [("used", True), ("stranger", False)]
    assert merged.idle == ("idle",)  # not "gone" (404), not another project's image
    # Merging again (a partial poll) gives the same.
    [again] = await usage_of_watched({P: merged}, [P], states)
    assert again == merged


def test_each_shard_sweeps_the_dev_servers_of_the_projects_whose_image_sweep_it_owns() -> None:
    projects = [f"{n:02d}" + P[2:] for n in range(12)]
    sweeps = tuple(Sweep(SweepKey(r, p), "https://x", CREDS) for p in projects for r in Resource)
    seen: list[str] = []
    for index in range(3):
        shard = Shard(index, 3)
        mine = assign(shard, (), hashed_targets(shard, ()), sweeps)
        expected = {p for p in projects
                    if shard.owns(sweep_unit(SweepKey(Resource.DEVSERVER_IMAGE, p)))}  # fmt: skip
        assert set(mine.usage_scopes) == expected
        assert all(e.project_id == p for p, e in mine.usage_scopes.items())
        seen += mine.usage_scopes
    assert sorted(seen) == sorted(projects)


class Lister:
    def __init__(self, *answers: Page[DevServer] | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def dev_servers_page(
        self,
        scope: DevServerScope,
        page: tuple[int, int] | None,
        deadline: float | None = None,
        slots: asyncio.Semaphore | None = None,
    ) -> Page[DevServer]:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


SCOPE = DevServerScope(P, "https://x", CREDS, everyone=False)


@pytest.mark.parametrize(
    ("error", "allowed", "unavailable"),
    [
        (ApiError(ErrorKind.HTTP, "boom", status=500), True, False),
        (ApiError(ErrorKind.HTTP, "no", status=403), False, False),
        (ApiError(ErrorKind.HTTP, "no api", status=404, error_code="APIGW.0101"), True, True),
        (RuntimeError("a bug in reading one answer"), True, False),
    ],
    ids=["500", "403", "not-offered", "bug"],
)
async def test_a_failure_keeps_the_counts_and_says_how_it_failed(
    error: Exception, allowed: bool, unavailable: bool
) -> None:
    ok = Page([DevServer("ds-1", "RUNNING", "img")], 1)
    lister = Lister(ok, error, ok)
    watcher = UsageWatcher(lister, clock=lambda: 100.0)
    first, _ = await watcher.refresh(SCOPE, None, None, None)
    state, calls = await watcher.refresh(SCOPE, first, None, None)
    assert first.complete and first.objects == 1
    assert (state.up, state.last_success, calls) == (False, 100.0, 1)
    assert state.in_use == first.in_use and state.objects == 1
    assert state.list_allowed is allowed
    assert (state.unavailable_until is not None) is unavailable
    again, calls = await watcher.refresh(SCOPE, state, None, None)
    assert (again.up, calls) == ((False, 0) if unavailable else (True, 1))


async def test_images_nobody_watches_are_bounded_across_every_project(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("exporter.domain.usage.MAX_UNWATCHED", 4)
    projects = [f"{n:02d}" + P[2:] for n in range(3)]

    def fleet(pid: str) -> dict[str, DevServer]:
        busy = ((f"{pid[:2]}-img-{k}", "RUNNING") for k in range(3) for _ in range(k + 1))
        return servers(*busy, ("watched", "STOPPED"))

    usage = {pid: UsageState(pid, Health(True, 1.0), in_use=count_images(fleet(pid)))
             for pid in projects}  # fmt: skip
    states = [image_state(pid, "watched") for pid in projects]
    merged = await usage_of_watched(usage, projects, states)
    unwatched = [(u.project_id, i.image_id) for u in merged for i in u.in_use
                 if not i.watched and i.image_id != OTHER_IMAGE]  # fmt: skip
    assert len(unwatched) == 4  # the most used: each project's img-2 (3 servers), one img-1
    assert all(any(i.image_id == "watched" and i.watched for i in u.in_use) for u in merged)
    for u in merged:  # nothing is lost: what was folded is counted under "other"
        assert sum(n for i in u.in_use for _, n in i.servers) == 1 + 2 + 3 + 1
