"""The communes, départements and régions an instance answers: the bundled INSEE lists, or, when
``api_geo_url`` is set, the lists last downloaded from geo.api.gouv.fr (protocols.md §2).

A download replaces the lists only when it is complete and valid (:func:`connectors.sig.geoapi.
fetch_referentials` refuses partial answers), and is saved as ``referentials.json`` in the
instance's files directory, written atomically: a restart uses it at once, and every hub
process serving the instance loads a newer file within seconds of its writing, on request.
When the download fails, the lists in use stay.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.sig.geoapi import fetch_referentials
from connectors.sig.referentials import Referentials, bundled
from passerelle import HubError, run_sync
from passerelle.http import HttpClient

__all__ = ["AreaReferentials"]

FILENAME = "referentials.json"


def _read(path: Path) -> Referentials:
    return Referentials.from_payload(json.loads(path.read_text(encoding="utf-8")))


def _write(path: Path, payload: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    os.replace(temporary, path)


class AreaReferentials:
    check_interval = 5.0  # seconds between two looks at the saved file, on request

    def __init__(self, directory: Path, api_geo_url: str | None, http: HttpClient, log: Any) -> None:
        self.path = directory / FILENAME
        self.api_geo_url = api_geo_url
        self.http = http
        self.log = log
        self._refs: Referentials | None = None  # None: the bundled lists
        self._stamp: int | None = None  # mtime_ns of the file loaded
        self._checked_at = float("-inf")
        self._loading: asyncio.Task[None] | None = None
        self._downloaded = ""
        self._error = ""

    def current(self) -> Referentials:
        if self.api_geo_url:
            now = time.monotonic()
            if now - self._checked_at >= self.check_interval and (self._loading is None or self._loading.done()):
                self._checked_at = now
                if self._file_stamp() not in (None, self._stamp):
                    self._loading = asyncio.get_running_loop().create_task(self.load())
        return self._refs if self._refs is not None else bundled()

    def _file_stamp(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    async def load(self) -> None:
        """Load the saved lists when they are newer than the ones in use."""
        stamp = self._file_stamp()
        if not self.api_geo_url or stamp is None or stamp == self._stamp:
            return
        try:
            self._refs = await run_sync(_read, self.path)
        except (OSError, ValueError) as error:
            self.log.warning("the saved referentials cannot be read; keeping the ones in use", error=str(error))
            return
        self._stamp = stamp
        self._downloaded = datetime.fromtimestamp(stamp / 1e9, UTC).isoformat(timespec="seconds")

    async def refresh(self) -> bool:
        """Download the lists from geo.api.gouv.fr and save them; whether they were replaced."""
        if not self.api_geo_url:
            return False
        try:
            refs = await fetch_referentials(self.http, self.api_geo_url)
        except HubError as error:
            self._error = error.message
            self.log.error("referentials not refreshed from geo.api", reason=error.message, keeps="the lists in use")
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await run_sync(_write, self.path, refs.to_payload())
        self._refs, self._stamp, self._error = refs, self._file_stamp(), ""
        self._downloaded = datetime.now(UTC).isoformat(timespec="seconds")
        self.log.info("referentials refreshed from geo.api", communes=len(refs.communes))
        return True

    def status(self) -> dict[str, Any]:
        return {
            "source": "geo.api" if self._refs is not None else "bundled",
            "api_geo_url": self.api_geo_url,
            "downloaded": self._downloaded or None,
            "last_error": self._error or None,
        }
