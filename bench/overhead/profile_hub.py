"""Where the hub's time goes under the overhead benchmark's load: py-spy samples, summarised.

Sets the hub up exactly as ``run.py`` does (same CSV, settings, pinning), loads it with
wrk for each case while ``py-spy record`` samples it, then prints the share of samples
spent in each layer and the top functions (inclusive and self). py-spy is not a
dependency of the project: install it into the virtualenv for the occasion::

    .venv/bin/pip install py-spy
    .venv/bin/python bench/overhead/profile_hub.py [--seconds 15] [--rate 500] [--keep-tmp]

The raw collapsed stacks are written next to the report when ``--out DIR`` is given
(open them with speedscope or flamegraph.pl).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/overhead/run.py: set-up, servers, wrk

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Layers, tried in order on each frame from the leaf up; the first match owns the sample.
LAYERS: list[tuple[str, re.Pattern[str]]] = [
    ("orjson serialisation (envelope.dumps)", re.compile(r"^dumps \(.*passerelle/envelope\.py")),
    ("request id (uuid4, header regex)", re.compile(r"uuid|passerelle/requestid\.py")),
    ("parameter validation (pydantic)", re.compile(r"pydantic|passerelle/parameters\.py")),
    ("permission check", re.compile(r"passerelle/auth/")),
    ("connector: dataset.search / fold", re.compile(r"connectors/csvdatasource/(dataset|text)\.py")),
    ("connector: data()/dataset() (stat, lock)", re.compile(r"connectors/csvdatasource/")),
    ("dispatch (select endpoint, read query, render)", re.compile(r"passerelle/dispatch\.py")),
    ("envelope middleware", re.compile(r"passerelle/middleware\.py")),
    ("aiohttp response writing", re.compile(r"aiohttp/(web_response|http_writer|abc|helpers)\.py")),
    ("aiohttp routing", re.compile(r"aiohttp/web_urldispatcher\.py")),
    ("aiohttp request object (query, headers, match_info)", re.compile(r"aiohttp/web_request\.py|multidict|yarl")),
    ("aiohttp protocol and app (parse, handler chain)", re.compile(r"aiohttp/")),
    ("asyncio event loop and transports", re.compile(r"asyncio/")),
]


def parse_frame(frame: str) -> tuple[str, str]:
    match = FRAME.match(frame)
    if match is None:
        return frame, ""
    return match["func"], match["file"]


REPOSITORY = str(Path(__file__).resolve().parents[2])


def short(path: str) -> str:
    for marker in ("site-packages/", f"{REPOSITORY}/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def summarise(raw: Path, top: int = 25) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    layers: collections.Counter[str] = collections.Counter()
    total = other_threads = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [parse_frame(frame) for frame in stack.split(";")]
        frames = [(func, file) for func, file in frames if file]  # drop process/thread pseudo-frames
        if not frames:
            continue
        if not any(func == "BaseEventLoop._run_once" for func, _ in frames):
            other_threads += count  # thread pools, aiosqlite's thread: not the request path
            continue
        total += count
        names = [f"{func} ({short(file)})" for func, file in frames]
        for name in set(names):
            inclusive[name] += count
        self_time[names[-1]] += count
        full = [f"{func} ({file})" for func, file in frames]
        for frame in reversed(full):
            layer = next((label for label, pattern in LAYERS if pattern.search(frame)), None)
            if layer is not None:
                layers[layer] += count
                break
        else:
            layers["other"] += count
    if not total:
        return "no samples (is py-spy allowed to ptrace the hub?)\n"
    lines = [
        f"{total} samples of the event-loop thread ({other_threads} samples of other threads left out); "
        "percentages are shares of the event-loop thread's samples",
        "",
        "By layer (each sample charged to the innermost frame of a known layer):",
    ]
    lines += [f"  {count / total:6.1%}  {layer}" for layer, count in layers.most_common()]
    lines += ["", f"Top {top} functions, inclusive:"]
    lines += [f"  {count / total:6.1%}  {name}" for name, count in inclusive.most_common(top)]
    lines += ["", f"Top {top} functions, self:"]
    lines += [f"  {count / total:6.1%}  {name}" for name, count in self_time.most_common(top)]
    return "\n".join(lines) + "\n"


def load_hub(hub: run.Server, case: run.Case, seconds: int, connections: int, results: list[run.Measure]) -> None:
    url = hub.url(case.query)
    results.append(
        run.wrk(url, seconds=seconds, connections=connections, cpu=1, server_pid=hub.process.pid, server_cpu=0)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Profile the hub under the overhead benchmark's load with py-spy.")
    parser.add_argument("--seconds", type=int, default=15, help="seconds of load and sampling per case (default 15)")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second (default 200)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--out", type=Path, help="directory for the raw collapsed stacks (default: not kept)")
    parser.add_argument("--keep-tmp", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 120:
        parser.error("1 ≤ seconds ≤ 120")
    py_spy = shutil.which("py-spy") or str(run.BIN / "py-spy")
    if not Path(py_spy).exists():
        print("bench/overhead: py-spy is missing; install it with .venv/bin/pip install py-spy", file=sys.stderr)
        return 1
    options = run.Options(args.seconds, 0, 1, args.connections, 0, 1, args.keep_tmp, None, ("hub",))
    tmp = Path(tempfile.mkdtemp(prefix="passerelle-bench-profile-"))
    hub = None
    try:
        run.preflight(options)
        csv_path = tmp / "communes.csv"
        run.write_csv(csv_path)
        env = run.hub_environment(tmp)
        run.prepare_hub(tmp, csv_path, env)
        command = ["taskset", "-c", "0", str(run.BIN / "passerelle"), "serve"]
        hub = run.start("hub", command, env=env, cwd=tmp, log=tmp / "hub.log", path=run.DATA_PATH)
        for case in run.CASES:
            run.wait_for_answer(hub, case.query)
            load_hub(hub, case, 3, args.connections, [])  # warm-up
            raw = (args.out or tmp) / f"hub-{case.name}.collapsed"
            raw.parent.mkdir(parents=True, exist_ok=True)
            sampler = [
                "taskset", "-c", "1", py_spy, "record", "--pid", str(hub.process.pid), "--rate", str(args.rate),
                "--duration", str(args.seconds), "--format", "raw", "--output", str(raw),
            ]  # fmt: skip
            results: list[run.Measure] = []
            load = threading.Thread(
                target=load_hub, args=(hub, case, args.seconds + 1, args.connections, results), daemon=True
            )
            load.start()
            done = subprocess.run(sampler, capture_output=True, text=True, timeout=args.seconds + 60)
            load.join(timeout=args.seconds + 60)
            if done.returncode != 0:
                print(f"py-spy failed: {done.stderr.strip()}", file=sys.stderr)
                return 1
            measure = results[0] if results else None
            print(f"## hub, case {case.name} ({case.label})")
            if measure is not None:
                print(
                    f"under py-spy: {measure.rps:,.0f} req/s, server CPU {measure.server_cpu:.0%}, "
                    f"other processes on its core {measure.foreign_server:.0%}"
                )
            print(summarise(raw))
    except run.BenchError as exc:
        print(f"bench/overhead: {exc}", file=sys.stderr)
        return 1
    finally:
        if hub is not None:
            run.stop(hub)
        if not args.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
