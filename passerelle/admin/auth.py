"""Admin API authentication: ``Authorization: Bearer <token>`` with a token from
settings (``PASSERELLE_ADMIN_TOKENS``). With no token configured the admin API is
closed."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from functools import wraps

from aiohttp import web

from passerelle.envelope import PermissionDenied, Unauthorized
from passerelle.hub import hub_of

View = Callable[[web.Request], Awaitable[web.StreamResponse]]


def token_matches(presented: str, tokens: list[str]) -> bool:
    # Compare against every token so the timing does not tell which one was close.
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented.encode(), token.encode())
    return matched


def require_admin(view: View) -> View:
    @wraps(view)
    async def guarded(request: web.Request) -> web.StreamResponse:
        tokens = [t.get_secret_value() for t in hub_of(request).settings.admin_tokens]
        if not tokens:
            raise PermissionDenied("the admin API is closed: set PASSERELLE_ADMIN_TOKENS to open it")
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise Unauthorized("admin API: send 'Authorization: Bearer <token>'")
        if not token_matches(presented.strip(), tokens):
            raise PermissionDenied("admin API: invalid token")
        return await view(request)

    return guarded
