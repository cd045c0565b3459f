"""Admin JSON API under /manage/api/."""

from aiohttp import web


def setup_routes(app: web.Application) -> None:
    pass
