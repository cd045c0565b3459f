"""Graceful shutdown of `passerelle serve`: on SIGTERM, requests in flight finish within
PASSERELLE_SHUTDOWN_GRACE, new connections are refused, and the process exits."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
# `passerelle` with the test connector types added to the installed ones.
LAUNCHER = """
import sys
from passerelle import cli
from tests.passerelle.sample import Sample
installed = cli.connector_types
cli.connector_types = lambda settings: {**installed(settings), "sample": Sample}
sys.exit(cli.main())
"""
CONFIG = """
apiusers:
  - {username: everyone, keytype: ""}
instances:
  - type: sample
    slug: test
    title: Test
    access:
      - {apiuser: everyone, perm: can_access}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def serve(tmp_path):
    processes: list[subprocess.Popen[bytes]] = []

    def start(grace: float) -> tuple[subprocess.Popen[bytes], str]:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PASSERELLE_")},
            "PASSERELLE_DATA_DIR": str(tmp_path / "data"),
            "PASSERELLE_SECRET_KEY": "test-secret-key-for-shutdown-tests-0123456789",
            "PASSERELLE_SHUTDOWN_GRACE": str(grace),
            "PASSERELLE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        config = tmp_path / "config.yaml"
        config.write_text(CONFIG)
        command = [sys.executable, "-c", LAUNCHER]
        subprocess.run([*command, "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True)
        subprocess.run([*command, "import", str(config)], env=env, cwd=tmp_path, check=True, capture_output=True)
        port = free_port()
        process = subprocess.Popen(
            [*command, "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        return process, f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def wait_ready(base: str) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the hub did not start")


async def test_requests_in_flight_finish_within_the_grace(serve):
    process, base = serve(grace=10)
    await wait_ready(base)
    async with aiohttp.ClientSession() as session:
        call = asyncio.create_task(session.get(f"{base}/sample/test/slow?seconds=1.5"))
        await asyncio.sleep(0.5)  # the call is being served
        process.send_signal(signal.SIGTERM)
        response = await asyncio.wait_for(call, 15)
        assert response.status == 200
        assert await response.json() == {"err": 0, "data": {"slept": 1.5}}
    assert await asyncio.to_thread(process.wait, 15) == 0
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"{base}/health")


async def test_the_grace_bounds_the_wait(serve):
    process, base = serve(grace=0.5)
    await wait_ready(base)
    async with aiohttp.ClientSession() as session:
        call = asyncio.create_task(session.get(f"{base}/sample/test/slow?seconds=60"))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        # The hub stops after its grace instead of waiting for the 60 s call; the call is cut.
        assert await asyncio.to_thread(process.wait, 20) == 0
        assert time.monotonic() - started < 15
        with pytest.raises((aiohttp.ClientError, asyncio.TimeoutError)):
            response = await asyncio.wait_for(call, 5)
            await response.read()
