"""The tests' own guard: nothing a test runs connects anywhere but loopback."""

from __future__ import annotations

import aiohttp
import pytest


@pytest.mark.parametrize("url", ["http://169.254.169.254/openstack/latest/securitykey",
                                 "http://10.0.0.1:80/", "http://[2001:db8::1]/"])  # fmt: skip
async def test_a_connection_beyond_loopback_is_refused(url: str) -> None:
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientConnectorError) as refused:
            await s.get(url, timeout=aiohttp.ClientTimeout(total=2))
    assert "tests connect to loopback only" in str(refused.value.os_error)
