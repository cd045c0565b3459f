"""Running a named query over a loaded dataset.

The steps, in order: filters (all must hold), ``q=`` and ``id=``, order,
distinct, limit, projection, structure. Filters, order and distinct name the
item's keys (``id``, ``text`` and its columns); projection comes last and may
rename them. Work is done on row positions and on the per-column folded/numeric
caches of the dataset, so a filter costs one list comprehension.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from connectors.csvdatasource.config import NUMERIC_OPS, Filter, Query, column_map
from connectors.csvdatasource.dataset import Dataset, Item
from passerelle import APIError, WrongParameter
from passerelle.text import fold, parse_number

__all__ = ["check_query", "run_query"]

NUMBER_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
ENDPOINT_PARAMETERS = ("q", "id", "limit", "page_limit")


def check_query(name: str, query: Query, dataset: Dataset) -> None:
    """Raise an APIError naming the keys a query uses that the data does not have."""
    known = set(dataset.keys)
    missing = [key for key in query.referenced_keys if key not in known]
    if missing:
        raise APIError(
            f"query {name!r} uses {', '.join(repr(k) for k in missing)}, which the data does not have; "
            f"its keys are: {', '.join(dataset.keys)}"
        )


def run_query(
    name: str,
    query: Query,
    dataset: Dataset,
    params: dict[str, str],
    *,
    q: str | None = None,
    ident: str | None = None,
    limit: int | None = None,
) -> Any:
    check_query(name, query, dataset)
    unknown = [key for key in params if key not in query.parameters]
    if unknown:
        accepted = ", ".join([*query.parameters, *ENDPOINT_PARAMETERS])
        names = ", ".join(repr(key) for key in unknown)
        raise WrongParameter(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {names}; query {name!r} accepts: {accepted}"
        )

    positions = list(range(len(dataset.items)))
    for condition in query.filters:
        value = filter_value(name, condition, params)
        if value is not None:
            positions = apply_filter(condition, value, dataset, positions)
    words = fold(q).split() if q else []
    if words:
        texts = dataset.folded
        positions = [i for i in positions if all(word in texts[i] for word in words)]
    if ident is not None:
        positions = [i for i in positions if dataset.items[i]["id"] == ident]
    for key in reversed(query.order):
        # Stable sorts, last key first, give a multi-key order with per-key direction.
        descending = key.startswith("-")
        sort_keys = ordering_keys(dataset, key.removeprefix("-"))
        positions.sort(key=sort_keys.__getitem__, reverse=descending)
    if query.distinct_keys:
        positions = distinct(dataset, positions, query.distinct_keys)
    if limit:
        positions = positions[:limit]

    items = [dataset.items[i] for i in positions]
    projection = column_map(query.projection)
    rows = items if projection is None else [{out: item[key] for out, key in projection.items()} for item in items]
    if query.structure == "one":
        return rows[0] if rows else None
    if query.structure == "keyed-distinct":
        key = query.distinct_keys[0]
        return {item[key]: row for item, row in zip(items, rows, strict=True)}
    return rows


def filter_value(name: str, condition: Filter, params: dict[str, str]) -> str | list[str] | None:
    """The value a filter compares with; None when an optional parameter is absent."""
    if condition.parameter is None:
        return condition.value
    raw = params.get(condition.parameter)
    if raw is None or (raw == "" and not condition.required):
        if condition.required:
            raise WrongParameter(f"missing parameter {condition.parameter!r} (query {name!r} needs it)")
        return None
    if condition.op == "in":
        return [part.strip() for part in raw.split(",") if part.strip()]
    if condition.op in NUMERIC_OPS and parse_number(raw) is None:
        raise WrongParameter(f"invalid value for parameter {condition.parameter!r}: expected a number, got {raw!r}")
    return raw


def apply_filter(condition: Filter, value: str | list[str], dataset: Dataset, positions: list[int]) -> list[int]:
    op = condition.op
    if op in NUMERIC_OPS:
        numbers = dataset.number_column(condition.column)
        compare = NUMBER_COMPARISONS[op]
        bound = parse_number(value if isinstance(value, str) else "")
        assert bound is not None  # checked by the configuration or filter_value
        return [i for i in positions if (number := numbers[i]) is not None and compare(number, bound)]
    texts = dataset.folded_column(condition.column)
    if op == "in":
        choices = {fold(choice) for choice in value}
        return [i for i in positions if texts[i] in choices]
    target = fold(value if isinstance(value, str) else "")
    if op == "eq":
        return [i for i in positions if texts[i] == target]
    if op == "ne":
        return [i for i in positions if texts[i] != target]
    if op == "contains":
        return [i for i in positions if target in texts[i]]
    return [i for i in positions if texts[i].startswith(target)]  # startswith


def ordering_keys(dataset: Dataset, key: str) -> list[tuple[int, float, str]]:
    """Sort keys of one column: numbers first (as numbers), then texts, then blanks."""
    numbers = dataset.number_column(key)
    texts = dataset.folded_column(key)
    return [
        (0, number, "") if number is not None else ((1, 0.0, text) if text else (2, 0.0, ""))
        for number, text in zip(numbers, texts, strict=True)
    ]


def distinct(dataset: Dataset, positions: list[int], keys: list[str]) -> list[int]:
    seen: set[tuple[str, ...]] = set()
    kept = []
    for i in positions:
        item: Item = dataset.items[i]
        signature = tuple(item[key] for key in keys)
        if signature not in seen:
            seen.add(signature)
            kept.append(i)
    return kept
