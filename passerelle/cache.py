"""The response cache of endpoints declared with ``@endpoint(cache_duration=N)``.

What is cached: the serialised answer (before JSONP rendering) of a GET or HEAD
call that returned normally, i.e. ``err: 0``. Errors and streamed answers
(``web.StreamResponse``) never are. The dispatcher looks up the cache only once
the caller's right is checked and the parameters are validated.

The key (:meth:`ResponseCache.key`) is an HMAC of: the instance (type, slug, id
and a digest of its whole configuration, secrets included, so a reconfigured
instance never serves answers computed with its old configuration), the endpoint
name, the rest of the path and the query string normalised: items sorted by name
(repeated values keep their order), without the parameters that only
authenticate or render the call (:data:`IGNORED_PARAMETERS`: Publik's signature,
``apikey``, the JSONP ``callback``). ``NameID`` stays in the key: answers differ
per citizen. Credentials never enter it. Keys read
``passerelle:cache:<type>/<slug>:<citizen>:<digest>``, where ``<citizen>`` is
``-`` or an HMAC of the NameID, so a citizen's entries can be found and erased
without the NameID being written anywhere.

Freshness: an entry is served (``X-Cache: hit``) for ``cache_duration`` seconds,
then kept ``cache_stale_duration`` seconds more. During that time a call that
fails with :class:`~passerelle.envelope.UpstreamError` (and its subclass
``UpstreamUnavailable``) is answered with the old entry, HTTP 200, flagged
``X-Cache: stale``, ``Warning: 110 - "Response is Stale"``, an ``Age`` header
and, for enveloped answers, ``"stale": true`` beside ``err`` and ``data``. Other
errors (parameters, business ``APIError``) are never hidden behind an old answer.

Single flight: concurrent identical misses of one process share one call of the
connector (run as its own task, so a caller going away does not cancel it for the
others); they all get its answer, or its error, or the stale entry. Between
processes sharing Redis, the entry written by the first one serves the others;
misses racing in different processes each make their call (no lock).

Backends (:func:`make_backend`): in memory (default), an LRU bounded by
``cache_max_bytes`` bytes of answers (0 disables the cache); Redis when
``cache_url`` is set, each key expiring after ``cache_duration +
cache_stale_duration`` (at most :data:`REDIS_CONNECTIONS` connections per process).
Redis being down or slow (short socket timeouts) makes
lookups misses and writes no-ops, with a warning at most every
:data:`REDIS_RETRY_AFTER` seconds, never a failed request.

Citizens: :meth:`ResponseCache.erase_citizen` and :meth:`ResponseCache.count_citizen`
are registered as the ``response cache`` store of :class:`passerelle.citizens.Citizens`.
An answer in flight when its citizen is erased is served to its waiting calls, not kept.

Reference for operators and connector authors: docs/caching.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson
import structlog
from aiohttp import web
from pydantic import BaseModel, SecretBytes, SecretStr

from passerelle import metrics
from passerelle.envelope import UpstreamError, dumps

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from passerelle.citizens import Citizens
    from passerelle.connectors import Connector
    from passerelle.settings import Settings

__all__ = [
    "IGNORED_PARAMETERS",
    "PREFIX",
    "Answer",
    "CacheKey",
    "Entry",
    "MemoryBackend",
    "RedisBackend",
    "ResponseCache",
    "make_backend",
]

logger = structlog.get_logger("passerelle.cache")

PREFIX = "passerelle:cache:"
NO_CITIZEN = "-"
# Only authenticate or render the call: the answer does not depend on them.
IGNORED_PARAMETERS = frozenset({"signature", "algo", "timestamp", "nonce", "orig", "apikey", "callback"})
STALE_WARNING = '110 - "Response is Stale"'
# Redis on the local network answers in a millisecond; waiting longer than this
# would make the cache slower than the application it spares.
REDIS_TIMEOUT = 0.25
REDIS_RETRY_AFTER = 5.0  # seconds Redis is left alone after a failure
REDIS_CONNECTIONS = 64  # per process
REDIS_POOL_WAIT = 1.0  # seconds a command may wait for a free connection
SCAN_BATCH = 1000

Outcome = Literal["hit", "miss", "stale"]
# What an endpoint produced: (payload, whether it is the {"err": 0} envelope), or
# a response streamed by the connector itself, which is never cached.
Produced = tuple[Any, bool] | web.StreamResponse
Producer = Callable[[], Awaitable[Produced]]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class CacheKey:
    storage: str  # the backend key
    citizen: str  # NO_CITIZEN or the HMAC of the NameID
    instance: str  # "type/slug", as metrics label instances
    endpoint: str
    generation: str  # the instance's identity and configuration digest


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes  # the JSON payload, before JSONP rendering
    enveloped: bool
    stored_at: float  # wall-clock seconds: shared by processes on several hosts

    def encode(self) -> bytes:
        return b"%r %d\n" % (self.stored_at, self.enveloped) + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Entry | None:
        header, _, body = raw.partition(b"\n")
        try:
            stored_at, enveloped = header.split(b" ")
            return cls(body, enveloped == b"1", float(stored_at))
        except ValueError:
            return None  # written by another version: a miss


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    outcome: Outcome
    age: float = 0.0

    def headers(self) -> dict[str, str]:
        headers = {"X-Cache": self.outcome}
        if self.outcome != "miss":
            headers["Age"] = str(max(0, int(self.age)))
        if self.outcome == "stale":
            headers["Warning"] = STALE_WARNING
        return headers


class Backend(Protocol):
    async def get(self, key: CacheKey) -> Entry | None: ...

    async def put(self, key: CacheKey, entry: Entry, ttl: float) -> None: ...

    async def erase_citizen(self, citizen: str) -> int: ...

    async def count_citizen(self, citizen: str) -> int: ...

    async def clear(self) -> int: ...

    def retain(self, generations: set[str]) -> None:
        """Forget entries of instances no longer live in this process (deleted, reconfigured)."""
        ...

    async def close(self) -> None: ...


class MemoryBackend:
    """This process's LRU of entries, bounded by the bytes of their bodies."""

    def __init__(self, max_bytes: int, clock: Clock) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self.evictions = 0
        # storage key -> (key, entry, expires at)
        self._entries: OrderedDict[str, tuple[CacheKey, Entry, float]] = OrderedDict()
        self._citizens: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: CacheKey) -> Entry | None:
        found = self._entries.get(key.storage)
        if found is None:
            return None
        if found[2] <= self.clock():
            self._remove(key.storage)
            return None
        self._entries.move_to_end(key.storage)
        return found[1]

    async def put(self, key: CacheKey, entry: Entry, ttl: float) -> None:
        size = len(entry.body)
        if size > self.max_bytes:
            return
        self._remove(key.storage)
        self._entries[key.storage] = (key, entry, self.clock() + ttl)
        self.bytes += size
        if key.citizen != NO_CITIZEN:
            self._citizens.setdefault(key.citizen, set()).add(key.storage)
        while self.bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))
            self.evictions += 1

    def _remove(self, storage: str) -> None:
        found = self._entries.pop(storage, None)
        if found is None:
            return
        key, entry, _ = found
        self.bytes -= len(entry.body)
        if key.citizen != NO_CITIZEN:
            keys = self._citizens.get(key.citizen)
            if keys is not None:
                keys.discard(storage)
                if not keys:
                    del self._citizens[key.citizen]

    async def erase_citizen(self, citizen: str) -> int:
        keys = list(self._citizens.get(citizen, ()))
        for storage in keys:
            self._remove(storage)
        return len(keys)

    async def count_citizen(self, citizen: str) -> int:
        now = self.clock()
        return sum(1 for storage in self._citizens.get(citizen, ()) if self._entries[storage][2] > now)

    async def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        self._citizens.clear()
        self.bytes = 0
        return count

    def retain(self, generations: set[str]) -> None:
        for storage, (key, _, _) in list(self._entries.items()):
            if key.generation not in generations:
                self._remove(storage)

    async def close(self) -> None:
        await self.clear()


class RedisUnavailable(Exception):
    """Redis is being left alone after a failure."""


class RedisBackend:
    """Entries in Redis, shared by every hub process, each expiring by itself."""

    def __init__(self, url: str) -> None:
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            # A burst of misses waits briefly for a connection instead of failing
            # (redis-py's default pool refuses the 101st concurrent command).
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_POOL_WAIT,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            # A retry would double the time a request waits for a Redis that is down.
            retry=Retry(NoBackoff(), 0),
        )
        self.client = redis.asyncio.Redis(connection_pool=pool)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError, TimeoutError)
        self._down_until = 0.0

    @contextlib.asynccontextmanager
    async def _guard(self) -> Any:
        """Turn Redis failures into a miss (or a skipped write) and a warning."""
        if time.monotonic() < self._down_until:
            raise RedisUnavailable
        try:
            yield
        except self._errors as exc:
            self._down_until = time.monotonic() + REDIS_RETRY_AFTER
            logger.warning(
                "the response cache's Redis failed, answering without it",
                error=type(exc).__name__,
                retry_in=REDIS_RETRY_AFTER,
            )
            raise RedisUnavailable from None

    async def get(self, key: CacheKey) -> Entry | None:
        try:
            async with self._guard():
                raw = await self.client.get(key.storage)
        except RedisUnavailable:
            return None
        return Entry.decode(raw) if raw is not None else None

    async def put(self, key: CacheKey, entry: Entry, ttl: float) -> None:
        with contextlib.suppress(RedisUnavailable):
            async with self._guard():
                await self.client.set(key.storage, entry.encode(), px=max(1, int(ttl * 1000)))

    async def _scan(self, pattern: str) -> list[bytes]:
        # Erasing a citizen or flushing is rare: a SCAN keeps writes free of any index.
        return [key async for key in self.client.scan_iter(match=pattern, count=SCAN_BATCH)]

    async def _delete(self, pattern: str) -> int:
        keys = await self._scan(pattern)
        removed = 0
        for start in range(0, len(keys), SCAN_BATCH):
            removed += await self.client.unlink(*keys[start : start + SCAN_BATCH])
        return removed

    async def erase_citizen(self, citizen: str) -> int:
        # Failures propagate: an erasure must be reported as failed, not skipped.
        return await self._delete(f"{PREFIX}*:{citizen}:*")

    async def count_citizen(self, citizen: str) -> int:
        return len(await self._scan(f"{PREFIX}*:{citizen}:*"))

    async def clear(self) -> int:
        return await self._delete(f"{PREFIX}*")

    def retain(self, generations: set[str]) -> None:
        """Old generations are unreachable and expire by themselves; other processes may still use them."""

    async def close(self) -> None:
        await self.client.aclose()


def make_backend(settings: Settings, clock: Clock) -> Backend | None:
    """Redis when ``cache_url`` is set, else memory; None when the cache is disabled."""
    if settings.cache_url:
        return RedisBackend(settings.cache_url)
    if settings.cache_max_bytes > 0:
        return MemoryBackend(settings.cache_max_bytes, clock)
    return None


def normalised_query(query: Any) -> list[tuple[str, str]]:
    """The query string as the key sees it: sorted by name (a stable sort, so repeated
    values keep their order), without :data:`IGNORED_PARAMETERS`."""
    return sorted(((k, v) for k, v in query.items() if k not in IGNORED_PARAMETERS), key=lambda item: item[0])


def _encode(parts: tuple[Any, ...]) -> bytes:
    # JSON keeps parts apart whatever they hold (a value may contain any separator).
    try:
        return orjson.dumps(parts)
    except TypeError:  # a lone surrogate from a percent-decoded query
        return json.dumps(parts).encode()


def _reveal(value: Any) -> Any:
    if isinstance(value, (SecretStr, SecretBytes)):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="python")
    return str(value)


class ResponseCache:
    """The cache the dispatcher consults (see the module docstring)."""

    def __init__(self, settings: Settings, backend: Backend | None, *, secret: bytes, clock: Clock = time.time) -> None:
        self.settings = settings
        self.backend = backend
        self.stale_duration = float(settings.cache_stale_duration)
        self._secret = secret
        self._clock = clock
        self._flights: dict[str, asyncio.Task[Entry | web.StreamResponse]] = {}
        self._waiting = 0
        self._counters: dict[tuple[str, str, str], Any] = {}
        # Citizens erased while calls were in flight, by erasure number: those calls' answers are not kept.
        self._erasures = 0
        self._erased: dict[str, int] = {}
        self._generations: weakref.WeakKeyDictionary[Connector, str] = weakref.WeakKeyDictionary()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = time.time) -> ResponseCache:
        from passerelle.secrets import load_key

        # Keys are HMACs so that neither configuration secrets nor NameIDs can be
        # guessed from them; processes sharing Redis share the key.
        secret = hashlib.sha256(b"passerelle response cache v1\0" + load_key(settings).encode()).digest()
        return cls(settings, make_backend(settings, clock), secret=secret, clock=clock)

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    def register_citizen_store(self, citizens: Citizens) -> None:
        """Make the citizen's cached answers part of their rights of access and erasure."""
        citizens.register("response cache", erase=self.erase_citizen, find=self.count_citizen)

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        # Tests move time forward instead of sleeping.
        self._clock = clock
        if isinstance(self.backend, MemoryBackend):
            self.backend.clock = clock

    def _digest(self, *parts: Any) -> str:
        return hmac.digest(self._secret, _encode(parts), "sha256").hex()

    def generation(self, connector: Connector) -> str:
        """The instance's identity and configuration, as a digest (computed once per connector object)."""
        found = self._generations.get(connector)
        if found is None:
            info = connector.instance
            config = orjson.dumps(
                connector.config.model_dump(mode="python"),
                default=_reveal,
                option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
            )
            found = self._digest("generation", info.type, info.slug, str(info.id), config.decode())[:32]
            self._generations[connector] = found
        return found

    def citizen(self, name_id: str | None) -> str:
        return self._digest("citizen", name_id)[:32] if name_id else NO_CITIZEN

    def key(self, connector: Connector, endpoint: str, rest: str, query: Any) -> CacheKey:
        info = connector.instance
        instance = f"{info.type}/{info.slug}"
        generation = self.generation(connector)
        citizen = self.citizen(query.get("NameID"))
        digest = self._digest("key", generation, endpoint, rest.strip("/"), normalised_query(query))
        return CacheKey(f"{PREFIX}{instance}:{citizen}:{digest}", citizen, instance, endpoint, generation)

    async def fetch(self, key: CacheKey, duration: float, produce: Producer) -> Answer | web.StreamResponse:
        """The cached answer, or ``produce()``'s stored then served; raises its error
        unless a stale entry may stand in for it."""
        assert self.backend is not None, "the dispatcher only calls an enabled cache"
        entry: Entry | None = None
        looked_up = False
        flight = self._flights.get(key.storage)
        if flight is None:
            # A call already in flight makes a lookup useless: join it at once.
            entry, looked_up = await self.backend.get(key), True
            now = self._clock()
            if entry is not None and now - entry.stored_at < duration:
                self._count(key, "hit")
                return Answer(entry.body, "hit", now - entry.stored_at)
            # Another miss may have started the call while we were looking.
            flight = self._flights.get(key.storage)
        leader = flight is None
        if flight is None:
            flight = asyncio.create_task(self._fill(key, duration, produce))
            self._flights[key.storage] = flight
            flight.add_done_callback(lambda task: self._landed(key.storage, task))
        self._waiting += 1
        try:
            produced = await asyncio.shield(flight)
        except UpstreamError as error:
            if not looked_up:
                entry = await self.backend.get(key)
            if entry is not None and self._clock() - entry.stored_at < duration + self.stale_duration:
                self._count(key, "stale")
                logger.info(
                    "the application failed, serving a stale answer",
                    instance=key.instance,
                    endpoint=key.endpoint,
                    error=error.err_class(),
                )
                return Answer(_flag_stale(entry), "stale", self._clock() - entry.stored_at)
            self._count(key, "miss")
            raise
        except Exception:
            self._count(key, "miss")
            raise
        finally:
            self._waiting -= 1
        self._count(key, "miss")
        if isinstance(produced, Entry):
            return Answer(produced.body, "miss")
        if leader:
            return produced
        # A streamed answer belongs to the request that asked for it: make our own, uncached.
        own = await produce()
        if isinstance(own, web.StreamResponse):
            return own
        return Answer(dumps(own[0]), "miss")

    async def _fill(self, key: CacheKey, duration: float, produce: Producer) -> Entry | web.StreamResponse:
        started = self._erasures
        produced = await produce()
        if isinstance(produced, web.StreamResponse):
            return produced
        payload, enveloped = produced
        entry = Entry(dumps(payload), enveloped, self._clock())
        if self._erased.get(key.citizen, 0) > started:
            # The citizen's data was erased while the application was answering: served, not kept.
            return entry
        if self.backend is not None:
            # Stored before the waiting calls are released: a call arriving now finds it.
            await self.backend.put(key, entry, duration + self.stale_duration)
        return entry

    @property
    def waiting(self) -> int:
        """Calls waiting for a connector call, their own or one they share."""
        return self._waiting

    def _landed(self, storage: str, task: asyncio.Task[Any]) -> None:
        if self._flights.get(storage) is task:
            del self._flights[storage]
        if not self._flights:
            self._erased.clear()
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone away

    def _count(self, key: CacheKey, outcome: Outcome) -> None:
        labels = (key.instance, key.endpoint, outcome)
        counter = self._counters.get(labels)
        if counter is None:
            # labels() takes a lock and builds a tuple: a sizeable share of a hit's cost.
            counter = self._counters[labels] = metrics.CACHE_EVENTS.labels(*labels)
        counter.inc()

    # -- operations ------------------------------------------------------------------

    async def erase_citizen(self, name_id: str) -> int:
        """Remove the answers of calls made with this NameID; how many were removed."""
        citizen = self.citizen(name_id)
        self._erasures += 1
        if self._flights:
            self._erased[citizen] = self._erasures
        return await self.backend.erase_citizen(citizen) if self.backend else 0

    async def count_citizen(self, name_id: str) -> int:
        """How many answers of calls made with this NameID are held."""
        return await self.backend.count_citizen(self.citizen(name_id)) if self.backend else 0

    async def clear(self) -> int:
        """Remove every entry; how many were removed."""
        return await self.backend.clear() if self.backend else 0

    def instances_changed(self, connectors: Iterable[Connector]) -> None:
        """Registry listener: drop what deleted or reconfigured instances left in memory."""
        if self.backend is not None:
            self.backend.retain({self.generation(connector) for connector in connectors})

    def collect(self) -> Iterator[Metric]:
        """Gauges read when Prometheus scrapes."""
        waiting = metrics.gauge(
            "passerelle_cache_waiting", "Cache misses waiting for a connector call (their own or a shared one).", []
        )
        waiting.add_metric([], self._waiting)
        yield waiting
        if isinstance(self.backend, MemoryBackend):
            size = metrics.gauge("passerelle_cache_memory_bytes", "Bytes of answers held by the in-memory cache.", [])
            size.add_metric([], self.backend.bytes)
            yield size
            entries = metrics.gauge("passerelle_cache_memory_entries", "Answers held by the in-memory cache.", [])
            entries.add_metric([], len(self.backend))
            yield entries

    async def close(self) -> None:
        for task in list(self._flights.values()):
            task.cancel()
        if self.backend is not None:
            await self.backend.close()


def _flag_stale(entry: Entry) -> bytes:
    if not entry.enveloped:
        return entry.body  # a raw answer has no envelope: the headers say it
    payload = orjson.loads(entry.body)
    if isinstance(payload, dict):
        payload["stale"] = True
    return dumps(payload)
