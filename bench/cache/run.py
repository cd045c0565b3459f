"""Benchmark of the response cache (bench/README.md, "Response cache").

1. Throughput: one endpoint with ``cache_duration`` against the same endpoint without,
   both asking the same application that answers after 20 ms, measured with wrk
   (req/s, p50, p99, the hub's CPU cost; median of the runs) and their ratio.
2. Single flight: 1,000 concurrent identical calls at a cold cache, and how many calls
   the application received, for the cached endpoint and, as a reference, the uncached one.

The hub (bench/cache/hub_server.py) is pinned to one CPU, wrk and the application to the
other. Every process is started on a free port of 127.0.0.1 and stopped by its PID.

    .venv/bin/python bench/cache/run.py [--quick] [--cache-url redis://…]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchkit import BenchError, Measure, Server, fetch, start, stop, wait_for_quiet, wrk

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ADMIN_TOKEN = "bench-admin-token"
BASE = "/bench-cache/app"


def start_process(name: str, script: str, args: list[str], *, cpu: int, env: dict[str, str], workdir: Path) -> Server:
    command = ["taskset", "-c", str(cpu), sys.executable, str(HERE / script), *args]
    return start(name, command, env=env, cwd=ROOT, log=workdir / f"{name}.log")


def wait_ready(server: Server, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited:\n{server.log_tail()}")
        with contextlib.suppress(OSError):
            if fetch(url(server, path), timeout=1)[0] == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"{server.name} did not answer within {timeout:.0f} s")


def url(server: Server, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def median_measure(runs: list[Measure]) -> Measure:
    middle = sorted(runs, key=lambda m: m.rps)[len(runs) // 2]
    return dataclasses.replace(
        middle,
        rps=statistics.median(m.rps for m in runs),
        p50_ms=statistics.median(m.p50_ms for m in runs),
        p99_ms=statistics.median(m.p99_ms for m in runs),
        per_cpu_second=statistics.median(m.per_cpu_second for m in runs),
        server_cpu=statistics.median(m.server_cpu for m in runs),
        foreign_server=max(m.foreign_server for m in runs),
    )


# -- single flight -----------------------------------------------------------------------------


@dataclass
class Flight:
    endpoint: str
    delay: float
    calls: int
    upstream_calls: int
    statuses: Counter[int]
    outcomes: Counter[str]
    seconds: float


def upstream_calls(upstream: Server) -> int:
    return int(json.loads(fetch(url(upstream, "/count"))[1])["calls"])


async def fire(url: str, calls: int) -> tuple[Counter[int], Counter[str], float]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    statuses: Counter[int] = Counter()
    outcomes: Counter[str] = Counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> None:
            async with session.get(url) as response:
                await response.read()
                statuses[response.status] += 1
                outcomes[response.headers.get("X-Cache", "none")] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(calls)))
        return statuses, outcomes, time.perf_counter() - started


def single_flight(hub: Server, upstream: Server, endpoint: str, delay: float, calls: int) -> Flight:
    # A question never asked before: the cache is cold for it.
    target = url(hub, f"{BASE}/{endpoint}?q=cold-{uuid.uuid4().hex}&delay={delay}")
    before = upstream_calls(upstream)
    statuses, outcomes, seconds = asyncio.run(fire(target, calls))
    return Flight(endpoint, delay, calls, upstream_calls(upstream) - before, statuses, outcomes, seconds)


# -- report ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s runs, 2 s warm-ups")
    parser.add_argument("--duration", type=int, help="seconds per measured wrk run (default 10, 5 with --quick)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per endpoint (default 3, 2 with --quick)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per endpoint; the median is reported")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds the application takes to answer")
    parser.add_argument("--concurrent", type=int, default=1000, help="identical calls fired at a cold cache")
    parser.add_argument("--cache-url", default="", help="Redis URL of the cache (default: in memory)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args()
    duration = args.duration or (5 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 3)
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install -y {'wrk' if tool == 'wrk' else 'util-linux'})")

    workdir = Path(tempfile.mkdtemp(prefix="passerelle-bench-cache-"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("PASSERELLE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        PASSERELLE_DATA_DIR=str(workdir / "data"),
        PASSERELLE_LOG_LEVEL="WARNING",
        PASSERELLE_RUN_PERIODIC_JOBS="false",
        PASSERELLE_RUN_JOBS="false",
        PASSERELLE_ADMIN_TOKENS=ADMIN_TOKEN,
        PASSERELLE_SECRET_KEY="bench-secret-key",
        PASSERELLE_CACHE_URL=args.cache_url,
    )
    upstream = start_process("upstream", "upstream.py", [], cpu=args.client_cpu, env=env, workdir=workdir)
    hub: Server | None = None
    try:
        wait_ready(upstream, "/count")
        arguments = ["--upstream", url(upstream, ""), "--data-dir", str(workdir / "data")]
        hub = start_process("hub", "hub_server.py", arguments, cpu=args.server_cpu, env=env, workdir=workdir)
        wait_ready(hub, "/health")
        if args.cache_url:
            request = urllib.request.Request(
                url(hub, "/manage/api/cache/"), method="DELETE", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            urllib.request.urlopen(request, timeout=5).close()

        measures: dict[str, list[Measure]] = {"uncached": [], "cached": []}
        urls = {name: url(hub, f"{BASE}/{name}?q=bench&delay={args.delay}") for name in measures}
        pids = {"server_pid": hub.process.pid, "server_cpu": args.server_cpu, "cpu": args.client_cpu}
        for target in urls.values():
            wrk(target, seconds=warmup, connections=args.connections, **pids)
        for _ in range(args.runs):
            for name, target in urls.items():
                wait_for_quiet(args.server_cpu, 0.10, 30)
                measures[name].append(wrk(target, seconds=duration, connections=args.connections, **pids))
        medians = {name: median_measure(runs) for name, runs in measures.items()}

        flights = [
            single_flight(hub, upstream, "cached", args.delay, args.concurrent),
            single_flight(hub, upstream, "cached", 0.5, args.concurrent),
            single_flight(hub, upstream, "uncached", 0.5, args.concurrent),
        ]
    except BenchError as exc:
        sys.exit(f"bench/cache: {exc}")
    finally:
        if hub is not None:
            stop(hub)
        stop(upstream)

    backend = "Redis" if args.cache_url else "in memory"
    print(f"## Response cache ({time.strftime('%Y-%m-%d')}, cache {backend})\n")
    print(
        f"Application answering after {args.delay * 1000:g} ms; hub on CPU {args.server_cpu}, wrk and the "
        f"application on CPU {args.client_cpu}; `wrk -t1 -c{args.connections} -d{duration}s`, "
        f"{warmup} s warm-up, median of {args.runs} runs.\n"
    )
    print("| endpoint | req/s | p50 | p99 | hub CPU | req per hub CPU-second | other processes on the hub's CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, m in medians.items():
        print(
            f"| {name} | {m.rps:,.0f} | {m.p50_ms:.2f} ms | {m.p99_ms:.2f} ms | {m.server_cpu:.0%} "
            f"| {m.per_cpu_second:,.0f} | {m.foreign_server:.0%} |"
        )
    ratio = medians["cached"].rps / medians["uncached"].rps
    cpu_ratio = medians["cached"].per_cpu_second / medians["uncached"].per_cpu_second
    print(f"\nCached / uncached: **{ratio:.1f}x** the requests per second ({cpu_ratio:.1f}x by CPU cost).\n")
    print(f"Single flight: {args.concurrent:,} concurrent identical calls, each on a question never asked before.\n")
    print("| endpoint | application delay | calls received by the application | answers | X-Cache | wall time |")
    print("|---|---:|---:|---|---|---:|")
    for f in flights:
        statuses = ", ".join(f"{n} x {status}" for status, n in sorted(f.statuses.items()))
        outcomes = ", ".join(f"{n} {outcome}" for outcome, n in sorted(f.outcomes.items()))
        print(
            f"| {f.endpoint} | {f.delay * 1000:g} ms | **{f.upstream_calls}** | {statuses} | {outcomes} "
            f"| {f.seconds:.2f} s |"
        )
    hub_log = (workdir / "hub.log").read_text(errors="replace").strip()
    if hub_log:
        print(f"\nThe hub logged:\n\n```\n{hub_log[-3000:]}\n```")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
