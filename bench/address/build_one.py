"""Build the embedded address index from FILE... in this fresh process and print one JSON line:
house numbers, build seconds, the process's RSS before the build (interpreter, numpy, the index's modules)
and its peak RSS (``ru_maxrss``, read right after the build), as connectors/sig/addressindex/measure.py does.

    python bench/address/build_one.py FILE...
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from connectors.sig.addressindex import build_index


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(paths: list[str]) -> None:
    before = rss_mb()
    started = time.perf_counter()
    index = build_index(paths)
    build_s = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kept = rss_mb()
    print(json.dumps({
        "house_numbers": len(index.data.hn_number), "documents": len(index.data.doc_id),
        "build_s": build_s, "base_rss_mb": before, "peak_rss_mb": peak, "rss_after_mb": kept,
    }))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
