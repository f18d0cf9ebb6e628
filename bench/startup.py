"""``python -m bench.startup``: how soon a restarted exporter answers its probes.

Writes a state file of N discovered image servers (default 100,000), starts the exporter
from the command line as an operator would, pointed at a cloud that refuses connections
(the first cycle then fails fast, and every restored object stays, marked down), and
probes ``/-/healthy`` from another process every 10 ms from the moment it is spawned.
Reports when the first probe was answered, the slowest probe while the file was read, and
when the restored objects and ``/-/ready`` were served, and the process's peak memory
against the state file's size. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from prometheus_client import CollectorRegistry

from bench.common import run_for_objects
from bench.statefile import PROJECT, fleet
from exporter.storage.statefile import StateFile

RESTORED = b"huaweicloud_image_exporter_state_restored_targets "


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _config(directory: Path, refused: int) -> Path:
    path = directory / "exporter.yaml"
    path.write_text(
        "credentials: {access_key: BENCHAK0123456789, secret_key: bench-secret}\n"
        "poll: {interval: 1h, timeout: 2s, retries: 0}\n"
        f"targets:\n  - project_id: '{PROJECT}'\n"
        f"    workspace_endpoint: http://127.0.0.1:{refused}\n"
        "    discover: {image_servers: {}}\n"
    )
    return path


async def measure(n: int) -> dict[str, Any]:
    """Spawn, probe, and time what a restarted exporter serves when."""
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        state = directory / "state.json"
        await StateFile(state, CollectorRegistry()).save(fleet(n, time.time()))
        size = state.stat().st_size
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        config = _config(directory, _free_port())
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "exporter", "--config.file", str(config),
            "--storage.path", str(state), "--web.listen-address", f"127.0.0.1:{port}",
            "--log.level", "error",
        )  # fmt: skip
        first: float | None = None
        restored: float | None = None
        ready: float | None = None
        worst = 0.0
        process = psutil.Process(proc.pid)
        peak = 0
        timeout = aiohttp.ClientTimeout(total=5)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while ready is None and time.perf_counter() - started < 120:
                    sent = time.perf_counter()
                    try:
                        async with session.get(f"{base}/-/healthy") as resp:
                            await resp.read()
                            answered = resp.status == 200
                    except aiohttp.ClientConnectionError:
                        answered = False
                    took = time.perf_counter() - sent
                    peak = max(peak, process.memory_info().rss)
                    if answered:
                        first = first if first is not None else sent - started + took
                        if restored is None:
                            worst = max(worst, took)
                            async with session.get(f"{base}/metrics") as resp:
                                if RESTORED + f"{float(n)}".encode() in await resp.read():
                                    restored = time.perf_counter() - started
                        else:
                            async with session.get(f"{base}/-/ready") as resp:
                                if resp.status == 200:
                                    ready = time.perf_counter() - started
                    await asyncio.sleep(0.01)
        finally:
            proc.terminate()
            await proc.wait()
    return {
        "objects": n,
        "first_healthy_s": round(first, 3) if first is not None else None,
        "worst_healthy_ms_while_restoring": round(worst * 1000, 1),
        "restored_s": round(restored, 2) if restored is not None else None,
        "ready_s": round(ready, 2) if ready is not None else None,
        "state_file_mb": round(size / 1e6, 1),
        # Sampled every probe (10 ms) until ready: reading the file and rendering what it
        # restored, the interpreter and its modules included.
        "peak_rss_mb": round(peak / 1e6),
        "peak_rss_per_file_byte": round(peak / size, 1),
    }


def main() -> None:
    """Measure and print one JSON line."""
    run_for_objects(__doc__ or "", measure)


if __name__ == "__main__":
    main()
