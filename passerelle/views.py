"""HTML rendering shared by the hub's pages (Jinja2 templates in passerelle/templates)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from aiohttp import web


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("passerelle", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def wants_html(request: web.Request) -> bool:
    """Browsers get HTML, API clients (Accept: application/json or nothing) get JSON."""
    if request.query.get("format") == "json":
        return False
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and "application/json" not in accept.split(",")[0]


def render_html(template: str, status: int = 200, **context: Any) -> web.Response:
    body = environment().get_template(template).render(**context)
    return web.Response(text=body, status=status, content_type="text/html")
