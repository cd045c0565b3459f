"""A quick measurement of the index (not the bench against addok): build time, peak RSS, latency, accuracy.

Usage: ``python -m connectors.sig.addressindex.measure FILE...`` (any format sources.py reads).
"""

from __future__ import annotations

import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from connectors.sig.addressindex import AddressIndex, AddressRecord, build_index, read_records
from connectors.sig.addressindex.text import fold

SAMPLED = 500


def _typo(street: str, rng: random.Random) -> str | None:
    words = fold(street).split()
    word = max(words, key=len, default="")
    if len(word) < 5:
        return None
    i = rng.randrange(1, len(word) - 1)
    return fold(street).replace(word, word[:i] + ("y" if word[i] == "x" else "x") + word[i + 1 :], 1)


def _ms(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p95 {ordered[int(len(ordered) * 0.95)] * 1000:.2f} ms"


def main(paths: list[str]) -> None:
    start = time.perf_counter()
    index = build_index(paths)
    build_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    data = index.data
    print(f"{len(data.hn_number)} house numbers, {len(data.doc_id)} documents, {len(data.vocab)} tokens")
    print(f"build {build_s:.1f} s, peak RSS {peak_mb:.0f} MB (whole process, imports included)")

    records = [r for path in paths for r in read_records(path) if r.number is not None]
    rng = random.Random(5)
    picked = rng.sample(records, min(SAMPLED, len(records)))

    def typed(r: AddressRecord) -> str:
        return f"{r.number}{' ' + r.suffix if r.suffix else ''} {r.street} {r.city}".lower()

    prefixes = [typed(r)[:n] for r in picked for n in range(len(str(r.number)) + 3, len(typed(r)) + 1, 3)]
    timings = []
    for q in prefixes:
        t = time.perf_counter()
        index.search(q, limit=5)
        timings.append(time.perf_counter() - t)
    print(f"search, {len(prefixes)} prefixes typed 3 letters at a time: {_ms(timings)}")
    timings = []
    for r in picked:
        t = time.perf_counter()
        index.reverse(r.lon + 0.0001, r.lat)
        timings.append(time.perf_counter() - t)
    print(f"reverse: {_ms(timings)}")

    kinds: dict[str, Callable[[AddressRecord], tuple[str | None, dict[str, str]]]] = {
        "exact": lambda r: (typed(r), {}),
        "without city": lambda r: (f"{r.number} {r.suffix} {r.street}", {}),
        "with postcode": lambda r: (f"{r.number} {r.suffix} {r.street} {r.postcode}", {}),
        "postcode filter": lambda r: (f"{r.number} {r.suffix} {r.street}", {"postcode": r.postcode}),
        "prefix": lambda r: (typed(r)[: -max(1, len(r.city) - 2)], {}),
        "one typo": lambda r: (
            (f"{r.number} {r.suffix} {_typo(r.street, rng)} {r.city}" if _typo(r.street, rng) else None),
            {},
        ),
    }
    for name, make in kinds.items():
        top1 = top5 = n = 0
        for r in picked:
            q, filters = make(r)
            if q is None:
                continue
            n += 1
            ids = [f["properties"]["id"] for f in index.search(q, limit=5, **filters)]
            top1 += bool(ids) and ids[0] == r.id
            top5 += r.id in ids
        print(f"accuracy {name}: top-1 {top1 / n:.1%}, top-5 {top5 / n:.1%} (n={n})")

    with tempfile.TemporaryDirectory() as directory:
        t = time.perf_counter()
        index.save(directory)
        save_s = time.perf_counter() - t
        t = time.perf_counter()
        AddressIndex.load(directory)
        print(f"save {save_s:.2f} s, load {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
