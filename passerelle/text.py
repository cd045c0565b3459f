"""Text helpers for connectors: folding for comparisons, numbers as people write them, and the
text template of data-source items (``{nom} ({code_postal})``)."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from dataclasses import dataclass

__all__ = ["TextTemplate", "fold", "parse_number"]

# Ligatures NFKD leaves alone but a French reader types as two letters ("coeur" for "cœur").
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae"})
_NON_WORD = re.compile(r"[\W_]+")


def fold(value: str) -> str:
    """The comparison form of a text: no accents, no case, punctuation as single spaces.

    "Saint-Étienne" and "saint etienne" fold to the same string, so a citizen's
    search matches however the file spells it.
    """
    decomposed = unicodedata.normalize("NFKD", value.casefold().translate(_LIGATURES))
    # Accents must go before the punctuation pass: combining marks are not word characters.
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _NON_WORD.sub(" ", bare).strip()


def parse_number(value: str) -> float | None:
    """A cell as a number, or None. Accepts French decimal commas and spaced thousands."""
    compact = value.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if "," in compact and "." not in compact:
        compact = compact.replace(",", ".")
    try:
        number = float(compact)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class TextTemplate:
    """How an item's ``text`` is made: one column, or a template like ``{nom} ({code_postal})``.

    Rendering is done here rather than with ``str.format`` so that a template can
    name any column (spaces included) and can never reach attributes of values.
    """

    pieces: tuple[tuple[str, str | None], ...]  # (literal text, column or None)

    @classmethod
    def parse(cls, spec: str) -> TextTemplate:
        if "{" not in spec and "}" not in spec:
            return cls((("", spec),))
        pieces: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(spec))
        except ValueError as exc:
            raise ValueError(f"text template {spec!r} is malformed: {exc}") from None
        for literal, field, format_spec, conversion in parsed:
            if field is not None and (format_spec or conversion):
                raise ValueError(f"text template {spec!r}: write plain {{column}} fields, without ':' or '!'")
            if field == "":
                raise ValueError(f"text template {spec!r}: '{{}}' must name a column")
            pieces.append((literal, field))
        return cls(tuple(pieces))

    @property
    def columns(self) -> list[str]:
        return [column for _, column in self.pieces if column is not None]

    def render(self, row: dict[str, str]) -> str:
        return "".join(literal + (row.get(column, "") if column is not None else "") for literal, column in self.pieces)
