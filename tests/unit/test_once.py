"""What --once says on standard error, in full: every kind of failure named, one line each."""

from __future__ import annotations

import pytest

from exporter.domain.health import Health
from exporter.domain.jobs import JobsState
from exporter.domain.state import Snapshot
from exporter.domain.usage import UsageState
from exporter.once import report_failures

P = "0123456789abcdef0123456789abcdef"


def test_a_failed_dev_server_list_and_build_job_read_fail_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    down = Health(False, 1.0, "HTTP 500 ModelArts.0001: boom", "ModelArts.0001")
    offered_nowhere = UsageState("p2", Health(False, None, "x", "x"), unavailable_until=9e9)
    snap = Snapshot((), {}, 60.0, jobs=(JobsState(P, down),),
                    usage=(UsageState(P, down), offered_nowhere))  # fmt: skip
    assert report_failures(snap, str) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"dev-server list failed: project {P}: HTTP 500 ModelArts.0001: boom",
        f"build jobs failed: project {P}: HTTP 500 ModelArts.0001: boom",
        "--once: 0 of 0 targets failed and 0 do not exist; 0 of 0 sweeps, 1 dev-server lists, "
        "1 build-job reads and 0 of 0 accounts failed; their metrics above keep the last "
        "values known",
    ]


def test_nothing_failed_says_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert report_failures(Snapshot((), {}, 60.0), str) == 0
    assert capsys.readouterr().err == ""
