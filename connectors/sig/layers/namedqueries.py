"""Named queries: a layer's features fetched in full from the GIS server, kept on the hub, answered
from a spatial index — so that ``sector`` ("which collection sector contains this address")
costs a lookup in memory, not a GetFeature round trip of 150 ms.

- A query is fetched when first needed (the caller waits, once: concurrent callers share the
  fetch), then again every ``refresh_interval`` by the periodic job. A failed refresh keeps the
  features already loaded and records why.
- What was fetched is saved in the instance's files directory (``queries/<name>.geojson``,
  written atomically), so a restart answers at once, and every hub process serving the instance
  loads what another one fetched (it looks at the file at most every ``check_interval`` seconds,
  on request).
- The index of a query is replaced in one assignment: a lookup sees the old features or the
  new ones, never a mix.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.sig.layers.config import NamedQuery
from connectors.sig.layers.features import Feature, FeatureError, feature_from_geojson, to_feature_collection
from connectors.sig.layers.provider import LayerQuery, Provider
from connectors.sig.layers.spatialindex import FeatureIndex
from passerelle import HubError, NotFound, UpstreamUnavailable, run_sync
from passerelle.text import TextTemplate, fold

__all__ = ["LoadedQuery", "NamedQueries"]


@dataclass(frozen=True)
class LoadedQuery:
    index: FeatureIndex
    items: list[dict[str, Any]]  # the data-source form of each feature, in index order
    folded_texts: list[str]  # each item's text folded once, for q= searches
    fetched: str  # ISO time of the fetch


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _save(path: Path, features: list[Feature], fetched: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    payload = to_feature_collection(features, fetched=fetched)
    temporary.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    os.replace(temporary, path)


def _read(path: Path) -> tuple[list[Feature], str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    features = [feature_from_geojson(item) for item in data["features"]]
    return features, str(data.get("fetched", ""))


class NamedQueries:
    check_interval = 5.0

    def __init__(
        self, provider: Callable[[], Provider], queries: dict[str, NamedQuery], directory: Path, log: Any
    ) -> None:
        self.provider = provider  # called when needed: the connector builds its provider once, lazily
        self.queries = queries
        self.directory = directory / "queries"
        self.log = log
        self._loaded: dict[str, LoadedQuery] = {}
        self._stamps: dict[str, int] = {}  # mtime_ns of the file each query was loaded from
        self._fetched_at: dict[str, float] = {}  # monotonic time of this process's last fetch
        self._errors: dict[str, str] = {}
        self._locks = {name: asyncio.Lock() for name in queries}
        self._checked_at: dict[str, float] = {}

    def definition(self, name: str) -> NamedQuery:
        query = self.queries.get(name)
        if query is None:
            known = ", ".join(sorted(self.queries)) or "none"
            raise NotFound(f"no query named '{name}' on this instance; queries: {known}")
        return query

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.geojson"

    def _stamp(self, name: str) -> int | None:
        try:
            return self._path(name).stat().st_mtime_ns
        except OSError:
            return None

    async def get(self, name: str) -> LoadedQuery:
        """The query's features, fetching them when this process has none yet."""
        definition = self.definition(name)
        now = time.monotonic()
        if now - self._checked_at.get(name, float("-inf")) >= self.check_interval:
            self._checked_at[name] = now
            stamp = self._stamp(name)
            if stamp is not None and stamp != self._stamps.get(name):
                await self._load_file(name, definition, stamp)
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        await self.refresh(name)
        loaded = self._loaded.get(name)
        if loaded is None:
            raise UpstreamUnavailable(
                f"the features of query '{name}' could not be fetched: {self._errors.get(name, 'unknown reason')}"
            )
        return loaded

    async def _load_file(self, name: str, definition: NamedQuery, stamp: int) -> None:
        try:
            features, fetched = await run_sync(_read, self._path(name))
        except (OSError, ValueError, KeyError, FeatureError) as error:
            self.log.warning("saved features of a query cannot be read", query=name, error=str(error))
            return
        self._install(name, definition, features, fetched)
        self._stamps[name] = stamp
        # As fresh as the file: a new process does not fetch again what another one just fetched.
        self._fetched_at[name] = time.monotonic() - max(0.0, time.time() - stamp / 1e9)

    def _install(self, name: str, definition: NamedQuery, features: list[Feature], fetched: str) -> None:
        index = FeatureIndex(features)
        id_template = TextTemplate.parse(definition.id_template) if definition.id_template else None
        text_template = TextTemplate.parse(definition.text_template)
        items = [feature.item(id_template, text_template) for feature in index.features]
        self._loaded[name] = LoadedQuery(index, items, [fold(str(item["text"])) for item in items], fetched)

    async def refresh(self, name: str, *, force: bool = True) -> bool:
        """Fetch the query's features from the server (once at a time); whether they were replaced."""
        definition = self.definition(name)
        lock = self._locks[name]
        started = time.monotonic()
        async with lock:
            # Another caller fetched while this one waited: its answer is fresh enough.
            if self._fetched_at.get(name, float("-inf")) >= started and name in self._loaded:
                return False
            if not force and name not in self._fetched_at:
                # Fetched by another process (the periodic job runs in one process at a time): its file says when.
                stamp = self._stamp(name)
                if stamp is not None:
                    self._fetched_at[name] = time.monotonic() - max(0.0, time.time() - stamp / 1e9)
            if not force and time.monotonic() - self._fetched_at.get(name, float("-inf")) < definition.refresh_interval:
                return False
            query = LayerQuery(
                layer=definition.layer,
                filters=definition.filters,
                properties=tuple(definition.properties) if definition.properties is not None else None,
            )
            try:
                batch = await self.provider().features(query)
            except HubError as error:
                self._errors[name] = error.message
                self._fetched_at[name] = time.monotonic()
                self.log.error("named query not refreshed", query=name, reason=error.message, kept=name in self._loaded)
                return False
            fetched = _now()
            self._install(name, definition, batch.features, fetched)
            self._errors.pop(name, None)
            self._fetched_at[name] = time.monotonic()
            await run_sync(_save, self._path(name), batch.features, fetched)
            self._stamps[name] = self._stamp(name) or 0
            self.log.info("named query refreshed", query=name, features=len(batch.features))
            return True

    async def refresh_due(self) -> None:
        """Refresh every query whose features are older than its refresh_interval (the periodic job)."""
        for name in self.queries:
            await self.refresh(name, force=False)

    def status(self) -> dict[str, Any]:
        return {
            name: {
                "layer": definition.layer,
                "features": len(self._loaded[name].items) if name in self._loaded else None,
                "fetched": self._loaded[name].fetched if name in self._loaded else None,
                "last_error": self._errors.get(name),
            }
            for name, definition in self.queries.items()
        }
