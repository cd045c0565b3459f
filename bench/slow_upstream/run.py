"""A slow business application behind the hub: 256 concurrent callers, an application that
answers after 200 ms, the hub against a synchronous baseline built the way Passerelle is
served, in the same run.

Servers, each pinned to CPU 0 (``taskset -c 0``):

- **hub**: ``hub_server.py``, the whole hub with an endpoint calling the application through
  ``connector.http`` (pool of 512 connections for this instance);
- **sync 2x4**: ``sync_app.py`` under gunicorn, ``-k gthread -w 2 --threads 4``, a Flask view
  calling the application with ``requests``;
- **bare async** (reference only): ``bare_async.py``, one aiohttp handler with an uncapped
  ``ClientSession``, the issue's "async ≈ 1,234 req/s" figure.

The application (``upstream.py``) and wrk run on CPU 1. For each server: a warm-up, then
``--runs`` measured runs of ``wrk -t1 -c256 -d<duration>s --timeout 30s``; medians are
reported. The issue's target: the hub serves at least 0.95 x 256 / 0.2 s = 1,216 req/s with
a p99 ≤ 230 ms.

    .venv/bin/pip install -e ".[bench]"               # flask, gunicorn, requests
    .venv/bin/python bench/slow_upstream/run.py        # 10 s runs, 3 runs (about 2 min)
    .venv/bin/python bench/slow_upstream/run.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchkit import BenchError, Measure, Server, fetch, start, stop, wrk

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CONNECTIONS = 256
DELAY = 0.2
TARGET_RPS = 0.95 * CONNECTIONS / DELAY
TARGET_P99_MS = 230.0
START_TIMEOUT = 30.0


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited with status {server.process.returncode}:\n{server.log_tail()}")
        try:
            status, body = fetch(server.url())
        except OSError as exc:
            last = str(exc)
        else:
            if status == 200 and json.loads(body).get("err") == 0:
                return
            last = f"HTTP {status}: {body[:200]!r}"
        time.sleep(0.2)
    raise BenchError(f"{server.name} gave no good answer within {START_TIMEOUT:.0f} s ({last})\n{server.log_tail()}")


def worker_pids(pid: int) -> tuple[int, ...]:
    """gunicorn's worker processes (children of the arbiter), whose CPU time counts too."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return tuple(int(child) for child in children.read_text().split())
    except OSError:
        return ()


def start_servers(tmp: Path, upstream_url: str, names: list[str]) -> dict[str, Server]:
    pin = ["taskset", "-c", "0"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PASSERELLE_")}
    servers: dict[str, Server] = {}
    for name in names:
        if name == "hub":
            command = [*pin, sys.executable, str(HERE / "hub_server.py"), "--upstream", upstream_url]
            command += ["--data-dir", str(tmp / "hub")]
            servers[name] = start(name, command, env=env, cwd=tmp, log=tmp / "hub.log", path="/bench-proxy/proxy/fetch")
        elif name == "sync":
            gunicorn = shutil.which("gunicorn", path=str(BIN)) or "gunicorn"
            command = [*pin, gunicorn, "-k", "gthread", "-w", "2", "--threads", "4", "--backlog", "2048"]
            command += ["--chdir", str(HERE), "-b", "127.0.0.1:{port}", "--log-level", "warning", "sync_app:app"]
            sync_env = {**env, "UPSTREAM_URL": upstream_url}
            servers[name] = start(
                name, command, env=sync_env, cwd=tmp, log=tmp / "sync.log", path="/sync/proxy/fetch", port_args=False
            )
        elif name == "bare":
            command = [*pin, sys.executable, str(HERE / "bare_async.py"), "--upstream", upstream_url]
            servers[name] = start(name, command, env=env, cwd=tmp, log=tmp / "bare.log", path="/bare/proxy/fetch")
        else:
            raise BenchError(f"unknown server {name!r}")
    for server in servers.values():
        wait_ready(server)
    return servers


def measure(server: Server, seconds: int) -> Measure:
    return wrk(
        server.url(),
        seconds=seconds,
        connections=CONNECTIONS,
        cpu=1,
        server_pid=server.process.pid,
        server_cpu=0,
        timeout=30,
        server_pids=worker_pids(server.process.pid),
    )


def median_measure(measures: list[Measure]) -> dict[str, float]:
    return {
        "rps": statistics.median(m.rps for m in measures),
        "p50_ms": statistics.median(m.p50_ms for m in measures),
        "p99_ms": statistics.median(m.p99_ms for m in measures),
        "max_ms": statistics.median(m.max_ms for m in measures),
        "server_cpu": statistics.median(m.server_cpu for m in measures),
        "timeouts": sum(m.errors.get("timeout", 0) for m in measures),
        "errors": sum(sum(m.errors.values()) for m in measures),
    }


LABELS = {
    "hub": "hub (`passerelle`, aiohttp, pool 512)",
    "sync": "sync baseline (Flask + requests, gunicorn gthread 2 x 4)",
    "bare": "bare async (aiohttp, `TCPConnector(limit=0)`), reference",
}


def report(results: dict[str, dict[str, float]], seconds: int, runs: int) -> str:
    lines = [
        f"wrk -t1 -c{CONNECTIONS} -d{seconds}s --timeout 30s, median of {runs} runs; application answers after "
        f"{DELAY * 1000:.0f} ms; servers on CPU 0, wrk and the application on CPU 1.",
        "",
        "| server | req/s | p50 ms | p99 ms | max ms | wrk timeouts | server CPU |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in results.items():
        lines.append(
            f"| {LABELS[name]} | {figures['rps']:,.1f} | {figures['p50_ms']:,.1f} | {figures['p99_ms']:,.1f} "
            f"| {figures['max_ms']:,.1f} | {figures['timeouts']:.0f} | {figures['server_cpu']:.0%} |"
        )
    if "hub" in results and "sync" in results:
        hub, sync = results["hub"], results["sync"]
        lines += [
            "",
            f"**hub / sync: {hub['rps'] / sync['rps']:,.1f}x** the requests per second; "
            f"target ≥ {TARGET_RPS:,.0f} req/s with p99 ≤ {TARGET_P99_MS:.0f} ms: "
            f"{'met' if hub['rps'] >= TARGET_RPS and hub['p99_ms'] <= TARGET_P99_MS else 'NOT met'} "
            f"({hub['rps']:,.0f} req/s, p99 {hub['p99_ms']:.0f} ms).",
        ]
    if "hub" in results and "bare" in results:
        lines.append(f"hub / bare async: {results['hub']['rps'] / results['bare']['rps']:.2f}x.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s runs, 2 runs")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", default="hub,sync,bare")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    seconds, runs = (5, 2) if args.quick else (args.duration, args.runs)
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="bench-slow-upstream-"))
    upstream: Server | None = None
    servers: dict[str, Server] = {}
    try:
        upstream_cmd = ["taskset", "-c", "1", sys.executable, str(HERE / "upstream.py"), "--delay", str(DELAY)]
        upstream = start("upstream", upstream_cmd, env=dict(os.environ), cwd=tmp, log=tmp / "upstream.log")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                fetch(upstream.url(), timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(f"the application did not start:\n{upstream.log_tail()}") from None
                time.sleep(0.2)
        servers = start_servers(tmp, upstream.url().rstrip("/") + "/item", names)
        measures: dict[str, list[Measure]] = {name: [] for name in names}
        for name in names:
            print(f"warm-up {name}", file=sys.stderr, flush=True)
            measure(servers[name], 2)
        for run in range(runs):
            for name in names:
                result = measure(servers[name], seconds)
                print(
                    f"run {run + 1}/{runs} {name}: {result.rps:,.1f} req/s, p99 {result.p99_ms:,.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
                measures[name].append(result)
        results = {name: median_measure(values) for name, values in measures.items()}
    except BenchError as exc:
        print(f"bench/slow_upstream: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers.values():
            stop(server)
        if upstream is not None:
            stop(upstream)
        shutil.rmtree(tmp, ignore_errors=True)
    print(report(results, seconds, runs))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
