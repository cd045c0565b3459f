"""The loaded data: items in w.c.s. order, with what makes a request cheap.

Everything a request needs is computed once, when the file is loaded (in a
worker thread): the items sorted by folded text, the folded texts for ``q=``, an
index by id, and the folded/numeric columns the configured queries filter on.
A :class:`Dataset` is never modified afterwards; a reload builds a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice

from connectors.csvdatasource.config import CsvDataSourceConfig, column_map
from connectors.csvdatasource.reading import SourceError, Table
from passerelle.text import TextTemplate, fold, parse_number

__all__ = ["Dataset", "build_dataset"]

Item = dict[str, str]


@dataclass
class Dataset:
    items: list[Item]  # sorted by text, accents and case ignored
    folded: list[str]  # fold(item["text"]), parallel to items
    by_id: dict[str, Item]
    keys: list[str]  # every key of an item: id, text, then the columns
    skipped: int = 0  # rows without an id
    duplicates: int = 0  # rows whose id was already seen (``id=`` returns the first one)
    # Per-column caches for named queries, filled at load time or on first use.
    _folded_columns: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _number_columns: dict[str, list[float | None]] = field(default_factory=dict, repr=False)

    def folded_column(self, key: str) -> list[str]:
        values = self._folded_columns.get(key)
        if values is None:
            values = self.folded if key == "text" else [fold(item[key]) for item in self.items]
            self._folded_columns[key] = values
        return values

    def number_column(self, key: str) -> list[float | None]:
        values = self._number_columns.get(key)
        if values is None:
            values = [parse_number(item[key]) for item in self.items]
            self._number_columns[key] = values
        return values

    def search(self, q: str | None = None, ident: str | None = None, limit: int | None = None) -> list[Item]:
        """The data-source answer: ``id=`` is an exact lookup, ``q=`` needs every word in the text."""
        if ident is not None:
            item = self.by_id.get(ident)
            if item is None or (q and not self._matches(fold(item["text"]), fold(q).split())):
                return []
            return [item]
        words = fold(q).split() if q else []
        if not words:
            return self.items[:limit] if limit else self.items
        first, *others = words
        # A generator, so that a typed prefix with a limit stops at the limit-th match
        # instead of scanning the whole file (the common autocompletion call).
        found = (
            item
            for item, text in zip(self.items, self.folded, strict=True)
            if first in text and all(word in text for word in others)
        )
        return list(islice(found, limit)) if limit else list(found)

    @staticmethod
    def _matches(text: str, words: list[str]) -> bool:
        return all(word in text for word in words)


def build_dataset(table: Table, config: CsvDataSourceConfig, prepare: list[str] | None = None) -> Dataset:
    """Items from the file's rows; ``prepare`` lists keys whose query caches to fill now."""
    template = TextTemplate.parse(config.text_column)
    extra = column_map(config.columns)
    wanted = [
        (config.id_column, "id_column"),
        *((column, "text_column") for column in template.columns),
        *((column, "columns") for column in (extra or {}).values()),
    ]
    known = set(table.columns)
    for column, setting in wanted:
        if column not in known:
            raise SourceError(
                f"column {column!r} (from {setting}) is not in the file; its columns are: {', '.join(table.columns)}"
            )
    if extra is None:
        extra = {name: name for name in table.columns}
    # The computed id and text win over columns that happen to be called so.
    extra = {key: column for key, column in extra.items() if key not in ("id", "text")}

    decorated: list[tuple[str, str, Item]] = []
    by_id: dict[str, Item] = {}
    skipped = duplicates = 0
    for row in table.rows:
        ident = row[config.id_column]
        if not ident:
            skipped += 1  # w.c.s. drops items without an id anyway
            continue
        text = template.render(row) or ident  # w.c.s. also shows the id when text is missing
        item = {"id": ident, "text": text}
        for key, column in extra.items():
            item[key] = row[column]
        if ident in by_id:
            duplicates += 1
        else:
            by_id[ident] = item
        decorated.append((fold(text), text, item))
    # The original text breaks ties so that the order never depends on the file's.
    decorated.sort(key=lambda entry: (entry[0], entry[1]))
    dataset = Dataset(
        items=[item for _, _, item in decorated],
        folded=[folded for folded, _, _ in decorated],
        by_id=by_id,
        keys=["id", "text", *extra],
        skipped=skipped,
        duplicates=duplicates,
    )
    for key in prepare or ():
        if key in dataset.keys:
            dataset.folded_column(key)
            dataset.number_column(key)
    return dataset
