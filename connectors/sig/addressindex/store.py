"""Saving and loading a built index, swapped atomically.

A directory holds versions ``v-<n>/`` (``arrays.npz`` and ``strings.json``) and a ``CURRENT`` file naming the
one to load. A save writes a new version completely, then replaces ``CURRENT`` with ``os.replace``, which is
atomic: a reader sees the old index or the new one, never half of one, and a save failing midway leaves the
old one in place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from connectors.sig.addressindex.data import IndexData, array_fields, string_fields

FORMAT_VERSION = 1
CURRENT = "CURRENT"
# What an index was built from, written next to CURRENT by its builder (``python -m connectors.sig.addressindex``).
MANIFEST = "manifest.json"


class IndexFormatError(ValueError):
    """No index in the directory, or one written by an incompatible version."""


def _write_arrays(data: IndexData, path: Path) -> None:
    np.savez(path, **{name: getattr(data, name) for name in array_fields()})


def _write_strings(data: IndexData, path: Path) -> None:
    payload = {"format": FORMAT_VERSION, **{name: getattr(data, name) for name in string_fields()}}
    path.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def save(data: IndexData, directory: str | Path) -> Path:
    """Write ``data`` as the directory's new current version; returns that version's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    version = Path(tempfile.mkdtemp(prefix="v-", dir=directory))
    try:
        _write_arrays(data, version / "arrays.npz")
        _write_strings(data, version / "strings.json")
        pointer = directory / f".{CURRENT}.{version.name}"
        pointer.write_text(version.name, encoding="utf-8")
        os.replace(pointer, directory / CURRENT)
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    for old in directory.glob("v-*"):
        # Readers that opened an old version already hold its arrays in memory.
        if old.name != version.name:
            shutil.rmtree(old, ignore_errors=True)
    return version


def load(directory: str | Path) -> IndexData:
    directory = Path(directory)
    try:
        version = directory / (directory / CURRENT).read_text(encoding="utf-8").strip()
        strings = json.loads((version / "strings.json").read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise IndexFormatError(f"{directory}: no saved index ({error.filename})") from error
    if strings.get("format") != FORMAT_VERSION:
        raise IndexFormatError(f"{version}: index format {strings.get('format')!r}, expected {FORMAT_VERSION}")
    with np.load(version / "arrays.npz") as arrays:
        values = {name: arrays[name] for name in array_fields()}
    values.update({name: strings[name] for name in string_fields()})
    return IndexData(**values)
