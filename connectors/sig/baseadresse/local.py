"""The local backend: the embedded address index of an instance, its sources and its life cycle.

- The index lives in the instance's files directory (``<data dir>/files/base-adresse/<slug>/index``),
  persisted, so a restart loads it instead of building it again.
- ``refresh()`` (the periodic job, and the start of an instance without an index) looks at the
  sources: files by size and modification time, URLs by a conditional download (ETag,
  Last-Modified) and a digest of their content. Only when one changed, or the list did, is a new
  index built, in a child process (``python -m connectors.sig.addressindex build``) so that the
  build's memory peak and CPU stay out of the process serving requests. The child saves the new
  version and switches the directory's ``CURRENT`` pointer atomically; a failed build leaves the
  current index in place.
- Every process serving the instance looks at ``CURRENT`` at most every ``check_interval`` seconds,
  on request, and loads a new version in the background, then swaps it in one assignment: a query
  runs on the old index or on the new one, never on a half-built one.
- ``status()`` tells where it stands (state, build progress, addresses, sources, last error) for
  the admin API, and builds log their progress every 10 %.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.sig.addressindex import AddressIndex, IndexFormatError
from connectors.sig.addressindex.data import STREET
from connectors.sig.addressindex.store import CURRENT, MANIFEST
from passerelle import UpstreamUnavailable, run_sync
from passerelle.http import HttpClient

__all__ = ["LocalIndex"]

MANIFEST_FORMAT = 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _load_warm(directory: Path) -> AddressIndex:
    index = AddressIndex.load(directory)
    # The first answer loads the INSEE lists behind labels and contexts (0.7 s): not a citizen's request.
    index.search("rue", 1)
    return index


class BuildFailed(Exception):
    pass


class LocalIndex:
    check_interval = 5.0  # seconds between two looks at CURRENT, on request

    def __init__(self, directory: Path, sources: list[str], http: HttpClient, log: Any) -> None:
        self.directory = directory
        self.index_dir = directory / "index"
        self.downloads = directory / "downloads"
        self.sources = sources
        self.http = http
        self.log = log
        self.index: AddressIndex | None = None
        self.version: str | None = None  # the CURRENT version loaded
        self._checked_at = float("-inf")
        self._loading: asyncio.Task[None] | None = None
        self._refresh_lock = asyncio.Lock()
        self._state = "empty"
        self._progress: dict[str, Any] | None = None
        self._error = ""
        self._built = ""
        # Set once an index is loaded or a build has failed: what a first availability check waits for.
        self.settled = asyncio.Event()
        # Called with the progress dict on every progress line of a build (the CLI draws a bar with it).
        self.on_progress: Callable[[dict[str, Any]], None] | None = None

    # -- serving ------------------------------------------------------------------------------------

    def current(self) -> AddressIndex | None:
        """The index to query now (None: none yet); looks for a newer version now and then."""
        now = time.monotonic()
        if now - self._checked_at >= self.check_interval and (self._loading is None or self._loading.done()):
            self._checked_at = now
            if self._pointer() not in (None, self.version):
                self._loading = asyncio.get_running_loop().create_task(self.load())
        return self.index

    def _pointer(self) -> str | None:
        try:
            return (self.index_dir / CURRENT).read_text(encoding="utf-8").strip()
        except OSError:
            return None

    async def load(self) -> bool:
        """Load the saved index if there is one newer than the loaded one; whether one is loaded."""
        version = self._pointer()
        if version is None:
            return self.index is not None
        if version == self.version:
            return True
        try:
            index = await run_sync(_load_warm, self.index_dir)
        except (IndexFormatError, OSError, ValueError) as error:
            # Another process may have replaced it meanwhile; the next look will find the newer one.
            self.log.warning("the saved address index cannot be loaded", error=str(error))
            return self.index is not None
        self.index, self.version = index, version
        self.settled.set()
        self._state = "ready" if self._state != "building" else self._state
        self._built = self._manifest().get("built", self._built)
        self.log.info("address index loaded", version=version, addresses=len(index.data.hn_number))
        return True

    def _manifest(self) -> dict[str, Any]:
        try:
            return json.loads((self.index_dir / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    # -- refreshing ---------------------------------------------------------------------------------

    async def refresh(self, *, force: bool = False) -> bool:
        """Build a new index if a source changed (or ``force``); whether one was built."""
        async with self._refresh_lock:
            try:
                stamps = await self._stamps()
            except (OSError, BuildFailed) as error:
                self._fail(f"cannot read the sources: {error}")
                return False
            manifest = self._manifest()
            unchanged = manifest.get("format") == MANIFEST_FORMAT and manifest.get("sources") == stamps
            if unchanged and not force and self._pointer() is not None:
                if self.index is None:
                    await self.load()
                return False
            try:
                await self._build(stamps)
            except BuildFailed as error:
                self._fail(str(error))
                return False
            await self.load()
            return True

    def _fail(self, reason: str) -> None:
        self.settled.set()
        self._error = reason
        self._state = "ready" if self.index is not None else "failed"
        self._progress = None
        self.log.error("the address index was not rebuilt", reason=reason, keeps_serving=self.index is not None)

    async def _stamps(self) -> list[dict[str, Any]]:
        stamps = []
        for source in self.sources:
            if _is_url(source):
                stamps.append(await self._download(source))
            else:
                path = Path(source)
                stat = path.stat()
                stamps.append({"source": source, "path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        return stamps

    async def _download(self, url: str) -> dict[str, Any]:
        """Fetch a URL source into the downloads directory (conditionally); its stamp."""
        self.downloads.mkdir(parents=True, exist_ok=True)
        name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "source"
        path = self.downloads / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"
        meta_path = path.with_name(path.name + ".meta.json")
        meta: dict[str, Any] = {}
        if path.exists() and meta_path.exists():
            with contextlib.suppress(ValueError):
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
        headers = {}
        if meta.get("etag"):
            headers["If-None-Match"] = meta["etag"]
        if meta.get("last_modified"):
            headers["If-Modified-Since"] = meta["last_modified"]
        try:
            response = await self.http.get(url, headers=headers, timeout=600)
        except UpstreamUnavailable as error:
            if meta:  # the copy downloaded earlier still serves
                self.log.warning("address source unreachable, using the copy downloaded before", url=url)
                return {"source": url, "path": str(path), "sha256": meta["sha256"]}
            raise BuildFailed(f"{url}: {error.message}") from None
        if response.status == 304 and meta:
            return {"source": url, "path": str(path), "sha256": meta["sha256"]}
        if response.status != 200:
            raise BuildFailed(f"{url}: HTTP {response.status}")
        temporary = path.with_name(path.name + ".part")
        await run_sync(temporary.write_bytes, response.body)
        temporary.replace(path)
        meta = {
            "etag": response.headers.get("ETag", ""),
            "last_modified": response.headers.get("Last-Modified", ""),
            "sha256": hashlib.sha256(response.body).hexdigest(),
        }
        meta_path.write_text(json.dumps(meta), encoding="utf-8")
        return {"source": url, "path": str(path), "sha256": meta["sha256"]}

    async def _build(self, stamps: list[dict[str, Any]]) -> None:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        manifest = {"format": MANIFEST_FORMAT, "built": _now(), "sources": stamps}
        manifest_path = self.directory / "manifest.next.json"
        manifest_path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
        command = [sys.executable, "-m", "connectors.sig.addressindex", "build", "--json-progress"]
        command += ["--output", str(self.index_dir), "--manifest", str(manifest_path)]
        command += [stamp["path"] for stamp in stamps]
        self._state, self._error = "building", ""
        self._progress = {"done": 0, "total": 0, "percent": 0.0, "started": _now()}
        self.log.info("address index build started", sources=len(stamps))
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            result = await self._follow(process)
            stderr = (await process.stderr.read()).decode(errors="replace").strip() if process.stderr else ""
            if await process.wait() != 0 or result is None:
                raise BuildFailed(stderr.splitlines()[-1] if stderr else f"the build exited with {process.returncode}")
        except BaseException:
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
        finally:
            manifest_path.unlink(missing_ok=True)
        self._built = manifest["built"]
        self._progress = None
        self._state = "ready"
        self.log.info(
            "address index built",
            addresses=result["addresses"],
            seconds=round(time.monotonic() - started, 1),
        )

    async def _follow(self, process: asyncio.subprocess.Process) -> dict[str, Any] | None:
        assert process.stdout is not None
        logged = -10
        result = None
        async for line in process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "saved" in message:
                result = message
            elif "done" in message:
                total = message["total"] or 0
                percent = round(100 * message["done"] / total, 1) if total else 0.0
                self._progress = {**(self._progress or {}), **message, "percent": percent}
                if self.on_progress is not None:
                    self.on_progress(self._progress)
                if percent >= logged + 10:
                    logged = int(percent // 10 * 10)
                    self.log.info("address index build progress", percent=logged, done=message["done"], total=total)
        return result

    # -- reporting ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        index = self.index
        return {
            "state": self._state if not (self._state == "empty" and index is not None) else "ready",
            "addresses": len(index.data.hn_number) if index is not None else 0,
            "streets": int((index.data.doc_kind == STREET).sum()) if index is not None else 0,
            "version": self.version,
            "built": self._built or None,
            "progress": self._progress,
            "last_error": self._error or None,
            "sources": self.sources,
        }
