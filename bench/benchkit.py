"""What every benchmark here needs: servers started on free ports and stopped by their PID,
and wrk runs pinned to a CPU with the CPU use of both sides, so that a run disturbed by
other processes can be told apart.

Scripts in bench/<name>/ import it after ``sys.path.insert(0, <bench dir>)``.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).resolve().parent / "report.lua"
STOP_TIMEOUT = 15.0  # seconds for a server to exit after SIGTERM, before SIGKILL
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The benchmark cannot run or its result is not trustworthy; the message says why."""


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    path: str = "/"  # what url() appends the query to

    def url(self, query: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{self.path}" + (f"?{query}" if query else "")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(
    name: str, command: list[str], *, env: dict[str, str], cwd: Path, log: Path, path: str = "/", port_args: bool = True
) -> Server:
    """Start a server on a free port: ``--host 127.0.0.1 --port N`` is appended unless ``port_args`` is
    false, in which case ``{port}`` in the command is replaced."""
    port = free_port()
    if port_args:
        command = [*command, "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [part.replace("{port}", str(port)) for part in command]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    return Server(name, port, process, log, path)


def stop(server: Server) -> None:
    """SIGTERM to the PID we started, then SIGKILL if it does not exit in time."""
    process = server.process
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


def fetch(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def run_command(command: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> str:
    try:
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{' '.join(command)}` did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        raise BenchError(f"`{' '.join(command)}` failed (status {done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


# --- wrk ------------------------------------------------------------------------------------

WRK_LINE = re.compile(r"^WRK_RESULT (.*)$", re.MULTILINE)


@dataclass
class Measure:
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: dict[str, int]
    server_cpu: float  # share of its core the server process used (softirq time is not counted)
    per_cpu_second: float  # requests per CPU-second of the server: steadier when other work shares its core
    foreign_server: float  # share of the server's core used by other processes during the run
    foreign_client: float  # share of wrk's core used by other processes during the run
    idle_server: float  # share of the server's core left idle during the run (the server was not CPU-bound)
    idle_client: float  # share of wrk's core left idle during the run (wrk was not CPU-bound)
    attempts: int = 1


def process_ticks(pid: int) -> int:
    """User + system CPU time of a process, in clock ticks, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_ticks() -> dict[int, tuple[int, int, int]]:
    """Per CPU: (user + nice + system ticks, all ticks, idle + iowait ticks), from /proc/stat."""
    ticks = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            numbers = [int(value) for value in values[:8]]
            ticks[int(name[3:])] = (sum(numbers[:3]), sum(numbers), numbers[3] + numbers[4])
    return ticks


def children_ticks() -> int:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * CLOCK_TICKS)


def wait_for_quiet(cpu: int, threshold: float, max_wait: float) -> float:
    """Wait (at most max_wait seconds) until other processes leave a CPU mostly idle; its last busy share."""
    deadline = time.monotonic() + max_wait
    while True:
        before = cpu_ticks()[cpu]
        time.sleep(0.5)
        after = cpu_ticks()[cpu]
        busy = foreign_share(before, after, 0)  # the servers are idle between runs
        if busy <= threshold or time.monotonic() >= deadline:
            return busy


def idle_share(before: tuple[int, int, int], after: tuple[int, int, int]) -> float:
    total = after[1] - before[1]
    return (after[2] - before[2]) / total if total else 0.0


def foreign_share(before: tuple[int, int, int], after: tuple[int, int, int], ours: int) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return max(0.0, (busy - ours) / total) if total else 0.0


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    cpu: int,
    server_pid: int,
    server_cpu: int,
    timeout: int = 5,
    server_pids: tuple[int, ...] = (),
) -> Measure:
    """One wrk run pinned to ``cpu``; ``server_pids`` adds the CPU time of further server processes
    (gunicorn's workers) to the server's."""
    command = [
        "taskset", "-c", str(cpu),
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", f"{timeout}s", "-s", str(LUA_SCRIPT), url,
    ]  # fmt: skip
    pids = (server_pid, *server_pids)
    server_before, cpus_before, wrk_before = sum(map(process_ticks, pids)), cpu_ticks(), children_ticks()
    wall_before = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {seconds + 30} s") from None
    wall = time.monotonic() - wall_before
    server_used, cpus_after, wrk_used = (
        sum(map(process_ticks, pids)) - server_before,
        cpu_ticks(),
        children_ticks() - wrk_before,
    )
    match = WRK_LINE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise BenchError(f"wrk failed (status {done.returncode}):\n{done.stdout}{done.stderr}")
    values = {key: int(value) for key, value in (pair.split("=") for pair in match.group(1).split())}
    errors = {key: values[key] for key in ("connect", "read", "write", "status", "timeout") if values[key]}
    if values["status"]:
        raise BenchError(f"{values['status']} answers were not 2xx/3xx for {url}: the measure is not valid")
    server_seconds = server_used / CLOCK_TICKS
    return Measure(
        rps=values["requests"] / (values["duration_us"] / 1e6),
        p50_ms=values["p50_us"] / 1000,
        p90_ms=values["p90_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        max_ms=values["max_us"] / 1000,
        requests=values["requests"],
        errors=errors,
        server_cpu=server_seconds / wall,
        per_cpu_second=values["requests"] / server_seconds if server_seconds else 0.0,
        foreign_server=foreign_share(cpus_before[server_cpu], cpus_after[server_cpu], server_used),
        foreign_client=foreign_share(cpus_before[cpu], cpus_after[cpu], wrk_used),
        idle_server=idle_share(cpus_before[server_cpu], cpus_after[server_cpu]),
        idle_client=idle_share(cpus_before[cpu], cpus_after[cpu]),
    )


def cycling_script(workdir: Path, name: str, paths: list[str]) -> Path:
    """A wrk script sending ``paths`` in turn, then printing bench/report.lua's result line."""
    listing = workdir / f"{name}-paths.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = workdir / f"{name}.lua"
    script.write_text(
        "local paths = {}\n"
        f'for line in io.lines("{listing}") do paths[#paths + 1] = line end\n'
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n" + LUA_SCRIPT.read_text()
    )
    return script
