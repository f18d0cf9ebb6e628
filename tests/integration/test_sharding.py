"""Sharding: which shard owns which unit, and N processes that together export everything once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from exporter.cli import build_parser, shard_of
from exporter.config.errors import ConfigError
from exporter.domain.credentials import AkSkCredentials
from exporter.domain.sharding import Shard, owner
from exporter.domain.targets import Resource, Sweep, SweepKey, Target, TargetKey
from exporter.polling.jobs import JOB_CALLS
from exporter.polling.poller import Poller
from exporter.simulator import SimulatorServer
from tests.fakes import FakeFetcher, FakeListing, MemoryStore, image, poll
from tests.helpers import AK, SK, image_server_body, samples, start_exporter, stop_exporter
from tests.prom import generated_rules, prometheus, wait_for

# Assignments that must never change: a shard restarted on another machine or Python
# version must own the same units.
PINNED = [("image_server/p1", 3, 2), ("devserver_image/p1", 3, 1),
          ("image_server/p2/srv-1", 3, 1), ("x", 3, 2), ("image_server/p1", 7, 5)]  # fmt: skip


@pytest.mark.parametrize(("unit", "total", "shard"), PINNED)
def test_assignment_is_stable(unit: str, total: int, shard: int) -> None:
    assert owner(unit, total) == shard


def test_units_spread_evenly_and_a_new_shard_takes_about_its_share() -> None:
    units = [f"image_server/project-{n}" for n in range(3000)]
    three = [owner(u, 3) for u in units]
    assert all(800 <= three.count(s) <= 1200 for s in range(3)), [three.count(s) for s in range(3)]
    four = [owner(u, 4) for u in units]
    moved = [(a, b) for a, b in zip(three, four, strict=True) if a != b]
    assert 0.20 <= len(moved) / len(units) <= 0.30, len(moved)
    assert {b for _, b in moved} == {3}, "units move only to the new shard"


@pytest.mark.parametrize(
    ("argv", "env", "hostname", "expected"),
    [
        ([], {}, "h", (0, 1)),
        (["--shard", "2", "--total-shards", "3"], {}, "h", (2, 3)),
        (["--shard.from-hostname"], {"HUAWEICLOUD_IMAGE_EXPORTER_TOTAL_SHARDS": "4"}, "hie-3", (3, 4)),
        (["--shard", "3", "--total-shards", "3"], {}, "h", "is not one of 0 to 2"),
        (["--total-shards", "0"], {}, "h", "there must be 1 to 1000 shards, not 0"),
        (["--shard.from-hostname", "--total-shards", "2"], {}, "exporter", "does not end in -<number>"),
        (["--shard", "1", "--shard.from-hostname"], {}, "hie-1", "not both"),
        ([], {"HUAWEICLOUD_IMAGE_EXPORTER_TOTAL_SHARDS": "three"}, "h", "is not a whole number"),
        (["--total-shards", "1000000000"], {}, "h", "there must be 1 to 1000 shards, not 1000000000"),
        (["--shard.from-hostname", "--total-shards", "4"], {}, "hie-\u0663", "does not end in -<number>"),
        ([], {"HUAWEICLOUD_IMAGE_EXPORTER_TOTAL_SHARDS": "\u0663"}, "h", "written in digits 0-9"),
    ],
)  # fmt: skip
def test_shard_flags(argv: list[str], env: dict[str, str], hostname: str, expected: Any) -> None:
    args = build_parser().parse_args(argv)
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=expected):
            shard_of(args, env, hostname)
    else:
        shard = shard_of(args, env, hostname)
        assert (shard.index, shard.total) == expected


@pytest.mark.parametrize("flag", ["--shard", "--total-shards"])
def test_shard_flags_take_ascii_digits_only(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([flag, "\u0663"])  # int() would take an Arabic-Indic 3
    assert "is not a whole number written in digits 0-9" in capsys.readouterr().err


async def test_shards_together_poll_everything_exactly_once() -> None:
    creds = AkSkCredentials(AK, SK)
    projects = [f"p{n}" for n in range(30)]
    fetcher = FakeFetcher({})
    sweeps = []
    for p in projects:
        key = SweepKey(Resource.IMAGE_SERVER, p)
        fetcher.listings[key] = FakeListing({f"{p}-a": image("ACTIVE"), f"{p}-b": image("ACTIVE")})
        sweeps.append(Sweep(key, "http://x", creds, configured=(f"{p}-a",)))
    by_id = [Target(TargetKey(Resource.DEVSERVER_IMAGE, "q", f"d{n}"), "http://x", creds)
             for n in range(60)]  # fmt: skip
    covered = [Target(TargetKey(Resource.IMAGE_SERVER, p, f"{p}-a"), "http://x", creds)
               for p in projects]  # fmt: skip
    fetcher.answers.update({t.key.id: image("ACTIVE") for t in by_id})
    seen: list[tuple[str, str]] = []
    configured: Counter[Resource] = Counter()
    for index in range(3):
        poller = Poller(fetcher, MemoryStore(), tuple(by_id + covered), poll=poll(),
                        sweeps=tuple(sweeps), shard=Shard(index, 3))  # fmt: skip
        snap = await poller.run_cycle()
        seen += [(t.key.project_id, t.key.id) for t in snap.targets]
        configured.update(snap.configured)
        assert snap.shard == (index, 3)
    # Each configured ID is claimed by one shard: the one sweeping it when a sweep covers
    # it, so that the shards' configured-target gauges add up to what is configured.
    assert configured == {Resource.DEVSERVER_IMAGE: 60, Resource.IMAGE_SERVER: 30}
    assert sorted(seen) == sorted(
        [("q", f"d{n}") for n in range(60)] + [(p, f"{p}-{x}") for p in projects for x in "ab"]
    ), "every object exactly once"
    assert sum(1 for c in fetcher.calls if not c.startswith("list:")) == 60, "covered IDs: no call"


ShardFleet = tuple[set[tuple[str, str]], list[tuple[asyncio.subprocess.Process, str]]]


@pytest.fixture
async def shard_fleet(simulator: SimulatorServer, tmp_path: Path) -> AsyncIterator[ShardFleet]:
    """30 projects of an account, 3 image servers each, and three exporters sharing them."""
    cloud = simulator.cloud
    expected = set()
    for n in range(30):
        pid = f"shardproject{n:02d}"
        cloud.add_project(pid, "cn-north-4" if n % 2 else "ap-southeast-3")
        for m in range(3):
            sid = f"srv-{n}-{m}"
            cloud.put(Resource.IMAGE_SERVER, pid, sid, image_server_body(sid))
            expected.add((pid, sid))
    config = {
        "credentials": {"access_key": AK, "secret_key": SK},
        "poll": {"interval": "60s", "timeout": "2s"},
        "accounts": [{"name": "prod", "iam_endpoint": simulator.url,
                      "modelarts_endpoint": simulator.url, "workspace_endpoint": simulator.url,
                      "discover": {"image_servers": {}}}],
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    procs = []
    try:
        for i in range(3):
            procs.append(await start_exporter(
                "--config.file", str(path), "--shard", str(i), "--total-shards", "3"
            ))  # fmt: skip
        yield expected, procs
    finally:
        for proc, _ in procs:
            await stop_exporter(proc)


@pytest.mark.slow
async def test_three_processes_share_an_account_fleet(shard_fleet: ShardFleet) -> None:
    expected, procs = shard_fleet
    found: list[tuple[str, str]] = []
    calls: list[float] = []
    async with aiohttp.ClientSession() as s:
        for _, base in procs:
            for _ in range(100):
                async with s.get(base + "/metrics") as r:
                    text = await r.text()
                if "\nhuaweicloud_image_exporter_last_poll_api_calls " in text:
                    break
                await asyncio.sleep(0.1)
            got = samples(text)
            found += [(dict(k)["project_id"], dict(k)["id"]) for (name, k) in got
                      if name == "huaweicloud_image_exporter_target_up"]  # fmt: skip
            calls.append(got[("huaweicloud_image_exporter_last_poll_api_calls", frozenset())])
    assert sorted(found) == sorted(expected), "every object exactly once across the shards"
    # One sweep and the build jobs per project, about a third of the projects each.
    per_project = 1 + JOB_CALLS
    assert sum(calls) == 30 * per_project, calls
    assert all(4 * per_project <= c <= 16 * per_project for c in calls), calls


@pytest.mark.slow
async def test_prometheus_fires_the_shard_alert_when_one_shard_stops(
    shard_fleet: ShardFleet, tmp_path: Path
) -> None:
    _, procs = shard_fleet
    targets = [base.removeprefix("http://") for _, base in procs]
    rules = generated_rules("--pending-scale", "0.01")  # for: 5m becomes 3s
    async with prometheus(tmp_path, targets, rules) as prom, aiohttp.ClientSession() as s:

        async def all_shards_seen() -> bool:
            query = "count(count by (shard) (huaweicloud_image_exporter_shard_info))"
            result = (await prom.api(s, "query", query=query))["result"]
            return bool(result) and result[0]["value"][1] == "3"

        await wait_for("all three shards to be scraped", all_shards_seen, within=60)
        await asyncio.sleep(5)  # longer than the rule's 3 s pending time
        assert "HuaweiCloudImageExporterShardMissing" not in await prom.firing(s)

        await stop_exporter(procs[2][0])

        async def shard_missing() -> dict[str, str] | None:
            return (await prom.firing(s)).get("HuaweiCloudImageExporterShardMissing")

        alert = await wait_for("the shard alert to fire", shard_missing, within=60)
        assert alert["severity"] == "critical" and alert["job"] == "huaweicloud-image-exporter"
