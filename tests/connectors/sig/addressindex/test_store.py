from __future__ import annotations

from pathlib import Path

import pytest

from connectors.sig.addressindex import AddressIndex, IndexFormatError, build_index, store

from .conftest import SAMPLE

QUERIES = ["43 rue de rivoli", "jarjayes", "st honore", "rivili", "194b rivoli", "route du c", "pl 1er mai"]


def answers(index: AddressIndex) -> list:
    return [index.search(q, limit=5) for q in QUERIES] + [index.reverse(6.1065, 44.5057, limit=3)]


def test_round_trip_gives_equal_answers(index: AddressIndex, tmp_path: Path) -> None:
    index.save(tmp_path / "idx")
    loaded = AddressIndex.load(tmp_path / "idx")
    assert answers(loaded) == answers(index)
    assert loaded.get("75101_8249_00043") == index.get("75101_8249_00043")


def test_a_save_failing_midway_keeps_the_previous_index(
    index: AddressIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "idx"
    small = build_index([SAMPLE])
    small.save(directory)
    before = answers(AddressIndex.load(directory))

    def failing_writer(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "_write_strings", failing_writer)
    with pytest.raises(OSError, match="disk full"):
        index.save(directory)
    assert answers(AddressIndex.load(directory)) == before
    assert AddressIndex.load(directory).search("st honore")[0]["properties"]["label"] != "Rue Saint-Honoré 75001 Paris"
    # Nothing half-written is left behind.
    assert len(list(directory.glob("v-*"))) == 1


def test_a_new_save_replaces_the_old_one(index: AddressIndex, tmp_path: Path) -> None:
    directory = tmp_path / "idx"
    build_index([SAMPLE]).save(directory)
    index.save(directory)
    assert AddressIndex.load(directory).search("st honore")[0]["properties"]["label"] == "Rue Saint-Honoré 75001 Paris"
    assert len(list(directory.glob("v-*"))) == 1


def test_load_checks_the_format_version(index: AddressIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "FORMAT_VERSION", 0)
    index.save(tmp_path / "idx")
    monkeypatch.undo()
    with pytest.raises(IndexFormatError, match="format 0"):
        AddressIndex.load(tmp_path / "idx")


def test_load_of_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="no saved index"):
        AddressIndex.load(tmp_path)
