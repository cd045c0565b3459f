"""A provider over GeoJSON files on the hub's machine: a town's export, or the demo's layers.

The service is a directory (each ``<name>.geojson`` is a layer named ``<name>``) or one file (one
layer named after it). Files are read on each ``features()`` call, in the thread pool: named
queries fetch them once per refresh and answer from their own index, so reading is rare.
The query is applied locally with the same semantics as the remote providers: a point is
covered by the geometry, a box intersects it, filters compare properties as text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import shapely

from connectors.sig.layers.features import Feature, FeatureError, feature_from_geojson
from connectors.sig.layers.provider import DEFAULT_MAX_FEATURES, FeatureBatch, LayerInfo, LayerQuery, TooManyFeatures
from passerelle import NotFound, UpstreamError, run_sync

__all__ = ["GeoJSONFiles", "matches"]


def matches(feature: Feature, query: LayerQuery) -> bool:
    """Whether a feature answers the query (for providers that filter on the hub's side)."""
    if query.point is not None and not feature.geometry.covers(shapely.Point(*query.point)):
        return False
    if query.bbox is not None and not feature.geometry.intersects(shapely.box(*query.bbox)):
        return False
    for key, wanted in query.filters.items():
        value = feature.properties.get(key)
        if value is None or _text(value) != wanted:
            return False
    return True


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _keep(feature: Feature, properties: tuple[str, ...] | None) -> Feature:
    if properties is None:
        return feature
    return Feature(feature.id, feature.geometry, {k: feature.properties.get(k) for k in properties})


class GeoJSONFiles:
    def __init__(
        self, path: str | Path, *, max_features: int = DEFAULT_MAX_FEATURES, id_property: str | None = None
    ) -> None:
        self.path = Path(path)
        self.max_features = max_features
        self.id_property = id_property  # the property naming each feature, when the file gives no ids

    def _files(self) -> dict[str, Path]:
        if self.path.is_dir():
            return {p.stem: p for p in sorted(self.path.glob("*.geojson"))}
        if self.path.is_file():
            return {self.path.stem: self.path}
        raise UpstreamError(f"{self.path}: no such file or directory")

    async def layers(self) -> list[LayerInfo]:
        found = []
        for name, path in self._files().items():
            data = await run_sync(_read, path)
            features = data.get("features") or []
            kinds = sorted({(f.get("geometry") or {}).get("type", "") for f in features} - {""})
            fields = sorted({key for f in features for key in (f.get("properties") or {})})
            found.append(
                LayerInfo(
                    name=name,
                    title=str(data.get("name") or name),
                    geometry_type=kinds[0] if len(kinds) == 1 else None,
                    fields=tuple(fields),
                )
            )
        return found

    async def features(self, query: LayerQuery) -> FeatureBatch:
        path = self._files().get(query.layer)
        if path is None:
            raise NotFound(f"no layer '{query.layer}' in {self.path.name}; layers: {', '.join(self._files())}")
        data = await run_sync(_read, path)
        raw = data.get("features")
        if not isinstance(raw, list):
            raise UpstreamError(f"{path.name} is not a GeoJSON FeatureCollection")
        if len(raw) > self.max_features and query.limit is None:
            raise TooManyFeatures(f"{path.name} holds {len(raw)} features, more than {self.max_features}")
        kept: list[Feature] = []
        for position, item in enumerate(raw):
            fallback = f"{query.layer}.{position + 1}"
            if self.id_property is not None and isinstance(item, dict):
                named = (item.get("properties") or {}).get(self.id_property)
                if named not in (None, ""):
                    item = {**item, "id": named}
            try:
                feature = feature_from_geojson(item, fallback_id=fallback)
            except FeatureError as error:
                raise UpstreamError(f"{path.name}, feature {position + 1}: {error}") from None
            if matches(feature, query):
                kept.append(_keep(feature, query.properties))
                if query.limit is not None and len(kept) >= query.limit:
                    break
        return FeatureBatch(kept, number_matched=None if query.limit is not None else len(kept))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UpstreamError(f"{path.name} cannot be read as GeoJSON: {error}") from None
    if not isinstance(data, dict):
        raise UpstreamError(f"{path.name} is not a GeoJSON FeatureCollection")
    return data
