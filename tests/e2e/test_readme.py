"""The README's first command, run as written on a Debian system Python in a fresh copy.

Debian's /usr/bin/python3 refuses a bare ``pip install`` (PEP 668: its EXTERNALLY-MANAGED
marker), which is the first thing a newcomer on Debian or Ubuntu meets. The command must
install into a virtual environment of its own and serve the demo.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import IN_CI, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def readme_command(marker: str) -> str:
    """The one-line command between ``<!-- marker -->`` and ``<!-- /marker -->``."""
    text = (ROOT / "README.md").read_text()
    block = re.search(rf"<!-- {marker} -->\n```sh\n(.+?)\n```\n<!-- /{marker} -->", text, re.S)
    assert block is not None, f"README.md has no {marker} block"
    return block.group(1)


def fresh_copy(into: Path) -> Path:
    """The files git tracks, as they are in the working tree: what a clone would hold."""
    git = shutil.which("git") or "git"
    out = subprocess.run([git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    listed = out.stdout.decode().split("\0")
    for name in filter(None, listed):
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return into


def debian_python() -> Path:
    marker = list(SYSTEM_PYTHON.parent.parent.glob("lib/python3*/EXTERNALLY-MANAGED"))
    venv = subprocess.run([str(SYSTEM_PYTHON), "-c", "import ensurepip"], check=False)
    if SYSTEM_PYTHON.exists() and marker and venv.returncode == 0:
        return SYSTEM_PYTHON
    message = "no Debian system Python with the EXTERNALLY-MANAGED marker and python3-venv"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def test_a_bare_pip_install_is_refused_there(tmp_path: Path) -> None:
    python = debian_python()
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--dry-run", "."], cwd=fresh_copy(tmp_path),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "externally-managed-environment" in result.stderr


async def test_the_first_command_serves_the_demo(tmp_path: Path) -> None:
    python = debian_python()
    command = readme_command("demo-command")
    assert command.endswith("--demo")
    port = free_port()
    # As written, but on a free loopback port instead of :9887 on every interface.
    env = {**os.environ, "PATH": f"{python.parent}:/usr/sbin:/sbin:/bin"}
    env.pop("VIRTUAL_ENV", None)
    proc = await asyncio.create_subprocess_shell(
        f"{command} --web.listen-address 127.0.0.1:{port}", cwd=fresh_copy(tmp_path), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        body = await _metrics_once_ready(f"http://127.0.0.1:{port}", proc, deadline=300)
        assert "huaweicloud_workspace_image_server_status" in body
        assert (tmp_path / ".venv" / "bin" / "huaweicloud-image-exporter").exists()
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, 15)
        await proc.wait()


async def _metrics_once_ready(base: str, proc: asyncio.subprocess.Process, deadline: float) -> str:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    async with aiohttp.ClientSession() as session:
        while loop.time() < end:
            if proc.returncode is not None:
                assert proc.stderr is not None
                raise AssertionError((await proc.stderr.read()).decode()[-3000:])
            try:
                async with session.get(f"{base}/-/ready") as ready:
                    if ready.status == 200:
                        async with session.get(f"{base}/metrics") as resp:
                            return await resp.text()
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(1)
    raise AssertionError("the demo did not become ready in time")
