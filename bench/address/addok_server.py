"""Real addok for the address benchmark: a private redis-server, the data loaded with ``addok batch`` and
``addok ngrams`` (timed), and addok's HTTP API under gunicorn, everything on 127.0.0.1, stopped by PID.

The same pieces as scripts/with-addok.sh (its virtualenv .venv-addok/, scripts/addok/config.py with the
BAN processor chain, scripts/addok/build_data.py for the NDJSON), driven from Python so that each step
can be timed and each process pinned to a CPU. When the virtualenv is missing, ``ensure_venv`` has
with-addok.sh create it (it needs the package registry once).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchkit import BenchError, Server, fetch, start, stop

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("ADDOK_VENV", ROOT / ".venv-addok"))
CONFIG = ROOT / "scripts" / "addok" / "config.py"
BUILD_DATA = ROOT / "scripts" / "addok" / "build_data.py"


def ensure_venv() -> str:
    """The addok version line of the virtualenv, creating it through with-addok.sh if needed."""
    installed = VENV / ".installed"
    if not installed.exists():
        subprocess.run([str(ROOT / "scripts" / "with-addok.sh"), "true"], cwd=ROOT, check=False)
    if not installed.exists() or not (VENV / "bin" / "addok").exists():
        raise BenchError(f"no addok virtualenv in {VENV} (scripts/with-addok.sh could not create it)")
    if shutil.which("redis-server") is None:
        raise BenchError("redis-server is not installed (apt-get install -y redis-server)")
    return installed.read_text().strip()


def redis_info(port: int, section: str = "memory") -> dict[str, str]:
    """``INFO <section>`` of a Redis server, parsed (inline command over a plain socket)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"INFO {section}\r\n".encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            header, _, rest = data.partition(b"\r\n")
            if header.startswith(b"$") and len(rest) >= int(header[1:]):
                break
    _, _, body = data.decode().partition("\r\n")
    return dict(line.split(":", 1) for line in body.splitlines() if ":" in line and not line.startswith("#"))


@dataclass
class Load:
    documents: int
    house_numbers: int
    convert_s: float  # build_data.py: normalised CSV -> addok NDJSON
    batch_s: float  # addok batch
    ngrams_s: float  # addok ngrams
    used_memory_mb: float  # Redis INFO memory used_memory after the load
    used_memory_peak_mb: float
    used_memory_rss_mb: float


class Addok:
    """redis-server + loaded data + gunicorn; ``stop()`` ends what was started."""

    def __init__(self, workdir: Path, *, cpu: int) -> None:
        self.workdir = workdir
        self.cpu = cpu
        workdir.mkdir(parents=True, exist_ok=True)
        self.redis: Server | None = None
        self.http: Server | None = None

    @property
    def env(self) -> dict[str, str]:
        assert self.redis is not None
        env = {key: value for key, value in os.environ.items() if not key.startswith("PASSERELLE_")}
        env.update(
            ADDOK_CONFIG_MODULE=str(CONFIG),
            PASSERELLE_ADDOK_REDIS_PORT=str(self.redis.port),
            PASSERELLE_ADDOK_LOG_DIR=str(self.workdir),
        )
        return env

    def start_redis(self) -> None:
        command = [
            "taskset", "-c", str(self.cpu), "redis-server", "--bind", "127.0.0.1", "--port", "{port}",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
        ]  # fmt: skip
        self.redis = start("redis", command, env=dict(os.environ), cwd=self.workdir, log=self.workdir / "redis.log",
                           port_args=False)  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.redis.process.poll() is not None:
                raise BenchError(f"redis-server exited:\n{self.redis.log_tail()}")
            with contextlib.suppress(OSError):
                redis_info(self.redis.port, "server")
                return
            time.sleep(0.1)
        raise BenchError("redis-server did not answer within 20 s")

    def _run(self, *args: str, timeout: float = 1800) -> float:
        started = time.perf_counter()
        done = subprocess.run([str(VENV / "bin" / "addok"), *args], env=self.env, cwd=self.workdir,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        if done.returncode != 0:
            raise BenchError(f"addok {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return time.perf_counter() - started

    def load(self, sources: list[Path]) -> Load:
        """Reset the Redis database and load ``sources`` (normalised CSV files), timing each step."""
        ndjson = self.workdir / "documents.ndjson"
        started = time.perf_counter()
        with ndjson.open("wb") as out:
            subprocess.run([str(VENV / "bin" / "python"), str(BUILD_DATA), *map(str, sources)], stdout=out,
                           check=True, cwd=ROOT, timeout=600)  # fmt: skip
        convert_s = time.perf_counter() - started
        documents = house_numbers = 0
        with ndjson.open("rb") as f:
            for line in f:
                documents += 1
                house_numbers += line.count(b'"lat"') - 1 if b'"housenumbers"' in line else 0
        self._run("reset", "--force")
        batch_s = self._run("batch", str(ndjson))
        ngrams_s = self._run("ngrams")
        assert self.redis is not None
        info = redis_info(self.redis.port)
        ndjson.unlink()
        memory = [int(info[key]) / 2**20 for key in ("used_memory", "used_memory_peak", "used_memory_rss")]
        return Load(documents, house_numbers, convert_s, batch_s, ngrams_s, *memory)

    def serve(self, workers: int = 1) -> Server:
        """addok's HTTP API: gunicorn with ``workers`` sync workers, pinned to the CPU with Redis. A sync worker
        answers one request at a time and closes the connection after it. (addok is not thread-safe: under
        gunicorn's gthread worker, concurrent fuzzy searches fail with 500, ``ValueError`` in addok/fuzzy.py.)"""
        command = [
            "taskset", "-c", str(self.cpu), str(VENV / "bin" / "gunicorn"), "--bind", "127.0.0.1:{port}",
            "--workers", str(workers), "--backlog", "2048", "--error-logfile", str(self.workdir / "gunicorn.log"),
            "addok.http.wsgi:application",
        ]  # fmt: skip
        self.http = start("addok", command, env=self.env, cwd=self.workdir, log=self.workdir / "gunicorn.out",
                          port_args=False)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.http.process.poll() is not None:
                raise BenchError(f"gunicorn exited:\n{self.http.log_tail()}")
            with contextlib.suppress(OSError):
                if fetch(f"http://127.0.0.1:{self.http.port}/search/?q=paris", timeout=2)[0] == 200:
                    return self.http
            time.sleep(0.2)
        raise BenchError("addok did not answer within 60 s")

    def worker_pids(self) -> list[int]:
        """gunicorn's workers (children of the master), for the CPU accounting."""
        assert self.http is not None
        pid = self.http.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children]

    def stop(self) -> None:
        for server in (self.http, self.redis):
            if server is not None:
                stop(server)
