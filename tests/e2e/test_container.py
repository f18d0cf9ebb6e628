"""The image from deploy/docker/Dockerfile, really built and run with podman.

No registry but the package mirrors is reachable, so the Dockerfile's base image
(python:3.11-slim) is stood in for by a Debian root file system built with mmdebstrap from
Debian's packages (python3, pip, venv, certificates), with the python/pip names the
official image has and without Debian's EXTERNALLY-MANAGED marker. The Dockerfile itself
is built as users build it; pip inside the build reaches PyPI with the host's CA bundle and
pip configuration mounted read-only.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import require_tool

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BASE = "docker.io/library/python:3.11-slim"
IMAGE = "localhost/huaweicloud-image-exporter:test"
DEMO_PORT = 9887  # the port the image's HEALTHCHECK asks
HOST_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf")


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [require_tool("podman", package="podman"), "--runtime", "runc", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)},
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


CONTAINERS_CONF = Path("/tmp/huaweicloud-image-exporter-containers.conf")


def build_base(tmp: Path) -> None:
    """A stand-in for python:3.11-slim from Debian's packages."""
    mmdebstrap = require_tool("mmdebstrap", package="mmdebstrap")
    rootfs = tmp / "rootfs.tar"
    subprocess.run(
        [mmdebstrap, "--variant=apt", "--quiet",
         "--include=python3,python3-pip,python3-venv,ca-certificates,passwd",
         "--customize-hook=chroot \"$1\" ln -sf /usr/bin/python3 /usr/local/bin/python",
         "--customize-hook=chroot \"$1\" ln -sf /usr/bin/pip3 /usr/local/bin/pip",
         "--customize-hook=rm -f \"$1\"/usr/lib/python3*/EXTERNALLY-MANAGED",
         "bookworm", str(rootfs)],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    podman("import", "--change", 'CMD ["python3"]', str(rootfs), BASE, timeout=300)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_tool("podman", package="podman")
    require_tool("runc", package="runc")
    CONTAINERS_CONF.write_text("[containers]\ndefault_ulimits = []\n")
    if podman("image", "exists", BASE, check=False).returncode != 0:
        build_base(tmp_path_factory.mktemp("base"))
    mounts = [f"--volume={f}:{f}:ro" for f in HOST_FILES if Path(f).exists()]
    podman(
        "build", "--network=host", *mounts, "--format=docker",
        "-f", "deploy/docker/Dockerfile", "-t", IMAGE, str(ROOT),
        timeout=900,
    )  # fmt: skip
    yield IMAGE
    podman("rmi", "--force", IMAGE, check=False)


def wait_for_metrics(url: str, within: float = 60) -> str:
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
                text: str = r.read().decode()
            if "huaweicloud_workspace_image_server_status{" in text:
                return text
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} served no image-server series within {within:g}s")
        time.sleep(0.5)


def test_image_runs_the_demo_unprivileged_and_its_health_check_passes(image: str) -> None:
    name = f"hie-test-{os.getpid()}"
    podman(
        "run", "--detach", "--rm", "--name", name, "--network=host", "--read-only",
        image, "--demo", f"--web.listen-address=127.0.0.1:{DEMO_PORT}",
    )  # fmt: skip
    try:
        wait_for_metrics(f"http://127.0.0.1:{DEMO_PORT}/metrics")
        assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
        config = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
        assert config["User"] == "10001"
        check = podman("healthcheck", "run", name, check=False)
        assert check.returncode == 0, f"health check failed: {check.stdout}{check.stderr}"
    finally:
        logs = podman("logs", name, check=False)
        podman("stop", "--time=5", name, check=False)
    assert "Traceback" not in logs.stderr
