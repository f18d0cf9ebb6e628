"""No secret is ever logged, printed, exported or put in an error, through a whole lifecycle."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from exporter.domain.targets import Resource
from exporter.simulator import SimulatorServer
from tests.helpers import (
    PROJECT,
    image_id,
    image_server_body,
    run_cli,
    start_exporter,
    stop_exporter,
)

SK = "SECRET-SK-b7e1c0de5a1f"
SK2 = "SECRET-SK2-40c9aa77e2d1"
TOKEN = "SECRET-TOKEN-91f3d2a7c6e5"
PASSWORD = "SECRET-IAM-PW-0d8f2b1e"
FILE_SK = "SECRET-FILE-SK-66a1f09c"
SECRETS = (SK, SK2, TOKEN, PASSWORD, FILE_SK)


def config(url: str, sk: str, secret_file: Path) -> dict[str, Any]:
    return {
        "credentials": {"access_key": "TEMPORARY-AK", "secret_key": sk, "security_token": TOKEN},
        "poll": {"interval": "30s", "timeout": "2s", "retries": 0},
        "targets": [
            {"project_id": PROJECT, "workspace_endpoint": url, "image_servers": ["srv-1"]},
            {"project_id": "p2", "workspace_endpoint": url, "image_servers": ["srv-2"],
             "credentials": {"iam": {"username": "u", "password": PASSWORD, "domain_name": "d", "endpoint": url}}},
            {"project_id": "p3", "modelarts_endpoint": url, "devserver_images": [image_id(3)],
             "credentials": {"access_key": "AK3", "secret_key_file": str(secret_file)}},
        ],
    }  # fmt: skip


@pytest.mark.slow
async def test_secrets_appear_nowhere(simulator: SimulatorServer, tmp_path: Path) -> None:
    cloud = simulator.cloud
    cloud.add_access_key(
        "TEMPORARY-AK", "the-real-secret", token="another-token"
    )  # so every poll fails
    cloud.add_iam_user("d", "u", "the-real-password")
    cloud.put(Resource.IMAGE_SERVER, PROJECT, "srv-1", image_server_body("srv-1"))
    secret_file = tmp_path / "sk"
    secret_file.write_text(FILE_SK)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config(simulator.url, SK, secret_file)))
    seen: list[str] = []

    proc, base = await start_exporter("--config.file", str(path), "--log.level", "debug")
    try:
        async with aiohttp.ClientSession() as s:
            for _ in range(100):
                async with s.get(base + "/-/ready") as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.05)
            for page in ("/metrics", "/", "/-/ready"):
                async with s.get(base + page) as r:
                    seen.append(await r.text())
            assert "APIGW.0301" in seen[1], "the polls were meant to fail"
            # a rejected reload whose file has secrets in wrong places
            bad = config(simulator.url, SK, secret_file)
            bad["credentials"]["secret_key"] = [SK2]
            bad["credentials"]["secret_keyy"] = SK2
            path.write_text(yaml.safe_dump(bad))
            async with s.post(base + "/-/reload") as r:
                assert r.status == 400
                seen.append(await r.text())
            # a good reload with a new secret, then another failing poll
            path.write_text(yaml.safe_dump(config(simulator.url, SK2, secret_file)))
            proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(1.0)
            async with s.get(base + "/metrics") as r:
                seen.append(await r.text())
    finally:
        code, final_log = await stop_exporter(proc)
    assert code == 0
    seen.append(final_log.decode())
    assert "configuration reloaded" in seen[-1]

    env = {**os.environ, "HUAWEICLOUD_SDK_SK": SK}
    path.write_text(yaml.safe_dump(bad))
    for args in (["--check-config"], ["--once"]):
        code, out, err = await run_cli(*args, "--config.file", str(path), env=env)
        assert code == 1
        seen += [out, err]
    path.write_text(yaml.safe_dump(config(simulator.url, SK, secret_file)))
    code, out, err = await run_cli(
        "--once",
        "--log.level",
        "debug",
        "--log.format",
        "json",
        "--config.file",
        str(path),
        env=env,
    )
    assert code == 1 and "APIGW.0301" in err
    seen += [out, err]

    everything = "\n".join(seen)
    for secret in SECRETS:
        assert secret not in everything, f"{secret} leaked"


def test_log_redaction_is_a_second_line_of_defence() -> None:
    import io
    import logging

    from exporter.logs import setup_logging

    stream = io.StringIO()
    redactor = setup_logging("debug", "text", stream)
    redactor.set_secrets((SK,))
    redactor.add(TOKEN)
    try:
        raise ValueError(f"boom {SK}")
    except ValueError:
        logging.getLogger("exporter.test").exception("failed with %s and %s", SK, TOKEN)
    out = stream.getvalue()
    assert SK not in out and TOKEN not in out
    assert out.count("<redacted>") >= 3


@pytest.mark.parametrize("field", ["message", "request id", "error code"])
@pytest.mark.parametrize("echoed", ["secret key", "security token", "IAM password", "IAM token"])
async def test_a_gateway_quoting_secrets_back_leaks_them_nowhere(
    simulator: SimulatorServer, tmp_path: Path, echoed: str, field: str
) -> None:
    from exporter.cloud.transport import RetryPolicy
    from exporter.domain.credentials import AkSkCredentials, IamCredentials
    from exporter.exposition.textformat import Format
    from exporter.runtime import Exporter, ListenAddress
    from exporter.simulator import Fault, FaultKind
    from exporter.simulator.cloud import jobs_key
    from exporter.simulator.jobs import add_job
    from tests.helpers import PROJECT, image_server_body, settings

    token, password = "echoed-security-token-0123456789", "echoed-iam-password-0123456789"
    cloud = simulator.cloud
    cloud.add_access_key("TEMPKEY0000000000001", "temp-secret-key-0123456789abcdef", token)
    cloud.add_iam_user("dom", "user", password)
    creds: AkSkCredentials | IamCredentials = AkSkCredentials(
        "TEMPKEY0000000000001", "temp-secret-key-0123456789abcdef", token
    )
    if echoed.startswith("IAM"):
        creds = IamCredentials("user", password, "dom", simulator.url)
    cloud.put(Resource.IMAGE_SERVER, PROJECT, "srv-1", image_server_body("srv-1"))
    secret = {"secret key": "temp-secret-key-0123456789abcdef", "security token": token,
              "IAM password": password}.get(echoed, "")  # fmt: skip
    base = settings(simulator.url, [], ["srv-1"], credentials=creds)
    state = tmp_path / "state.json"
    e = Exporter(base, retry_policy=RetryPolicy(retries=0), storage_path=str(state))
    await e.start(ListenAddress("127.0.0.1", 0), schedule=False)
    try:
        await e.run_cycle()  # a first good cycle (and, with IAM, a token to echo)
        if echoed == "IAM token":
            secret = next(iter(cloud._tokens))  # the token the exporter holds
        quoted = f"bad request; you sent {secret!r} and we do not like it"
        message = quoted if field == "message" else "we do not like it"
        code = secret if field == "error code" else "WKS.0400"
        request_id = secret if field == "request id" else None
        cloud.faults[(Resource.IMAGE_SERVER, PROJECT, "srv-1")] = Fault(
            FaultKind.STATUS, status=400, error_code=code, message=message,
            request_id=request_id,
        )  # fmt: skip
        # The same for an image build: its message, code, and the name of its server.
        add_job(cloud, PROJECT, "BUILD_IMAGE", "FAILED", [("srv-1", secret)], begin=1.9e9,
                end=1.9e9 + 1, error=(code, message))  # fmt: skip
        cloud.faults[jobs_key(PROJECT)] = Fault(
            FaultKind.STATUS, status=500, error_code=code, message=message,
            request_id=request_id, times=1,
        )  # fmt: skip
        snap = await e.run_cycle()
        [target] = snap.targets
        assert not target.up and "we do not like it" in (target.error or "")
        base_url = f"http://127.0.0.1:{e.addresses[0][1]}"
        async with aiohttp.ClientSession() as s, s.get(base_url + "/") as r:
            page = await r.text()
        metrics = b"".join(e.exposition.body(Format.TEXT, gzip=False)).decode()
        await e.stop()
        written = state.read_text()
        for where, text in (("error", target.error or ""), ("page", page),
                            ("metrics", metrics), ("state file", written)):  # fmt: skip
            assert secret not in text, f"the {echoed} is in the {where}"
        assert "we do not like it" in page and "<redacted>" in (target.error or "")
        assert "<redacted>" in written
    finally:
        await e.stop()
