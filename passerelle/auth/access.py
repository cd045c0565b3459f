"""The permission check every endpoint call goes through.

An endpoint asks for a permission codename (``can_access`` by default, or
``PUBLIC``). The caller is allowed when one of the API users holding that right
on the instance accepts the request, or when the request is signed by a trusted
Publik service:

- an open user (key type ``""``) accepts anyone, within its IP allow-list, without
  looking at any credential (the fast path: no await, no database);
- an ``API`` user accepts its key, sent as ``?apikey=`` or HTTP Basic
  ``username:key``;
- a ``SIGN`` user accepts a Publik signature (:mod:`passerelle.auth.signature`)
  with ``orig=<username>`` and its key as the shared secret;
- a trusted service (``PASSERELLE_KNOWN_SERVICES``, orig -> secret) is accepted on
  every instance and every permission, without an API user;
- during a key rotation, a user's previous key is accepted too, until
  ``previous_key_expires``.

Every refusal answers 403 with ``err_desc: "permission denied"``, whatever failed:
a missing credential, a wrong key, a bad or replayed signature, an expired
timestamp, a source address outside the allow-list or a missing right. Publik's
consumers expect 403 from Passerelle in all these cases. The precise reasons are
logged at warning level (``access refused``), without any key, signature, nonce or
query string.
"""

from __future__ import annotations

import binascii
import hmac
from base64 import b64decode
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import structlog
from aiohttp import web
from multidict import MultiMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passerelle.auth.nonces import NonceStore, make_nonce_store
from passerelle.auth.signature import SignatureError, check, is_signed, parse
from passerelle.envelope import InternalError, PermissionDenied
from passerelle.instances import Caller
from passerelle.settings import Settings

__all__ = [
    "ACCESS",
    "KEYTYPES",
    "KEYTYPE_API",
    "KEYTYPE_OPEN",
    "KEYTYPE_SIGN",
    "AccessChecker",
    "basic_credentials",
    "open_caller",
    "raw_query_string",
]

logger = structlog.get_logger("passerelle.auth")

KEYTYPE_OPEN = ""
KEYTYPE_API = "API"
KEYTYPE_SIGN = "SIGN"
KEYTYPES = (KEYTYPE_OPEN, KEYTYPE_API, KEYTYPE_SIGN)

DENIED = "permission denied"
NO_USER = "permission denied: no API user may call this endpoint"
LOGGED_LENGTH = 100  # caller-chosen strings (orig, Basic username) are cut in the logs


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def raw_query_string(request: web.Request) -> str:
    """The query string exactly as the client sent it. ``request.query_string`` is
    decoded by aiohttp, which would break signatures computed on the raw bytes."""
    raw = request.raw_path
    position = raw.find("?")
    return raw[position + 1 :] if position >= 0 else ""


def open_caller(callers: tuple[Caller, ...], remote: str | None) -> str | None:
    """The open API user accepting this source address, if any (synchronous, no I/O)."""
    for caller in callers:
        if caller.keytype == KEYTYPE_OPEN and caller.allows_ip(remote):
            return caller.username
    return None


def _matches(presented: str, keys: tuple[str, ...]) -> bool:
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented.encode(), key.encode())
    return matched


def _cut(value: str) -> str:
    return value if len(value) <= LOGGED_LENGTH else value[:LOGGED_LENGTH] + "…"


class AccessChecker:
    """Checks credentials against the callers holding a right; one per application."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        nonces: NonceStore | None = None,
    ) -> None:
        self.max_age = settings.signature_max_age
        self.known_services: Mapping[str, str] = {
            orig: secret.get_secret_value() for orig, secret in settings.known_services.items()
        }
        self.nonces = nonces if nonces is not None else make_nonce_store(settings.redis_url, sessionmaker)

    async def close(self) -> None:
        await self.nonces.close()

    async def authorize(
        self,
        callers: tuple[Caller, ...],
        *,
        raw_query: str,
        query: MultiMapping[str],
        authorization: str | None,
        remote: str | None,
        target: str = "",
        now: datetime | None = None,
    ) -> str:
        """The name of the API user (or trusted service) accepting this request, or
        ``PermissionDenied``. ``target`` names the call in the logs."""
        username = open_caller(callers, remote)
        if username is not None:
            return username
        now = now or datetime.now(UTC)
        signed = bool(self.known_services) and is_signed(raw_query)
        if not callers and not signed:
            logger.warning("access refused", target=target, remote=remote, reasons=["no API user holds this right"])
            raise PermissionDenied(NO_USER)

        reasons: list[str] = []
        context: dict[str, str] = {}
        apikey = query.get("apikey")
        if apikey is not None:
            username = self._check_api_key(callers, apikey, remote, now, reasons)
            if username is not None:
                return username
        basic = basic_credentials(authorization)
        if basic is not None:
            context["basic_username"] = _cut(basic[0])
            username = self._check_basic(callers, basic, remote, now, reasons)
            if username is not None:
                return username
        elif authorization:
            reasons.append("unreadable Authorization header")
        if is_signed(raw_query):
            try:
                return await self._check_signature(callers, raw_query, remote, now, context)
            except SignatureError as exc:
                reasons.append(f"signature: {exc.reason}")
        if not reasons:
            reasons.append("no credentials" if callers else "no API user holds this right")
        if any(caller.keytype == KEYTYPE_OPEN for caller in callers):
            reasons.append("source address outside the open API user's allow-list")
        logger.warning("access refused", target=target, remote=remote, reasons=reasons, **context)
        # The message depends on the configuration only, never on what was wrong in the request.
        raise PermissionDenied(DENIED if callers else NO_USER)

    def _check_api_key(
        self, callers: tuple[Caller, ...], apikey: str, remote: str | None, now: datetime, reasons: list[str]
    ) -> str | None:
        for caller in callers:
            if caller.keytype != KEYTYPE_API or not _matches(apikey, caller.active_keys(now)):
                continue
            if caller.allows_ip(remote):
                return caller.username
            reasons.append(f"API key of {caller.username!r} from an address outside its allow-list")
            return None
        reasons.append("API key matches no API user holding this right")
        return None

    def _check_basic(
        self,
        callers: tuple[Caller, ...],
        basic: tuple[str, str],
        remote: str | None,
        now: datetime,
        reasons: list[str],
    ) -> str | None:
        for caller in callers:
            if caller.keytype != KEYTYPE_API or caller.username != basic[0]:
                continue
            if not _matches(basic[1], caller.active_keys(now)):
                reasons.append("HTTP Basic: wrong key")
                return None
            if caller.allows_ip(remote):
                return caller.username
            reasons.append(f"HTTP Basic of {caller.username!r} from an address outside its allow-list")
            return None
        reasons.append("HTTP Basic: no API user of that name holds this right")
        return None

    async def _check_signature(
        self,
        callers: tuple[Caller, ...],
        raw_query: str,
        remote: str | None,
        now: datetime,
        context: dict[str, str],
    ) -> str:
        signed = parse(raw_query)
        context["orig"] = _cut(signed.orig)
        # Every key that may have signed: the SIGN user named orig (both keys during a
        # rotation) and the trusted service named orig.
        owners: list[Caller | None] = []
        keys: list[str] = []
        for caller in callers:
            if caller.keytype == KEYTYPE_SIGN and caller.username == signed.orig:
                for key in caller.active_keys(now):
                    owners.append(caller)
                    keys.append(key)
        service_secret = self.known_services.get(signed.orig)
        if service_secret:
            owners.append(None)
            keys.append(service_secret)
        if not keys:
            raise SignatureError("unknown orig, or it holds no right here")
        owner = owners[check(signed, keys, max_age=self.max_age, now=now)]
        if owner is not None and not owner.allows_ip(remote):
            raise SignatureError("source address outside the API user's allow-list")
        # Kept past the window by as much again, for clocks that differ between processes.
        expires = signed.timestamp + timedelta(seconds=2 * self.max_age)
        try:
            first_use = await self.nonces.use(signed.nonce, expires)
        except Exception:
            logger.exception("the nonce store failed; signed requests are refused until it is back")
            raise InternalError("the signature could not be checked, try again later", http_status=503) from None
        if not first_use:
            raise SignatureError("nonce already used (replay)")
        return owner.username if owner is not None else signed.orig


ACCESS = web.AppKey("access", AccessChecker)
