"""A planted or corrupted state file, restored by a real exporter and rendered: every number
bounded, every collection de-duplicated, every label held to the bounds live answers are
held to; anything else sets the file aside and the exporter starts fresh."""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from exporter.cloud.transport import RetryPolicy
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.jobs import DURATION_BUCKETS
from exporter.domain.targets import Discovery, Resource, Sweep, SweepKey
from exporter.exposition.textformat import Format
from exporter.runtime import Exporter
from tests.helpers import AK, PROJECT, SK, image_id, settings

IMG = image_id(1)
URL = "http://127.0.0.1:9"  # never asked: no cycle runs


def _sub_job(sid: str, resource: str, status: str = "FAILED") -> dict[str, Any]:
    return {"id": sid, "job_id": "job-1", "job_type": "BUILD_IMAGE", "resource_id": resource,
            "resource_name": "a", "status": status, "error_code": "WKS.1", "error_message": "",
            "begin": 100.0, "end": 200.0}  # fmt: skip


def document() -> dict[str, Any]:
    """A valid file holding one of everything the exporter keeps."""
    server = {"name": "a", "image_id": "", "image_type": "", "server_id": "", "instance_id": "",
              "server_group_id": "", "app_group_id": "", "enterprise_project_id": "",
              "status": "ACTIVE", "created": 10.0, "updated": 20.0,
              "accounts": [["USER", 1]]}  # fmt: skip
    target = {"resource": "image_server", "project_id": PROJECT, "id": "srv-a",
              "origin": "configured", "up": True, "exists": True, "last_success": 10.0,
              "status_since": 5.0, "missing": 0, "image_server": server}  # fmt: skip
    jobs = {
        "project_id": PROJECT, "up": True, "last_success": 300.0,
        "in_flight": [["BUILD_IMAGE", "RUNNING", 1]], "latest": [_sub_job("s1", "srv-a")],
        "failures": [["BUILD_IMAGE", "WKS.1", 2]], "counted": [["s1", 200.0]],
        "running": [_sub_job("s2", "srv-a", "RUNNING")],
        "started": [{"id": "job-2", "job_type": "BUILD_IMAGE", "status": "RUNNING",
                     "begin": 250.0}],
        "durations": [["BUILD_IMAGE", "FAILED", [0] * 6 + [1] + [0] * 7, 100.0]],
    }  # fmt: skip
    usage = {"project_id": PROJECT, "up": True, "last_success": 10.0, "objects": 3,
             "pages": 1, "complete": True, "list_allowed": True, "unavailable_until": None,
             "in_use": [[IMG, [["RUNNING", 2], ["STOPPED", 1]]]]}  # fmt: skip
    return {"version": 1, "written": 300.0, "targets": [target], "jobs": [jobs],
            "usage": [usage]}  # fmt: skip


def _exporter(path: Path) -> Exporter:
    sweep = Sweep(SweepKey(Resource.DEVSERVER_IMAGE, PROJECT), URL, AkSkCredentials(AK, SK),
                  Discovery())  # fmt: skip
    base = replace(settings(URL, servers=["srv-a"]), sweeps=(sweep,))
    return Exporter(base, retry_policy=RetryPolicy(retries=0), storage_path=str(path))


async def restored(path: Path, doc: object) -> tuple[str, bool]:
    """The exposition an exporter serves from a file holding ``doc`` before any cycle, and
    whether it set the file aside."""
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))  # noqa: ASYNC240 - tiny
    e = _exporter(path)
    try:
        await e.start(schedule=False)
        text = b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()
    finally:
        await e.stop()
    aside = path.with_name(path.name + ".bad")
    was_set_aside = aside.exists()
    aside.unlink(missing_ok=True)
    return text, was_set_aside


def series(text: str) -> Counter[str]:
    """Each sample line's name and labels, counted (a valid exposition has each once)."""
    return Counter(line.rsplit(" ", 1)[0] for line in _lines(text) if line[:1] != "#")


def assert_sound(text: str) -> None:
    repeated = [s for s, n in series(text).items() if n > 1]
    assert not repeated, repeated[:3]
    for line in _lines(text):
        if line[:1] != "#":
            assert math.isfinite(float(line.rsplit(" ", 1)[1])), line


def _lines(text: str) -> list[str]:
    """The exposition's lines: split at \\n only (a label value may hold a \\r)."""
    return [line for line in text.split("\n") if line]


async def test_the_valid_document_is_served(tmp_path: Path) -> None:
    text, aside = await restored(tmp_path / "state.json", document())
    assert not aside
    assert f'huaweicloud_modelarts_devserver_image_servers{{id="{IMG}"' in text
    assert "huaweicloud_workspace_image_job_duration_seconds_bucket" in text
    assert_sound(text)


HUGE = 10**400  # json.dumps writes it as digits; float() of it raises OverflowError

Change = Callable[[dict[str, Any]], object]


@pytest.mark.parametrize("change", [
    lambda d: d["usage"][0]["in_use"][0][1][0].__setitem__(1, HUGE),
    lambda d: d["usage"][0].__setitem__("objects", HUGE),
    lambda d: d["usage"][0].__setitem__("pages", HUGE),
    lambda d: d["jobs"][0]["durations"][0][2].__setitem__(3, HUGE),
    lambda d: d["jobs"][0]["failures"][0].__setitem__(2, HUGE),
    lambda d: d["jobs"][0]["in_flight"][0].__setitem__(2, HUGE),
    lambda d: d["targets"][0]["image_server"]["accounts"][0].__setitem__(1, HUGE),
    lambda d: d["targets"][0].__setitem__("missing", HUGE),
    lambda d: d["jobs"][0]["durations"][0].__setitem__(3, 1e300),
], ids=["usage-count", "usage-objects", "usage-pages", "bucket", "failures", "in-flight",
        "accounts", "missing", "duration-sum"])  # fmt: skip
async def test_a_number_no_float_holds_sets_the_file_aside(tmp_path: Path, change: Change) -> None:
    doc = document()
    change(doc)
    text, aside = await restored(tmp_path / "state.json", doc)
    assert aside  # the exporter started, fresh, and kept the file for inspection
    assert_sound(text)


@pytest.mark.parametrize("oid", ['srv-"a', "srv-\\a", "srv-<img src=x>", "srv a", ""])
async def test_an_id_that_is_not_its_resources_shape_sets_the_file_aside(
    tmp_path: Path, oid: str
) -> None:
    doc = document()
    doc["targets"][0]["id"] = oid
    _, aside = await restored(tmp_path / "state.json", doc)
    assert aside  # refused by the codec, so never a label


async def test_duplicates_are_read_once_and_labels_held_to_the_live_bounds(
    tmp_path: Path,
) -> None:
    doc = document()
    jobs, usage = doc["jobs"][0], doc["usage"][0]
    doc["targets"] *= 2
    doc["jobs"] *= 2
    doc["usage"] *= 2
    for key in ("in_flight", "failures", "durations", "latest", "running", "started"):
        jobs[key] *= 2
    jobs["durations"].append(["BUILD_IMAGE", "<b>", jobs["durations"][0][2], 1.0])
    jobs["durations"].append(["BUILD_IMAGE", "<i>", jobs["durations"][0][2], 1.0])
    # The same image twice, and 19 made-up statuses with markup: one "other" series.
    usage["in_use"] = [
        [IMG, [["RUNNING", 2]]], [IMG, [["RUNNING", 1]]],
        ["<script>", [["RUNNING", 4]]],
        [image_id(2), [[f"<b>{n}</b>", 1] for n in range(19)]],
    ]  # fmt: skip
    text, aside = await restored(tmp_path / "state.json", doc)
    assert not aside
    assert_sound(text)
    assert not [line for line in _lines(text) if line[:1] != "#" and "<" in line]
    assert (
        f'id="{IMG}",project_id="{PROJECT}",server_status="RUNNING",watched="false"}} 3.0' in text
    )
    assert (
        f'id="other",project_id="{PROJECT}",server_status="RUNNING",watched="false"}} 4.0' in text
    )
    assert (
        f'id="{image_id(2)}",project_id="{PROJECT}",server_status="other",watched="false"}} 19.0'
        in text
    )


_number = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.just(HUGE),
    st.just(-HUGE),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(2**53),
    st.just(2**53 + 1),
)
_text = st.one_of(st.text(max_size=30), st.just('"\\<>&'), st.just("x" * 3000))


def _paths(node: object, at: tuple[object, ...] = ()) -> list[tuple[tuple[object, ...], object]]:
    """Every leaf of a document, with where it is."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _paths(v, (*at, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _paths(v, (*at, i))]
    return [(at, node)]


LEAVES = _paths(document())


@hypothesis_settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(range(len(LEAVES))), st.one_of(_number, _text)), max_size=4
    ),
    copies=st.lists(st.sampled_from(["targets", "jobs", "usage"]), max_size=2),
)
async def test_any_hostile_document_is_served_soundly_or_set_aside(
    tmp_path: Path, changes: list[tuple[int, object]], copies: list[str]
) -> None:
    doc = document()
    for index, new in changes:
        where, _ = LEAVES[index]
        node: Any = doc
        for step in where[:-1]:
            node = node[step]
        node[where[-1]] = new
    for section in copies:
        doc[section] = doc[section] + copy.deepcopy(doc[section])
    text, _ = await restored(tmp_path / "state.json", doc)
    assert_sound(text)


def test_buckets_of_the_file_are_the_histograms() -> None:
    assert len(document()["jobs"][0]["durations"][0][2]) == len(DURATION_BUCKETS) + 1


async def test_a_state_the_checks_let_through_that_fails_to_restore_sets_the_file_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter.polling.poller import Poller

    async def overflow(*args: object) -> None:
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(Poller, "restore", overflow)
    text, aside = await restored(tmp_path / "state.json", document())
    assert aside and "huaweicloud_image_exporter_state_restored_targets" in text
