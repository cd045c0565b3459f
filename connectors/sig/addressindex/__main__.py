"""Build an address index into a directory, with progress:

    python -m connectors.sig.addressindex build --output DIR FILE [FILE…]

On a terminal it draws a progress bar; with ``--json-progress`` (how the ``base-adresse``
connector runs it, in a child process so that the build's memory peak and CPU stay out of
the serving process) it writes one JSON object per line on stdout: ``{"done": n, "total": t}``
while reading, then ``{"saved": "<version dir>", "addresses": n, "seconds": s}``. The index
replaces the directory's current one atomically (``store.save``); ``--manifest FILE`` (JSON)
is copied next to it once saved, as ``manifest.json``, to record what it was built from.
Exit status 1 with the reason on stderr when a file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from connectors.sig.addressindex.index import build_index
from connectors.sig.addressindex.sources import SourceError
from connectors.sig.addressindex.store import MANIFEST


def _bar(done: int, total: int, started: float) -> None:
    width = 40
    share = done / total if total else 0.0
    filled = int(width * min(share, 1.0))
    elapsed = time.monotonic() - started
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {share:6.1%} {done:,}/{total:,} {elapsed:5.1f} s")
    sys.stderr.flush()


def write_manifest(directory: Path, manifest: dict) -> None:
    """Write ``manifest.json`` atomically (a reader never sees half of it)."""
    temporary = directory / f".{MANIFEST}.{os.getpid()}"
    temporary.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(temporary, directory / MANIFEST)


def build(paths: list[Path], output: Path, *, json_progress: bool, manifest: Path | None) -> int:
    started = time.monotonic()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.2 and done < total:
            return
        last[0] = now
        if json_progress:
            print(json.dumps({"done": done, "total": total}), flush=True)
        elif sys.stderr.isatty():
            _bar(done, total, started)

    try:
        index = build_index(paths, progress=progress)
    except (SourceError, OSError, UnicodeDecodeError) as error:
        print(f"cannot build the index: {error}", file=sys.stderr)
        return 1
    version = index.save(output)
    if manifest is not None:
        write_manifest(output, json.loads(manifest.read_text(encoding="utf-8")))
    addresses = len(index.data.hn_number)
    seconds = round(time.monotonic() - started, 2)
    if json_progress:
        print(json.dumps({"saved": str(version), "addresses": addresses, "seconds": seconds}), flush=True)
    else:
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        print(f"{addresses:,} house numbers indexed in {seconds} s: {version}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.sig.addressindex")
    commands = parser.add_subparsers(dest="command", required=True)
    building = commands.add_parser("build", help="index address files into a directory")
    building.add_argument("files", nargs="+", type=Path, help="BAN, BAL, addok NDJSON or normalised CSV files")
    building.add_argument("--output", required=True, type=Path, help="the index directory")
    building.add_argument("--json-progress", action="store_true", help="progress as JSON lines on stdout")
    building.add_argument("--manifest", type=Path, help="a JSON file to store next to the index")
    args = parser.parse_args(argv)
    return build(args.files, args.output, json_progress=args.json_progress, manifest=args.manifest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
