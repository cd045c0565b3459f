"""Simulator of the API Découpage administratif, geo.api.gouv.fr: communes, départements and régions.

What it reproduces (protocols.md §2, api-geo's server.js): `GET /communes` with the filters `nom`, `code`,
`codePostal`, `codeDepartement`, `codeRegion`, `type` (default `commune-actuelle`, or `arrondissement-municipal`, or
both as a comma list) and `zone` (default `metro,drom,com`); `fields` (default
`nom,code,codeDepartement,siren,codeEpci,codeRegion,codesPostaux,population`, `nom` and `code` always added),
`limit` and `format=json`; `GET /communes/{code}` (any type or zone); `GET /departements` (`nom`, `code`,
`codeRegion`, `zone`, default zone `metro,drom`; fields `nom,code,codeRegion`), `/departements/{code}`,
`/departements/{code}/communes`; `GET /regions` (`nom`, `code`, `zone`, default zone `metro,drom`; fields `nom,code`),
`/regions/{code}`, `/regions/{code}/departements`. Lists are arrays even for one match; codes are strings with their
leading zeros; a `nom=` search adds `_score` and ranks best first. Errors are text/plain, as Express writes them:
404 `Not Found` (unknown code or path), 400 `Your limit parameter is not a number or is negative`, 401
`Unauthorized` for any method but GET and HEAD. Routes answer with or without a trailing slash.

The data is the INSEE bundle of connectors/sig/data (read from its files, see its README), which lacks what
geo.api.gouv.fr adds from other sources: there is no `siren` nor `codeEpci` (nor `epci`), so those keys are left out
of every answer, as the real service leaves out a field a commune does not have, and filtering on them matches
nothing. A commune's `zone` is its department's. Available commune fields: `nom, code, type, codeDepartement,
codeRegion, codesPostaux, population, zone, departement{code,nom}, region{code,nom}`; `population` is 0 where
INSEE has none (the real service omits the key).

Choices where the reference is silent or that are not simulated:
- `_score` is the simulator's: every folded query word must start a word of the name; an exact name scores 1.0, a
  partial one 0.9 times its share of the name. api-geo's lunr scores (and its fuzziness) are not reproduced.
  `boost=population` breaks ties by population.
- `format=geojson` (and so `geometry`, `centre`, `contour`, `bbox`, `mairie`) answers 400 text
  `format=geojson is not simulated`; any other `format` value falls back to JSON, as on the real service.
- `lat`/`lon` point-in-contour search, `/epcis` and `/communes_associees_deleguees` are not simulated (404).
- `limit` must be digits only (JavaScript's parseInt would take `2.5` as 2).

Test controls (not part of the real API): `POST /_simulator/mode` with `{"mode": "normal"|"500"|"slow",
"delay": seconds}` forces every following answer (500 is text `Internal Server Error`); `GET /_simulator/stats`
counts calls per path and statuses.
"""

from __future__ import annotations

from .app import make_app
from .data import Dataset, bundled_dataset, load_dataset

__all__ = ["Dataset", "bundled_dataset", "load_dataset", "make_app"]
