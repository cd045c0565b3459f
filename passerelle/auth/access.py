"""The permission check every endpoint call goes through.

An endpoint asks for a permission codename (``can_access`` by default, or
``PUBLIC``). The caller is allowed when one of the API users holding that right
on the instance accepts the request:

- an open user (key type ``""``) accepts anyone, within its IP allow-list;
- an ``API`` user accepts its key, sent as ``?apikey=`` or HTTP Basic
  ``username:key``;
- a ``SIGN`` user (Publik-signed query strings, ``orig=<username>``) is stored
  and exported, but not accepted yet: signature verification lands with the
  access-control work, until then such a user refuses every call.

Refusals never say which part was wrong, so they do not help someone guessing.
"""

from __future__ import annotations

import binascii
import hmac
from base64 import b64decode

from multidict import MultiDictProxy

from passerelle.envelope import PermissionDenied
from passerelle.instances import Caller

KEYTYPE_OPEN = ""
KEYTYPE_API = "API"
KEYTYPE_SIGN = "SIGN"
KEYTYPES = (KEYTYPE_OPEN, KEYTYPE_API, KEYTYPE_SIGN)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def authorize(
    callers: tuple[Caller, ...],
    *,
    query: MultiDictProxy[str],
    authorization: str | None,
    remote: str | None,
) -> Caller:
    """Return the API user accepting this request, or raise ``PermissionDenied``."""
    if not callers:
        raise PermissionDenied("permission denied: no API user may call this endpoint")
    basic = None
    for caller in callers:
        if not caller.allows_ip(remote):
            continue
        if caller.keytype == KEYTYPE_OPEN:
            return caller
        if caller.keytype == KEYTYPE_API and caller.key:
            apikey = query.get("apikey")
            if apikey is not None and hmac.compare_digest(apikey.encode(), caller.key.encode()):
                return caller
            if basic is None:
                basic = basic_credentials(authorization) or ("", "")
            if basic[0] == caller.username and hmac.compare_digest(basic[1].encode(), caller.key.encode()):
                return caller
    raise PermissionDenied("permission denied")
