"""The ``csvdatasource`` connector type: a spreadsheet served as w.c.s. data sources.

Loading and reloading live here; reading files is in :mod:`.reading`, the loaded
data and its indexes in :mod:`.dataset`, named queries in :mod:`.queries`.

When the data is re-read:

- a file source is stat-ed at most once per ``stat_interval`` (1 s), on request,
  and re-read when its mtime or size changed, so an upload is picked up;
- a URL source is downloaded again every ``refresh_interval`` by the periodic
  job, and also in the background by a request that finds the data older than
  that (each hub process holds its own copy, and a cluster-wide periodic job
  would refresh only one of them), with a conditional GET;
- a reload that fails keeps the last good data and logs why, once per new reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import structlog
from pydantic import BaseModel

from connectors.csvdatasource.config import CsvDataSourceConfig
from connectors.csvdatasource.dataset import Dataset, Item, build_dataset
from connectors.csvdatasource.queries import check_query, run_query
from connectors.csvdatasource.reading import SourceError, read_table
from passerelle import (
    APIError,
    Connector,
    HubError,
    InstanceInfo,
    NotFound,
    Param,
    UpstreamError,
    endpoint,
    periodic,
)

if TYPE_CHECKING:
    from passerelle.settings import Settings

logger = structlog.get_logger("connectors.csvdatasource")

RETRY_INTERVAL = 60.0  # seconds before a failed URL download is tried again

Q_PARAM = Param("Words to find in the items' text (case and accents ignored, every word must match)", example="piscine")
ID_PARAM = Param("Identifier of the one item to return (an empty list when there is none)", alias="id")
LIMIT_PARAM = Param("Largest number of items to return", example=20, schema={"minimum": 1})
PAGE_LIMIT_PARAM = Param("Same as limit (the name select2 and w.c.s. autocompletion use)", schema={"minimum": 1})


class CsvDataSource(Connector):
    slug = "csvdatasource"
    title = "Spreadsheet data source"
    category = "Data sources"
    description = (
        "Serves a CSV, XLSX or ODS file (uploaded, on disk or at a URL) as w.c.s. data sources: "
        "the whole list with search and lookup by id, and named queries with filters."
    )
    Config = CsvDataSourceConfig
    config: CsvDataSourceConfig

    stat_interval = 1.0  # seconds between two looks at a file source's mtime and size

    def __init__(self, instance: InstanceInfo, config: BaseModel, settings: Settings) -> None:
        super().__init__(instance, config, settings)
        self.log = logger.bind(instance=f"{self.instance.type}/{self.instance.slug}")
        self._dataset: Dataset | None = None
        self._error: HubError | None = None  # why the last load failed; None once one succeeds
        self._lock = asyncio.Lock()  # one load at a time
        self._checked_at = float("-inf")  # monotonic end of the last look at the source
        self._file_stamp: tuple[str, int, int] | None = None  # path, mtime_ns, size of the data loaded
        self._etag: str | None = None
        self._last_modified: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        # Load in the background: a large file must not hold up the registry,
        # and a broken one must not make the instance unavailable for editing.
        self._spawn(self._reload())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check_status(self) -> None:
        await self._reload()
        if self._error is not None:
            raise_copy(self._error)
        dataset = await self.dataset()
        for name, query in self.config.queries.items():
            check_query(name, query, dataset)

    @periodic(seconds=60, description="Downloads a URL source again once refresh_interval has passed.")
    async def refresh(self) -> None:
        if self.config.is_url and time.monotonic() - self._checked_at >= self._url_interval():
            await self._reload()

    # -- endpoints -----------------------------------------------------------

    @endpoint(
        description="Items of the file, sorted by text, as a w.c.s. data source",
        long_description=(
            "Each item is {id, text, ...columns}. With q= only items whose text holds every word, "
            "with id= only the item with that identifier."
        ),
        datasource=True,
        display_order=1,
    )
    async def data(
        self,
        q: Annotated[str | None, Q_PARAM] = None,
        ident: Annotated[str | None, ID_PARAM] = None,
        limit: Annotated[int | None, LIMIT_PARAM] = None,
        page_limit: Annotated[int | None, PAGE_LIMIT_PARAM] = None,
    ) -> list[Item]:
        dataset = await self.dataset()
        return dataset.search(q, ident, smallest(limit, page_limit))

    @endpoint(
        name="query",
        description="Result of a named query of this instance",
        long_description=(
            "The query's own parameters come as query-string parameters; q=, id= and limit= "
            "narrow the result as on data/."
        ),
        pattern=r"^(?P<query_name>[\w-]+)/?$",
        example_pattern="{query_name}/",
        display_order=2,
    )
    async def query(
        self,
        query_name: Annotated[str, Param("Name of the query", example="par-type")],
        q: Annotated[str | None, Q_PARAM] = None,
        ident: Annotated[str | None, ID_PARAM] = None,
        limit: Annotated[int | None, LIMIT_PARAM] = None,
        page_limit: Annotated[int | None, PAGE_LIMIT_PARAM] = None,
        **params: str,
    ) -> Any:
        query = self.config.queries.get(query_name)
        if query is None:
            available = ", ".join(sorted(self.config.queries)) or "none"
            raise NotFound(f"no query named {query_name!r}; this instance's queries: {available}")
        dataset = await self.dataset()
        return run_query(query_name, query, dataset, params, q=q, ident=ident, limit=smallest(limit, page_limit))

    # -- loading -------------------------------------------------------------

    async def dataset(self) -> Dataset:
        """The current data, re-read first when a file source changed."""
        dataset = self._dataset
        now = time.monotonic()
        if dataset is not None:
            if self._lock.locked():
                return dataset  # a reload is running: serve what we have meanwhile
            if self.config.is_url:
                if now - self._checked_at >= self._url_interval():
                    # The caller does not wait for the download; `since` turns the
                    # tasks of concurrent requests into no-ops once the first one ran.
                    self._spawn(self._reload(since=now))
                return dataset
            if now - self._checked_at < self.stat_interval:
                return dataset
        elif self._error is not None and now - self._checked_at < self.stat_interval:
            raise_copy(self._error)  # do not hammer a missing file or a down server
        await self._reload(since=now)
        if self._dataset is None:
            raise_copy(self._error or APIError("the source is not loaded"))
        return self._dataset

    async def _reload(self, since: float | None = None) -> None:
        """Re-read the source if it changed; record (and log) a failure instead of raising."""
        async with self._lock:
            if since is not None and self._checked_at >= since:
                return  # another caller looked at the source while we waited for the lock
            try:
                # False: the file did not change, so a past failure still stands.
                settled = await self._reload_url() if self.config.is_url else await self._reload_file()
            except SourceError as exc:
                self._fail(APIError(f"cannot use {self.config.source}: {exc}"))
            except HubError as exc:
                self._fail(exc)
            except Exception as exc:
                self.log.exception("unexpected failure while loading the source")
                self._fail(APIError(f"cannot load {self.config.source}: {type(exc).__name__}"))
            else:
                if settled:
                    self._error = None
            finally:
                self._checked_at = time.monotonic()

    def _fail(self, error: HubError) -> None:
        # Log once per new reason: the source is looked at every second or so.
        if self._error is None or self._error.message != error.message:
            if self._dataset is not None:
                self.log.error("reload failed, still serving the previous data", error=error.message)
            else:
                self.log.error("cannot load the source", error=error.message)
        self._error = error

    def resolve_path(self) -> Path:
        """Where a file source is: absolute, else among the uploaded files, else from the working directory."""
        source = Path(self.config.source)
        if source.is_absolute():
            return source
        uploaded = self.files_dir / source
        if uploaded.exists():
            return uploaded
        return Path.cwd() / source

    async def _reload_file(self) -> bool:
        path = self.resolve_path()
        stamp = file_stamp(path, self.config.source)
        if stamp == self._file_stamp:
            return False
        # Remember the stamp even if loading fails: a broken file is retried when it changes again.
        self._file_stamp = stamp
        dataset = await asyncio.to_thread(self._load, path.read_bytes)
        if file_stamp(path, self.config.source) != stamp:
            self._file_stamp = None  # written to while we read it: read it again next time
        self._install(dataset, str(path))
        return True

    async def _reload_url(self) -> bool:
        headers = {}
        if self._dataset is not None:  # a 304 only makes sense when there is data to keep
            if self._etag:
                headers["If-None-Match"] = self._etag
            if self._last_modified:
                headers["If-Modified-Since"] = self._last_modified
        response = await self.http.get(self.config.source, headers=headers)
        if response.status == 304 and self._dataset is not None:
            return True  # the server answered: our copy is current
        if response.status != 200:
            raise UpstreamError(f"the source URL answered HTTP {response.status}")
        dataset = await asyncio.to_thread(self._load, lambda: response.body)
        self._etag = response.headers.get("ETag")
        self._last_modified = response.headers.get("Last-Modified")
        self._install(dataset, self.config.source)
        return True

    def _load(self, read: Callable[[], bytes]) -> Dataset:
        # Runs in a worker thread: reading, parsing, sorting and indexing.
        try:
            content = read()
        except OSError as exc:
            raise SourceError(f"cannot read the file: {exc.strerror}") from None
        table = read_table(
            content, delimiter=self.config.delimiter, encoding=self.config.encoding, sheet=self.config.sheet
        )
        prepare = [key for query in self.config.queries.values() for key in query.referenced_keys]
        return build_dataset(table, self.config, prepare)

    def _install(self, dataset: Dataset, origin: str) -> None:
        self._dataset = dataset
        self.log.info("source loaded", source=origin, items=len(dataset.items))
        if dataset.skipped:
            self.log.warning("rows without an id were skipped", count=dataset.skipped, id_column=self.config.id_column)
        if dataset.duplicates:
            self.log.warning("rows repeat an id already seen; id= returns the first", count=dataset.duplicates)

    def _url_interval(self) -> float:
        if self._error is not None:
            return min(float(self.config.refresh_interval), RETRY_INTERVAL)
        return float(self.config.refresh_interval)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)  # keep a reference until done, as asyncio requires
        task.add_done_callback(self._tasks.discard)


def file_stamp(path: Path, source: str) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise APIError(f"the source file {source} does not exist") from None
    except OSError as exc:
        raise APIError(f"cannot read the source file {source}: {exc.strerror}") from None
    return (str(path), stat.st_mtime_ns, stat.st_size)


def smallest(*limits: int | None) -> int | None:
    """``limit`` and ``page_limit`` are synonyms; when both are given the smaller wins."""
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None


def raise_copy(error: HubError) -> NoReturn:
    # A fresh exception each time: re-raising one stored instance would pile up tracebacks.
    raise type(error)(error.message, data=error.data, err=error.err, http_status=error.status, extra=error.extra)
