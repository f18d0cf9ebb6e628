"""The call budget: what a cycle costs, whether it fits, and one clear warning when not."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from exporter.config.settings import PollSettings
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.targets import Resource, Sweep, SweepKey
from exporter.polling.budget import Budget
from exporter.polling.jobs import JOB_CALLS
from exporter.simulator import SimulatorServer
from tests.helpers import (
    AK,
    PROJECT,
    SK,
    image_server_body,
    run_cli,
    server_id,
    settings,
    start_exporter,
    stop_exporter,
)


def test_budget_counts_detail_calls_and_one_call_per_sweep() -> None:
    base = settings("http://x", [], [server_id(n) for n in range(200)], interval=5)
    slow = replace(base, poll=PollSettings(interval=5, max_requests_per_second=20))
    budget = Budget.of(slow)
    # 200 detail calls and the project's build jobs (WAITING, RUNNING, newest sub-jobs).
    assert JOB_CALLS == 3
    assert (budget.calls, budget.seconds, budget.fits, budget.shortest_interval) == (
        203, 10.15, False, 12,
    )  # fmt: skip
    assert "set poll.interval to 12s or more" in budget.describe()
    # IDs of a swept project are settled by the sweep: one call for all of them.
    sweep = Sweep(SweepKey(Resource.IMAGE_SERVER, base.targets[0].key.project_id), "http://x",
                  AkSkCredentials(AK, SK))  # fmt: skip
    assert Budget.of(replace(slow, sweeps=(sweep,))).calls == 1 + JOB_CALLS
    # Dev-server images have no build jobs.
    images = settings("http://x", [f"{n:08d}-0000-4000-8000-000000000000" for n in range(3)])
    assert Budget.of(images).calls == 3
    # Swept dev-server images: the image list, and the list of the dev servers running them.
    swept_images = Sweep(SweepKey(Resource.DEVSERVER_IMAGE, images.targets[0].key.project_id),
                         "http://x", AkSkCredentials(AK, SK))  # fmt: skip
    assert Budget.of(replace(images, sweeps=(swept_images,))).calls == 2
    assert Budget.of(base).fits and "no poll.max_requests_per_second" in Budget.of(base).describe()


@pytest.mark.slow
async def test_check_config_states_the_budget(tmp_path: Path) -> None:
    data = {
        "credentials": {"access_key": AK, "secret_key": SK},
        "poll": {"interval": "5s", "timeout": "2s", "max_requests_per_second": 20},
        "targets": [{"project_id": PROJECT, "region": "cn-north-4",
                     "image_servers": [server_id(n) for n in range(200)]}],
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    code, out, _ = await run_cli("--check-config", "--config.file", str(path))
    assert code == 0
    assert "at least 203 API calls" in out and "set poll.interval to 12s or more" in out


@pytest.mark.slow
async def test_overrunning_cycles_give_one_warning_with_the_reason(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    servers = [server_id(n) for n in range(20)]
    for sid in servers:
        simulator.cloud.put(Resource.IMAGE_SERVER, PROJECT, sid, image_server_body(sid))
    data = {
        "credentials": {"access_key": AK, "secret_key": SK},
        "poll": {"interval": "1s", "timeout": "0.5s", "max_requests_per_second": 10},
        "targets": [{"project_id": PROJECT, "workspace_endpoint": simulator.url,
                     "image_servers": servers}],
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    proc, _ = await start_exporter("--config.file", str(path))
    await asyncio.sleep(6)  # about three 2-second cycles on a 1-second schedule
    code, err = await stop_exporter(proc)
    text = err.decode()
    assert code == 0
    assert "poll budget" in text and "does not fit" in text
    assert text.count("longer than poll.interval") == 1, text
    assert "set poll.interval to 3s or more" in text
    assert "maximum number of running instances" not in text and "was missed by" not in text
