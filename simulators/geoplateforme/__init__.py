"""Simulator of the French national geocoder: the Géoplateforme (data.geopf.fr/geocodage), BAN's successor.

What it reproduces (protocols.md §1): `GET /search` and `/reverse` (with or without the trailing slash), the
Géoplateforme's parameter validation and its 400 body `{"code":400,"message":"Failed parsing query","detail":[...]}`
listing every problem, GeoCodeJSON answers as addok-server writes them (no `version`; `query`, `filters` when given,
`center` when lat/lon are given, `limit`), codes as strings with their leading zeros, coordinates as [lon, lat],
x/y in the legal projection (Lambert-93 in mainland France) and `"_type": "address"`; and the batch
`POST /search/csv` and `/reverse/csv` (see `batch`).

Choices where the reference is silent:
- `index=poi` or `parcel` is valid but answers no features (there is no POI or parcel data); an unknown index is a 400.
- `limit` defaults to 10 on /search and 1 on /reverse, at most 20.
- /reverse answers house numbers unless `type=` asks otherwise; its score is 1 - distance/1 km, floored at 0.
- Rate limit: the real service allows 50 requests/s per IP and answers 429 beyond; protocols.md only says clients
  see a Retry-After of about 5 s, not the body, so the body `{"code":429,"message":"Too Many Requests"}` is ours.

Limits: the matcher (see `search`) is token overlap, not addok's ranking: no typo tolerance, no synonyms, no
importance in the score. Streets and municipalities are derived from the loaded addresses (a street's point is its
middle house number, a municipality's the centroid of its addresses). Searches scan every address holding one of
the query's rarest words: a few hundred ms per query over Paris and the Hautes-Alpes (237k addresses), fine for tests
and the demo, not for load tests.

Test controls (not part of the real API): `POST /_simulator/mode` with `{"mode": "normal"|"429"|"500"|"slow",
"delay": seconds}` forces every following answer; `GET /_simulator/stats` counts calls per path and statuses.
"""

from __future__ import annotations

from .app import make_app
from .data import Address, load_csv

__all__ = ["Address", "load_csv", "make_app"]
