"""Files that are not what they seem: each is one clear ConfigError, never a hang or a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from exporter.config.errors import ConfigError
from exporter.config.files import MAX_CONFIG_BYTES
from exporter.config.load import load_config
from exporter.config.settings import Settings
from exporter.runtime import Exporter
from exporter.web.webconfig import load_web_config
from tests.helpers import AK, PROJECT, SK, run_cli, settings, start_exporter, stop_exporter, value

GOOD: dict[str, Any] = {
    "credentials": {"access_key": AK, "secret_key": SK},
    "targets": [{"project_id": PROJECT, "region": "cn-north-4", "image_servers": ["srv-1"]}],
}
BOMB = """
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
targets: [{project_id: p, region: cn-north-4, image_servers: *g}]
"""


def write(data: bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        path = d / "file.yaml"
        path.write_bytes(data)
        return path

    return make


def fifo(d: Path) -> Path:
    path = d / "fifo.yaml"
    os.mkfifo(path)
    return path


BAD_FILES: list[tuple[str, Callable[[Path], Path], str]] = [
    ("not UTF-8", write(b"targets: []\nname: caf\xe9\n"), "not UTF-8 text"),
    ("nested 5,000 deep", write(b"targets: " + b"[" * 5_000), "nested too deeply"),
    ("alias bomb", write(BOMB.encode()), "through aliases"),
    ("a FIFO", fifo, "not a regular file"),
    ("a device", lambda _: Path("/dev/zero"), "not a regular file"),
    ("a directory", lambda d: d, "not a regular file"),
    ("too large", write(b"#" * (MAX_CONFIG_BYTES + 1)), "is over"),
    ("missing", lambda d: d / "missing.yaml", "No such file"),
]


@pytest.mark.parametrize(
    ("make", "words"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_config_file_is_one_clear_line(
    tmp_path: Path, make: Callable[[Path], Path], words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(make(tmp_path), env={})
    assert len(info.value.problems) == 1
    assert words in info.value.problems[0]


@pytest.mark.parametrize(
    ("make", "words"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_web_config_file_is_one_clear_line(
    tmp_path: Path, make: Callable[[Path], Path], words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_web_config(str(make(tmp_path)))
    assert len(info.value.problems) == 1
    assert words in info.value.problems[0] and "web config" in info.value.problems[0]


@pytest.mark.parametrize(
    ("make", "words"),
    [(lambda _: Path("/dev/zero"), "not a regular file"), (fifo, "not a regular file"),
     (write(b"k" * (1 << 20)), "is over")],
    ids=["/dev/zero", "a FIFO", "a megabyte"],
)  # fmt: skip
def test_secret_files_are_small_regular_files(
    tmp_path: Path, make: Callable[[Path], Path], words: str
) -> None:
    data: dict[str, Any] = {
        "credentials": {"access_key": AK, "secret_key_file": str(make(tmp_path))},
        "targets": GOOD["targets"],
    }
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(config, env={})
    assert info.value.problems[0].startswith(f"{config}: credentials.secret_key_file: ")
    assert words in info.value.problems[0]


async def test_reload_reads_in_a_worker_thread_and_any_failure_sets_the_metric(
    tmp_path: Path,
) -> None:
    threads: list[bool] = []
    failure: list[BaseException] = []
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(GOOD))

    def loader() -> Settings:
        threads.append(threading.current_thread() is threading.main_thread())
        if failure:
            raise failure[0]
        return load_config(path, env={})

    e = Exporter(settings("http://127.0.0.1:1", [], ["srv-1"]), loader=loader)
    reload_ok = "huaweicloud_image_exporter_config_last_reload_successful"
    try:
        await e.reload()
        assert threads == [False], "the file must be read off the event loop"
        for exc in (ConfigError(["(file): broken"]), RecursionError(), MemoryError()):
            failure[:] = [exc]
            with pytest.raises(ConfigError):
                await e.reload()
            assert e.registry.get_sample_value(reload_ok) == 0, type(exc).__name__
            failure.clear()
            await e.reload()
            assert e.registry.get_sample_value(reload_ok) == 1
    finally:
        await e.stop()


CLI_CASES = [c for c in BAD_FILES if c[0] != "too large"]


@pytest.mark.slow
@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
async def test_check_config_prints_one_line_and_no_traceback(
    tmp_path: Path, case: tuple[str, Callable[[Path], Path], str]
) -> None:
    make, words = case[1:]
    code, _, err = await run_cli("--check-config", "--config.file", str(make(tmp_path)))
    assert code == 1
    assert "Traceback" not in err and words in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err


@pytest.mark.slow
async def test_sighup_with_the_file_replaced_by_a_fifo_keeps_serving(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    data: dict[str, Any] = {**GOOD, "poll": {"interval": "60s", "timeout": "1s"}}
    data["targets"] = [{**GOOD["targets"][0], "workspace_endpoint": "http://127.0.0.1:1"}]
    path.write_text(yaml.safe_dump(data))
    proc, base = await start_exporter("--config.file", str(path))
    try:
        path.unlink()
        os.mkfifo(path)
        proc.send_signal(signal.SIGHUP)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
            for _ in range(100):
                async with s.get(base + "/metrics") as r:
                    out = await r.text()
                if value(out, "huaweicloud_image_exporter_config_last_reload_successful") == 0:
                    break
                await asyncio.sleep(0.05)
            async with s.get(base + "/-/healthy") as r:
                assert r.status == 200
        assert value(out, "huaweicloud_image_exporter_config_last_reload_successful") == 0
    finally:
        code, err = await stop_exporter(proc)
    assert code == 0
    assert b"not a regular file" in err and b"Traceback" not in err
