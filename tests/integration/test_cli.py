"""The command line end to end: the demo as a user runs it, --once, and clean shutdown."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import yaml

from exporter.domain.targets import Resource
from exporter.simulator import SimulatorServer
from tests.helpers import (
    AK,
    PROJECT,
    SK,
    devserver_body,
    image_id,
    require_tool,
    run_cli,
    start_exporter,
    stop_exporter,
)

# Every test here runs the command line in a subprocess.
pytestmark = pytest.mark.slow


async def test_demo_serves_both_families_within_15s_and_stops_cleanly() -> None:
    started = time.monotonic()
    proc, base = await start_exporter("--demo")
    try:
        body = b""
        async with aiohttp.ClientSession() as s:
            while time.monotonic() - started < 15:
                async with s.get(base + "/metrics") as r:
                    body = await r.read()
                if (b"huaweicloud_workspace_image_server_status{" in body
                        and b"huaweicloud_modelarts_devserver_image_status{" in body):  # fmt: skip
                    break
                await asyncio.sleep(0.2)
        assert b"huaweicloud_workspace_image_server_status{" in body
        assert b"huaweicloud_modelarts_devserver_image_status{" in body
        promtool = require_tool("promtool")
        check = subprocess.run(
            [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        code, err = await stop_exporter(proc)
    assert code == 0, err.decode()
    assert b"Traceback" not in err
    assert b"shutting down" in err


async def test_once_prints_metrics_and_exit_code_reflects_targets(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    img_ok, img_missing_key = image_id(1), image_id(2)
    simulator.cloud.put(Resource.DEVSERVER_IMAGE, PROJECT, img_ok, devserver_body(img_ok))
    config = {
        "credentials": {"access_key": AK, "secret_key": SK},
        "poll": {"interval": "30s", "timeout": "2s"},
        "targets": [
            {
                "project_id": PROJECT,
                "modelarts_endpoint": simulator.url,
                "devserver_images": [img_ok],
            }
        ],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    code, out, err = await run_cli("--once", "--config.file", str(path))
    assert code == 0, err
    assert f'huaweicloud_modelarts_devserver_image_status{{id="{img_ok}"' in out
    assert SK not in out + err

    # A configured ID that does not exist (a typo) fails --once, named as such.
    config["targets"][0]["devserver_images"] = [img_ok, img_missing_key]  # type: ignore[index]
    path.write_text(yaml.safe_dump(config))
    code, out, err = await run_cli("--once", "--config.file", str(path))
    said = [line for line in err.splitlines() if not line.startswith("ts=")]
    assert code == 1 and said == [
        f"target missing: devserver_image {PROJECT}/{img_missing_key}: the API answers 404 "
        "(no such object): check the ID, or remove it if it was deleted",
        "--once: 0 of 2 targets failed and 1 do not exist; 0 of 0 sweeps, 0 dev-server lists, "
        "0 build-job reads and 0 of 0 accounts failed; their metrics above keep the last "
        "values known",
    ], err

    config["credentials"] = {"access_key": AK, "secret_key": "wrong-secret-value"}
    config["targets"][0]["devserver_images"] = [img_ok, img_missing_key]  # type: ignore[index]
    path.write_text(yaml.safe_dump(config))
    code, out, err = await run_cli("--once", "--config.file", str(path))
    assert code == 1
    assert "wrong-secret-value" not in out + err
    # One line per failed target with its reason, then a summary: in full.
    failed = [line for line in err.splitlines() if not line.startswith("ts=")]
    reason = (
        r"HTTP 401 APIGW\.0301: Incorrect IAM authentication information: verify aksk "
        r"signature fail\.; check the secret key \(it must belong to the access key\) and "
        r"this machine's clock \(the cloud refuses signatures more than 15 minutes off\) "
        r"\(request id [0-9a-f]{32}\)"
    )
    assert len(failed) == 3, err
    for line, image in zip(failed, sorted([img_ok, img_missing_key]), strict=False):
        assert re.fullmatch(f"target failed: devserver_image {PROJECT}/{image}: {reason}", line)
    assert failed[2] == (
        "--once: 2 of 2 targets failed and 0 do not exist; 0 of 0 sweeps, 0 dev-server "
        "lists, 0 build-job reads and 0 of 0 accounts failed; their metrics above keep the "
        "last values known"
    )


def test_version_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0 and "huaweicloud-image-exporter 0.1.0" in result.stdout


async def test_sigint_also_stops_cleanly() -> None:
    proc, _ = await start_exporter("--demo")
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode == 0 and b"Traceback" not in err


async def test_sigterm_cancels_a_hung_cycle_within_seconds(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    from exporter.simulator import Fault, FaultKind

    img = image_id(5)
    simulator.cloud.faults[(Resource.DEVSERVER_IMAGE, PROJECT, img)] = Fault(
        FaultKind.HANG, delay=60
    )
    config = {
        "credentials": {"access_key": AK, "secret_key": SK},
        "poll": {"interval": "60s", "timeout": "30s"},
        "targets": [
            {"project_id": PROJECT, "modelarts_endpoint": simulator.url, "devserver_images": [img]}
        ],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    proc, base = await start_exporter("--config.file", str(path))
    async with aiohttp.ClientSession() as s:
        for _ in range(100):  # wait until the request is in flight at the simulator
            if simulator.cloud.in_flight:
                break
            await asyncio.sleep(0.05)
        async with s.get(base + "/-/ready") as r:
            assert r.status == 503
    started = time.monotonic()
    code, err = await stop_exporter(proc)
    assert time.monotonic() - started < 5
    assert code == 0 and b"Traceback" not in err
    assert b"poll cycle in flight cancelled" in err
