"""Simulator of ArcGIS REST feature services (ArcGIS Server / Enterprise and ArcGIS Online): FeatureServer, MapServer.

What it reproduces (protocols.md §4.3), under `/arcgis/rest`:
- `services?f=json` (the directory: `currentVersion`, `folders: []`, `services: [{name, type}]`), `info?f=json`
  (`authInfo.isTokenBasedSecurity`), `services/<name>/FeatureServer|MapServer?f=json` (layers, spatialReference,
  extents, capabilities, maxRecordCount), `.../<id>?f=json` (layer metadata: fields with esri types and lengths,
  extent, objectIdField, maxRecordCount, advancedQueryCapabilities.supportsPagination) and `.../<id>/query`, by GET
  or form-POST (the body overrides the query string; parameter names are case-insensitive, as on ArcGIS).
- `query`: `where` (the SQL subset of `where.py`), `objectIds`, `outFields` (`*`, a list, default: the object id
  alone), `returnGeometry`, `geometry` (`xmin,ymin,xmax,ymax`, `x,y`, or Esri JSON envelope/point/multipoint/
  polyline/polygon, a `spatialReference` inside winning over `inSR`) with `geometryType`, `inSR` (default: the
  layer's), `spatialRel` (Intersects by default, Contains, Within, Touches, Crosses, Overlaps, EnvelopeIntersects),
  `outSR` (any EPSG code pyproj knows, plus 102100), `orderByFields`, `resultOffset`, `resultRecordCount`,
  `returnCountOnly`, `returnIdsOnly`, `f=json|pjson|geojson`, `token` or `X-Esri-Authorization: Bearer`.
- Answers: epoch-millisecond dates, Web Mercator as `{"wkid": 102100, "latestWkid": 3857}`, polygon rings clockwise
  (holes counter-clockwise), `exceededTransferLimit: true` only when more records remain (under `properties` in
  GeoJSON), pages capped at maxRecordCount, errors as `{"error": {"code", "message", "details"}}` with HTTP 200:
  400 `Unable to complete operation.` (`Invalid field: X`, `'where' parameter is invalid`, `'<name>' parameter is
  invalid`), 400 `Invalid URL`, 499 `Token Required`, 498 `Invalid Token`.
- Traps of real servers: no outFields gives ids only; a layer without pagination ignores resultOffset and
  resultRecordCount (and answers its first page again); returnIdsOnly is not capped; a map service refuses a query
  with neither where, geometry nor objectIds; degrees sent without inSR are read in the layer's reference; the
  default format is HTML.

Choices where references are silent, and what is not simulated: see docs/simulators.md ("ArcGIS REST"). Notably:
no HTML views (`f` missing or `html` answers a stub page), no statistics, distinct, extent or PBF output, no
editing, attachments, relationships, time or definition queries, no quantization and no server-side generalisation.

Test controls (not part of the real API): `POST /_simulator/mode` with `{"mode": "normal" | "500" | "error200" |
"slow" | "short_pages", "delay": seconds}`; `GET /_simulator/stats` (calls per path, HTTP statuses, error codes of
the bodies).
"""

from __future__ import annotations

from .app import make_app
from .model import Field, Layer, Service, load_services, points_layer

__all__ = ["Field", "Layer", "Service", "load_services", "make_app", "points_layer"]
