"""--storage.path: state that survives restarts, and files that are not what they should be."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from exporter.cloud.sanitize import MAX_MESSAGE, clean
from exporter.cloud.transport import RetryPolicy
from exporter.config.settings import Settings
from exporter.domain.targets import Resource
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter
from exporter.simulator import SimulatorServer
from exporter.storage.statefile import EMPTY, MAX_STATE_BYTES, StateFile
from tests.helpers import IN_CI, PROJECT, image_id, image_server_body, settings, value

SINCE = "huaweicloud_image_exporter_status_last_change_timestamp_seconds"
WRITE_OK = "huaweicloud_image_exporter_state_write_success"


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def text(e: Exporter) -> str:
    return b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()


def since(out: str, sid: str) -> float | None:
    return value(out, SINCE, resource="image_server", project_id=PROJECT, id=sid)


@pytest.fixture
def servers(simulator: SimulatorServer) -> SimulatorServer:
    for sid, status in (("srv-a", "BUILDING"), ("srv-b", "CREATING"), ("srv-c", "ACTIVE")):
        simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, sid, image_server_body(sid, status))
    return simulator


def make(simulator: SimulatorServer, path: Path, clock: Clock, *ids: str) -> Exporter:
    s: Settings = settings(simulator.url, servers=ids or ("srv-a", "srv-b", "srv-c"))
    return Exporter(s, retry_policy=RetryPolicy(retries=0), storage_path=str(path), clock=clock)


async def test_restart_keeps_status_since_exactly(servers: SimulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    clock = Clock(1_000_000.0)
    first = make(servers, path, clock)
    await first.run_cycle()
    clock.now += 600
    await first.run_cycle()  # nothing changed: since stays at the first sighting
    before = text(first)
    await first.stop()
    assert since(before, "srv-a") == 1_000_000.0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert value(before, WRITE_OK) == 1.0

    # Restarted an hour later; meanwhile srv-b finished.
    servers.cloud.set_status(Resource.IMAGE_SERVER, PROJECT, "srv-b", "ACTIVE")
    clock.now = 1_003_600.0
    second = make(servers, path, clock)
    await second.start(schedule=False)
    # Served at once, before any poll: the restart leaves no gap in the series.
    restored = text(second)
    assert since(restored, "srv-a") == 1_000_000.0
    assert since(restored, "srv-b") == 1_000_000.0
    assert value(restored, "huaweicloud_image_exporter_state_restored_targets") == 3.0
    await second.run_cycle()
    after = text(second)
    await second.stop()
    assert since(after, "srv-a") == 1_000_000.0  # same status: the old clock, to the second
    assert since(after, "srv-c") == 1_000_000.0
    assert since(after, "srv-b") == 1_003_600.0  # a different status starts a new "since"
    last_success = "huaweicloud_image_exporter_target_last_success_timestamp_seconds"
    assert value(after, last_success, resource="image_server", project_id=PROJECT, id="srv-a") == (
        1_003_600.0
    )
    # The change made while it was down is seen against the status restored, once.
    changes = "huaweicloud_workspace_image_server_status_transitions_total"
    assert value(after, changes, project_id=PROJECT, from_status="CREATING",
                 to_status="ACTIVE") == 1.0  # fmt: skip
    assert value(restored, changes, project_id=PROJECT, from_status="CREATING",
                 to_status="ACTIVE") is None  # fmt: skip


async def test_objects_no_longer_watched_are_dropped(
    servers: SimulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    clock = Clock(1_000_000.0)
    first = make(servers, path, clock)
    await first.run_cycle()
    await first.stop()
    second = make(servers, path, clock, "srv-a")
    await second.start(schedule=False)
    out = text(second)
    await second.stop()
    assert since(out, "srv-a") == 1_000_000.0
    assert since(out, "srv-b") is None and since(out, "srv-c") is None


async def test_written_only_when_something_changed(
    servers: SimulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    clock = Clock(1_000_000.0)
    e = make(servers, path, clock)
    await e.run_cycle()
    written = path.stat().st_mtime_ns, path.read_bytes()
    os.utime(path, ns=(0, 0))
    clock.now += 60
    await e.run_cycle()  # only last-success times moved
    assert path.stat().st_mtime_ns == 0
    servers.cloud.set_status(Resource.IMAGE_SERVER, PROJECT, "srv-a", "BUILT")
    clock.now += 60
    await e.run_cycle()
    await e.stop()
    assert path.stat().st_mtime_ns != 0 and path.read_bytes() != written[1]
    assert json.loads(path.read_bytes())["version"] == 1
    assert sorted(os.listdir(tmp_path)) == ["state.json"]  # no temporary file left behind


def valid_file(tmp_path: Path) -> bytes:
    entry = {
        "resource": "image_server", "project_id": PROJECT, "id": "srv-a",
        "origin": "configured", "up": True, "exists": True, "last_success": 10.0,
        "status_since": 5.0, "missing": 0,
    }  # fmt: skip
    return json.dumps({"version": 1, "written": 10.0, "targets": [entry]}).encode()


BAD_FILES: dict[str, Callable[[Path], bytes]] = {
    "corrupt": lambda p: b"\x00\xff garbage \x13" * 100,
    "truncated": lambda p: valid_file(p)[:-20],
    "empty": lambda p: b"",
    "other-version": lambda p: valid_file(p).replace(b'"version": 1', b'"version": 2'),
    "not-a-state-file": lambda p: b'{"targets": []}',
    "hostile-values": lambda p: valid_file(p).replace(b"10.0", b"1e999"),
    "oversized-label": lambda p: valid_file(p).replace(b'"srv-a"', b'"' + b"x" * 2000 + b'"'),
    "oversized-error": lambda p: valid_file(p).replace(
        b'"missing": 0', b'"missing": 0, "error": "' + b"e" * 100_000 + b'"'
    ),
    "lone-surrogate": lambda p: valid_file(p).replace(b'"srv-a"', b'"srv-\\ud800"'),
    "a 400-digit number": lambda p: valid_file(p).replace(b"10.0", b"9" * 400),
    "a time centuries away": lambda p: valid_file(p).replace(
        b'"status_since": 5.0', b'"status_since": 1e300'
    ),
    "a negative time": lambda p: valid_file(p).replace(b"10.0", b"-5.0"),
    "wrong-kind": lambda p: valid_file(p).replace(
        b'"missing": 0',
        b'"missing": 0, "devserver_image": {"name": "x", "arch": "",'
        b' "server_type": "", "status": "ACTIVE"}',
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_file_is_one_warning_and_a_fresh_start(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    content = BAD_FILES[kind](tmp_path)
    path.write_bytes(content)
    caplog.set_level(logging.INFO, logger="exporter")
    assert StateFile(path, CollectorRegistry()).load() == EMPTY
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert "unusable" in message and "starting fresh" in message
    assert (tmp_path / "state.json.bad").read_bytes() == content  # kept for inspection
    assert not path.exists()


def test_the_reason_is_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.json"
    for content, reason in (
        (BAD_FILES["other-version"](tmp_path), "format version 2; this exporter reads 1"),
        (BAD_FILES["truncated"](tmp_path), "not valid JSON"),
        (BAD_FILES["hostile-values"](tmp_path), "written: Input should be a finite number"),
        (BAD_FILES["a time centuries away"](tmp_path), "status_since: Input should be less"),
    ):
        caplog.clear()
        path.write_bytes(content)
        StateFile(path, CollectorRegistry()).load()
        assert reason in caplog.text


def test_a_missing_file_is_a_quiet_fresh_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter")
    assert StateFile(tmp_path / "none.json", CollectorRegistry()).load() == EMPTY
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def unprivileged() -> list[str]:
    """A prefix that runs a command without root's power to ignore file permissions."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        message = "running as root and setpriv (util-linux) is missing"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def run_demo_once(path: Path) -> subprocess.CompletedProcess[str]:
    command = [*unprivileged(), sys.executable, "-m", "exporter", "--demo", "--once"]
    return subprocess.run(
        [*command, "--storage.path", str(path)], check=False, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


@pytest.mark.slow  # a subprocess
def test_an_unreadable_file_is_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(valid_file(tmp_path))
    path.chmod(0)
    done = run_demo_once(path)
    warnings = [
        line for line in done.stderr.splitlines() if "level=warn" in line and "state" in line
    ]
    assert len(warnings) == 1, done.stderr
    assert "Permission denied" in warnings[0] and "starting fresh" in warnings[0]
    assert "huaweicloud_image_exporter_target_up" in done.stdout  # it polled all the same
    assert (tmp_path / "state.json.bad").exists()


@pytest.mark.slow  # a subprocess
def test_a_read_only_directory_keeps_polling(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o555)
    done = run_demo_once(directory / "state.json")
    assert value(done.stdout, WRITE_OK) == 0.0, done.stderr
    assert value(done.stdout, "huaweicloud_image_exporter_last_poll_api_calls") is not None
    assert "cannot write the state file" in done.stderr
    assert "Permission denied" in done.stderr


def test_a_gone_objects_last_name_and_counted_failures_survive_the_file() -> None:
    from exporter.domain.health import Health
    from exporter.domain.jobs import Job, JobsState
    from exporter.domain.state import Snapshot, TargetState
    from exporter.domain.targets import TargetKey
    from exporter.storage.codec import decode, encode_chunks

    gone = TargetState(TargetKey(Resource.IMAGE_SERVER, PROJECT, "srv-1"), Health(True, 10.0),
                       False, None, None, last_name="build box")  # fmt: skip
    started = (Job("job-1", "BUILD_IMAGE", "RUNNING", 5.0), Job("job-2", "other", "WAITING", None))
    jobs = JobsState(PROJECT, Health(True, 10.0), counted=(("sj-1", 9.0), ("sj-2", 0.0)),
                     started=started)  # fmt: skip
    data = b"".join(encode_chunks(Snapshot((gone,), {}, 60.0, jobs=(jobs,)), 11.0))
    stored = decode(data)
    assert stored.targets == (gone,) and stored.jobs == (jobs,)


def test_counted_failures_written_by_earlier_versions_are_read() -> None:
    from exporter.storage.codec import decode

    job = {"project_id": PROJECT, "up": True, "last_success": 500.0, "in_flight": [],
           "latest": [], "failures": [], "counted": ["sj-1"], "running": []}  # fmt: skip
    data = json.dumps({"version": 1, "written": 10.0, "targets": [], "jobs": [job]}).encode()
    assert decode(data).jobs[0].counted == (("sj-1", 500.0),)


def test_a_sparse_gigabyte_is_refused_without_reading_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    with path.open("wb") as f:
        f.truncate(1 << 30)  # sparse: a gigabyte of zeros that takes no disk
    started = time.monotonic()
    assert StateFile(path, CollectorRegistry()).load() == EMPTY
    assert time.monotonic() - started < 1.0  # was half a gigabyte read first
    assert f"over {MAX_STATE_BYTES} bytes" in caplog.text
    assert (tmp_path / "state.json.bad").exists()


async def test_a_directory_at_the_path_is_refused_not_renamed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from exporter.domain.state import Snapshot

    path = tmp_path / "state"
    path.mkdir()
    (path / "keep.txt").write_text("mine")
    registry = CollectorRegistry()
    state = StateFile(path, registry)
    assert state.load() == EMPTY
    assert "is a directory, not a file" in caplog.text
    await state.save(Snapshot((), {}, 60.0))
    assert (path / "keep.txt").read_text() == "mine" and not (tmp_path / "state.bad").exists()
    assert registry.get_sample_value("huaweicloud_image_exporter_state_write_success") == 0


_long = st.text(max_size=2000)


@given(
    error=_long, name=_long, message=_long,
    times=st.lists(st.floats(min_value=0, max_value=4_102_444_800), min_size=3, max_size=3),
)  # fmt: skip
def test_what_is_written_is_always_read_back(
    error: str, name: str, message: str, times: list[float]
) -> None:
    """The writer keeps to the reader's bounds: an error of any length (a gateway's 729
    characters once lost every object's state at each restart), any string, any time."""
    from exporter.cloud.convert import label
    from exporter.domain.health import Health
    from exporter.domain.jobs import JobsState, SubJob
    from exporter.domain.state import ImageServer, Snapshot, TargetState, observe_failure
    from exporter.domain.targets import TargetKey
    from exporter.domain.usage import ImageUse, UsageState
    from exporter.storage.codec import decode, encode_chunks

    a, b, c = times
    key = TargetKey(Resource.IMAGE_SERVER, PROJECT, "srv-1")
    obj = ImageServer(label(name), "", "", "", "", "", "", "", label(name), a, b, ())
    seen = TargetState(key, Health(True, a), True, obj, b)
    failed = observe_failure(seen, key, error, "http_503")
    sub = SubJob("sj", "job", "BUILD_IMAGE", "srv-1", label(name), "FAILED", "WKS.1",
                 clean(message), a, c)  # fmt: skip
    jobs = JobsState(PROJECT, Health(False, c, error), latest=(sub,), counted=(("sj", c),))
    usage = UsageState(PROJECT, Health(False, b, error, "http_503"), objects=9, pages=2,
                       complete=False, list_allowed=False, unavailable_until=c,
                       in_use=(ImageUse(image_id(7), (("RUNNING", 2),)),))  # fmt: skip
    snap = Snapshot((failed,), {}, 60.0, jobs=(jobs,), usage=(usage,))
    stored = decode(b"".join(encode_chunks(snap, c)))
    [back] = stored.targets
    assert back.obj == obj and back.error == clean(error, MAX_MESSAGE)
    assert stored.jobs[0].latest == (sub,)
    health = Health(False, b, clean(error, MAX_MESSAGE), "http_503")  # as written
    assert stored.usage == (replace(usage, health=health),)


def test_the_most_usage_a_project_holds_is_read_back() -> None:
    """MAX_IMAGES images and "other", each with every server status: the reader's bounds
    hold what the poller keeps."""
    from exporter.domain.health import Health
    from exporter.domain.labels import OTHER
    from exporter.domain.state import Snapshot
    from exporter.domain.usage import MAX_IMAGES, OTHER_IMAGE, SERVER_STATUSES, ImageUse, UsageState
    from exporter.storage.codec import decode, encode_chunks

    statuses = tuple(sorted((status, 7) for status in (*SERVER_STATUSES, OTHER)))
    images = [*sorted(image_id(n) for n in range(MAX_IMAGES)), OTHER_IMAGE]  # as ranked
    usage = UsageState(PROJECT, Health(True, 10.0), objects=7 * len(statuses) * len(images), pages=9,
                       complete=True, in_use=tuple(ImageUse(i, statuses) for i in images))  # fmt: skip
    assert decode(b"".join(encode_chunks(Snapshot((), {}, 60.0, usage=(usage,)), 11.0))).usage == (
        usage,
    )


def _entries(n: int) -> list[dict[str, object]]:
    return [
        {"resource": "image_server", "project_id": PROJECT, "id": f"srv-{i}",
         "origin": "discovered", "up": True, "exists": True, "last_success": 10.0,
         "status_since": 5.0, "missing": 0}
        for i in range(n)
    ]  # fmt: skip


def _usage_entry(in_use: list[object]) -> dict[str, object]:
    return {"project_id": PROJECT, "up": True, "last_success": 10.0, "objects": 3, "pages": 1,
            "complete": True, "list_allowed": True, "unavailable_until": None,
            "in_use": in_use}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        # Read a slice at a time, a bad entry is still named by its place in the whole list.
        (
            lambda f: f["targets"][1100].update(project_id="p/x"),
            "targets.1100.project_id: String should match pattern",
        ),
        (
            lambda f: f["targets"][501].update(origin="found"),
            "targets.501.origin: Input should be 'configured' or 'discovered'",
        ),
        (
            lambda f: f["targets"][7].update(
                devserver_image={"name": "x", "arch": "", "server_type": "", "status": ""}
            ),
            "targets.7: a image_server entry carries the other kind of object",
        ),
        # A wrong version is said first, whatever else is wrong after it.
        (
            lambda f: (f.update(version=2), f["targets"][3].update(up="maybe")),
            "it has format version 2; this exporter reads 1",
        ),
        (
            lambda f: f["targets"][700].update(id="srv-\ud800"),
            "targets.700: a string holds a lone surrogate (a \\uD800-\\uDFFF escape)",
        ),
        # A project's servers per image: counts are whole and not negative, the statuses
        # of an image at most the documented ones and "other".
        (
            lambda f: f.update(usage=[_usage_entry([["img", [["RUNNING", -1]]]])]),
            "usage.0.in_use.0.1.0.1: Input should be greater than or equal to 0",
        ),
        (
            lambda f: f.update(usage=[_usage_entry([["img", [["RUNNING", 1]] * 20]])]),
            "usage.0.in_use.0.1: List should have at most 19 items after validation, not 20",
        ),
        (lambda f: f.pop("written"), "written: Field required"),
        (lambda f: f.update(extra=1), "extra: Extra inputs are not permitted"),
    ],
)
def test_a_bad_entry_anywhere_is_named(
    change: Callable[[dict[str, Any]], object], reason: str
) -> None:
    from exporter.storage.codec import Unreadable, decode

    file: dict[str, Any] = {"version": 1, "written": 10.0, "targets": _entries(1200)}
    change(file)
    with pytest.raises(Unreadable) as caught:
        decode(json.dumps(file).encode())
    assert str(caught.value).startswith(reason), str(caught.value)


def test_names_outside_the_basic_plane_survive_the_file() -> None:
    from exporter.domain.health import Health
    from exporter.domain.state import ImageServer, Snapshot, TargetState
    from exporter.domain.targets import TargetKey
    from exporter.storage.codec import decode, encode_chunks

    obj = ImageServer("build 🚀 box", "", "", "", "", "", "", "", "ACTIVE", None, None, ())
    state = TargetState(TargetKey(Resource.IMAGE_SERVER, PROJECT, "srv-1"), Health(True, 10.0),
                        True, obj, 5.0)  # fmt: skip
    data = b"".join(encode_chunks(Snapshot((state,), {}, 60.0), 11.0))
    assert b"\\ud83d\\ude80" in data  # written as a surrogate pair, which is fine
    assert decode(data).targets == (state,)


async def test_probes_are_answered_while_the_state_file_is_read(
    servers: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server listens first; /-/ready waits for the file and the first cycle."""
    import threading

    import aiohttp

    from exporter.runtime import ListenAddress

    path = tmp_path / "state.json"
    first = make(servers, path, Clock(1_000_000.0))
    await first.run_cycle()
    await first.stop()
    loop = asyncio.get_running_loop()
    reading, release = asyncio.Event(), threading.Event()
    load = StateFile.load

    def slow_load(self: StateFile) -> Any:
        loop.call_soon_threadsafe(reading.set)
        release.wait(10)
        return load(self)

    monkeypatch.setattr(StateFile, "load", slow_load)
    second = make(servers, path, Clock(1_000_060.0))
    starting = asyncio.create_task(second.start(ListenAddress("127.0.0.1", 0), schedule=False))
    try:
        await reading.wait()
        base = f"http://127.0.0.1:{second.addresses[0][1]}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/-/healthy") as resp:
                assert resp.status == 200
            async with session.get(f"{base}/-/ready") as resp:
                assert resp.status == 503
            release.set()
            await starting
            assert since(text(second), "srv-a") == 1_000_000.0  # restored
            await second.run_cycle()
            async with session.get(f"{base}/-/ready") as resp:
                assert resp.status == 200
    finally:
        release.set()
        await second.stop()


async def test_a_state_too_large_to_read_back_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The writer keeps to the reader's size cap: a file the next start would set aside
    is never written, and the last one is kept."""
    from exporter.domain.health import Health
    from exporter.domain.state import Snapshot, TargetState
    from exporter.domain.targets import TargetKey
    from exporter.storage import statefile

    def snapshot(n: int, error: str | None) -> Snapshot:
        health = Health(error is None, 10.0, error, "http_503" if error else None)
        return Snapshot(tuple(
            TargetState(TargetKey(Resource.IMAGE_SERVER, PROJECT, f"srv-{i}"), health, True,
                        None, 5.0)
            for i in range(n)
        ), {}, 60.0)  # fmt: skip

    path, registry = tmp_path / "state.json", CollectorRegistry()
    store = StateFile(path, registry, clock=lambda: 100.0)
    await store.save(snapshot(10, None))
    kept = path.read_bytes()
    monkeypatch.setattr(statefile, "MAX_STATE_BYTES", len(kept) + 100)
    await store.save(snapshot(10, "HTTP 503 " + "x" * 200))
    assert path.read_bytes() == kept
    assert registry.get_sample_value("huaweicloud_image_exporter_state_write_success") == 0.0
    assert f"over the {len(kept) + 100} a start reads back" in caplog.text
    assert StateFile(path, CollectorRegistry()).load().targets  # what is kept still reads
