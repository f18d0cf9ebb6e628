"""Temporary keys over a simulated day: 15-minute keys from each keyless source, renewed on
time, never a request signed with an expired one, a failing source waited out with the old
key and then said plainly, and rotated token files picked up at the next fetch.

Time is virtual: the cloud and the renewal run on one clock that the test moves, so a day
takes a few seconds; every request still goes over loopback to the simulated gateway, which
refuses an expired key as Huawei's does (and counts it)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from exporter.cloud.errors import ApiError, ErrorKind
from exporter.cloud.keys.renewal import SAFETY, TemporaryKeyAuth, renew_at
from exporter.cloud.keys.sources import fetcher_for
from exporter.domain.credentials import (
    FederatedSource,
    MetadataSource,
    OidcSource,
    PodIdentitySource,
    TemporarySource,
)
from exporter.domain.targets import Resource, Target, TargetKey
from exporter.simulator import Fault, FaultKind, SimulatorServer
from exporter.simulator.keys import POD_IDENTITY_PATH
from tests.harness import Harness
from tests.helpers import PROJECT, image_server_body

START = 1_900_000_000.0
LIFETIME = 15 * 60.0


class VirtualTime:
    """A clock that moves only when the test moves it, waking sleepers in order; after
    waking one it waits until that sleeper sleeps again (its fetch done)."""

    def __init__(self, now: float) -> None:
        self.now = now
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._slept = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), wake))
        self._slept.set()
        await wake

    async def settle(self) -> None:
        """Wait until every renewal sleeps (the first fetch included)."""
        while not self._sleepers:
            self._slept.clear()
            await asyncio.wait_for(self._slept.wait(), 10)

    async def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self._sleepers and self._sleepers[0][0] <= end:
            wake_at, _, wake = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake_at)
            if not wake.done():
                wake.set_result(None)
            await self.settle()
        self.now = end


@dataclass
class Setup:
    source: TemporarySource
    rotate: str  # the token file rotated mid-day ("" for none)


def sources(url: str, tmp: Path, cloud: object) -> dict[str, Setup]:
    token = tmp / "token"
    token.write_text("token-0")
    return {
        "metadata": Setup(MetadataSource(url), ""),
        "pod_identity": Setup(PodIdentitySource(url + POD_IDENTITY_PATH, str(token)), str(token)),
        "oidc": Setup(OidcSource(url, "urn:p", "urn:a", str(token)), str(token)),
        "id_token": Setup(FederatedSource(url, "idp", str(token)), str(token)),
    }


def accept(simulator: SimulatorServer, source: str, token: str) -> None:
    keys = simulator.cloud.keys
    keys.pod_token = token if source == "pod_identity" else keys.pod_token
    if source == "oidc":
        keys.oidc_tokens = {token}
    if source == "id_token":
        keys.idp_tokens = {token}


FAULT_KEYS = {"metadata": "metadata_key", "pod_identity": "pod_identity", "oidc": "sts_oidc",
              "id_token": "iam_securitytokens"}  # fmt: skip


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.mark.parametrize("name", ["metadata", "pod_identity", "oidc", "id_token"])
async def test_a_day_of_15_minute_keys(
    simulator: SimulatorServer, session: aiohttp.ClientSession, tmp_path: Path, name: str
) -> None:
    cloud = simulator.cloud
    clock = VirtualTime(START)
    cloud.clock, cloud.keys.lifetime = clock, LIFETIME
    cloud.put(Resource.IMAGE_SERVER, PROJECT, "srv-1", image_server_body("srv-1"))
    setup = sources(simulator.url, tmp_path, cloud)[name]
    accept(simulator, name, "token-0")
    harness = Harness(session)
    auth = TemporaryKeyAuth(fetcher_for(setup.source, harness.transport, harness.secrets.append),
                            harness.key_metrics, clock=clock, sleep=clock.sleep)  # fmt: skip
    harness.client._authenticators[setup.source] = auth
    target = Target(TargetKey(Resource.IMAGE_SERVER, PROJECT, "srv-1"), simulator.url, setup.source)
    refused: list[str] = []
    try:
        for minute in range(24 * 60):
            if minute == 0:
                fetch = asyncio.ensure_future(harness.client.fetch(target))
                await clock.settle()
                await fetch
            else:
                await clock.advance(60)
                try:
                    await harness.client.fetch(target)
                except ApiError as exc:
                    # Said as a credentials failure: "credentials: <source>: ..."
                    refused.append(str(exc) if exc.kind is ErrorKind.CREDENTIALS else repr(exc))
            if minute == 6 * 60 and setup.rotate:  # the token file rotates in place
                Path(setup.rotate).write_text("token-1\n")  # noqa: ASYNC240 - a test's file
                accept(simulator, name, "token-1")
            if minute == 10 * 60:  # the source fails for an hour
                cloud.faults[FAULT_KEYS[name]] = Fault(FaultKind.STATUS, status=503)
            if minute == 11 * 60:
                del cloud.faults[FAULT_KEYS[name]]
    finally:
        auth.close()
        harness.client._authenticators.clear()
    issued = [(ak, expiry) for source, ak, expiry in cloud.keys.issued if source == name]
    # Never a request signed with a key after it expired, on the cloud's clock.
    assert sum(k.expired_uses for k in cloud.access_keys.values()) == 0
    # Renewed at 7.5 minutes (half of 15): 8 keys an hour, less the hour the source failed.
    assert 23 * 8 - 2 <= len(issued) <= 23 * 8 + 2, len(issued)
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(issued)]
    assert min(gaps) >= LIFETIME / 2 - 61 and sorted(gaps)[len(gaps) // 2] <= LIFETIME / 2 + 61
    # The failing hour: the old key signed until SAFETY before it expired, then each
    # request failed with the reason, never sent.
    assert refused and all(
        r.startswith(f"credentials: {name}: the key expired at") for r in refused
    )
    assert len(refused) <= 60 - (LIFETIME / 2 - SAFETY) / 60 + 1
    if setup.rotate:  # the rotated token was read at the next fetch
        assert "token-1" in harness.secrets


def test_the_renewal_rule() -> None:
    from exporter.cloud.keys.answer import TemporaryKey

    def at(lifetime: float) -> float:
        return renew_at(TemporaryKey("a", "s", "t", START + lifetime), START) - START

    assert at(15 * 60) == 7.5 * 60  # half of a short key
    assert at(6 * 3600) == 6 * 3600 - 40 * 60  # 40 minutes before a long one
    assert at(80 * 60) == 40 * 60  # where the two meet


async def test_a_key_the_gateway_calls_expired_signs_nothing_more(
    simulator: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    # The cloud's clock runs ahead of ours: it refuses a key we still think good. The key is
    # used for that one request only (five failed signatures in a row lock a key), and a
    # new one is fetched at once.
    cloud = simulator.cloud
    cloud.put(Resource.IMAGE_SERVER, PROJECT, "srv-1", image_server_body("srv-1"))
    harness = Harness(session)
    source = MetadataSource(simulator.url)
    target = Target(TargetKey(Resource.IMAGE_SERVER, PROJECT, "srv-1"), simulator.url, source)
    try:
        await harness.client.fetch(target)
        [(_, first, _)] = cloud.keys.issued
        cloud.access_keys[first].expires_at = 0.0  # expired, says the gateway
        with pytest.raises(ApiError) as refused:
            await harness.client.fetch(target)
        assert "signature expired" in str(refused.value)
        for _ in range(200):  # the renewal the refusal started
            if len(cloud.keys.issued) == 2:
                break
            await asyncio.sleep(0.01)
        for _ in range(3):
            await harness.client.fetch(target)
    finally:
        await harness.client.close()
    assert cloud.access_keys[first].expired_uses == 1
    assert len(cloud.keys.issued) == 2
