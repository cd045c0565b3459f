"""Publik's HMAC signature of URLs, both ways: verifying the calls Publik makes to
the hub, and signing the calls the hub makes to Publik.

The scheme (w.c.s. ``api_utils``, Lingo ``signature``, Passerelle ``base.signature``):

1. the caller starts from the URL's raw query string, holding ``orig=<caller id>``
   and usually ``NameID=`` or ``email=``;
2. it appends ``algo=<sha1|sha256|sha512>&timestamp=<UTC %Y-%m-%dT%H:%M:%SZ>&nonce=<random>``,
   url-encoded (the colons of the timestamp become ``%3A``);
3. it computes ``base64(HMAC(key, <that whole query string>, algo))`` (standard
   base64) and appends ``&signature=<url-quoted signature>``, the last parameter.

The verifier signs the **raw** query string it received up to ``&signature=``,
byte for byte: nothing is decoded, re-encoded or sorted. A proxy that rewrites the
query string therefore breaks every signature.

Verification here is stricter than Passerelle's on two points: the nonce is
required (Passerelle accepts a request without one), and the signature must be the
last parameter (Passerelle ignores what follows it). Every refusal raises
:class:`SignatureError` whose ``reason`` is precise, for the logs; the HTTP answer
never repeats it (see :mod:`passerelle.auth.access`).

Outbound::

    from passerelle.auth.signature import sign_url
    url = sign_url("https://wcs.example.org/api/forms/?NameID=abc", secret, orig="hub.example.org")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = [
    "ALGORITHMS",
    "DEFAULT_MAX_AGE",
    "TIMESTAMP_FORMAT",
    "SignatureError",
    "SignedQuery",
    "check",
    "hobo_shared_secret",
    "parse",
    "sign_query",
    "sign_url",
    "verify",
]

ALGORITHMS: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_MAX_AGE = 30
SIGNATURE_MARK = "&signature="
# Parameters the signature scheme reads; each must appear exactly once.
REQUIRED = ("orig", "algo", "timestamp", "nonce")


class SignatureError(Exception):
    """A signed query string is refused. ``reason`` is for the logs, never for the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- signing (calls the hub makes) ----------------------------------------------------


def _timestamp(value: datetime | str | None) -> str:
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(TIMESTAMP_FORMAT)


def sign_query(
    query: str,
    key: str | bytes,
    algo: str = "sha256",
    orig: str | None = None,
    timestamp: datetime | str | None = None,
    nonce: str | None = None,
) -> str:
    """Sign a raw query string (without ``?``); return it with ``algo``, ``timestamp``,
    ``nonce`` and, last, ``signature`` appended.

    ``orig`` is appended first when given and the query has none. ``timestamp``
    defaults to now (a naive datetime is taken as UTC), ``nonce`` to 128 random bits
    in hex.
    """
    if algo not in ALGORITHMS:
        raise ValueError(f"algo must be one of {', '.join(ALGORITHMS)}")
    if orig is not None:
        present = parse_qs(query, keep_blank_values=True).get("orig")
        if present is None:
            query = f"{query}&orig={quote(orig, safe='')}" if query else f"orig={quote(orig, safe='')}"
        elif present != [orig]:
            raise ValueError("the query already has a different 'orig'")
    if nonce is None:
        nonce = secrets.token_hex(16)
    signed = query + "&" if query else ""
    signed += urlencode((("algo", algo), ("timestamp", _timestamp(timestamp)), ("nonce", nonce)))
    digest = _digest(key, signed.encode(), algo)
    return signed + SIGNATURE_MARK + quote(base64.b64encode(digest))


def sign_url(
    url: str,
    key: str | bytes,
    algo: str = "sha256",
    orig: str | None = None,
    timestamp: datetime | str | None = None,
    nonce: str | None = None,
) -> str:
    """``url`` with its query string signed by :func:`sign_query`; the fragment is kept."""
    parts = urlsplit(url)
    query = sign_query(parts.query, key, algo, orig, timestamp, nonce)
    return urlunsplit(parts._replace(query=query))


def hobo_shared_secret(secret1: str, secret2: str) -> str:
    """The secret Hobo derives for two Publik services from their ``secret_key``s.

    ``hex(int(sha256(s1).hexdigest(), 16) ^ int(sha256(s2).hexdigest(), 16))[2:]``,
    the same in both directions (``hobo_deploy``). Leading zeros are dropped, as
    Python's ``hex`` does: keep it that way to agree with Hobo.
    """
    first = int(hashlib.sha256(secret1.encode()).hexdigest(), 16)
    second = int(hashlib.sha256(secret2.encode()).hexdigest(), 16)
    return hex(first ^ second)[2:]


def _digest(key: str | bytes, message: bytes, algo: str) -> bytes:
    key_bytes = key.encode() if isinstance(key, str) else key
    return hmac.new(key_bytes, message, ALGORITHMS[algo]).digest()


# -- verifying (calls made to the hub) ------------------------------------------------


@dataclass(frozen=True)
class SignedQuery:
    """A query string that has the shape of a signed one; not yet checked."""

    signed: bytes  # the bytes the HMAC covers: the raw query up to "&signature="
    signature: bytes  # the decoded HMAC sent by the caller
    orig: str
    algo: str
    timestamp: datetime
    nonce: str

    def __repr__(self) -> str:  # never the signature nor the whole query
        return f"SignedQuery(orig={self.orig!r}, algo={self.algo!r}, timestamp={self.timestamp:%Y-%m-%dT%H:%M:%SZ})"


def is_signed(raw_query: str) -> bool:
    """Whether the query string carries a ``signature`` parameter at all."""
    return raw_query.startswith("signature=") or SIGNATURE_MARK in raw_query


def parse(raw_query: str) -> SignedQuery:
    """Read the parts of a signed query string, exactly as received (after ``?``)."""
    position = raw_query.find(SIGNATURE_MARK)
    if position < 0:
        raise SignatureError("no signature, or the signature is the first parameter")
    signed = raw_query[:position]
    sent = raw_query[position + len(SIGNATURE_MARK) :]
    if "&" in sent:
        raise SignatureError("the signature is not the last parameter")
    try:
        params = parse_qs(signed, keep_blank_values=True, errors="strict")
    except ValueError:  # percent-encoded bytes that are not UTF-8
        raise SignatureError("malformed query string") from None
    if "signature" in params:
        raise SignatureError("several signature parameters")
    values: dict[str, str] = {}
    for name in REQUIRED:
        found = params.get(name)
        if not found or not found[0]:
            raise SignatureError(f"missing {name}")
        if len(found) > 1:
            raise SignatureError(f"several {name} parameters")
        values[name] = found[0]
    if values["algo"] not in ALGORITHMS:
        raise SignatureError("algorithm not allowed")
    try:
        timestamp = datetime.strptime(values["timestamp"], TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError("malformed timestamp") from None
    try:
        encoded = _unquote_signature(sent)
        # Standard base64 only: '-' and '_' (URL-safe alphabet) are refused.
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed signature") from None
    if base64.b64encode(signature).decode() != encoded:
        # Publik compares the base64 strings: a non-canonical encoding of the same bytes
        # (padding bits set, padding missing) is another string, refused.
        raise SignatureError("malformed signature")
    if len(signature) != ALGORITHMS[values["algo"]]().digest_size:
        raise SignatureError("malformed signature")
    return SignedQuery(
        # The HTTP parser gave back the request's bytes as utf-8 with surrogate escapes.
        signed=signed.encode("utf-8", "surrogateescape"),
        signature=signature,
        orig=values["orig"],
        algo=values["algo"],
        timestamp=timestamp,
        nonce=values["nonce"],
    )


def _unquote_signature(sent: str) -> str:
    # quote() leaves '/' alone and encodes '+' and '='; a '+' sent bare is taken as '+',
    # not as a space: base64 has no space.
    return unquote(sent, errors="strict")


def check(
    query: SignedQuery, keys: Iterable[str | bytes], *, max_age: int = DEFAULT_MAX_AGE, now: datetime | None = None
) -> int:
    """Check the HMAC against each key, then the timestamp; return the index of the
    key that matched. The nonce is the caller's business (it needs a shared store)."""
    matched = -1
    for index, key in enumerate(keys):
        if not key:
            continue
        expected = _digest(key, query.signed, query.algo)
        # Every key is tried, so the time taken does not tell which one was close.
        if hmac.compare_digest(expected, query.signature) and matched < 0:
            matched = index
    if matched < 0:
        raise SignatureError("signature mismatch")
    check_timestamp(query.timestamp, max_age=max_age, now=now)
    return matched


def check_timestamp(timestamp: datetime, *, max_age: int = DEFAULT_MAX_AGE, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    delta = now - timestamp
    if delta > timedelta(seconds=max_age):
        raise SignatureError(f"timestamp more than {max_age} seconds in the past")
    if delta < timedelta(seconds=-max_age):
        raise SignatureError(f"timestamp more than {max_age} seconds in the future")


def verify(
    raw_query: str,
    keys: str | bytes | Iterable[str | bytes],
    *,
    max_age: int = DEFAULT_MAX_AGE,
    now: datetime | None = None,
) -> SignedQuery:
    """Parse and check a signed query string against one key or several (during a
    rotation); raise :class:`SignatureError` or return the checked query, whose
    ``nonce`` the caller must still record as used (:mod:`passerelle.auth.nonces`)."""
    query = parse(raw_query)
    check(query, [keys] if isinstance(keys, str | bytes) else keys, max_age=max_age, now=now)
    return query
