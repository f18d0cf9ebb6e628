"""The poller against a fake fetcher and an in-memory store: no HTTP, no rendering."""

from __future__ import annotations

import asyncio
import logging

import pytest

from exporter.cloud.errors import ApiError, ErrorKind
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.state import Snapshot
from exporter.domain.targets import Origin, Resource, Sweep, SweepKey
from exporter.polling.poller import Poller
from exporter.polling.sweeps import unlisted_slack
from tests.fakes import FakeFetcher, FakeListing, MemoryStore, image, poll, poller, states, target


async def test_each_kind_of_answer_becomes_its_state() -> None:
    fetcher = FakeFetcher({
        "ok": image("ACTIVE"),
        "gone": None,
        "throttled": ApiError(ErrorKind.HTTP, "slow down", status=429, error_code="APIGW.0308"),
        "bug": ZeroDivisionError(),
    })  # fmt: skip
    p, _ = poller(fetcher, ["ok", "gone", "throttled", "bug"], [1000.0])
    snap = await p.run_cycle()
    assert states(snap) == {
        "ok": (True, True, "ACTIVE", None),
        "gone": (True, False, None, None),
        "throttled": (False, None, None, "APIGW.0308"),
        "bug": (False, None, None, "internal"),
    }
    assert snap.ready and snap.last_poll_timestamp == 1000.0


async def test_failure_keeps_last_values_and_status_clock_moves_only_on_change() -> None:
    now = [1000.0]
    fetcher = FakeFetcher({"a": image("ACTIVE")})
    p, _ = poller(fetcher, ["a"], now)
    first = (await p.run_cycle()).targets[0]
    now[0] = 1060.0
    fetcher.answers["a"] = ApiError(ErrorKind.TIMEOUT, "no answer")
    failed = (await p.run_cycle()).targets[0]
    assert (failed.up, failed.obj, failed.last_success, failed.status_since) == (
        False, first.obj, 1000.0, 1000.0,
    )  # fmt: skip
    now[0] = 1120.0
    fetcher.answers["a"] = image("ACTIVE")
    assert (await p.run_cycle()).targets[0].status_since == 1000.0
    now[0] = 1180.0
    fetcher.answers["a"] = image("INACTIVE")
    changed = (await p.run_cycle()).targets[0]
    assert (changed.status_since, changed.last_success) == (1180.0, 1180.0)


@pytest.mark.parametrize("concurrency", [1, 3, 16])
async def test_concurrency_is_bounded(concurrency: int) -> None:
    ids = [f"t{n}" for n in range(10)]
    fetcher = FakeFetcher(dict.fromkeys(ids, image("ACTIVE")))
    p, _ = poller(fetcher, ids, [0.0], concurrency=concurrency)
    await p.run_cycle()
    assert fetcher.peak == min(concurrency, len(ids))
    assert sorted(fetcher.calls) == sorted(ids)


async def test_target_removed_during_a_cycle_is_dropped_and_added_one_merged() -> None:
    fetcher = FakeFetcher({"a": image("ACTIVE"), "b": image("ACTIVE"), "c": image("ACTIVE")})
    p, store = poller(fetcher, ["a", "b"], [0.0])
    fetcher.gate = asyncio.Event()
    cycle = asyncio.create_task(p.run_cycle())
    await asyncio.sleep(0)
    added, _ = p.reconfigure((target("a"), target("c")), poll=poll())
    assert [t.key.id for t in added] == ["c"]
    fetcher.gate.set()
    await p.poll_some(added)
    await cycle
    assert [t.key.id for t in store.snapshot.targets] == ["a", "c"]
    assert store.snapshot.configured[Resource.DEVSERVER_IMAGE] == 2


SWEEP = SweepKey(Resource.DEVSERVER_IMAGE, "p")


def swept(
    fetcher: FakeFetcher, configured: tuple[str, ...] = ()
) -> tuple[Poller, MemoryStore, list[float]]:
    now = [1000.0]
    store = MemoryStore()
    sweep = Sweep(SWEEP, "http://x", AkSkCredentials("a", "b"), configured=configured)
    p = Poller(fetcher, store, tuple(target(i) for i in configured), poll=poll(),
               sweeps=(sweep,), clock=lambda: now[0])  # fmt: skip
    return p, store, now


def by_id(snapshot: Snapshot) -> dict[str, tuple[bool, str | None, Origin, int]]:
    return {
        t.key.id: (t.up, t.obj.status if t.obj else None, t.origin, t.missing)
        for t in snapshot.targets
    }


async def test_discovered_object_leaves_after_two_complete_sweeps_without_it() -> None:
    fetcher = FakeFetcher({})
    fetcher.listings[SWEEP] = FakeListing({"a": image("ACTIVE"), "b": image("INACTIVE")})
    p, _, _ = swept(fetcher)
    snap = await p.run_cycle()
    assert by_id(snap) == {"a": (True, "ACTIVE", Origin.DISCOVERED, 0),
                           "b": (True, "INACTIVE", Origin.DISCOVERED, 0)}  # fmt: skip
    fetcher.listings[SWEEP] = FakeListing({"a": image("ACTIVE")})
    assert by_id(await p.run_cycle())["b"] == (True, "INACTIVE", Origin.DISCOVERED, 1)
    fetcher.listings[SWEEP] = FakeListing({"a": image("ACTIVE"), "b": image("INACTIVE")})
    assert by_id(await p.run_cycle())["b"][3] == 0, "seen again: the count starts over"
    fetcher.listings[SWEEP] = FakeListing({"a": image("ACTIVE")})
    await p.run_cycle()
    assert "b" not in by_id(await p.run_cycle())
    assert fetcher.calls.count("b") == 0, "discovered objects need no detail call"


async def test_failed_or_incomplete_sweep_removes_nothing() -> None:
    fetcher = FakeFetcher({})
    fetcher.listings[SWEEP] = FakeListing({"a": image("ACTIVE"), "b": image("ACTIVE")})
    p, _, _ = swept(fetcher)
    await p.run_cycle()
    fetcher.listings[SWEEP] = ApiError(ErrorKind.HTTP, "boom", status=500)
    assert (await p.run_cycle()).sweeps[0].objects == 2, "the last good sweep's count is kept"
    for _ in range(3):
        fetcher.listings[SWEEP] = ApiError(ErrorKind.HTTP, "boom", status=500)
        snap = await p.run_cycle()
        assert by_id(snap) == {"a": (False, "ACTIVE", Origin.DISCOVERED, 0),
                               "b": (False, "ACTIVE", Origin.DISCOVERED, 0)}  # fmt: skip
        assert not snap.sweeps[0].up
        fetcher.listings[SWEEP] = FakeListing({"a": image("ACTIVE")}, incomplete="a test says so")
        snap = await p.run_cycle()
        assert set(by_id(snap)) == {"a", "b"} and snap.sweeps[0].complete is False


async def test_incomplete_sweeps_with_churning_ids_never_pile_objects_up() -> None:
    # Every sweep is incomplete (a count that lies) and lists 500 new IDs: a project keeps
    # what the last sweep listed plus its slack (a tenth, at least 100), those seen longest
    # ago dropped first; it held 65,001 objects after 68 s.
    fetcher = FakeFetcher({})
    p, _, now = swept(fetcher)
    for cycle in range(6):
        now[0] += 15
        ids = [f"c{cycle}-{n:03d}" for n in range(500)]
        fetcher.listings[SWEEP] = FakeListing({i: image("ACTIVE") for i in ids}, "lies")
        held = by_id(await p.run_cycle())
        assert len(held) == min(500 * (cycle + 1), 500 + unlisted_slack(500))
        assert set(ids) <= set(held)
        if cycle:  # the slack is the previous sweep's objects, not older ones
            assert {i for i in held if not i.startswith(f"c{cycle}-")} <= {
                f"c{cycle - 1}-{n:03d}" for n in range(500)
            }
    assert unlisted_slack(500) == 100 and unlisted_slack(5000) == 500


async def test_configured_ids_absent_from_a_complete_list_get_one_detail_call() -> None:
    fetcher = FakeFetcher({"gone": None, "hidden": image("ACTIVE")})
    fetcher.listings[SWEEP] = FakeListing({"listed": image("ACTIVE")})
    p, _, _ = swept(fetcher, configured=("listed", "gone", "hidden"))
    snap = await p.run_cycle()
    assert sorted(fetcher.calls) == ["gone", "hidden", "list:p"]
    states = {t.key.id: t for t in snap.targets}
    assert states["gone"].exists is False and states["hidden"].up
    assert {t.origin for t in snap.targets} == {Origin.CONFIGURED}
    assert snap.api_calls == 3


async def test_forbidden_list_falls_back_to_detail_calls_for_configured_ids() -> None:
    fetcher = FakeFetcher({"mine": image("ACTIVE")})
    fetcher.listings[SWEEP] = ApiError(ErrorKind.HTTP, "no", status=403, error_code="WKS.0403")
    p, _, _ = swept(fetcher, configured=("mine",))
    snap = await p.run_cycle()
    assert by_id(snap) == {"mine": (True, "ACTIVE", Origin.CONFIGURED, 0)}
    sweep = snap.sweeps[0]
    assert (sweep.up, sweep.list_allowed, sweep.error_label) == (False, False, "WKS.0403")


async def test_an_outage_of_many_targets_is_a_few_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = [f"t{n:04d}" for n in range(1000)]
    fetcher = FakeFetcher(dict.fromkeys(ids, image("ACTIVE")))
    now = [1000.0]
    p, _ = poller(fetcher, ids, now, concurrency=50)
    await p.run_cycle()
    caplog.set_level(logging.INFO, logger="exporter")
    fetcher.answers = dict.fromkeys(ids, ApiError(ErrorKind.HTTP, "down", status=503))
    snap = await p.run_cycle()
    assert not any(t.up for t in snap.targets)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 21, len(lines)  # was 1,000
    assert lines[-1].startswith("980 more targets failed, recovered or were found gone")


def _transitions(snapshot: Snapshot) -> dict[tuple[str, str, str], int]:
    return {(project, before, after): n for (_, project, before, after), n in snapshot.transitions}


async def test_status_changes_are_counted_once_each_and_kept_across_cycles() -> None:
    fetcher = FakeFetcher({"a": image("ACTIVE"), "b": image("ACTIVE"), "c": None})
    now = [1000.0]
    p, _ = poller(fetcher, ["a", "b", "c"], now)
    assert (await p.run_cycle()).transitions == ()  # a first look is no change
    fetcher.answers["a"] = image("INACTIVE")
    fetcher.answers["b"] = image("FROZEN")  # undocumented: counted as other
    await p.run_cycle()
    fetcher.answers["a"] = image("ACTIVE")
    fetcher.answers["b"] = ApiError(ErrorKind.TIMEOUT, "slow")  # a failure is no change
    fetcher.answers["c"] = image("ACTIVE")  # appeared after a 404: a first look again
    snap = await p.run_cycle()
    assert _transitions(snap) == {("p", "ACTIVE", "INACTIVE"): 1, ("p", "ACTIVE", "other"): 1,
                                  ("p", "INACTIVE", "ACTIVE"): 1}  # fmt: skip
    assert _transitions(await p.run_cycle()) == _transitions(snap)  # nothing new, nothing lost


async def test_a_project_no_longer_watched_takes_its_counters_with_it() -> None:
    fetcher = FakeFetcher({"a": image("ACTIVE")})
    p, _ = poller(fetcher, ["a"], [1000.0])
    await p.run_cycle()
    fetcher.answers["a"] = image("INACTIVE")
    assert _transitions(await p.run_cycle()) == {("p", "ACTIVE", "INACTIVE"): 1}
    p.reconfigure((), poll=poll())
    assert (await p.run_cycle()).transitions == ()


def test_a_state_made_fast_is_the_dataclass_state() -> None:
    """observe_answer writes the slots of a state directly: it must name every field, in
    order, and make what the dataclass makes."""
    from dataclasses import fields

    from exporter.domain.health import Health
    from exporter.domain.state import STATE_FIELDS, TargetState, observe_answer
    from exporter.domain.targets import TargetKey

    assert tuple(f.name for f in fields(TargetState)) == STATE_FIELDS
    key, ok = TargetKey(Resource.DEVSERVER_IMAGE, "p", "i"), Health(True, 2.0)
    obj = image("ACTIVE")
    prev = TargetState(key, Health(True, 1.0), True, obj, 0.5, Origin.DISCOVERED, 1, "old")
    made = observe_answer(prev, key, obj, ok, Origin.DISCOVERED)
    assert made == TargetState(key, ok, True, obj, 0.5, origin=Origin.DISCOVERED)
    assert type(made) is TargetState
