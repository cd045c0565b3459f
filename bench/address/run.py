"""Address search benchmark: the embedded index (``base-adresse`` local backend) against real addok 1.3.2,
the same data on both sides, in the same run (bench/address/README.md).

1. Autocompletion: the hub's ``/base-adresse/bench/addresses?q=…&page_limit=5`` against addok's
   ``/search/?q=…&autocomplete=1&limit=5``, wrk cycling over the same list of texts typed letter by letter
   (with and without a typo); each server on CPU 0 (addok: gunicorn, one sync worker, and its Redis), wrk on
   CPU 1; at 64 connections (throughput) and at 1 (latency of a single user). The index alone, called in
   process over the same list, is reported too.
2. Build time and peak memory of the embedded index (Paris + Hautes-Alpes, BANO 20 départements,
   1.24 M house numbers) against addok's load (`addok batch` + `addok ngrams`) and Redis memory.
3. Accuracy: top-1 and top-5 of both engines on a query set built from the data (fixed seed).

    .venv/bin/python bench/address/run.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import benchkit  # noqa: E402
from addok_server import VENV, Addok, Load, ensure_venv, redis_info  # noqa: E402
from benchkit import BenchError, Measure, Server, cycling_script, fetch, start, stop, wait_for_quiet, wrk  # noqa: E402
from queries import CATEGORIES, Query, accuracy_queries, is_hit, records, typing_queries  # noqa: E402

from connectors.sig.addressindex import AddressIndex, build_index  # noqa: E402

DATA = (ROOT / ".." / "shared" / "data" / "addresses" / "normalised").resolve()
PARIS_05 = [DATA / "ban-75-paris.csv.gz", DATA / "ban-05-hautes-alpes.csv.gz"]
BANO = [DATA / "bano2015-20-departements.csv.gz"]
BANO_PARIS = DATA / "bano2015-75-paris-partial.csv.gz"
BIG_ROWS = 1_240_000
HUB_PATH = "/base-adresse/bench/addresses"
FIELDS = "id;numero;suffixe;nom_voie;code_postal;code_insee;nom_commune;lon;lat"


# -- data ----------------------------------------------------------------------------------------


def synthesise_big(target: Path) -> None:
    """1.24 M house numbers as connectors/sig/addressindex/README.md describes them: BANO 20 départements,
    Paris, Hautes-Alpes and the BANO Paris partial (835,606 real rows), then the first BANO rows again under
    citycode ``Z<citycode>`` and id ``Z<id>`` up to 1,240,000 rows."""
    rows = 0
    with target.open("w", encoding="utf-8") as out:
        out.write(FIELDS + "\n")
        for path in [*BANO, *PARIS_05, BANO_PARIS]:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                next(f)
                for line in f:
                    out.write(line)
                    rows += 1
        with gzip.open(BANO[0], "rt", encoding="utf-8") as f:
            next(f)
            for line in f:
                if rows >= BIG_ROWS:
                    break
                fields = line.split(";")
                fields[0], fields[5] = "Z" + fields[0], "Z" + fields[5]
                out.write(";".join(fields))
                rows += 1


def build_in_fresh_process(paths: list[Path], env: dict[str, str]) -> dict[str, float]:
    command = [sys.executable, str(HERE / "build_one.py"), *map(str, paths)]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise BenchError(f"building the index failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- servers -------------------------------------------------------------------------------------


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def hub_available() -> bool:
    """Whether the base-adresse connector type can be imported (it was being written with this bench)."""
    try:
        from connectors.sig.baseadresse import BaseAdresse  # noqa: F401
    except ImportError:
        return False
    return True


def start_hub(workdir: Path, env: dict[str, str], cpu: int) -> tuple[Server, float]:
    """The hub with a base-adresse instance on Paris + 05; returns it and the seconds until it answered 200."""
    sources = [arg for path in PARIS_05 for arg in ("--source", str(path))]
    command = ["taskset", "-c", str(cpu), sys.executable, str(HERE / "hub_server.py"), "--data-dir",
               str(workdir / "data"), *sources]  # fmt: skip
    started = time.monotonic()
    hub = start("hub", command, env=env, cwd=ROOT, log=workdir / "hub.log")
    probe = f"http://127.0.0.1:{hub.port}{HUB_PATH}?q=rue&page_limit=5"
    deadline = started + 300
    while time.monotonic() < deadline:
        if hub.process.poll() is not None:
            raise BenchError(f"the hub exited:\n{hub.log_tail()}")
        with contextlib.suppress(OSError):
            if fetch(probe, timeout=5)[0] == 200:
                return hub, time.monotonic() - started
        time.sleep(0.2)
    stop(hub)
    raise BenchError(f"the hub's addresses endpoint did not answer 200 within 300 s:\n{hub.log_tail()}")


def hub_path(q: str) -> str:
    return f"{HUB_PATH}?{urllib.parse.urlencode({'q': q, 'page_limit': 5})}"


def addok_path(q: str, **filters: str) -> str:
    return f"/search/?{urllib.parse.urlencode({'q': q, 'autocomplete': 1, 'limit': 5, **filters})}"


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
        idle_server=statistics.median(m.idle_server for m in runs),
    )


@dataclass
class Target:
    name: str
    server: Server
    script: Path
    pids: tuple[int, ...]  # further processes whose CPU counts as the server's (gunicorn worker, Redis)


def measure_wrk(targets: list[Target], args: argparse.Namespace, connections: int) -> dict[str, Measure]:
    runs: dict[str, list[Measure]] = {t.name: [] for t in targets}

    def one(target: Target, seconds: int) -> Measure:
        benchkit.LUA_SCRIPT = target.script  # benchkit.wrk runs the module's script: ours cycles over the paths
        pids = {"server_pid": target.server.process.pid, "server_cpu": args.server_cpu, "server_pids": target.pids}
        return wrk(target.server.url(), seconds=seconds, connections=connections, cpu=args.client_cpu, **pids)

    for target in targets:
        if args.warmup:
            one(target, args.warmup)
    for _ in range(args.runs):
        for target in targets:
            best: Measure | None = None
            for attempt in range(1, args.retries + 2):
                wait_for_quiet(args.server_cpu, args.max_foreign, args.quiet_wait)
                m = dataclasses.replace(one(target, args.duration), attempts=attempt)
                if best is None or m.foreign_server < best.foreign_server:
                    best = m
                if m.foreign_server <= args.max_foreign:
                    break
            assert best is not None
            runs[target.name].append(best)
    return {name: median_measure(measures) for name, measures in runs.items()}


# -- accuracy ------------------------------------------------------------------------------------


def addok_features(base: str, q: str, **filters: str) -> list[dict]:
    status, body = fetch(base + addok_path(q, **filters), timeout=30)
    if status != 200:
        raise BenchError(f"addok answered {status} to {q!r}: {body[:300]!r}")
    return json.loads(body)["features"]


def accuracy(queries: list[Query], index: AddressIndex, addok_base: str) -> dict[str, dict[str, list[int]]]:
    """Per category and engine: [n, top-1 hits, top-5 hits]."""
    table: dict[str, dict[str, list[int]]] = {}
    for query in queries:
        answers = {
            "index": index.search(query.q, limit=5, autocomplete=True, **query.filters),
            "addok": addok_features(addok_base, query.q, **query.filters),
        }
        for engine, features in answers.items():
            row = table.setdefault(query.category, {}).setdefault(engine, [0, 0, 0])
            row[0] += 1
            row[1] += bool(features) and is_hit(features[0], query.expected)
            row[2] += any(is_hit(f, query.expected) for f in features[:5])
    return table


# -- report --------------------------------------------------------------------------------------


def pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def ms(seconds: list[float], q: float) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def verdict(value: float, target: float) -> str:
    return "met" if value >= target else "missed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s runs, 2 s warm-ups, 1 run, smaller query sets")
    parser.add_argument("--duration", type=int, help="seconds per measured wrk run (default 10, 5 with --quick)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per server (default 5, 2 with --quick)")
    parser.add_argument("--runs", type=int, help="measured runs per server; the median is reported (default 3)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections of the throughput runs")
    parser.add_argument("--typed", type=int, help="addresses typed letter by letter (default 150, 40 with --quick)")
    parser.add_argument("--per-category", type=int, help="accuracy queries per category (default 400, 100 --quick)")
    parser.add_argument("--no-big", action="store_true", help="skip the 1.24 M house-number build")
    parser.add_argument("--no-hub", action="store_true", help="measure addok and the index in process only")
    parser.add_argument("--addok-bano", action=argparse.BooleanOptionalAction, default=None,
                        help="also load BANO 20 into addok (default: yes, not with --quick)")  # fmt: skip
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--max-foreign", type=float, default=0.10)
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--quiet-wait", type=float, default=30)
    parser.add_argument("--json", help="also write the figures as JSON to this file")
    parser.add_argument("--keep-tmp", action="store_true")
    args = parser.parse_args()
    args.duration = args.duration or (5 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 5)
    args.runs = args.runs or (1 if args.quick else 3)
    args.typed = args.typed or (40 if args.quick else 150)
    args.per_category = args.per_category or (100 if args.quick else 400)
    args.addok_bano = (not args.quick) if args.addok_bano is None else args.addok_bano
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"bench/address: {tool} is not installed")
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench/address: needs two CPUs (servers on one, wrk on the other)")
    for path in [*PARIS_05, *BANO, BANO_PARIS]:
        if not path.exists():
            sys.exit(f"bench/address: missing data file {path}")

    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    load_average = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="passerelle-bench-address-"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("PASSERELLE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        PASSERELLE_DATA_DIR=str(workdir / "data"),
        PASSERELLE_DATABASE_URL=f"sqlite:///{workdir / 'data' / 'passerelle.sqlite3'}",
        PASSERELLE_LOG_LEVEL="WARNING",
        PASSERELLE_SECRET_KEY="bench-secret-key",
    )
    addok = Addok(workdir / "addok", cpu=args.server_cpu)
    hub: Server | None = None
    results: dict = {"started": started_at, "args": vars(args)}
    try:
        addok_version = ensure_venv()
        # -- 2. builds first, while nothing else of ours runs --------------------------------------
        builds: dict[str, dict[str, float]] = {}
        print("building the embedded index (Paris + 05, BANO 20)…", file=sys.stderr)
        builds["paris05"] = build_in_fresh_process(PARIS_05, env)
        builds["bano"] = build_in_fresh_process(BANO, env)
        if not args.no_big:
            print("building the embedded index (1.24 M house numbers)…", file=sys.stderr)
            big = workdir / "big-1.24M.csv"
            synthesise_big(big)
            builds["big"] = build_in_fresh_process([big], env)
            big.unlink()
        loads: dict[str, Load] = {}
        addok.start_redis()
        if args.addok_bano:
            print("loading BANO 20 into addok…", file=sys.stderr)
            loads["bano"] = addok.load(BANO)
        print("loading Paris + 05 into addok…", file=sys.stderr)
        loads["paris05"] = addok.load(PARIS_05)
        addok_http = addok.serve(workers=1)
        assert addok.redis is not None
        addok_base = f"http://127.0.0.1:{addok_http.port}"
        results["builds"], results["loads"] = builds, {k: dataclasses.asdict(v) for k, v in loads.items()}

        # -- the in-process index, the query lists ------------------------------------------------
        index = build_index(PARIS_05)
        recs = records(PARIS_05)
        typing, n_clean, n_typo = typing_queries(recs, args.typed)
        queries = accuracy_queries(recs, args.per_category)

        # -- 1. autocompletion ------------------------------------------------------------------
        timings = []
        for q in typing:
            t = time.perf_counter()
            index.search(q, limit=5, autocomplete=True)
            timings.append(time.perf_counter() - t)
        in_process = {
            "p50_ms": ms(timings, 0.5),
            "p99_ms": ms(timings, 0.99),
            "mean_ms": statistics.mean(timings) * 1000,
        }
        addok_timings = []
        for q in typing[:: max(1, len(typing) // 400)]:
            t = time.perf_counter()
            addok_features(addok_base, q)
            addok_timings.append(time.perf_counter() - t)
        addok_sequential = {
            "p50_ms": ms(addok_timings, 0.5),
            "p99_ms": ms(addok_timings, 0.99),
            "n": len(addok_timings),
        }
        results["in_process"], results["addok_sequential"] = in_process, addok_sequential

        targets = [
            Target("addok", addok_http, cycling_script(workdir, "addok", [addok_path(q) for q in typing]),
                   (*addok.worker_pids(), addok.redis.process.pid)),
        ]  # fmt: skip
        hub_ready_s = hub_rss = hub_peak = 0.0
        with_hub = hub_available() and not args.no_hub
        if with_hub:
            print("starting the hub (it builds its index)…", file=sys.stderr)
            hub, hub_ready_s = start_hub(workdir, env, args.server_cpu)
            hub_rss, hub_peak = rss_mb(hub.process.pid), rss_mb(hub.process.pid, "VmHWM")
            # The hub answers what the index answers: check it on some of the typed texts.
            for q in typing[:: max(1, len(typing) // 50)]:
                status, body = fetch(f"http://127.0.0.1:{hub.port}{hub_path(q)}")
                answer = json.loads(body)
                expected = [f["properties"]["id"] for f in index.search(q, limit=5, autocomplete=True)]
                got = [item.get("ban_id") or item["id"] for item in answer.get("data", [])]
                if status != 200 or answer.get("err") != 0 or got != expected:
                    raise BenchError(f"the hub answered {status} {got} to {q!r}, the index {expected}")
            targets.insert(0, Target("hub", hub, cycling_script(workdir, "hub", [hub_path(q) for q in typing]), ()))
        for q in typing[:: max(1, len(typing) // 50)]:
            addok_features(addok_base, q)  # every typed text is a valid addok query
        print("measuring autocompletion with wrk…", file=sys.stderr)
        throughput = measure_wrk(targets, args, args.connections)
        single = measure_wrk(targets, args, 1)
        results["wrk"] = {
            f"c{args.connections}": {k: dataclasses.asdict(v) for k, v in throughput.items()},
            "c1": {k: dataclasses.asdict(v) for k, v in single.items()},
        }
        addok_worker_rss = sum(rss_mb(pid) for pid in addok.worker_pids())
        redis_now = {
            k: int(v) / 2**20
            for k, v in redis_info(addok.redis.port).items()
            if k in ("used_memory", "used_memory_rss")
        }

        # -- 3. accuracy ----------------------------------------------------------------------------
        print(f"accuracy: {len(queries)} queries on each engine…", file=sys.stderr)
        table = accuracy(queries, index, addok_base)
        results["accuracy"] = table
    except BenchError as exc:
        sys.exit(f"bench/address: {exc}\n(logs kept in {workdir})")
    finally:
        if hub is not None:
            stop(hub)
        addok.stop()

    # -- the report ---------------------------------------------------------------------------------
    print(f"## Address search: embedded index vs addok ({time.strftime('%Y-%m-%d')})\n")
    print(
        f"Run started {started_at} (load average {load_average:.2f}). Data: Paris + Hautes-Alpes "
        f"({builds['paris05']['house_numbers']:,.0f} house numbers, BAN, LO 2.0) in both engines. "
        f"addok: {addok_version}, Redis {redis_version()}, gunicorn with **one sync worker**; the hub: "
        f"`passerelle serve` as benchhub.py runs it, one process, `base-adresse` instance with the local "
        f"backend. Each server and Redis on CPU {args.server_cpu}, wrk on CPU {args.client_cpu}.\n"
    )
    print("### 1. Autocompletion\n")
    print(
        f"{len(typing):,} texts ({n_clean:,} typed letter by letter from the third letter of the street name, "
        f"of {args.typed} random addresses; {n_typo:,} with a typo, from the typo on), sent in turn by wrk "
        f"(`-t1 -d{args.duration}s`, {args.warmup} s warm-up per server, median of {args.runs} run(s) "
        f"alternating the servers). Hub `{HUB_PATH}?q=…&page_limit=5`, addok `/search/?q=…&autocomplete=1&limit=5`.\n"
    )
    print(
        "| connections | engine | req/s | p50 ms | p99 ms | CPU µs/req¹ | server CPU "
        "| others on its core | its core idle |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for conns, measured in ((args.connections, throughput), (1, single)):
        for name, m in measured.items():
            label = "hub (embedded index)" if name == "hub" else "addok + Redis"
            cost = 1e6 / m.per_cpu_second if m.per_cpu_second else 0
            print(
                f"| {conns} | {label} | {m.rps:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | {cost:,.0f} "
                f"| {m.server_cpu:.0%} | {m.foreign_server:.0%} | {m.idle_server:.0%} |"
            )
    print("\n¹ CPU time of the server's processes per request (addok: gunicorn's worker and master, and Redis).\n")
    if with_hub:
        h, a, h1, a1 = throughput["hub"], throughput["addok"], single["hub"], single["addok"]
        rps_ratio = h.rps / a.rps
        print(
            f"Hub / addok at {args.connections} connections: **{rps_ratio:.1f}x** the requests per second "
            f"(target 5x: {verdict(rps_ratio, 5)}), median latency **1/{a.p50_ms / h.p50_ms:.1f}** of addok's "
            f"(target 1/5: {verdict(a.p50_ms / h.p50_ms, 5)}), p99 1/{a.p99_ms / h.p99_ms:.1f}. "
            f"One connection: median 1/{a1.p50_ms / h1.p50_ms:.1f} (hub {h1.p50_ms:.2f} ms, addok "
            f"{a1.p50_ms:.2f} ms), {h1.rps / a1.rps:.1f}x the requests per second. By CPU cost per request: "
            f"{h.per_cpu_second / a.per_cpu_second:.1f}x.\n"
        )
    else:
        print(
            "**The hub was not measured**: `connectors.sig.baseadresse` is not in this tree yet. "
            "Stand-in below: the embedded index called in process (no HTTP, no hub).\n"
        )
    print(
        f"The index alone, in process, over the same {len(typing):,} texts: median {in_process['p50_ms']:.3f} ms, "
        f"p99 {in_process['p99_ms']:.3f} ms per query. addok over HTTP, one query at a time "
        f"({addok_sequential['n']} of the texts): median {addok_sequential['p50_ms']:.2f} ms, "
        f"p99 {addok_sequential['p99_ms']:.2f} ms.\n"
    )

    print("### 2. Build time and memory\n")
    print(
        "Embedded index: `build_index` in a fresh process (bench/address/build_one.py), peak RSS of that whole "
        "process (`ru_maxrss`), interpreter and imports included (the RSS before the build in brackets). addok: "
        "`build_data.py` (CSV → NDJSON), `addok batch`, `addok ngrams`; Redis `INFO memory` after the load.\n"
    )
    print(
        "| data | house numbers | index build | index peak RSS (before build) | addok convert + batch + ngrams "
        "| addok load total | Redis used_memory (RSS) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    names = {
        "paris05": "Paris + Hautes-Alpes (BAN, LO 2.0)",
        "bano": "BANO 2015, 20 départements (ODbL)",
        "big": "1.24 M: BANO 20 + Paris + 05 + BANO Paris partial, then BANO rows again under `Z` citycodes",
    }
    for key, name in names.items():
        if key not in builds:
            continue
        b = builds[key]
        load = loads.get(key)
        addok_cells = (
            f"{load.convert_s:.1f} + {load.batch_s:.1f} + {load.ngrams_s:.1f} s "
            f"| **{load.convert_s + load.batch_s + load.ngrams_s:.1f} s** "
            f"| **{load.used_memory_mb:.0f} MB** ({load.used_memory_rss_mb:.0f} MB)"
            if load
            else "not loaded in this run | | "
        )
        print(
            f"| {name} | {b['house_numbers']:,.0f} | **{b['build_s']:.1f} s** | **{b['peak_rss_mb']:.0f} MB** "
            f"({b['base_rss_mb']:.0f} MB) | {addok_cells} |"
        )
    print()
    if "big" in builds:
        b = builds["big"]
        print(
            f"1.24 M target (≤ 60 s, ≤ 300 MB RSS): build {verdict(60, b['build_s'])}, "
            f"memory {verdict(300, b['peak_rss_mb'])}. addok's own figure for as many house numbers (synthetic "
            "streets, ../shared/reference/peers.md §2): 51 s and 252 MB of Redis.\n"
        )
    print(
        f"Serving Paris + 05: the hub process {hub_rss:.0f} MB RSS (peak {hub_peak:.0f} MB) once its index was "
        f"built and loaded, {hub_ready_s:.1f} s after start; addok: gunicorn's worker {addok_worker_rss:.0f} MB "
        f"+ Redis {redis_now.get('used_memory_rss', 0):.0f} MB RSS.\n"
        if with_hub
        else ""
    )

    print("### 3. Accuracy\n")
    print(
        f"{args.per_category} queries per category, from random house numbers of Paris + 05 (fixed seeds), sent "
        "with autocompletion on to both engines, 5 answers asked. A hit: the expected BAN id, or the same house "
        "number, street and commune.\n"
    )
    print("| category | example | n | index top-1 | index top-5 | addok top-1 | addok top-5 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for category, description in CATEGORIES.items():
        row = table.get(category)
        if not row:
            continue
        i, a = row["index"], row["addok"]
        print(
            f"| {category} | {description} | {i[0]} | {pct(i[1], i[0])} | {pct(i[2], i[0])} "
            f"| {pct(a[1], a[0])} | {pct(a[2], a[0])} |"
        )
    total_i = [sum(row["index"][k] for row in table.values()) for k in range(3)]
    total_a = [sum(row["addok"][k] for row in table.values()) for k in range(3)]
    print(
        f"| all | | {total_i[0]} | {pct(total_i[1], total_i[0])} | {pct(total_i[2], total_i[0])} "
        f"| {pct(total_a[1], total_a[0])} | {pct(total_a[2], total_a[0])} |\n"
    )
    print(
        f"Machine: nproc {os.cpu_count()}; kernel {platform.release()}; Python {platform.python_version()} "
        f"(hub and index), addok's virtualenv {addok_python()}; {wrk_version()}.\n"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    if args.keep_tmp:
        print(f"(temporary files kept in {workdir})", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def redis_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    return next((part.split("=")[1] for part in out.split() if part.startswith("v=")), "?")


def addok_python() -> str:
    out = subprocess.run([str(VENV / "bin" / "python"), "--version"], capture_output=True, text=True).stdout
    return out.strip()


def wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return " ".join((out.stdout + out.stderr).split()[:2])


if __name__ == "__main__":
    main()
