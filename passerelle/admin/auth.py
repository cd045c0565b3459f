"""Admin API authentication: ``Authorization: Bearer <token>`` with a token from
settings (``PASSERELLE_ADMIN_TOKENS``). With no token configured the admin API is
closed.

A token may be configured hashed, ``sha256:<64 hex digits>`` (``passerelle secrets
hash-token`` prints it), so that the token itself need not sit in the
environment; plain and hashed tokens can be mixed.

Guessing is slowed down per client address (IPv6 addresses by /64): after
:data:`MAX_FAILURES` invalid tokens within :data:`FAILURE_WINDOW` seconds, the
client gets ``429 Too Many Requests`` with ``Retry-After`` (tokens are then not
even compared) for :data:`BASE_DELAY` seconds, doubling with each further
failure up to :data:`MAX_DELAY`; failures are forgotten a window after the last
one, or after the end of the delay. A valid token clears the client's record. The
records live in memory, per process, at most :data:`MAX_CLIENTS` of them (the
oldest are forgotten first), so forged addresses cannot exhaust the memory.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps

import structlog
from aiohttp import web

from passerelle.envelope import PermissionDenied, RequestError, Unauthorized, error_envelope
from passerelle.hub import hub_of

View = Callable[[web.Request], Awaitable[web.StreamResponse]]
logger = structlog.get_logger("passerelle.admin")

HASH_PREFIX = "sha256:"
MAX_FAILURES = 5
FAILURE_WINDOW = 600.0
BASE_DELAY = 30.0
MAX_DELAY = 900.0
MAX_CLIENTS = 10_000


class TooManyAttempts(RequestError):
    """Too many invalid admin tokens from this client: retry after ``Retry-After`` seconds."""

    http_status = 429
    default_message = "too many failed attempts"


def hash_token(token: str) -> str:
    """The hashed form of an admin token, as PASSERELLE_ADMIN_TOKENS accepts it."""
    return HASH_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def token_matches(presented: str, tokens: list[str]) -> bool:
    """Whether ``presented`` is one of ``tokens`` (plain, or ``sha256:<hex>``)."""
    raw = presented.encode()
    digest = hashlib.sha256(raw).hexdigest().encode()
    # Compare against every token so the timing does not tell which one was close.
    matched = False
    for token in tokens:
        if token.startswith(HASH_PREFIX):
            matched |= hmac.compare_digest(digest, token[len(HASH_PREFIX) :].strip().lower().encode())
        else:
            matched |= hmac.compare_digest(raw, token.encode())
    return matched


@dataclass
class _Record:
    failures: int
    last: float
    blocked_until: float = 0.0


class FailureLimiter:
    """Failed admin authentications per client, in memory, bounded."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_clients = max_clients
        self.clock = clock
        # Least recently failed first.
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    @staticmethod
    def client(remote: str | None) -> str:
        """The key of a client: its address, or its /64 network for IPv6."""
        if not remote:
            return "unknown"
        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return remote[:64]
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)

    def _expired(self, record: _Record, now: float) -> bool:
        # Forgotten a window after the last failure, or after the end of the delay.
        return now - max(record.last, record.blocked_until) > self.window

    def retry_after(self, client: str) -> float:
        """Seconds this client must wait before its token is looked at (0: go ahead)."""
        record = self._records.get(client)
        if record is None:
            return 0.0
        return max(0.0, record.blocked_until - self.clock())

    def failure(self, client: str) -> float:
        """Record a failure; the delay now imposed on the client (0: none yet)."""
        now = self.clock()
        record = self._records.pop(client, None)
        if record is None or self._expired(record, now):
            record = _Record(failures=0, last=now)
        record.failures += 1
        record.last = now
        delay = 0.0
        if record.failures >= self.max_failures:
            delay = min(self.base_delay * 2 ** (record.failures - self.max_failures), self.max_delay)
            record.blocked_until = now + delay
        self._records[client] = record
        self._prune(now)
        return delay

    def success(self, client: str) -> None:
        self._records.pop(client, None)

    def _prune(self, now: float) -> None:
        while self._records:
            oldest = next(iter(self._records.values()))
            if len(self._records) <= self.max_clients and not self._expired(oldest, now):
                break
            self._records.popitem(last=False)


ADMIN_LIMITER = web.AppKey("admin_limiter", FailureLimiter)


def too_many(delay: float) -> web.Response:
    seconds = max(1, math.ceil(delay))
    response = error_envelope(TooManyAttempts(f"admin API: too many failed attempts, retry in {seconds} s"))
    response.headers["Retry-After"] = str(seconds)
    return response


def require_admin(view: View) -> View:
    @wraps(view)
    async def guarded(request: web.Request) -> web.StreamResponse:
        tokens = [t.get_secret_value() for t in hub_of(request).settings.admin_tokens]
        if not tokens:
            raise PermissionDenied("the admin API is closed: set PASSERELLE_ADMIN_TOKENS to open it")
        limiter = request.app.get(ADMIN_LIMITER)
        client = FailureLimiter.client(request.remote)
        if limiter is not None:
            delay = limiter.retry_after(client)
            if delay > 0:
                return too_many(delay)
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise Unauthorized("admin API: send 'Authorization: Bearer <token>'")
        if not token_matches(presented.strip(), tokens):
            if limiter is not None and limiter.failure(client) > 0:
                logger.warning("admin API: repeated invalid tokens, client slowed down", client=client)
            raise PermissionDenied("admin API: invalid token")
        if limiter is not None:
            limiter.success(client)
        return await view(request)

    return guarded
