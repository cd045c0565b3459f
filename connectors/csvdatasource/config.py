"""Configuration of a ``csvdatasource`` instance and of its named queries."""

from __future__ import annotations

import codecs
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from passerelle.parameters import PUBLIK_PARAMETERS
from passerelle.text import TextTemplate, parse_number

__all__ = ["NUMERIC_OPS", "RESERVED_PARAMETERS", "CsvDataSourceConfig", "Filter", "Query", "column_map"]

Op = Literal["eq", "ne", "contains", "startswith", "in", "lt", "le", "gt", "ge"]
NUMERIC_OPS = frozenset({"lt", "le", "gt", "ge"})
# Names a query parameter cannot take: the endpoint's own parameters, and the ones
# Publik adds to every call (the dispatcher never hands those to the connector).
RESERVED_PARAMETERS = frozenset({"q", "id", "limit", "page_limit", "query_name"}) | PUBLIK_PARAMETERS

# A list keeps columns under their own names; a mapping is {output name: file column}.
Columns = list[str] | dict[str, str]


def column_map(columns: Columns | None) -> dict[str, str] | None:
    """``columns``/``projection`` as {output name: source name}, or None for "everything"."""
    if columns is None:
        return None
    if isinstance(columns, list):
        return {name: name for name in columns}
    return dict(columns)


class Filter(BaseModel):
    """One condition of a named query; a query keeps the items matching all of them."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="Key of the item to test: `id`, `text` or one of its columns.")
    op: Op = Field(
        "eq",
        description=(
            "Comparison: eq, ne, contains, startswith, in (texts, ignoring case and accents), "
            "lt, le, gt, ge (numbers; items whose value is not a number never match)."
        ),
    )
    value: str | list[str] | None = Field(
        None, description="Fixed value to compare with (a list for `in`). Give either value or parameter."
    )
    parameter: str | None = Field(
        None,
        pattern=r"^[\w-]+$",
        description="Name of the query-string parameter giving the value (comma-separated for `in`).",
    )
    required: bool = Field(
        True,
        description="With `parameter`: answer 400 when it is missing (true), or skip this filter (false).",
    )

    @field_validator("value", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: object) -> object:
        # YAML reads `value: 5000` as a number; cells are texts, so compare texts.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, list):
            return [str(item) if isinstance(item, (int, float)) else item for item in value]
        return value

    @model_validator(mode="after")
    def _check(self) -> Filter:
        if (self.value is None) == (self.parameter is None):
            raise ValueError(f"filter on {self.column!r}: give exactly one of 'value' and 'parameter'")
        if self.parameter in RESERVED_PARAMETERS:
            raise ValueError(f"filter on {self.column!r}: parameter name {self.parameter!r} is reserved")
        if self.value is not None:
            if self.op == "in" and not isinstance(self.value, list):
                raise ValueError(f"filter on {self.column!r}: op 'in' takes a list as value")
            if self.op != "in" and isinstance(self.value, list):
                raise ValueError(f"filter on {self.column!r}: only op 'in' takes a list as value")
            if self.op in NUMERIC_OPS and parse_number(str(self.value)) is None:
                raise ValueError(f"filter on {self.column!r}: op {self.op!r} needs a number, not {self.value!r}")
        return self


class Query(BaseModel):
    """A named query: filters, then order, distinct, limit, projection and structure."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field("", description="What the query answers, shown to the people who use it.")
    filters: list[Filter] = Field(default_factory=list, description="Conditions every returned item meets.")
    projection: Columns | None = Field(
        None,
        description=(
            "Keys of the returned items: a list of keys, or a mapping {output key: item key}. Default: the whole item."
        ),
    )
    order: list[str] = Field(
        default_factory=list,
        description="Keys to sort on, `-key` for descending; numbers sort as numbers. Default: by text.",
    )
    distinct: str | list[str] | None = Field(
        None, description="Key(s) whose value combination appears once (the first item is kept)."
    )
    structure: Literal["array", "one", "keyed-distinct"] = Field(
        "array",
        description=(
            "`array`: a list of items; `one`: the first item or null; "
            "`keyed-distinct`: an object {value of the distinct key: item}."
        ),
    )

    @property
    def distinct_keys(self) -> list[str]:
        if self.distinct is None:
            return []
        return [self.distinct] if isinstance(self.distinct, str) else list(self.distinct)

    @property
    def parameters(self) -> list[str]:
        """Names of the query-string parameters this query reads, in filter order."""
        return list(dict.fromkeys(f.parameter for f in self.filters if f.parameter is not None))

    @property
    def referenced_keys(self) -> list[str]:
        """Item keys the query needs, to check them against the data."""
        projected = list((column_map(self.projection) or {}).values())
        ordered = [key.removeprefix("-") for key in self.order]
        return list(dict.fromkeys([*(f.column for f in self.filters), *ordered, *self.distinct_keys, *projected]))

    @model_validator(mode="after")
    def _check(self) -> Query:
        if self.structure == "keyed-distinct" and len(self.distinct_keys) != 1:
            raise ValueError("structure 'keyed-distinct' needs exactly one 'distinct' key")
        return self


class CsvDataSourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        description=(
            "The file: an http(s) URL, an absolute path, or a path relative to the instance's uploaded "
            "files (looked up first) or else to the hub's working directory. CSV, XLSX or ODS."
        ),
        min_length=1,
    )
    id_column: str = Field("id", description="Column holding each item's identifier (rows without one are skipped).")
    text_column: str = Field(
        "text",
        description="Column holding each item's label, or a template such as `{nom} ({code_postal})`.",
    )
    columns: Columns | None = Field(
        None,
        description=(
            "Columns added to each item besides id and text: a list of columns, or a mapping "
            "{output key: column} to rename. Default: every column of the file."
        ),
    )
    delimiter: str = Field("", max_length=1, description="CSV delimiter; empty: detected from the file.")
    encoding: str = Field("utf-8", description="CSV encoding, e.g. utf-8 (a byte-order mark is ignored) or latin-1.")
    sheet: str | None = Field(None, description="XLSX/ODS sheet to read; default: the first one.")
    queries: dict[str, Query] = Field(
        default_factory=dict, description="Named queries, served at query/<name>/, keyed by name."
    )
    refresh_interval: int = Field(
        3600, ge=1, description="Seconds between two downloads of a URL source (file sources are watched)."
    )

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].lower() if "://" in value else ""
        if scheme and scheme not in ("http", "https"):
            raise ValueError(f"source must be a file path or an http(s) URL, not a {scheme}:// URL")
        return value

    @field_validator("text_column")
    @classmethod
    def _check_template(cls, value: str) -> str:
        TextTemplate.parse(value)  # raises ValueError with a readable message
        return value

    @field_validator("encoding")
    @classmethod
    def _check_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (try utf-8 or latin-1)") from None
        return value

    @field_validator("queries")
    @classmethod
    def _check_query_names(cls, value: dict[str, Query]) -> dict[str, Query]:
        for name in value:
            if not re.fullmatch(r"[\w-]+", name):
                raise ValueError(f"query name {name!r} may only hold letters, digits, '_' and '-'")
        return value

    @property
    def is_url(self) -> bool:
        return self.source.lower().startswith(("http://", "https://"))
